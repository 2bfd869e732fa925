// Baseline: a compact index of the stat tuples of every path in a rootfs, taken by one walk.
//
// The executor takes a baseline after extracting the base image, runs a step, takes another baseline
// and asks Diff (snapshot/diff.h) what changed; the second baseline is then the first one of the next
// step, so each step costs exactly one walk. Nothing here hashes file contents except the few "racy"
// entries whose ctime falls inside the timestamp granule in which the walk began (see Take).
//
// The walk uses openat/statx(AT_SYMLINK_NOFOLLOW)/getdents64 relative to directory fds: it never follows
// a symlink and never leaves the rootfs. Ignored paths and mount points are neither indexed nor
// descended into.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/digest.h"
#include "core/status.h"

namespace kiln::snapshot {

namespace internal {
class Walker;
class Differ;
}  // namespace internal

enum class FileType : uint8_t { kRegular, kDirectory, kSymlink, kCharDevice, kBlockDevice, kFifo, kSocket };

/// One indexed path. The string_views point into the Baseline and live as long as it does.
struct EntryInfo {
  std::string_view name;  // last path component
  FileType type = FileType::kRegular;
  uint32_t mode = 0;  // st_mode & 07777 (permissions with setuid/setgid/sticky)
  uint32_t uid = 0, gid = 0, nlink = 0;
  uint64_t size = 0;  // regular files and symlinks; 0 for directories and devices
  uint64_t rdev = 0;  // character and block devices only
  int64_t mtime_ns = 0, ctime_ns = 0;
  uint64_t inode = 0;
  std::string_view symlink_target;  // symlinks only
};

struct WalkOptions {
  /// Paths that are neither indexed nor descended into, absolute inside the rootfs ("/proc",
  /// "/var/run"); a path and everything below it is ignored. Trailing slashes and "//" are tolerated;
  /// ".." is refused.
  std::vector<std::string> ignore_paths;
  /// Walking threads (0 means 1). A second thread takes directories the first would have entered
  /// later. Measured on 2 cores: up to ~1.4x when the second core is idle, nothing when it is busy
  /// (e.g. compressing the previous layer), so the default stays sequential.
  unsigned threads = 1;
};

/// The paths every RUN snapshot ignores: /proc, /sys, /dev (kernel-provided in the sandbox) and
/// /run/secrets (BuildKit's secret mount point). The executor appends --ignore-path values.
std::vector<std::string> DefaultIgnorePaths();

/// An immutable index of a rootfs. Movable, not copyable. Thread-compatible (const methods may be
/// called concurrently).
class Baseline {
 public:
  /// Walks `rootfs` (a directory; the path itself may be a symlink, nothing below it is followed).
  /// Entries whose ctime is not older than the walk's start minus the filesystem's timestamp
  /// granularity get a content fingerprint (sha256 of contents and xattrs), because a change made
  /// within the same granule would leave their stat tuple unchanged. Fails with the path that could
  /// not be read; a path that vanishes during the walk is skipped.
  static Result<Baseline> Take(const std::string& rootfs, const WalkOptions& options);

  Baseline(Baseline&&) noexcept = default;
  Baseline& operator=(Baseline&&) noexcept = default;
  Baseline(const Baseline&) = delete;
  Baseline& operator=(const Baseline&) = delete;

  /// The directory this baseline was taken of.
  const std::string& rootfs() const { return rootfs_; }
  /// Number of indexed paths, the rootfs directory itself not counted.
  size_t size() const { return entries_.empty() ? 0 : entries_.size() - 1; }
  /// The entry at `rel_path` ("usr/bin/env", no leading slash; "" is the rootfs itself), or nullopt.
  std::optional<EntryInfo> Find(std::string_view rel_path) const;
  /// Every indexed path (relative, no leading slash), in bytewise order. For tests and tools; O(n).
  std::vector<std::string> Paths() const;

  /// Mount points met during the walk (relative paths), not indexed and not descended into.
  const std::vector<std::string>& mount_points() const { return mount_points_; }
  /// Ignored paths that exist in the rootfs (relative paths), not indexed.
  const std::vector<std::string>& ignored() const { return ignored_; }
  /// Number of entries that carry a racy-content fingerprint.
  size_t racy_count() const { return racy_.size(); }
  /// Entries with ctime at or after this instant were fingerprinted (nanoseconds since the epoch).
  int64_t racy_threshold_ns() const { return racy_threshold_ns_; }
  /// Heap bytes held by the index.
  size_t MemoryBytes() const;

 private:
  friend class internal::Walker;
  friend class internal::Differ;

  // 56 bytes. Each directory's children are one contiguous block sorted bytewise by name, so a
  // diff is a merge of two sorted blocks per directory and paths are never stored whole.
  struct Entry {
    uint32_t name_off;  // into arena_; a symlink's target follows its name
    uint8_t name_len;   // NAME_MAX is 255
    FileType type;
    uint16_t mode;
    uint16_t target_len;
    uint16_t birth;  // directories: a hash of the birth time, to tell a re-created directory that
                     // got the same inode number back from the one it replaced (0: unknown)
    uint32_t nlink;
    uint32_t uid, gid;
    uint64_t extra;  // regular/symlink: size; device: rdev; directory: first_child << 32 | child_count
    int64_t mtime_ns, ctime_ns;
    uint64_t ino;
  };
  static_assert(sizeof(Entry) == 56);

  Baseline() = default;
  std::string_view NameOf(const Entry& e) const { return {arena_.data() + e.name_off, e.name_len}; }
  std::string_view TargetOf(const Entry& e) const {
    return {arena_.data() + e.name_off + e.name_len, e.target_len};
  }
  static uint32_t FirstChild(const Entry& e) { return static_cast<uint32_t>(e.extra >> 32); }
  static uint32_t ChildCount(const Entry& e) { return static_cast<uint32_t>(e.extra); }
  EntryInfo Info(const Entry& e) const;
  /// Fingerprint of entry `index`, or nullptr.
  const Digest* RacyDigest(uint32_t index) const;
  /// xattr hash of directory `index`, or 0 when it has none.
  uint64_t DirXattrHash(uint32_t index) const;
  void AppendPaths(uint32_t dir, std::string& prefix, std::vector<std::string>& out) const;

  std::string rootfs_;
  std::vector<Entry> entries_;  // entries_[0] is the rootfs directory
  std::string arena_;
  std::vector<std::pair<uint32_t, Digest>> racy_;              // sorted by index
  std::vector<std::pair<uint32_t, uint64_t>> dir_xattrs_;      // sorted by index; dirs with xattrs
  std::vector<std::string> mount_points_;
  std::vector<std::string> ignored_;
  uint64_t dev_ = 0;
  int64_t racy_threshold_ns_ = 0;
};

}  // namespace kiln::snapshot
