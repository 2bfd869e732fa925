// Builds small but real images for tests: a gzip layer made by the system's tar and gzip (so kiln's
// own writer is not what is under test), its config and manifest, stored into an OCI layout.
#pragma once

#include <string>
#include <vector>

#include "core/image_model.h"
#include "layers/oci_layout.h"

namespace kiln::testing {

struct FixtureImage {
  std::string manifest;  // bytes
  std::string config;    // bytes
  Descriptor manifest_desc;
  std::vector<std::string> layer_files;  // paths of the layer blobs on disk (inside the layout)
};

/// Makes a one-layer linux/amd64 image whose layer holds `files` (path → content) and stores it in
/// `layout` tagged `tag`. `scratch` is a directory the function may use. Aborts on failure.
FixtureImage MakeFixtureImage(const layers::OciLayout& layout, const std::string& scratch,
                              const std::vector<std::pair<std::string, std::string>>& files,
                              const std::string& tag, bool docker_media_types = false);

}  // namespace kiln::testing
