// Path resolution that cannot leave a root directory.
//
// Every path an extractor touches is resolved here, relative to an fd of the rootfs, with chroot
// semantics: `..` at the root stays at the root, and a symlink met in the middle of a path is
// followed as if the rootfs were `/` (an absolute target restarts at the rootfs, a relative one
// climbs no higher than it). The final component of a path is never followed: callers get the fd of
// the parent directory and operate on the last name with *at() calls and AT_SYMLINK_NOFOLLOW /
// O_NOFOLLOW. On kernels with openat2(2) the lookup of an existing directory is one
// RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS call; otherwise (and whenever directories must be created) the
// same semantics are implemented component by component with openat(O_PATH|O_NOFOLLOW) and
// readlinkat.
//
// Threat model: the content of the layers is hostile; no other process modifies the rootfs while kiln
// extracts into it.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/path.h"
#include "core/status.h"
#include "core/unique_fd.h"

namespace kiln::layers {

/// An owned file descriptor (core/unique_fd.h), named here for the layers code that uses it.
using UniqueFd = ::kiln::UniqueFd;

/// Cleans a path from an archive into a relative path without `.`, `..` or empty components:
/// leading slashes are dropped (as tar does), `..` is applied lexically. A name that climbs above
/// the root (`../x`, `a/../../x`) is refused with kPermissionDenied. The root itself is "".
Result<std::string> CleanArchivePath(std::string_view name);

/// Splits a cleaned path into its parent ("" for the root) and its last component (core/path.h).
using ::kiln::SplitParent;

/// True when this kernel implements openat2(2) with RESOLVE_IN_ROOT (probed once).
bool KernelHasOpenat2();

/// How RootDir resolves paths.
enum class ResolveMode {
  kAuto,    // openat2 when the kernel has it, else manual
  kManual,  // always component by component (tests use this to cover the fallback)
};

/// A directory treated as `/` for every lookup through it. Movable, not thread-safe.
class RootDir {
 public:
  /// Opens `path` (which must be an existing directory; it may itself be reached through symlinks).
  /// When `unlock_dirs` is set (an unprivileged extractor), directories owned by the caller that lack
  /// u+wx are made u+wx when a lookup needs them; their original modes are kept for Unlocked().
  static Result<RootDir> Open(const std::string& path, ResolveMode mode, bool unlock_dirs);

  int fd() const { return root_.get(); }
  const std::string& path() const { return path_; }
  bool uses_openat2() const { return use_openat2_; }

  /// Opens the directory at cleaned path `rel` (O_PATH). Symlinks on the way are resolved inside the
  /// root. With `create`, missing directories are created with mode 0755 (their paths, relative to
  /// the root, are appended to `created` when non-null). Fails with kNotFound if a component is
  /// missing and `create` is false, and with a kIoError/ENOTDIR-style error if a component is not a
  /// directory. With `unlock_dirs`, the returned directory is writable by the caller.
  Result<UniqueFd> OpenDir(std::string_view rel, bool create, std::vector<std::string>* created = nullptr);

  /// The path `rel` leads to inside the root, relative to it ("" for the root): every symlink followed
  /// inside the root, the last one too (like containerd's fs.RootPath); missing components kept
  /// lexically (a destination to be created). kFailedPrecondition when a middle component is not a
  /// directory, ELOOP-style kIoError after 40 links. See ResolveBelow.
  Result<std::string> Resolve(std::string_view rel) const;

  /// Directories this RootDir made u+wx, with their modes before (relative path, mode). The caller
  /// restores them when it is done.
  const std::vector<std::pair<std::string, mode_t>>& unlocked() const { return unlocked_; }

  /// Makes the directory `dirfd` (at relative path `rel`) u+wx if unlocking is enabled, it is owned
  /// by the caller, and it lacks those bits.
  Status UnlockIfNeeded(int dirfd, std::string_view rel);

 private:
  RootDir(UniqueFd root, std::string path, bool use_openat2, bool unlock_dirs)
      : root_(std::move(root)), path_(std::move(path)), use_openat2_(use_openat2), unlock_dirs_(unlock_dirs) {}
  Result<UniqueFd> Walk(std::string_view rel, bool create, std::vector<std::string>* created);

  UniqueFd root_;
  std::string path_;
  bool use_openat2_;
  bool unlock_dirs_;
  std::vector<std::pair<std::string, mode_t>> unlocked_;
};

/// RootDir::Resolve for any directory fd taken as the root (core/in_root.h's walk by path below it:
/// fstatat/readlinkat, never following a link).
Result<std::string> ResolveBelow(int root_fd, std::string_view rel);

/// Removes `name` in `dirfd` and, if it is a directory, everything below it, without following any
/// symlink. Missing is not an error. Directories owned by the caller that lack u+wx are unlocked first.
Status RemoveAllAt(int dirfd, const std::string& name);

}  // namespace kiln::layers
