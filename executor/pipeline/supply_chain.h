// --sbom and --provenance: after the image is published, its SBOM (image/sbom.h) and its SLSA
// provenance (image/provenance.h) are made, written to their files when asked, and attached to
// every pushed destination as OCI referrers (registry/referrers.h).
//
// The SBOM is read from the final image's layers in one streaming pass (whiteouts applied), not
// from a rootfs: kiln extracts base images lazily, so a build of COPY steps only never has one,
// and the rootfs trees are being removed while the image is published.
#pragma once

#include <string>
#include <vector>

#include "core/image_model.h"
#include "core/reference.h"
#include "core/status.h"
#include "executor/image/built_image.h"
#include "executor/pipeline/build_options.h"
#include "executor/pipeline/prepare.h"

namespace kiln::executor {

/// `path` for one platform of a multi-platform build: "sbom.json" → "sbom.linux-arm64-v8.json" (the
/// platform before a last ".json", else appended as ".linux-arm64-v8").
std::string PlatformFileName(const std::string& path, const Platform& platform);

/// Does nothing unless options.sbom or options.provenance. `base`: the image the final image is built
/// on (nullptr for scratch); the packages of its own SBOM, when it has one attached, join the SBOM's.
/// `pushed`: the destinations the image
/// went to (each opened in build.destinations). Fails (after the image is pushed) when a document
/// cannot be made, written or attached.
Status AttachSupplyChain(const BuildOptions& options, PreparedBuild& build, const AssembledImage& image,
                         const SourceImage* base, const std::vector<Reference>& pushed, BuildLog* log);

}  // namespace kiln::executor
