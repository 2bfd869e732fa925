// RootfsTouches: what the sandbox puts into a rootfs before a step (mount targets, device nodes, the
// host's resolv.conf) and takes out again afterwards, so the snapshot after RUN sees only what the
// step did. Internal to the sandbox; runs in the parent, never in the forked child.
//
// What the snapshot can still see after Undo(): a directory where kiln created and removed an entry
// keeps its mode, owner and mtime/atime (restored, unless the step changed that directory too) but its
// ctime moves; a file whose content kiln swapped in place (tier 2) keeps its inode, content, mode,
// owner and times, and again only its ctime moves. The kernel offers no way to restore a ctime.
//
// Every path is opened relative to the rootfs with O_NOFOLLOW, so a symlink in an image (say
// /etc -> /host/etc) can never redirect kiln's writes outside the rootfs.
#pragma once

#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace kiln::sandbox::internal {

class RootfsTouches {
 public:
  /// REQUIRES: `rootfs` is an existing directory (already resolved, no symlinks).
  static Result<std::unique_ptr<RootfsTouches>> Open(const std::string& rootfs);
  /// Undoes whatever is still recorded (errors ignored: call Undo() to see them).
  ~RootfsTouches();
  RootfsTouches(const RootfsTouches&) = delete;
  RootfsTouches& operator=(const RootfsTouches&) = delete;

  /// What Ensure* found or made.
  enum class Outcome { kExisted, kCreated, kUnusable };

  /// Makes directory `dir_rel/name` exist ("" is the rootfs itself). kUnusable when the name is taken
  /// by something else (a symlink, a file) or `dir_rel` itself is unusable; nothing is changed then.
  Result<Outcome> EnsureDir(const std::string& dir_rel, const std::string& name, mode_t mode);
  /// Makes an empty regular file exist (a bind mount target). kUnusable as for EnsureDir.
  Result<Outcome> EnsureFile(const std::string& dir_rel, const std::string& name);
  /// Creates character device `dir_rel/name` with mode 0666 unless something exists there.
  Result<Outcome> EnsureCharDevice(const std::string& dir_rel, const std::string& name, dev_t rdev);
  /// Puts `content` into regular file `dir_rel/name`: created when missing, rewritten in place (same
  /// inode) when it exists. Undo() brings back the original exactly, whatever the step did to it
  /// meanwhile (Docker never keeps a step's edits of /etc/resolv.conf or /etc/hosts either).
  Result<Outcome> SwapFileContent(const std::string& dir_rel, const std::string& name, const std::string& content);

  /// Reverts everything in reverse order. Entries the step has since filled (a directory that is no
  /// longer empty) are left in place because they are now part of the step's change.
  Status Undo();

 private:
  struct Entry {
    enum class Kind { kCreated, kSwapped } kind = Kind::kCreated;
    std::string dir_rel, name;
    ino_t ino = 0;
    struct timespec dir_atime {}, dir_mtime_before {}, dir_mtime_after {};
    std::string original;       // kSwapped
    struct stat original_st {};  // kSwapped
  };

  enum class NewKind { kDir, kFile, kCharDevice };

  explicit RootfsTouches(int root_fd) : root_fd_(root_fd) {}
  Result<Outcome> Create(const std::string& dir_rel, const std::string& name, NewKind kind, mode_t mode, dev_t rdev);
  Result<int> OpenDir(const std::string& dir_rel) const;  // -1 value: unusable (missing or not a dir)
  Status UndoOne(const Entry& e);

  int root_fd_;
  std::vector<Entry> entries_;
};

}  // namespace kiln::sandbox::internal
