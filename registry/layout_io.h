// ImageSource / ImageSink over local stores, so Copy() moves images between any two of a registry,
// an OCI layout directory and a docker-archive tar; and the transport-prefixed names skopeo uses:
//   docker://REF              a registry (a bare REF means the same)
//   oci:DIR[:TAG]             an OCI image layout; without TAG the layout's only image (source) or an
//                             untagged entry (destination)
//   docker-archive:PATH[:REF] a `docker save` tarball; as a source REF picks the image by RepoTags (or
//                             "@N" by position); as a destination it becomes the RepoTags entry
//
// Digests: registry ↔ OCI layout copies keep every byte, so manifest digests do not change. A
// docker-archive keeps layers and config, but its manifest.json is not a manifest: reading one that
// kiln or Docker 25+ wrote uses the OCI manifest stored inside it (digest kept); reading a classic
// archive builds a Docker v2s2 manifest, which is necessarily a new digest. An archive holds single
// images only, not an index.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "registry/client.h"
#include "registry/image_source.h"
#include "registry/reference.h"

namespace kiln::registry {

/// A parsed transport-prefixed image name.
struct ImageLocation {
  enum class Kind { kRegistry, kOciLayout, kDockerArchive };
  Kind kind = Kind::kRegistry;
  /// kRegistry: the image. kDockerArchive: the image named inside the archive (optional).
  std::optional<Reference> reference;
  /// kOciLayout: the directory; kDockerArchive: the tar file.
  std::string path;
  /// kOciLayout: the ref name (may be empty).
  std::string tag;
  /// kDockerArchive source: "@N" picks the N-th image.
  std::optional<size_t> archive_index;

  /// Back to the prefixed form: "docker://r/a:1", "oci:/dir:tag", "docker-archive:/x.tar:r/a:1".
  std::string ToString() const;
};

/// Parses "docker://REF", "oci:DIR[:TAG]", "docker-archive:PATH[:REF|:@N]" or a bare reference.
/// Unknown transports ("dir:", "containers-storage:") fail with kInvalidArgument naming the known ones.
Result<ImageLocation> ParseImageLocation(std::string_view text);

/// An OCI layout as a source: the image tagged `tag` (or the only one when `tag` is empty).
Result<std::unique_ptr<ImageSource>> OpenLayoutSource(const std::string& dir, const std::string& tag);
/// An OCI layout as a destination (created if missing); the root is added to index.json under `tag`.
Result<std::unique_ptr<ImageSink>> OpenLayoutSink(const std::string& dir, const std::string& tag);

/// A docker-archive as a source: the image whose RepoTags hold `ref`, image #`index`, or the only one.
Result<std::unique_ptr<ImageSource>> OpenArchiveSource(const std::string& path, const std::optional<Reference>& ref,
                                                       std::optional<size_t> index);
/// A docker-archive as a destination. Blobs are spooled to a scratch directory beside `path` (removed
/// when the sink is destroyed) and the tar is written atomically when the root arrives.
Result<std::unique_ptr<ImageSink>> OpenArchiveSink(const std::string& path, const std::optional<Reference>& ref);

/// Opens any location as a source / destination (registries through `client`).
Result<std::unique_ptr<ImageSource>> OpenSource(Client& client, const ImageLocation& loc);
Result<std::unique_ptr<ImageSink>> OpenSink(Client& client, const ImageLocation& loc);

}  // namespace kiln::registry
