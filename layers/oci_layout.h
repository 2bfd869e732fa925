// An OCI image layout directory (image-spec image-layout.md): `oci-layout`, `index.json` and
// content-addressed `blobs/sha256/<hex>`.
//
// Blobs are written through BlobWriter, which hashes as bytes stream in and only moves the file into
// place (atomically, by rename) once the digest is known and, when one was promised, matches. So a
// layout never contains a blob whose name is not its content's digest, and an interrupted write leaves
// nothing behind. Blob reads are verified against the digest while they stream.
//
// Tags are index.json entries annotated with `org.opencontainers.image.ref.name`, as skopeo and umoci
// write them. Not thread-safe for index updates; blob writes of distinct blobs may run concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/image_model.h"
#include "core/io.h"
#include "core/status.h"

namespace kiln::layers {

inline constexpr char kRefNameAnnotation[] = "org.opencontainers.image.ref.name";

/// A Writer into a layout's blob store. Commit() names the blob by the digest of what was written.
/// Destroying it without a successful Commit removes the partial file.
class BlobWriter : public Writer {
 public:
  /// kHash: the writer hashes what it is given and Commit names the blob by that digest.
  /// kVerifiedBySource: the caller already hashes or verifies the same bytes — a stream from an
  /// ImageSource (verified against its digest as it is read, and read to its end before Commit), or
  /// a layer whose writer computes its digest — so hashing here would be a second pass over every
  /// byte. Commit(expected) then requires `expected` and names the blob by it.
  enum class Hashing { kHash, kVerifiedBySource };
  /// Creates a temporary file in `blobs_dir` (".incoming-*").
  static Result<std::unique_ptr<BlobWriter>> Create(const std::string& blobs_dir, Hashing hashing = Hashing::kHash);
  ~BlobWriter() override;
  Status Write(const void* data, size_t n) override;
  using Writer::Write;
  /// Finishes the blob and renames it to blobs_dir/<hex>. When `expected` is given and differs, fails
  /// with kDigestMismatch and stores nothing.
  Result<Digest> Commit(std::optional<Digest> expected = std::nullopt);
  uint64_t size() const { return size_; }

 private:
  BlobWriter(std::string blobs_dir, std::string tmp, int fd, Hashing hashing);
  std::string blobs_dir_, tmp_;
  FdWriter file_;
  HashingWriter hasher_;
  Hashing hashing_;
  uint64_t size_ = 0;
  bool committed_ = false;
};

/// Splits a "DIR[:TAG]" output name (as --oci-layout-path takes it): the part after the last ':'
/// is the tag unless a '/' follows it. The tag is "" when none is given.
std::pair<std::string, std::string> SplitLayoutPath(std::string_view path);

class OciLayout {
 public:
  /// Opens the layout at `dir`, creating the directory, `oci-layout` and an empty `index.json` when
  /// missing. Fails if `dir` holds something that is not an OCI layout.
  static Result<OciLayout> OpenOrCreate(const std::string& dir);
  /// Opens an existing layout; fails clearly when `oci-layout` is missing or of another version.
  static Result<OciLayout> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string BlobPath(const Digest& d) const;
  bool HasBlob(const Digest& d) const;

  /// Starts writing a blob into the store.
  Result<std::unique_ptr<BlobWriter>> NewBlob(BlobWriter::Hashing hashing = BlobWriter::Hashing::kHash) const;
  /// Stores small bytes (a manifest, a config) and returns their digest.
  Result<Digest> PutBlob(std::string_view bytes) const;
  /// Opens a blob for reading, verified against `d` (and `size` when >= 0) as it streams.
  Result<std::unique_ptr<Reader>> OpenBlob(const Digest& d, int64_t size = -1) const;
  /// Reads a whole small blob (manifests, configs: limited to 16 MiB), verified.
  Result<std::string> ReadBlob(const Digest& d) const;

  Result<Index> ReadIndex() const;
  /// Adds `desc` to index.json. When `ref_name` is non-empty it is set as the ref annotation and any
  /// other entry with the same ref name loses it (a tag names one image), as skopeo does.
  Status AddToIndex(Descriptor desc, const std::string& ref_name) const;
  /// The index entry with this ref name; with an empty name, the only entry (fails if there are several).
  Result<Descriptor> Resolve(const std::string& ref_name) const;

 private:
  explicit OciLayout(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace kiln::layers
