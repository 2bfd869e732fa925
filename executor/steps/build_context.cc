#include "executor/steps/build_context.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "core/io.h"
#include "core/path.h"
#include "layers/archive_input.h"
#include "layers/safe_path.h"

namespace kiln::executor {
namespace {

constexpr size_t kMaxIgnoreFileBytes = 16 << 20;

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

// The decompressed bytes of a file, through libarchive's "raw" format, which accepts any of the
// compressions libarchive knows (gzip, bzip2, xz, lzma, zstd, lz4, ...) or none.
class DecompressedFileReader : public Reader {
 public:
  static Result<std::unique_ptr<DecompressedFileReader>> Open(const std::string& path) {
    ArchivePtr a(archive_read_new());
    if (!a) return InternalError("cannot allocate an archive reader");
    archive_read_support_filter_all(a.get());
    archive_read_support_format_raw(a.get());
    if (archive_read_open_filename(a.get(), path.c_str(), 1 << 20) != ARCHIVE_OK) {
      return Error(a.get(), "opening " + path);
    }
    struct archive_entry* ae = nullptr;
    int rc = archive_read_next_header(a.get(), &ae);
    auto r = std::unique_ptr<DecompressedFileReader>(new DecompressedFileReader(std::move(a), path));
    if (rc == ARCHIVE_EOF) r->eof_ = true;  // an empty file
    else if (rc < ARCHIVE_WARN) return Error(r->a_.get(), "reading " + path);
    return r;
  }
  Result<size_t> Read(void* buf, size_t n) override {
    if (eof_) return size_t{0};
    la_ssize_t got = archive_read_data(a_.get(), buf, n);
    if (got < 0) return Error(a_.get(), "decompressing " + path_);
    return static_cast<size_t>(got);
  }

