// An image index made from images that already exist: what `kiln index create` pushes to merge the
// per-platform images of separate CI jobs into one multi-platform name, and what a multi-platform
// build publishes last.
//
// NewIndexSource reads each source's root: an image manifest becomes one entry whose platform is
// read from the image's config (os, architecture, variant, os.version, os.features); an index
// contributes each of its entries with the platform it states. The result is an ImageSource whose
// root is the new index and which serves every child manifest and blob from the source that has it,
// so CopyImage(index, sink) puts every blob and child manifest before the index itself.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/image_store.h"
#include "core/status.h"

namespace kiln {

struct IndexOptions {
  /// The index's own annotations (--annotation K=V).
  std::map<std::string, std::string> annotations;
};

/// Fails with kInvalidArgument naming both sources when two entries claim the same platform, with
/// kInvalidArgument when a config names no os or architecture, and with the source's error when a
/// manifest or config cannot be read. The index is a Docker manifest list when every child is a
/// Docker v2s2 manifest and no annotation is asked for (as docker buildx and manifest-tool do), an
/// OCI index otherwise.
/// REQUIRES: at least one source.
Result<std::unique_ptr<ImageSource>> NewIndexSource(std::vector<std::unique_ptr<ImageSource>> sources,
                                                    const IndexOptions& options = {});

}  // namespace kiln
