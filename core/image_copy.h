// CopyImage: copying an image or index between an ImageSource and an ImageSink in the order that keeps a
// registry consistent: every blob present and verified before any manifest, an index's children
// before the index, the tagged root last — so an interrupted copy never leaves a tag that points at
// a missing blob. Blob transfers run in parallel on a small pool of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/image_model.h"
#include "core/image_store.h"

namespace kiln {

/// What happened to one blob, reported as it finishes.
struct BlobEvent {
  enum class Action { kCopied, kSkipped, kMounted };
  Descriptor blob;
  Action action;
};

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
  /// Called once per blob as it finishes, from worker threads but never concurrently.
  std::function<void(const BlobEvent&)> on_blob;
};

struct CopyResult {
  RawManifest root;  // what was stored as the root (digest = the image's identity)
  int blobs_copied = 0;
  int blobs_skipped = 0;  // already present
  int blobs_mounted = 0;  // mounted from another repository of the same registry
  uint64_t bytes_copied = 0;
};

Result<CopyResult> CopyImage(ImageSource& source, ImageSink& sink, const CopyOptions& options = {});

}  // namespace kiln
