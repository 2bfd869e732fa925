// Writes a layer in one streaming pass:
//   tar → HashingWriter (diff_id) → Compressor → HashingWriter (digest, size) → destination.
// No byte is read twice and the layer is never held in memory: the memory used is the tar buffer and
// the compressor's bounded queue, whatever the layer size.
#pragma once

#include <cstdint>
#include <string>

#include "core/digest.h"
#include "core/io.h"
#include "core/status.h"
#include "layers/compress.h"
#include "layers/tar_writer.h"

namespace kiln::layers {

struct LayerOptions {
  CompressionOptions compression;
  TarOptions tar;
};

/// What a written layer is, as an image config and manifest need it.
struct LayerInfo {
  Digest diff_id;            // sha256 of the uncompressed tar (rootfs.diff_ids in the config)
  Digest digest;             // sha256 of the blob as stored (the manifest's layer descriptor)
  uint64_t size = 0;         // bytes of the blob
  uint64_t tar_size = 0;     // bytes of the uncompressed tar
  std::string media_type;    // OCI layer media type for the compression; callers may map to Docker's
  TarStats stats;
};

/// Writes the layer of `changes` in `rootfs` to `dest` in one pass. Does not Close `dest` (a registry
/// upload, say, is finished by the caller, who now knows the digest). On failure `dest` holds a
/// partial blob that must be discarded.
Result<LayerInfo> WriteLayer(const std::string& rootfs, const LayerChanges& changes, const LayerOptions& options,
                             Writer* dest);

/// Writes the layer into a content-addressed blob store: `blobs_dir`/sha256/<hex> (blobs_dir is the
/// "blobs" directory of an OCI layout). The bytes go to a temporary file in that directory first
/// and are renamed into place once the digest is known; a failure leaves no file behind. Creates
/// `blobs_dir`/sha256 if needed. An existing blob with the same digest is replaced (same content).
/// When `tee` is set, every byte of the blob is also written to it as it is produced (a registry
/// upload streaming while the layer is compressed); a failing `tee` is dropped without failing the
/// layer, and it is not closed.
Result<LayerInfo> WriteLayerToBlobDir(const std::string& rootfs, const LayerChanges& changes,
                                      const LayerOptions& options, const std::string& blobs_dir,
                                      Writer* tee = nullptr);

/// Every entry under `rootfs` (not following symlinks, not crossing into the root itself) as `paths`,
/// for a layer holding a whole tree (a base directory, a COPY of a context, the benchmark).
Result<LayerChanges> ChangesForTree(const std::string& rootfs);

}  // namespace kiln::layers
