// Reading a few small files of a built image without a rootfs: one streaming pass over its layer
// tars, bottom to top, applying OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) as a union filesystem
// would. The SBOM reads package databases this way, because kiln extracts base images lazily and
// removes its rootfs trees while the image is published.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "executor/image/built_image.h"
#include "layers/oci_layout.h"

namespace kiln::executor {

/// Which regular files to keep: called with each path ("var/lib/dpkg/status", no leading "./" or "/").
using ImagePathFilter = std::function<bool(std::string_view path)>;

/// The content of every regular file of the image that `wanted` selects, by path, as the final
/// image shows it (later layers replace earlier ones; whiteouts delete). Files over `max_bytes`
/// fail with kInvalidArgument naming the path, or, when `oversized` is given, are left out and
/// listed there ("/path (N bytes)"). Each layer is opened with OpenLayerBlob (from the
/// store, else its origin registry) and verified as it streams.
Result<std::map<std::string, std::string>> ReadImageFiles(const std::vector<ImageLayer>& layers,
                                                          const layers::OciLayout& store,
                                                          const ImagePathFilter& wanted,
                                                          size_t max_bytes = 64u << 20,
                                                          std::vector<std::string>* oversized = nullptr);

}  // namespace kiln::executor
