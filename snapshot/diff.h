// Diff: what a step changed, as plain relative paths. The snapshotter knows nothing of tar; the
// executor hands these paths to layers/, which writes entries, whiteouts and opaque markers.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "snapshot/baseline.h"

namespace kiln::snapshot {

/// All paths are relative to the rootfs, without a leading slash, and each list is sorted bytewise
/// (so a directory precedes everything below it). The rootfs directory itself is never reported.
struct ChangeSet {
  /// Paths to write into the layer as they are now: added and modified entries, every entry below a
  /// replaced directory, and every directory above any change (as Docker does, so the layer carries
  /// the parents' current mode, owner and mtime).
  std::vector<std::string> added_or_modified;
  /// Paths that no longer exist; only the topmost one of a deleted tree. Never inside an opaque dir.
  std::vector<std::string> deleted;
  /// Directories whose earlier contents are all hidden: a directory removed and created again
  /// (different inode) or a non-directory replaced by a directory. Each is also in added_or_modified.
  std::vector<std::string> opaque_dirs;
  /// Paths whose file was created during the step: absent before, or another inode now (written to a
  /// new file and renamed over, removed and made again). A subset of added_or_modified. On disk these
  /// belong to whoever created them; entries that kept their inode kept their owner.
  std::vector<std::string> created;

  bool empty() const { return added_or_modified.empty() && deleted.empty() && opaque_dirs.empty(); }
};

/// Compares two baselines of the same rootfs. `after` must describe the rootfs as it is now: the few
/// entries that carry a racy fingerprint in `before` and look unchanged are re-hashed from
/// after.rootfs(). Rules:
///  - a path only in `after` is added (with everything below it);
///  - a non-directory in both is modified when type, mode, owner, size, mtime, ctime, inode, link
///    count, device number or symlink target differ, or when its racy fingerprint differs;
///  - a directory in both with the same inode is modified when its mode, owner or xattrs differ; a
///    directory whose only change is mtime/ctime/link count from entries created and removed again
///    is not reported (a step that leaves no trace adds no layer);
///  - a directory in `after` that replaced anything else at its path (a new inode) is opaque;
///  - a non-directory that replaced a directory is simply modified: extraction replaces the tree.
/// Fails if the baselines come from different filesystems or re-hashing fails.
Result<ChangeSet> Diff(const Baseline& before, const Baseline& after);

}  // namespace kiln::snapshot
