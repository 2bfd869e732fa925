// Where images come from and go to when copying: a registry (here), an OCI layout directory or a
// docker-archive tar (layout_io.h). Copy() moves an image or a whole index between any two of them,
// keeping the original manifest bytes so digests do not change.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/image_model.h"
#include "core/io.h"
#include "registry/client.h"
#include "registry/reference.h"

namespace kiln::registry {

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
};

/// Whether a sink has a blob before any bytes are sent.
enum class BlobPresence {
  kAbsent,   // must be transferred
  kPresent,  // already there
  kMounted,  // made present without a transfer (cross-repository mount)
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

/// Opens `ref` in a registry, through the client's pull endpoints (docker.io mirrors first).
/// The root manifest is fetched eagerly (which picks the endpoint that has it).
Result<std::unique_ptr<ImageSource>> OpenRegistrySource(Client& client, const Reference& ref);
/// A sink pushing to `ref`: the root is tagged ref.TagOrDefault(), or put by digest for a digest-only
/// reference. Blobs are HEADed first and mounted from a source in the same registry when possible.
Result<std::unique_ptr<ImageSink>> OpenRegistrySink(Client& client, const Reference& ref);

}  // namespace kiln::registry
