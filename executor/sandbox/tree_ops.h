// Whole-tree operations for staging RUN mounts (tiers 2 and 3): opening, copying and removing
// relative to directory descriptors, never following a symlink below the starting point, so a step
// that swapped a directory for a symlink cannot redirect kiln's writes or removals outside the
// rootfs. Internal to the sandbox; runs in the parent only.
#pragma once

#include <string>

#include "core/status.h"
#include "core/unique_fd.h"

namespace kiln::sandbox::internal {

/// Opens directory `rel` ("a/b", "" = the directory itself) below `dir_fd` one component at a time
/// with O_NOFOLLOW. kNotFound when a component is missing, a symlink or not a directory.
Result<UniqueFd> OpenDirBelow(int dir_fd, const std::string& rel);

/// Copies host path `src` — a directory with everything below it, a regular file or a symlink — to
/// `name` in `dst_dir_fd`, which must not exist yet. Keeps modes and times, and owners when
/// `keep_owner` (needs root; otherwise new files belong to kiln). Hard links become separate copies;
/// devices, fifos and sockets below a directory are left out. `what` names the copy in messages.
Status CopyTreeTo(const std::string& src, int dst_dir_fd, const std::string& name, bool keep_owner,
                  const std::string& what);

/// The same from `src_name` in `src_dir_fd` (opened without following a symlink there).
Status CopyTreeAt(int src_dir_fd, const std::string& src_name, int dst_dir_fd, const std::string& name,
                  bool keep_owner, const std::string& what);

/// Removes `name` in `dir_fd` and everything below it; a missing `name` is not an error. Directories
/// the step left without write or search permission are opened up first.
Status RemoveTreeAt(int dir_fd, const std::string& name, const std::string& what);

}  // namespace kiln::sandbox::internal
