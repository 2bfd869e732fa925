// Writes a layer tar from a rootfs directory and a change list.
//
// The tar matches what containerd's ChangeWriter (BuildKit, nerdctl) and Docker's pkg/archive write:
//  - PAX format used sparingly ("restricted pax"): a plain ustar header per entry, plus a pax extended
//    header only when ustar cannot say it (long names, big ids, xattrs). Go's archive/tar with
//    FormatPAX does the same.
//  - Names are relative, without "./" or "/", and directories end in "/" ("etc/", "etc/passwd").
//  - Entries are ordered as a depth-first walk with names sorted bytewise within each directory
//    (equivalently: full paths compared bytewise with "/" sorting before every other byte), so a
//    directory's subtree is contiguous and every parent comes before its children. The opaque marker
//    of a directory comes first among its children.
//  - Every parent directory of an entry is written (once, with its real metadata), except the root.
//  - mtimes are truncated to whole seconds (as containerd and Docker do) and, when
//    `source_date_epoch` is set, clamped to it. atime/ctime are not written.
//  - uid/gid are numeric; uname/gname are empty.
//  - Regular files whose inode (dev, ino) was already written become hardlinks to the first name.
//  - Sockets are skipped (as Docker/containerd do).
//  - Whiteouts (`dir/.wh.NAME`) and opaque markers (`dir/.wh..wh..opq`) are empty regular files,
//    mode 0, uid/gid 0, mtime `source_date_epoch` or 0 (containerd writes the current time, which
//    would make layers non-reproducible).
//  - xattrs go into pax `SCHILY.xattr.NAME` records (libarchive 3.6 also adds `LIBARCHIVE.xattr.NAME`;
//    readers ignore keys they do not know). Never written: `user.rootlesscontainers` (its uid/gid
//    replace the on-disk owner instead, see rootless.h), `security.selinux` (a label of the build host,
//    not of the image) and overlayfs' private `trusted.overlay.*` / `user.overlay.*`.
//
// Every file is reached from a directory fd of the rootfs with O_NOFOLLOW one component at a time,
// so a symlink inside the rootfs can never make kiln read a file of the host. File contents stream
// through a 1 MiB buffer; no file is ever held in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/io.h"
#include "core/status.h"

namespace kiln::layers {

/// What changed in a rootfs, as the snapshotter reports it. Paths are relative to the rootfs
/// ("etc/passwd"; a leading "/" or "./" is accepted and dropped); ".." components are refused.
/// Order and duplicates do not matter.
struct LayerChanges {
  /// Added or modified files, directories, symlinks, devices… Only the named entry itself is written
  /// (a directory's contents are not implied); its parent directories are added automatically.
  std::vector<std::string> paths;
  /// Deleted paths; each becomes `dir/.wh.NAME`. A path that is also in `paths` is not whited out
  /// (the new entry replaces the old one on extraction).
  std::vector<std::string> deletions;
  /// Directories whose lower-layer contents are hidden; each becomes `dir/.wh..wh..opq`.
  /// ("" is the root.) The directory itself is written too.
  std::vector<std::string> opaque_dirs;
};

struct TarOptions {
  /// When set, mtimes later than this (seconds since the epoch) are clamped to it, as BuildKit does
  /// with SOURCE_DATE_EPOCH. The caller reads the environment; this code never does.
  std::optional<int64_t> source_date_epoch;
  /// Maps an on-disk owner to the image's (a rootless build: files a RUN step made inside a user
  /// namespace are owned on disk by the host ids the namespace maps to). Not applied to owners taken
  /// from the user.rootlesscontainers xattr, which are already the image's. Unset: owners as on disk.
  std::function<void(uint32_t& uid, uint32_t& gid)> map_owner;
  /// Called with the size of each chunk of file content as it goes into the tar (for a progress
  /// line during a long layer write). Called on the writing thread; must be cheap.
  std::function<void(uint64_t bytes)> on_file_bytes;
};

/// Counts of what a tar holds, for logs and tests.
struct TarStats {
  uint64_t entries = 0;    // headers written, whiteouts included
  uint64_t hardlinks = 0;
  uint64_t file_bytes = 0;  // regular file content
};

/// Writes the tar of `changes` in `rootfs` to `out`, ending with the end-of-archive marker. Does not
/// Close `out`. Fails (kInvalidArgument) on a malformed path, (kNotFound) when a listed path or a
/// parent is missing, (kFailedPrecondition) when a parent is not a directory (a symlink, say) or a
/// file changed size while it was read, (kIoError) on read errors; on failure `out` holds a partial
/// tar that must be discarded.
Result<TarStats> WriteLayerTar(const std::string& rootfs, const LayerChanges& changes, const TarOptions& options,
                               Writer* out);

}  // namespace kiln::layers
