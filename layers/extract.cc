#include "layers/extract.h"

#include <thread>

#include "core/pipe.h"

#include <archive.h>
#include <archive_entry.h>

#include <vector>

#include "layers/archive_input.h"
#include "layers/extract_tree.h"

namespace kiln::layers {
namespace {

constexpr size_t kReadBuffer = 1 << 20;

// Counts the compressed bytes on their way from the VerifyingReader to the decompressor.
class CountingReader : public Reader {
 public:
  explicit CountingReader(Reader* src) : src_(src) {}
  Result<size_t> Read(void* buf, size_t n) override {
    auto r = src_->Read(buf, n);
    if (r.ok()) count_ += *r;
    return r;
  }
  uint64_t count() const { return count_; }

 private:
  Reader* src_;
  uint64_t count_ = 0;
};

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

class ArchiveFileData : public FileData {
 public:
  ArchiveFileData(struct archive* a, const ArchiveInput* src, const std::string& name) : a_(a), src_(src), name_(name) {}
  Result<bool> Next(const void** data, size_t* size, int64_t* offset) override {
    la_int64_t off = 0;
    int rc = archive_read_data_block(a_, data, size, &off);
    if (rc == ARCHIVE_EOF) return false;
    if (rc < ARCHIVE_WARN) {
      if (!src_->status().ok()) return src_->status();
      return InvalidArgument("reading " + name_ + " from the layer: " + archive_error_string(a_));
    }
    *offset = off;
    return true;
  }

