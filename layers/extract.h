// Extracting a layer blob into a rootfs directory, safely.
//
// ExtractLayer streams a layer (gzip, zstd or plain tar, detected from its bytes) from a Reader,
// verifies the blob against its digest and size while it streams, computes the diff_id (sha256 of the
// uncompressed tar) in the same pass, and applies the entries to a rootfs as a container runtime
// would see them stacked: OCI whiteouts (`.wh.NAME`) and opaque directories (`.wh..wh..opq`) delete
// from lower layers, an entry replaces whatever lower entry had its name (a directory over a
// directory only updates its metadata), and regular files, directories, symlinks, hardlinks, FIFOs
// and (when permitted) device nodes are created with their xattrs, ownership, modes and mtimes.
//
// Safety: nothing outside `rootfs` is created, changed or deleted, whatever the layer holds. Every
// path is resolved inside the rootfs with chroot semantics (see safe_path.h): a symlink planted by
// this or an earlier layer and written through is followed as if the rootfs were `/`; the last
// component of a name is never followed. Names that climb above the root (`../x`) and hardlinks whose
// target does so are refused with kPermissionDenied; a leading `/` is dropped, as tar does.
//
// Ownership: as root, files get the image's uid/gid. Without the right to chown (not root, or chown
// fails with EPERM, or Ownership::kRootlessXattr), files belong to the extracting user and the image's
// uid/gid are stored in the `user.rootlesscontainers` xattr (layers/rootless.h) of every regular file
// and directory; the kernel refuses user.* xattrs on symlinks and special files, so their ownership is
// reported through the warning sink instead. Modes are always applied (directories stay u+rwx while
// being filled and get their real mode at the end).
//
// On failure the rootfs holds a partial layer and must be discarded: a digest mismatch is only
// known once the whole blob has streamed through.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/io.h"
#include "core/status.h"
#include "layers/decompress.h"
#include "layers/safe_path.h"

namespace kiln::layers {

/// What the blob is promised to be.
struct LayerExpectation {
  Digest digest;                   // REQUIRED: the blob (compressed) digest, checked while streaming
  std::optional<uint64_t> size;    // the blob size, when known (manifests always give it)
  std::optional<Digest> diff_id;   // the config's rootfs.diff_ids entry, checked when given
  /// The stream already verifies itself against `digest` and `size` (an ImageSource blob, a store
  /// blob): ExtractLayer does not hash it a second time. It still reads the stream to its end, where
  /// the source's verification fails the read on a mismatch.
  bool verified_by_source = false;
};

struct ExtractOptions {
  enum class Ownership {
    kAuto,           // chown when root; fall back to the xattr if chown fails with EPERM
    kChown,          // chown, and fail if that is not permitted
    kRootlessXattr,  // never chown; always store the image's uid/gid in user.rootlesscontainers
  };
  Ownership ownership = Ownership::kAuto;
  /// Create character/block devices when permitted (root with CAP_MKNOD); otherwise, and when false,
  /// they are skipped with a warning. FIFOs need no privilege and are always created.
  bool create_device_nodes = true;
  /// Fail with kInvalidArgument once the uncompressed tar passes this many bytes (0: no limit).
  uint64_t max_uncompressed_bytes = 0;
  /// Decompression-bomb limits (decompress.h), checked as well as max_uncompressed_bytes; the
  /// default checks nothing. The error names the layer's digest and the limit.
  DecompressionLimits limits;
  /// Entries at or below these paths (relative to the rootfs, e.g. "proc", "kiln/cache") are skipped,
  /// and whiteouts never delete them.
  std::vector<std::string> skip_paths;
  /// Receives one line per thing that could not be applied but does not fail the extraction.
  std::function<void(std::string_view)> warn;
  /// kManual forces the component-by-component resolver even where openat2 exists (for tests).
  ResolveMode resolve = ResolveMode::kAuto;
};

struct ExtractResult {
  Digest diff_id;                  // sha256 of the uncompressed tar stream
  Compression compression = Compression::kNone;
  uint64_t compressed_bytes = 0;   // the blob as read
  uint64_t uncompressed_bytes = 0; // the tar stream
  uint64_t entries = 0;            // tar entries read (including whiteouts and skipped ones)
  bool used_openat2 = false;       // whether paths were resolved with openat2(RESOLVE_IN_ROOT)
};

/// Extracts the layer read from `blob` into the existing directory `rootfs`. Reads `blob` to its end.
/// Fails with kDigestMismatch when the blob or the diff_id does not match `expect`, kInvalidArgument
/// for a corrupt or truncated stream or one over the size limit, kPermissionDenied for a name that
/// leaves the rootfs. Not thread-safe for the same rootfs.
Result<ExtractResult> ExtractLayer(Reader& blob, const LayerExpectation& expect, const std::string& rootfs,
                                   const ExtractOptions& options = {});

}  // namespace kiln::layers
