// Internal to layers/: applies decoded tar entries to a rootfs (the half of extraction that touches
// the disk). ExtractLayer feeds it from libarchive; it knows nothing about tar or compression.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "layers/extract.h"
#include "layers/safe_path.h"

namespace kiln::layers {

/// One tar entry, as the extractor needs it.
struct TarEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink, kChar, kBlock, kFifo, kOther };
  std::string name;  // as in the archive
  Type type = Type::kFile;
  mode_t perm = 0644;  // permission bits including setuid/setgid/sticky
  uint32_t uid = 0, gid = 0;
  int64_t size = 0;
  struct timespec mtime = {0, 0};
  std::optional<struct timespec> atime;
  std::string link;  // symlink target, or hardlink target (an archive path)
  uint32_t dev_major = 0, dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

/// The content of a regular file, pulled block by block (sparse files come with offsets).
class FileData {
 public:
  virtual ~FileData() = default;
  /// Next block; false at the end of the file.
  virtual Result<bool> Next(const void** data, size_t* size, int64_t* offset) = 0;
};

/// Applies entries of one layer. Not thread-safe.
class ExtractTree {
 public:
  /// `options` must outlive the ExtractTree.
  static Result<std::unique_ptr<ExtractTree>> Open(const std::string& rootfs, const ExtractOptions& options);

  /// Applies one entry; `data` is read for regular files (it may be null for empty ones).
  Status Apply(const TarEntry& e, FileData* data);
  /// Sets the directories' final modes and mtimes. Call once, after the last entry.
  Status Finish();

  bool uses_openat2() const { return root_.uses_openat2(); }

 private:
  struct DirMeta {
    mode_t mode;
    std::optional<std::pair<struct timespec, struct timespec>> times;  // atime, mtime
  };
  // Ownership is applied to a file descriptor (regular files, directories) or to a name in a
  // directory that is not followed (symlinks, special files).
  struct Target {
    int fd;
    const char* name;  // null: operate on fd itself
  };

  ExtractTree(RootDir root, const ExtractOptions& options);
  Result<std::shared_ptr<UniqueFd>> Parent(std::string_view parent, bool create);
  Result<bool> ClearFor(int dirfd, const std::string& base, const std::string& path, bool want_dir);
  Status Whiteout(std::string_view parent, std::string_view base);
  Status Opaque(int dirfd, const std::string& dirpath);
  Status ApplyFile(int dirfd, const std::string& base, const std::string& path, const TarEntry& e, FileData* data);
  Status ApplyDir(int dirfd, const std::string& base, const std::string& path, const TarEntry& e);
  Status ApplyHardlink(int dirfd, const std::string& base, const std::string& path, const TarEntry& e);
  Status ApplySpecial(int dirfd, const std::string& base, const std::string& path, const TarEntry& e);
  Status Own(Target t, const std::string& path, const TarEntry& e);
  Status RecordOwner(Target t, const std::string& path, const TarEntry& e);
  void Xattrs(Target t, const std::string& path, const TarEntry& e);
  void RememberPath(const std::string& path);
  bool Skipped(std::string_view path) const;
  // Skipped, or an ancestor of a skipped path (so removing it would remove skipped content).
  bool Protected(std::string_view path) const;
  void Warn(const std::string& message);
  void Invalidate() { cached_parent_.reset(); }

  RootDir root_;
  const ExtractOptions& options_;
  bool privileged_;  // euid 0: may chown, set trusted.*/security.* xattrs, mknod
  bool chown_;       // apply uid/gid with chown (else: rootless xattr)
  std::vector<std::string> skip_;
  std::unordered_set<std::string> this_layer_;  // paths this layer created, and their parents
  std::map<std::string, DirMeta> dirs_;         // final metadata of directories, applied by Finish
  std::string cached_name_;
  std::shared_ptr<UniqueFd> cached_parent_;
  uint64_t unowned_specials_ = 0;  // symlinks/special files whose rootless ownership could not be kept
  bool warned_privileged_xattr_ = false;
};

}  // namespace kiln::layers
