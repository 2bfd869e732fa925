// RUN --mount in the rootfs: where each target lies, the mount points tier 1 mounts on, and the
// staging tiers 2 and 3 use instead of mounts (see StepMount in command_runner.h for what each tier
// does). Internal to the sandbox; runs in the parent only, before and after the step.
#pragma once

#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"
#include "executor/sandbox/command_runner.h"
#include "executor/sandbox/rootfs_touches.h"

namespace kiln::sandbox::internal {

/// A mount target found in the rootfs.
struct MountPoint {
  std::string dir_rel;  ///< its directory below the rootfs, resolved (no symlinks); "" = the root
  std::string name;     ///< its last component
  std::string Rel() const { return dir_rel.empty() ? name : dir_rel + "/" + name; }
};

/// Resolves `target` in the rootfs as the step would (symlinks followed with chroot semantics, the
/// last one too) and creates its missing parent directories (0755) through `touches`, which removes
/// them again on Undo unless the step wrote into them. The last component is left as it is.
Result<MountPoint> PlaceMountPoint(int root_fd, const std::string& target, RootfsTouches& touches);

/// Tier 1: makes a mount point for each of `mounts` (a directory, or an empty file for kFile;
/// created through `touches`). Fails when the image has something of another kind at a target.
Result<std::vector<MountPoint>> PrepareMountPoints(int root_fd, const std::vector<StepMount>& mounts,
                                                   RootfsTouches& touches);

/// Tiers 2 and 3: puts each mount's content at its target for the step and takes it out again.
class MountStaging {
 public:
  /// `hold_dir`: an empty directory on the rootfs's filesystem where what the image has at each
  /// target waits during the step. `keep_owner`: copies keep their owners (kiln is root).
  MountStaging(UniqueFd root_fd, std::string hold_dir, bool keep_owner)
      : root_(std::move(root_fd)), root_fd_(root_.get()), hold_dir_(std::move(hold_dir)), keep_owner_(keep_owner) {}
  /// Takes out whatever is still staged (errors ignored; call Unstage to see them).
  ~MountStaging();
  MountStaging(const MountStaging&) = delete;
  MountStaging& operator=(const MountStaging&) = delete;

  /// Stages every mount, in order. On failure what was staged so far stays recorded for Unstage.
  Status Stage(const std::vector<StepMount>& mounts, RootfsTouches& touches);
  /// Where mount `i` (in Stage's order) was placed, relative to the rootfs.
  std::string StagedRel(size_t i) const { return i < staged_.size() ? staged_[i].at.Rel() : ""; }
  /// Takes everything out in reverse order: kept writes go back to their source, copies are removed,
  /// the image's own content returns to its place. Goes on after an error and returns the first.
  Status Unstage();

 private:
  struct Staged {
    StepMount mount;
    MountPoint at;
    std::string held;    ///< name in hold_dir of the image's own content, "" when there was none
    bool placed = false;  ///< the content is at the target
    bool moved = false;   ///< placed by rename (kKept on the same filesystem)
    /// The directory's times before staging, and its mtime right after: when the step left the
    /// directory alone, Unstage gives it back its times (what the step saw change is only ours).
    struct timespec dir_atime {}, dir_mtime_before {}, dir_mtime_staged {};
  };
  Status StageOne(Staged& s, int parent_fd, int hold_fd);
  Status UnstageOne(const Staged& s, int hold_fd);
  Status UnstageContent(const Staged& s, int parent_fd, int hold_fd);

  UniqueFd root_;
  int root_fd_;
  std::string hold_dir_;
  bool keep_owner_;
  std::vector<Staged> staged_;
};

}  // namespace kiln::sandbox::internal
