// Internal helpers of the snapshot module: opening a path beneath the rootfs without following
// symlinks, and the content fingerprints used where a stat tuple cannot decide.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/digest.h"
#include "core/status.h"
#include "snapshot/baseline.h"

namespace kiln::snapshot::internal {

/// Opens `rel_path` (relative, '/'-separated) beneath the directory `root_fd`, one component at a
/// time with O_NOFOLLOW, so no symlink anywhere on the path is followed. `flags` apply to the last
/// component. Returns an owned fd.
Result<int> OpenBeneath(int root_fd, std::string_view rel_path, int flags);

/// sha256 over the contents (regular files only) and the sorted extended attributes of the file at
/// `rel_path` beneath `root_fd`. Never follows symlinks and never opens a fifo or device for reading.
Result<Digest> Fingerprint(int root_fd, std::string_view rel_path, FileType type);

/// A hash of the extended attributes of the open file `fd` (names and values, sorted), or 0 when it
/// has none. `path_only` says that `fd` is an O_PATH descriptor.
Result<uint64_t> XattrHash(int fd, bool path_only);

}  // namespace kiln::snapshot::internal
