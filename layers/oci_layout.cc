#include "layers/oci_layout.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "core/media_types.h"

namespace kiln::layers {
namespace {

constexpr char kLayoutFile[] = R"({"imageLayoutVersion":"1.0.0"})";

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Result<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> r, OpenFileReader(path));
  auto s = ReadAll(*r, limit);
  if (!s.ok()) return s.status().WithContext("reading " + path);
  return s;
}

Status WriteSmallFile(const std::string& path, std::string_view bytes) {
  KILN_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::Create(path));
  KILN_RETURN_IF_ERROR(w->Write(bytes));
  return w->Close();
}

}  // namespace

Result<std::unique_ptr<BlobWriter>> BlobWriter::Create(const std::string& blobs_dir, Hashing hashing) {
  std::string tmpl = blobs_dir + "/.incoming-XXXXXX";
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("creating a blob in " + blobs_dir, errno);
  ::fchmod(fd, 0644);
  return std::unique_ptr<BlobWriter>(new BlobWriter(blobs_dir, tmpl, fd, hashing));
}

BlobWriter::BlobWriter(std::string blobs_dir, std::string tmp, int fd, Hashing hashing)
    : blobs_dir_(std::move(blobs_dir)), tmp_(std::move(tmp)), file_(fd, /*owned=*/true, tmp_), hasher_(&file_),
      hashing_(hashing) {}

BlobWriter::~BlobWriter() {
  if (!committed_) ::unlink(tmp_.c_str());
}

Status BlobWriter::Write(const void* data, size_t n) {
  size_ += n;
  return hashing_ == Hashing::kHash ? hasher_.Write(data, n) : file_.Write(data, n);
}

Result<Digest> BlobWriter::Commit(std::optional<Digest> expected) {
  if (committed_) return FailedPrecondition("blob already committed");
  if (hashing_ == Hashing::kVerifiedBySource && !expected) {
    return InternalError("a blob verified by its source needs its digest to be committed");
  }
  Digest got = hashing_ == Hashing::kHash ? hasher_.Finish() : *expected;
  KILN_RETURN_IF_ERROR(file_.Close());
  if (expected && *expected != got) {
    return DigestMismatch("blob written as " + expected->ToString() + " hashes to " + got.ToString());
  }
  std::string final_path = blobs_dir_ + "/" + got.hex();
  if (::rename(tmp_.c_str(), final_path.c_str()) != 0) return ErrnoStatus("storing blob " + final_path, errno);
  committed_ = true;
  return got;
}

Result<OciLayout> OciLayout::Open(const std::string& dir) {
  auto layout = ReadSmallFile(dir + "/oci-layout", 4096);
  if (!layout.ok()) {
    return NotFound(dir + " is not an OCI image layout (no oci-layout file)");
  }
  auto j = nlohmann::json::parse(*layout, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("imageLayoutVersion") ||
      !j["imageLayoutVersion"].is_string()) {
    return InvalidArgument(dir + "/oci-layout: not a valid layout marker");
  }
  std::string v = j["imageLayoutVersion"].get<std::string>();
  if (v.rfind("1.", 0) != 0) return Unsupported(dir + ": OCI layout version " + v + " is not supported");
  if (!Exists(dir + "/index.json")) return InvalidArgument(dir + ": OCI layout without index.json");
  return OciLayout(dir);
}

std::pair<std::string, std::string> SplitLayoutPath(std::string_view path) {
  size_t colon = path.rfind(':');
  if (colon == std::string_view::npos || path.find('/', colon) != std::string_view::npos) {
    return {std::string(path), std::string()};
  }
  return {std::string(path.substr(0, colon)), std::string(path.substr(colon + 1))};
}

