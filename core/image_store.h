// Where images come from and go to: the interfaces every image store implements. A registry
// (registry/registry_image.h), an OCI layout directory (layers/oci_layout_store.h), a docker-archive
// tar (layers/docker_archive_store.h) and an image kiln just built (executor/pipeline) are all
// sources and/or sinks, and CopyImage() (core/image_copy.h) moves an image or a whole index between
// any two of them, keeping the original manifest bytes so digests do not change.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/image_model.h"
#include "core/io.h"

namespace kiln {

/// A readable image store positioned on one root manifest (image or index).
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  /// For messages: "docker://r/a:1", "oci:/dir:tag".
  virtual std::string Describe() const = 0;
  /// The manifest the source was opened on.
  virtual Result<RawManifest> RootManifest() = 0;
  /// A manifest named by an index entry, verified against its digest.
  virtual Result<RawManifest> GetManifest(const Descriptor& d) = 0;
  /// Streams a blob, verified against d.digest (and d.size) as it is read. May be called again for
  /// the same blob (to retry a failed transfer). Thread-safe.
  virtual Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) = 0;
  /// When the blobs live in a registry: its name and the repository, for cross-repository mounts.
  virtual std::optional<std::pair<std::string, std::string>> RegistryLocation() const { return std::nullopt; }
  /// When blob `d` is a verified file on this machine: its path, so a local sink can hard-link or
  /// reference it instead of copying the bytes. The file must not change while the source lives.
  virtual std::optional<std::string> LocalBlobPath(const Descriptor& d) const { return std::nullopt; }
};

/// Whether a sink has a blob before any bytes are sent.
enum class BlobPresence {
  kAbsent,   // must be transferred
  kPresent,  // already there
  kMounted,  // made present without a transfer (cross-repository mount, hard link)
};

/// A writable image store. Copy() calls HasBlob/PutBlob (possibly from several threads) for every
/// blob, then PutManifest for each child manifest, then PutRoot once, last.
class ImageSink {
 public:
  virtual ~ImageSink() = default;
  virtual std::string Describe() const = 0;
  /// Whether the sink has blob `d` already, or made it present without a transfer (e.g. a
  /// cross-repository mount from `from`). Thread-safe.
  virtual Result<BlobPresence> HasBlob(const Descriptor& d, const ImageSource& from) = 0;
  /// False for stores that hold single images only (docker-archive); Copy() then refuses an index
  /// before transferring anything.
  virtual bool AcceptsIndex() const { return true; }
  /// Stores `content` as blob `d`; stores nothing and fails with kDigestMismatch unless it hashes to
  /// d.digest. Thread-safe.
  virtual Status PutBlob(const Descriptor& d, Reader& content) = 0;
  /// Stores a manifest that an index (or nothing yet) refers to, by digest.
  virtual Status PutManifest(const RawManifest& m) = 0;
  /// Stores the root manifest and gives it the sink's name (a tag). Called last.
  virtual Status PutRoot(const RawManifest& m) = 0;
};

}  // namespace kiln