 private:
  DecompressedFileReader(ArchivePtr a, std::string path) : a_(std::move(a)), path_(std::move(path)) {}
  static Status Error(struct archive* a, const std::string& what) {
    const char* msg = archive_error_string(a);
    return InvalidArgument(what + ": " + (msg ? msg : "unreadable archive"));
  }
  ArchivePtr a_;
  std::string path_;
  bool eof_ = false;
};

bool IsWhiteout(std::string_view clean) {
  return layers::SplitParent(clean).second.starts_with(".wh.");
}

// Pass one over an archive: is it a tar (BuildKit: the first header parses), which names does it
// hold, and what is the digest of the decompressed stream that ExtractLayer will verify.
struct TarScan {
  bool is_tar = false;
  std::vector<std::string> names;
  Digest digest;
};

Result<TarScan> ScanTarball(const std::string& archive) {
  TarScan scan;
  auto raw = DecompressedFileReader::Open(archive);
  if (!raw.ok()) return scan;  // not something libarchive can read: not an archive
  HashingReader hashed(raw->get());
  layers::ArchiveInput src(hashed);
  ArchivePtr a(archive_read_new());
  if (!a) return InternalError("cannot allocate an archive reader");
  archive_read_support_format_tar(a.get());
  if (src.Open(a.get()) != ARCHIVE_OK) return scan;
  for (bool first = true;; first = false) {
    struct archive_entry* ae = nullptr;
    int rc = archive_read_next_header(a.get(), &ae);
    if (rc == ARCHIVE_EOF) {
      if (first) return scan;  // an empty archive is not one (Go's tar reader says io.EOF)
      break;
    }
    if (rc < ARCHIVE_WARN) {
      if (first) return scan;
      if (!src.status().ok()) return src.status().WithContext("reading " + archive);
      const char* msg = archive_error_string(a.get());
      return InvalidArgument("reading tar archive " + archive + ": " + (msg ? msg : "malformed"));
    }
    scan.is_tar = true;
    const char* name = archive_entry_pathname(ae);
    if (!name) name = archive_entry_pathname_utf8(ae);
    auto clean = layers::CleanArchivePath(name ? name : "");
    if (clean.ok() && !clean->empty() && !IsWhiteout(*clean)) scan.names.push_back(std::move(*clean));
  }
  // The digest covers the whole decompressed stream, padding after the tar's end included.
  std::vector<char> rest(1 << 16);
  for (;;) {
    auto r = hashed.Read(rest.data(), rest.size());
    if (!r.ok()) return r.status().WithContext("reading " + archive);
    if (*r == 0) break;
  }
  scan.digest = hashed.Finish();
  return scan;
}

bool IsTarballName(std::string_view p) {
  return p.ends_with(".tar") || p.ends_with(".tar.gz") || p.ends_with(".tgz");
}

Result<std::string> AbsoluteDir(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return ErrnoStatus("build context " + path, errno);
  struct stat st;
  if (::stat(buf, &st) != 0) return ErrnoStatus("build context " + path, errno);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument("build context " + path + " is not a directory");
  return std::string(buf);
}

}  // namespace

Result<std::optional<std::string>> ReadFileInRoot(int root_fd, std::string_view rel, size_t max_bytes) {
  KILN_ASSIGN_OR_RETURN(std::string resolved, layers::ResolveBelow(root_fd, rel));
  if (resolved.empty()) return InvalidArgument("/" + std::string(rel) + " is the root directory");
  int fd = ::openat(root_fd, resolved.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return ErrnoStatus("opening /" + std::string(rel), errno);
  }
  layers::UniqueFd owned(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("inspecting /" + std::string(rel), errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("/" + std::string(rel) + " is not a regular file");
  FdReader reader(fd, false, "/" + std::string(rel));
  KILN_ASSIGN_OR_RETURN(std::string text, ReadAll(reader, max_bytes));
  return std::optional<std::string>(std::move(text));
}

Result<std::optional<std::vector<std::string>>> ExtractTarball(const std::string& archive,
                                                               const std::function<Result<std::string>()>& dest,
                                                               const layers::ExtractOptions& options) {
  KILN_ASSIGN_OR_RETURN(TarScan scan, ScanTarball(archive));
  if (!scan.is_tar) return std::optional<std::vector<std::string>>();
  KILN_ASSIGN_OR_RETURN(std::string dest_dir, dest());
  KILN_ASSIGN_OR_RETURN(auto raw, DecompressedFileReader::Open(archive));
  layers::LayerExpectation expect;
  expect.digest = scan.digest;
  auto extracted = layers::ExtractLayer(*raw, expect, dest_dir, options);
  if (!extracted.ok()) return extracted.status().WithContext("extracting " + archive);
  return std::optional<std::vector<std::string>>(std::move(scan.names));
}

Result<std::unique_ptr<BuildContext>> BuildContext::Open(const std::string& spec, const std::string& dockerfile_path,
                                                         const std::string& scratch_dir) {
  std::string path = spec;
  bool tarball = false;
  if (spec.rfind("dir://", 0) == 0) {
    path = spec.substr(6);
  } else if (spec == "tar://stdin") {
    tarball = true;  // Kaniko's name for a tar (optionally gzip'd) on standard input
  } else if (spec.rfind("tar://", 0) == 0) {
    path = spec.substr(6);
    tarball = true;
  } else if (size_t scheme = spec.find("://"); scheme != std::string::npos) {
    return Unsupported("build context \"" + spec + "\": the " + spec.substr(0, scheme + 3) +
                       " scheme is not supported (use a directory, dir://, tar:// or a .tar/.tar.gz file)");
  } else if (spec.rfind("git@", 0) == 0) {
    return Unsupported("build context \"" + spec + "\": git contexts are not supported");
  } else if (spec == "-") {
    tarball = true;
  } else if (IsTarballName(spec)) {
    tarball = true;
  }
  if (path.empty()) return InvalidArgument("build context \"" + spec + "\": empty path");

  std::string root;
  if (tarball) {
    if (scratch_dir.empty()) return InvalidArgument("a tarball build context needs a scratch directory");
    std::string archive = path;
    std::string stdin_copy;
    if (spec == "-" || spec == "tar://stdin") {
      // The extractor needs two passes (digest, then extraction): keep stdin in the scratch area.
      stdin_copy = scratch_dir + "/.kiln-context.tar";
      KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(stdin_copy, 0600));
      FdReader in(0, false, "stdin");
      auto copied = Copy(in, *out);
      if (!copied.ok()) return copied.status().WithContext("reading the build context from stdin");
      KILN_RETURN_IF_ERROR(out->Close());
      archive = stdin_copy;
    }
    KILN_ASSIGN_OR_RETURN(root, AbsoluteDir(scratch_dir));
    layers::ExtractOptions options;
    options.create_device_nodes = false;
    if (!stdin_copy.empty()) options.skip_paths.push_back(".kiln-context.tar");
    auto names = ExtractTarball(archive, [&root]() -> Result<std::string> { return root; }, options);
    if (!stdin_copy.empty()) ::unlink(stdin_copy.c_str());
    if (!names.ok()) return names.status().WithContext("build context " + spec);
    if (!names->has_value()) return InvalidArgument("build context " + spec + " is not a tar archive");
  } else {
    KILN_ASSIGN_OR_RETURN(root, AbsoluteDir(path));
  }

  std::string ignore_file;
  std::vector<std::string> patterns;
  auto exists = [](const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  };
  if (auto chosen = dockerfile::ChooseIgnoreFile(root, dockerfile_path, exists)) {
    ignore_file = *chosen;
    KILN_ASSIGN_OR_RETURN(auto reader, OpenFileReader(ignore_file));
    KILN_ASSIGN_OR_RETURN(std::string text, ReadAll(*reader, kMaxIgnoreFileBytes));
    patterns = dockerfile::ReadIgnorePatterns(text);
  }
  auto matcher = dockerfile::IgnoreMatcher::Create(patterns);
  if (!matcher.ok()) return matcher.status().WithContext(ignore_file);
  return std::unique_ptr<BuildContext>(new BuildContext(std::move(root), std::move(*matcher), std::move(ignore_file)));
}

}  // namespace kiln::executor