Result<OciLayout> OciLayout::OpenOrCreate(const std::string& dir) {
  if (Exists(dir + "/oci-layout")) return Open(dir);
  // Two builds may create the same layout at once: index.json comes first and only where none
  // exists (a hard link of a finished file fails with EEXIST, never replacing another's index), and
  // oci-layout, the mark Open looks for, last.
  KILN_RETURN_IF_ERROR(MakeDirs(dir + "/blobs/sha256"));
  if (!Exists(dir + "/index.json")) {
    Index idx;
    idx.media_type = std::string(media_type::kOciIndex);
    // A name no other creator uses, in this process or another (threads share a pid).
    std::string tmp = dir + "/.index.json-XXXXXX";
    int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("creating " + dir + "/index.json", errno);
    ::fchmod(fd, 0644);
    FdWriter out(fd, /*owned=*/true, tmp);
    Status wrote = out.Write(SerializeIndex(idx));
    if (wrote.ok()) wrote = out.Close();
    if (!wrote.ok()) {
      ::unlink(tmp.c_str());
      return wrote;
    }
    int rc = ::link(tmp.c_str(), (dir + "/index.json").c_str());
    int err = errno;
    ::unlink(tmp.c_str());
    if (rc != 0 && err != EEXIST) return ErrnoStatus("creating " + dir + "/index.json", err);
  }
  KILN_RETURN_IF_ERROR(WriteSmallFile(dir + "/oci-layout", kLayoutFile));
  return OciLayout(dir);
}

std::string OciLayout::BlobPath(const Digest& d) const { return dir_ + "/blobs/" + d.algorithm() + "/" + d.hex(); }

bool OciLayout::HasBlob(const Digest& d) const { return Exists(BlobPath(d)); }

Result<std::unique_ptr<BlobWriter>> OciLayout::NewBlob(BlobWriter::Hashing hashing) const {
  KILN_RETURN_IF_ERROR(MakeDirs(dir_ + "/blobs/sha256"));
  return BlobWriter::Create(dir_ + "/blobs/sha256", hashing);
}

Result<Digest> OciLayout::PutBlob(std::string_view bytes) const {
  Digest d = Sha256Of(bytes);
  if (HasBlob(d)) return d;
  KILN_ASSIGN_OR_RETURN(auto w, NewBlob());
  KILN_RETURN_IF_ERROR(w->Write(bytes));
  return w->Commit(d);
}

Result<std::unique_ptr<Reader>> OciLayout::OpenBlob(const Digest& d, int64_t size) const {
  std::string path = BlobPath(d);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> file, OpenFileReader(path));
  std::optional<uint64_t> expected_size;
  if (size >= 0) expected_size = static_cast<uint64_t>(size);
  return NewVerifyingReader(std::move(file), d, expected_size, "blob " + path);
}

Result<std::string> OciLayout::ReadBlob(const Digest& d) const {
  KILN_ASSIGN_OR_RETURN(auto r, OpenBlob(d));
  return ReadAll(*r, 16 << 20);
}

Result<Index> OciLayout::ReadIndex() const {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(dir_ + "/index.json", 16 << 20));
  auto idx = ParseIndex(text);
  if (!idx.ok()) return idx.status().WithContext(dir_ + "/index.json");
  return idx;
}

Status OciLayout::AddToIndex(Descriptor desc, const std::string& ref_name) const {
  KILN_ASSIGN_OR_RETURN(Index idx, ReadIndex());
  if (idx.media_type.empty()) idx.media_type = std::string(media_type::kOciIndex);
  if (!ref_name.empty()) {
    for (auto& m : idx.manifests) {
      auto it = m.annotations.find(kRefNameAnnotation);
      if (it != m.annotations.end() && it->second == ref_name) m.annotations.erase(it);
    }
    desc.annotations[kRefNameAnnotation] = ref_name;
  }
  // Drop entries that are now unnamed duplicates of the new one, and unnamed stale entries of a ref.
  std::vector<Descriptor> kept;
  for (auto& m : idx.manifests) {
    bool unnamed = m.annotations.find(kRefNameAnnotation) == m.annotations.end();
    if (unnamed && m.digest == desc.digest) continue;
    kept.push_back(std::move(m));
  }
  kept.push_back(std::move(desc));
  idx.manifests = std::move(kept);
  return WriteSmallFile(dir_ + "/index.json", SerializeIndex(idx));
}

Result<Descriptor> OciLayout::Resolve(const std::string& ref_name) const {
  KILN_ASSIGN_OR_RETURN(Index idx, ReadIndex());
  if (ref_name.empty()) {
    if (idx.manifests.size() == 1) return idx.manifests[0];
    return InvalidArgument(dir_ + ": the layout holds " + std::to_string(idx.manifests.size()) +
                           " images; name one with DIR:TAG");
  }
  for (const auto& m : idx.manifests) {
    auto it = m.annotations.find(kRefNameAnnotation);
    if (it != m.annotations.end() && it->second == ref_name) return m;
  }
  return NotFound(dir_ + ": no image tagged \"" + ref_name + "\" in index.json");
}

}  // namespace kiln::layers
