// The directories behind RUN --mount=type=cache, kept between builds.
//
// Layout under BASE (--cache-dir when given, else the state dir):
//   mounts/<key>/       the content, exactly what the steps left there
//   mounts/<key>.lock   flock(2) target: a step holds it exclusively while it uses the directory
//   mounts/<key>.json   {"id", "platform"}: what the directory is, for export and `kiln clean`
// <key> is the id made safe for a file name plus a hash of id and platform, so the caches of one id
// for two platforms (e.g. apt's archives in a multi-platform build) never mix.
//
// Sharing: every step that uses a cache holds its lock exclusively for the step's duration, whatever
// the sharing mode says, because the chroot and ptrace sandboxes move the directory into the rootfs
// while the step runs. `locked` and `shared` therefore both wait for the holder; `private` does not
// wait and takes a fresh temporary directory instead when the cache is busy (removed afterwards).
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/image_model.h"
#include "core/status.h"
#include "core/unique_fd.h"

namespace kiln::executor {

enum class CacheSharing { kShared, kPrivate, kLocked };

/// A cache directory held for one step. Releases the lock (and removes a temporary directory) when
/// destroyed. Movable, not copyable.
class CacheMountLease {
 public:
  CacheMountLease() = default;
  ~CacheMountLease();
  CacheMountLease(CacheMountLease&& o) noexcept { *this = std::move(o); }
  CacheMountLease& operator=(CacheMountLease&& o) noexcept;

  const std::string& dir() const { return dir_; }
  /// The directory was made for this step (empty, or seeded from `from=`).
  bool created() const { return created_; }
  /// A private temporary directory (sharing=private while the cache was busy).
  bool temporary() const { return temporary_; }
  /// Created here with the content exported to the registry by an earlier build (mount_remote.h).
  bool imported() const { return imported_; }

 private:
  friend class CacheMountStore;
  void Release();
  std::string dir_;
  UniqueFd lock_;
  bool created_ = false;
  bool temporary_ = false;
  bool imported_ = false;
};

struct CacheMountRequest {
  std::string id;
  Platform platform;
  CacheSharing sharing = CacheSharing::kShared;
  /// Applied to a directory this request creates (BuildKit: mode 0755, owner 0:0).
  mode_t mode = 0755;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
};

class CacheMountRemote;

class CacheMountStore {
 public:
  /// BASE as described above; nothing is created until the first Acquire.
  explicit CacheMountStore(std::string base) : base_(std::move(base)) {}

  /// Where a cache missing here is imported from (mount_remote.h) before `seed` is asked; nullptr:
  /// nowhere. Not owned.
  void SetRemote(CacheMountRemote* remote) { remote_ = remote; }
  /// Waits for and takes the lock of `key` exclusively (for an export); released with the descriptor.
  Result<UniqueFd> Lock(const std::string& key) const;

  /// Locks (waiting when `sharing` asks to) and returns the directory of `req.id` on
  /// `req.platform`, creating it when missing; `seed` fills a directory just created (from=/source=).
  Result<CacheMountLease> Acquire(const CacheMountRequest& req,
                                  const std::function<Status(const std::string& dir)>& seed = nullptr);

  /// The file-name key of (id, platform).
  static std::string KeyOf(const std::string& id, const Platform& platform);
  /// BASE/mounts.
  std::string Root() const { return base_ + "/mounts"; }

  struct Entry {
    std::string key, id;
    Platform platform;
    std::string dir;
  };
  /// Every cache directory with its description (entries without a readable .json are skipped).
  std::vector<Entry> List() const;

 private:
  std::string base_;
  CacheMountRemote* remote_ = nullptr;
};

}  // namespace kiln::executor
