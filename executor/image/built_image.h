// BuiltImage: the result of a stage — its config and its layers, each layer either written by this
// build (in the blob store) or inherited from a base image (in the store once fetched, otherwise
// still in its registry). Assemble() turns it into the config and manifest documents that get pushed.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/image_model.h"
#include "core/status.h"
#include "executor/image/image_fetcher.h"
#include "layers/oci_layout.h"

namespace kiln::executor {

struct ImageLayer {
  Descriptor desc;  ///< media type (as stored), digest and size of the blob
  Digest diff_id;
  /// The image the layer came from (nullptr: written by this build, or taken from the layer cache).
  std::shared_ptr<const SourceImage> origin;
  /// For a layer taken from the layer cache: opens it there (verified). Empty otherwise.
  std::function<Result<std::unique_ptr<Reader>>()> open;
};

struct BuiltImage {
  ImageConfig config;  ///< diff_ids are filled by Assemble from `layers`
  std::vector<ImageLayer> layers;
  /// The base image, if any (for cross-repository mounts and media-type family).
  std::shared_ptr<const SourceImage> base;
};

/// Media types for the assembled image.
enum class MediaTypeFamily { kOci, kDocker };

/// The final documents of an image, with their blobs stored.
struct AssembledImage {
  std::string config_bytes;
  Descriptor config;
  std::string manifest_bytes;
  Descriptor manifest;  ///< media type, digest (the image's identity) and size
  std::vector<ImageLayer> layers;
};

/// Builds config and manifest (canonical bytes) and stores the config in `store`. Layer media types
/// are mapped into `family` (the bytes, and so the digests, stay the same).
Result<AssembledImage> Assemble(const BuiltImage& image, MediaTypeFamily family, const layers::OciLayout& store);

/// OCI unless the base image uses Docker media types (as Kaniko keeps the base's family); zstd layers
/// always need OCI.
MediaTypeFamily ChooseFamily(const BuiltImage& image, bool zstd);

/// Opens a layer's blob: from the store, else from its origin registry. Verified as it streams.
Result<std::unique_ptr<Reader>> OpenLayerBlob(const ImageLayer& layer, const layers::OciLayout& store);

}  // namespace kiln::executor
