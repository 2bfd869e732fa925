// An OCI image layout directory (layers/oci_layout.h) as an ImageSource and an ImageSink
// (core/image_store.h), for `kiln copy`'s oci:DIR[:TAG] and `kiln build --oci-layout-path`.
// Registry ↔ layout copies keep every byte, so manifest digests do not change.
#pragma once

#include <memory>
#include <string>

#include "core/image_store.h"

namespace kiln::layers {

/// An OCI layout as a source: the image tagged `tag` (or the only one when `tag` is empty). Blobs
/// are verified as they are read and offered by path (ImageSource::LocalBlobPath).
Result<std::unique_ptr<ImageSource>> OpenLayoutSource(const std::string& dir, const std::string& tag);
/// An OCI layout as a destination (created if missing); the root is added to index.json under `tag`.
/// A blob the source has as a local file is hard-linked when the filesystem allows, else copied.
Result<std::unique_ptr<ImageSink>> OpenLayoutSink(const std::string& dir, const std::string& tag);

}  // namespace kiln::layers
