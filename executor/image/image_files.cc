#include "executor/image/image_files.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "layers/archive_input.h"
#include "layers/decompress.h"

namespace kiln::executor {
namespace {

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// "./a/b/" → "a/b"
std::string CleanPath(std::string_view p) {
  while (p.substr(0, 2) == "./") p.remove_prefix(2);
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  return std::string(p);
}

// Removes `path` and everything below it from the lower layers' files.
void DeleteBelow(std::map<std::string, std::string>& files, const std::string& path) {
  files.erase(path);
  std::string prefix = path.empty() ? "" : path + "/";
  for (auto it = files.lower_bound(prefix); it != files.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = files.erase(it);
  }
}

Status ArchiveError(struct archive* a, const layers::ArchiveInput& src, const std::string& what) {
  if (!src.status().ok()) return src.status();
  const char* msg = archive_error_string(a);
  return InvalidArgument(what + ": " + (msg ? msg : "malformed tar"));
}

// Reads one layer: deletions (whiteouts, and any non-directory entry, which hides a lower tree at
// its path) are applied to `files` at once — it holds only the lower layers — while the layer's
// own wanted files are collected apart and laid over them at the end.
Status ReadLayer(Reader& blob, const std::string& what, const ImagePathFilter& wanted, size_t max_bytes,
                 std::map<std::string, std::string>& files, std::vector<std::string>* oversized) {
  auto tar = layers::NewDecompressingReader(&blob);
  if (!tar.ok()) return tar.status().WithContext(what);
  layers::ArchiveInput src(**tar);
  std::unique_ptr<struct archive, ArchiveDeleter> a(archive_read_new());
  if (!a) return InternalError("cannot allocate a tar reader");
  archive_read_support_format_tar(a.get());
  if (src.Open(a.get()) != ARCHIVE_OK) return ArchiveError(a.get(), src, what);
  std::map<std::string, std::string> upper;
  for (;;) {
    struct archive_entry* ae = nullptr;
    int rc = archive_read_next_header(a.get(), &ae);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) return ArchiveError(a.get(), src, what);
    const char* raw = archive_entry_pathname(ae);
    std::string path = CleanPath(raw ? raw : "");
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base == ".wh..wh..opq") {
      DeleteBelow(files, dir);
      continue;
    }
    if (base.rfind(".wh.", 0) == 0) {
      DeleteBelow(files, dir.empty() ? base.substr(4) : dir + "/" + base.substr(4));
      continue;
    }
    bool is_dir = archive_entry_filetype(ae) == AE_IFDIR;
    if (!is_dir) DeleteBelow(files, path);
    bool regular = archive_entry_filetype(ae) == AE_IFREG && archive_entry_hardlink(ae) == nullptr;
    if (!regular || !wanted(path)) continue;
    if (archive_entry_size(ae) > static_cast<la_int64_t>(max_bytes)) {
      if (oversized != nullptr) {
        upper.erase(path);
        oversized->push_back("/" + path + " (" + std::to_string(archive_entry_size(ae)) + " bytes)");
        continue;
      }
      return InvalidArgument(what + ": /" + path + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
    std::string content(static_cast<size_t>(archive_entry_size(ae)), '\0');
    size_t got = 0;
    while (got < content.size()) {
      la_ssize_t n = archive_read_data(a.get(), content.data() + got, content.size() - got);
      if (n < 0) return ArchiveError(a.get(), src, what + ": reading /" + path);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    content.resize(got);
    upper[path] = std::move(content);
  }
  if (!src.status().ok()) return src.status().WithContext(what);
  // Read past the end-of-archive blocks, so that the blob's digest is checked over every byte.
  char rest[16384];
  for (;;) {
    Result<size_t> n = (*tar)->Read(rest, sizeof rest);
    if (!n.ok()) return n.status().WithContext(what);
    if (*n == 0) break;
  }
  for (auto& [path, content] : upper) files[path] = std::move(content);
  return OkStatus();
}

}  // namespace

Result<std::map<std::string, std::string>> ReadImageFiles(const std::vector<ImageLayer>& layers,
                                                          const layers::OciLayout& store,
                                                          const ImagePathFilter& wanted, size_t max_bytes,
                                                          std::vector<std::string>* oversized) {
  std::map<std::string, std::string> files;
  for (const ImageLayer& layer : layers) {
    std::string what = "reading layer " + layer.desc.digest.Short();
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> blob, OpenLayerBlob(layer, store));
    KILN_RETURN_IF_ERROR(ReadLayer(*blob, what, wanted, max_bytes, files, oversized));
  }
  return files;
}

}  // namespace kiln::executor