 private:
  struct archive* a_;
  const ArchiveInput* src_;
  const std::string& name_;
};

// Names are bytes to the kernel. libarchive hands them out converted to the current locale, which
// fails for UTF-8 pax records under the C locale kiln usually runs in; the UTF-8 form is the
// archive's own bytes then.
std::string Bytes(const char* mbs, const char* utf8) {
  if (mbs) return mbs;
  return utf8 ? utf8 : "";
}

TarEntry ToTarEntry(struct archive_entry* ae) {
  TarEntry e;
  e.name = Bytes(archive_entry_pathname(ae), archive_entry_pathname_utf8(ae));
  e.perm = archive_entry_perm(ae);
  e.uid = static_cast<uint32_t>(archive_entry_uid(ae));
  e.gid = static_cast<uint32_t>(archive_entry_gid(ae));
  e.size = archive_entry_size(ae);
  e.mtime = {archive_entry_mtime(ae), archive_entry_mtime_nsec(ae)};
  if (archive_entry_atime_is_set(ae)) e.atime = timespec{archive_entry_atime(ae), archive_entry_atime_nsec(ae)};
  if (archive_entry_hardlink(ae) || archive_entry_hardlink_utf8(ae)) {
    e.type = TarEntry::Type::kHardlink;
    e.link = Bytes(archive_entry_hardlink(ae), archive_entry_hardlink_utf8(ae));
  } else {
    switch (archive_entry_filetype(ae)) {
      case AE_IFREG: e.type = TarEntry::Type::kFile; break;
      case AE_IFDIR: e.type = TarEntry::Type::kDir; break;
      case AE_IFLNK:
        e.type = TarEntry::Type::kSymlink;
        e.link = Bytes(archive_entry_symlink(ae), archive_entry_symlink_utf8(ae));
        break;
      case AE_IFCHR: e.type = TarEntry::Type::kChar; break;
      case AE_IFBLK: e.type = TarEntry::Type::kBlock; break;
      case AE_IFIFO: e.type = TarEntry::Type::kFifo; break;
      default: e.type = TarEntry::Type::kOther; break;
    }
  }
  e.dev_major = archive_entry_rdevmajor(ae);
  e.dev_minor = archive_entry_rdevminor(ae);
  archive_entry_xattr_reset(ae);
  const char* xname;
  const void* xvalue;
  size_t xsize;
  while (archive_entry_xattr_next(ae, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
    e.xattrs.emplace_back(xname, std::string(static_cast<const char*>(xvalue), xsize));
  }
  return e;
}

// Our own error (digest mismatch, corrupt gzip, size limit) first: libarchive only knows that a read failed.
Status ArchiveError(struct archive* a, const ArchiveInput& src, std::string_view what) {
  if (!src.status().ok()) return src.status();
  const char* msg = archive_error_string(a);
  return InvalidArgument(std::string(what) + ": " + (msg ? msg : "malformed tar"));
}

}  // namespace

Result<ExtractResult> ExtractLayer(Reader& blob, const LayerExpectation& expect, const std::string& rootfs,
                                   const ExtractOptions& options) {
  if (!expect.digest.valid()) return InvalidArgument("extracting a layer needs its digest");
  const std::string what = "layer " + expect.digest.Short();
  auto fail = [&what](const Status& s) { return s.WithContext("extracting " + what); };

  // blob → verify digest/size → count → decompress → limit → hash (diff_id) → libarchive.
  VerifyingReader verified(&blob, expect.digest, expect.size, what);
  CountingReader counted(expect.verified_by_source ? &blob : static_cast<Reader*>(&verified));
  ExtractResult result;
  auto decompressed = NewDecompressingReader(&counted, &result.compression);
  if (!decompressed.ok()) return fail(decompressed.status());
  Reader* tar = decompressed->get();
  std::unique_ptr<LimitReader> limited;
  if (options.max_uncompressed_bytes > 0) {
    limited = std::make_unique<LimitReader>(
        tar, options.max_uncompressed_bytes,
        InvalidArgument("the uncompressed layer is larger than the limit of " +
                        std::to_string(options.max_uncompressed_bytes) + " bytes (a decompression bomb?)"));
    tar = limited.get();
  }
  std::unique_ptr<Reader> guarded;
  if (options.limits.max_bytes > 0 || options.limits.max_ratio > 0) {
    guarded = NewBombGuardReader(tar, [&counted] { return counted.count(); }, options.limits,
                                 "layer " + expect.digest.ToString());
    tar = guarded.get();
  }
  HashingReader hashed(tar);

  auto tree = ExtractTree::Open(rootfs, options);
  if (!tree.ok()) return fail(tree.status());
  result.used_openat2 = (*tree)->uses_openat2();

  // Reading, verifying, decompressing and hashing run on a thread of their own, a pipe ahead of the
  // tar parser and the file writes: on two cores the layer is unpacked at the pace of the slower
  // half instead of the sum of both.
  Pipe pipe(1 << 20);
  std::thread feeder([&hashed, &pipe] {
    std::vector<char> buf(256 * 1024);
    for (;;) {
      Result<size_t> r = hashed.Read(buf.data(), buf.size());
      if (!r.ok()) {
        pipe.Abort(r.status());
        return;
      }
      if (*r == 0) break;
      if (!pipe.writer().Write(buf.data(), *r).ok()) return;  // the parser gave up
    }
    pipe.writer().Close().IgnoreError();
  });
  struct StopFeeder {
    Pipe& pipe;
    std::thread& feeder;
    ~StopFeeder() {
      if (!feeder.joinable()) return;
      pipe.Abort(Status(ErrorCode::kCancelled, "extraction stopped"));
      feeder.join();
    }
  } stop_feeder{pipe, feeder};

  ArchiveInput src(pipe.reader(), kReadBuffer);
  std::unique_ptr<struct archive, ArchiveDeleter> a(archive_read_new());
  if (!a) return fail(InternalError("cannot allocate a tar reader"));
  // Tar only (ustar, pax, GNU); the decompression is ours, so that the diff_id sees the tar bytes.
  archive_read_support_format_tar(a.get());
  if (src.Open(a.get()) != ARCHIVE_OK) {
    return fail(ArchiveError(a.get(), src, "opening the tar stream"));
  }
  for (;;) {
    struct archive_entry* ae = nullptr;
    int rc = archive_read_next_header(a.get(), &ae);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) return fail(ArchiveError(a.get(), src, "reading the tar stream"));
    ++result.entries;
    TarEntry e = ToTarEntry(ae);
    if (rc == ARCHIVE_WARN && options.warn) {
      const char* msg = archive_error_string(a.get());
      options.warn("tar entry " + e.name + ": " + (msg ? msg : "warning"));
    }
    ArchiveFileData data(a.get(), &src, e.name);
    Status s = (*tree)->Apply(e, e.type == TarEntry::Type::kFile ? &data : nullptr);
    if (!s.ok()) {
      // A stream error surfacing while reading a file's data is the real cause.
      return fail(src.status().ok() ? s : src.status());
    }
  }
  // libarchive may meet a read error while looking past the end-of-archive blocks and still report
  // the end; the stream is broken all the same.
  if (!src.status().ok()) return fail(src.status());
  // The tar ends with two zero blocks, but the blob may go on (padding); the digest and the diff_id
  // cover every byte, so read to the end.
  std::vector<char> rest(64 * 1024);
  for (;;) {
    auto r = pipe.reader().Read(rest.data(), rest.size());
    if (!r.ok()) return fail(r.status());
    if (*r == 0) break;
  }
  feeder.join();  // it has closed the pipe: every byte is read and hashed
  // And the compressed stream to its end, where its digest is checked (by `verified` or, for a
  // stream verified by its source, by the source).
  for (;;) {
    auto r = counted.Read(rest.data(), rest.size());
    if (!r.ok()) return fail(r.status());
    if (*r == 0) break;
  }
  Status finish = (*tree)->Finish();
  if (!finish.ok()) return fail(finish);
  result.diff_id = hashed.Finish();
  result.uncompressed_bytes = hashed.size();
  result.compressed_bytes = counted.count();
  if (expect.diff_id && *expect.diff_id != result.diff_id) {
    return fail(DigestMismatch("uncompressed content hashes to " + result.diff_id.ToString() + ", expected diff_id " +
                               expect.diff_id->ToString()));
  }
  return result;
}

}  // namespace kiln::layers
