// ImageFetcher: base images and `COPY --from=IMAGE` sources, resolved in a registry and unpacked into
// a rootfs directory.
//
// Layers go through the blob store (an OCI layout shared by builds, so it doubles as a base-image
// cache keyed by digest). Unpack() fetches the missing layers on a few worker threads while the
// calling thread extracts them in order; a layer nobody has started yet is streamed by the extracting
// thread itself, stored and extracted in the same pass (TeeReader). Every blob is verified against
// its digest as it streams, and each layer's diff_id against the config, before anything is trusted.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>
#include <mutex>
#include <optional>
#include <string>

#include "core/image_model.h"
#include "core/status.h"
#include "executor/log/build_log.h"
#include "layers/extract.h"
#include "layers/oci_layout.h"
#include "registry/client.h"
#include "registry/registry_image.h"

namespace kiln::executor {

/// A resolved single-platform image.
struct SourceImage {
  std::string name;                     ///< the reference as given, for messages
  std::string canonical;                ///< "registry/repo@sha256:…" (the digest of the platform manifest)
  RawManifest manifest_raw;   ///< the platform's image manifest
  Manifest manifest;
  std::string config_bytes;
  ImageConfig config;
  /// Where the blobs are; shared so that a push can read (and mount) base layers.
  std::shared_ptr<ImageSource> source;
};

/// BuildKit's `oci-layout://DIR[:TAG][@DIGEST]`: an image in a local OCI layout. No TAG: the layout's
/// only image; DIGEST: the image (or, of an index, the platform's manifest) must have that digest.
struct OciLayoutRef {
  std::string dir;
  std::string tag;
  std::optional<Digest> digest;
};
/// Whether `reference` is an oci-layout:// reference.
bool IsOciLayoutRef(const std::string& reference);
/// kInvalidArgument for a reference with no directory or a malformed digest.
Result<OciLayoutRef> ParseOciLayoutRef(const std::string& reference);

struct UnpackStats {
  uint64_t layers = 0, fetched_layers = 0, fetched_bytes = 0, extracted_bytes = 0;
  std::chrono::nanoseconds took{0};
};

class ImageFetcher {
 public:
  /// None owned. `parallel` is the number of concurrent blob downloads.
  ImageFetcher(registry::Client* client, const layers::OciLayout* store, BuildLog* log, int parallel = 3);

  /// Resolves `reference` for `platform` (choosing from an index), fetching the manifest and config.
  /// Results are cached per reference and platform for the build. An oci-layout:// reference
  /// (OciLayoutRef) reads a local layout instead of a registry.
  Result<std::shared_ptr<const SourceImage>> Resolve(const std::string& reference, const Platform& platform);

  /// Every image Resolve() returned so far, by reference and platform (for provenance).
  std::vector<std::shared_ptr<const SourceImage>> Resolved();

  /// Extracts `image`'s layers in order into the existing directory `rootfs`.
  Result<UnpackStats> Unpack(const SourceImage& image, const std::string& rootfs,
                             const layers::ExtractOptions& options);

  /// Looks base images up in a `kiln warm` cache directory before asking their registry.
  void UseCacheDir(std::string dir, std::chrono::seconds ttl) {
    cache_dir_ = std::move(dir);
    cache_ttl_ = ttl;
  }

  /// Makes sure layer `d` of `image` is in the store (downloading it if needed).
  Status Fetch(const SourceImage& image, const Descriptor& d);

 private:
  registry::Client* client_;
  const layers::OciLayout* store_;
  BuildLog* log_;
  int parallel_;
  std::string cache_dir_;
  std::chrono::seconds cache_ttl_{0};
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const SourceImage>> cache_;
};

}  // namespace kiln::executor
