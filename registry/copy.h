// Copying an image or index between an ImageSource and an ImageSink in the order that keeps a
// registry consistent: every blob present and verified before any manifest, an index's children
// before the index, the tagged root last — so an interrupted copy never leaves a tag that points at
// a missing blob. Blob transfers run in parallel on a small pool of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/image_model.h"
#include "registry/image_source.h"

namespace kiln::registry {

struct CopyOptions {
  /// Copy only this platform's image out of an index (the result is that image, not an index).
  /// Unset: copy the whole index, every platform.
  std::optional<Platform> platform;
  /// Blob transfers at once.
  int parallel = 3;
  /// Attempts per blob when the transfer fails with a temporary error (the source is re-opened).
  int blob_attempts = 3;
  /// Copy foreign / non-distributable layers (skipped by default, as skopeo and docker do).
  bool copy_nondistributable = false;
};

struct CopyResult {
  RawManifest root;  // what was stored as the root (digest = the image's identity)
  int blobs_copied = 0;
  int blobs_skipped = 0;  // already present (or mounted)
  uint64_t bytes_copied = 0;
};

Result<CopyResult> Copy(ImageSource& source, ImageSink& sink, const CopyOptions& options = {});

}  // namespace kiln::registry
