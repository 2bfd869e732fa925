#include "layers/tar_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "core/path.h"
#include "core/unique_fd.h"
#include "layers/rootless.h"

namespace kiln::layers {
namespace {

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kOpaqueMarker[] = ".wh..wh..opq";
constexpr size_t kBufferSize = size_t{1} << 20;

// Drops "/", "./" and empty components; refuses "..". "" is the root.
Result<std::string> NormalizePath(std::string_view raw) {
  std::string out;
  for (std::string_view comp : PathComponents(raw)) {
    if (comp == "..") return InvalidArgument("layer path \"" + std::string(raw) + "\" contains \"..\"");
    if (comp == ".") continue;
    if (!out.empty()) out.push_back('/');
    out.append(comp);
  }
  if (out.find('\0') != std::string::npos) return InvalidArgument("layer path contains a NUL byte");
  return out;
}

// Walk order: paths compared bytewise with '/' below every other byte, so that "a/b" < "a-b" and a
// directory's subtree stays contiguous (what a sorted depth-first walk such as Go's filepath.Walk
// yields).
bool WalkLess(std::string_view a, std::string_view b) {
  auto rank = [](char c) { return c == '/' ? -1 : static_cast<int>(static_cast<unsigned char>(c)); };
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [&](char x, char y) { return rank(x) < rank(y); });
}

enum class Kind { kPath, kWhiteout, kOpaque };

struct Planned {
  std::string key;     // sort key (walk order); for an opaque marker "dir/" so it leads its siblings
  std::string parent;  // directory holding the entry ("" = root)
  std::string name;    // last component as written in the tar
  Kind kind;
};

Result<std::vector<Planned>> Plan(const LayerChanges& changes) {
  std::vector<Planned> plan;
  std::unordered_set<std::string> added;
  auto add_path = [&](std::string p) {
    if (p.empty() || !added.insert(p).second) return;
    auto [dir, name] = SplitParent(p);
    plan.push_back({p, std::string(dir), std::string(name), Kind::kPath});
  };
  for (const auto& raw : changes.paths) {
    KILN_ASSIGN_OR_RETURN(std::string p, NormalizePath(raw));
    add_path(std::move(p));
  }
  std::unordered_set<std::string> opaque;
  for (const auto& raw : changes.opaque_dirs) {
    KILN_ASSIGN_OR_RETURN(std::string p, NormalizePath(raw));
    if (!opaque.insert(p).second) continue;
    add_path(p);
    plan.push_back({p.empty() ? std::string() : p + "/", p, kOpaqueMarker, Kind::kOpaque});
  }
  std::unordered_set<std::string> deleted;
  std::vector<std::string> deletions;
  for (const auto& raw : changes.deletions) {
    KILN_ASSIGN_OR_RETURN(std::string p, NormalizePath(raw));
    if (p.empty()) return InvalidArgument("cannot delete the root directory in a layer");
    if (added.count(p) || !deleted.insert(p).second) continue;
    deletions.push_back(std::move(p));
  }
  for (const auto& p : deletions) {
    // A whiteout under a deleted directory is redundant, and its parent no longer exists to be written.
    bool covered = false;
    for (std::string_view a : PathAncestors(p)) {
      std::string ancestor(a);
      if (deleted.count(ancestor) && !added.count(ancestor)) {
        covered = true;
        break;
      }
    }
    if (covered) continue;
    auto [dir, name] = SplitParent(p);
    std::string wh = kWhiteoutPrefix + std::string(name);
    plan.push_back({JoinPath(dir, wh), std::string(dir), wh, Kind::kWhiteout});
  }
  std::sort(plan.begin(), plan.end(), [](const Planned& a, const Planned& b) { return WalkLess(a.key, b.key); });
  return plan;
}

bool SkippedXattr(std::string_view name) {
  return name == kRootlessXattr || name == "security.selinux" || name.starts_with("trusted.overlay.") ||
         name.starts_with("user.overlay.");
}

struct Xattrs {
  std::vector<std::pair<std::string, std::string>> attrs;  // sorted by name
  std::optional<RootlessOwner> owner;
};

// Reads xattrs through `fd` when >= 0, else through `path` without following a final symlink.
Result<Xattrs> ReadXattrs(int fd, const std::string& path, const std::string& what) {
  Xattrs out;
  std::string names(1024, '\0');
  for (;;) {
    ssize_t n = fd >= 0 ? ::flistxattr(fd, names.data(), names.size())
                        : ::llistxattr(path.c_str(), names.data(), names.size());
    if (n >= 0) {
      names.resize(static_cast<size_t>(n));
      break;
    }
    if (errno == ENOTSUP) return out;
    if (errno != ERANGE) return ErrnoStatus("listing xattrs of " + what, errno);
    names.resize(names.size() * 4);
  }
  std::string value;
  for (size_t i = 0; i < names.size();) {
    std::string name(names.c_str() + i);
    i += name.size() + 1;
    if (name.empty() || (name != kRootlessXattr && SkippedXattr(name))) continue;
    value.assign(256, '\0');
    for (;;) {
      ssize_t n = fd >= 0 ? ::fgetxattr(fd, name.c_str(), value.data(), value.size())
                          : ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
      if (n >= 0) {
        value.resize(static_cast<size_t>(n));
        break;
      }
      if (errno == ENODATA) break;  // removed since listed
      if (errno != ERANGE) return ErrnoStatus("reading xattr " + name + " of " + what, errno);
      value.resize(value.size() * 4);
    }
    if (name == kRootlessXattr) {
      out.owner = DecodeRootlessOwner(value);
      if (!out.owner) return InvalidArgument(what + ": malformed " + std::string(kRootlessXattr) + " xattr");
      continue;
    }
    out.attrs.emplace_back(std::move(name), value);
  }
  std::sort(out.attrs.begin(), out.attrs.end());
  return out;
}


class LayerTarWriter {
 public:
  LayerTarWriter(const TarOptions& options, Writer* out) : options_(options), out_(out), buf_(kBufferSize) {
    out_buf_.reserve(kBufferSize);
  }
  ~LayerTarWriter() {
    if (entry_ != nullptr) archive_entry_free(entry_);
    if (archive_ != nullptr) archive_write_free(archive_);
    for (auto& d : stack_) ::close(d.fd);
  }

  Result<TarStats> Run(const std::string& rootfs, const LayerChanges& changes) {
    KILN_ASSIGN_OR_RETURN(std::vector<Planned> plan, Plan(changes));
    int root = ::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return ErrnoStatus("opening rootfs " + rootfs, errno);
    stack_.push_back({"", root});
    KILN_RETURN_IF_ERROR(OpenArchive());
    for (const Planned& p : plan) {
      KILN_RETURN_IF_ERROR(EnterDirectory(p.parent));
      switch (p.kind) {
        case Kind::kPath: KILN_RETURN_IF_ERROR(WritePath(p)); break;
        case Kind::kWhiteout:
        case Kind::kOpaque: KILN_RETURN_IF_ERROR(WriteMarker(p)); break;
      }
    }
    if (archive_write_close(archive_) != ARCHIVE_OK) return ArchiveError("finishing the layer tar");
    KILN_RETURN_IF_ERROR(FlushOutput());
    return stats_;
  }

 private:
  struct Dir {
    std::string path;
    int fd;
  };

  Status OpenArchive() {
    archive_ = archive_write_new();
    entry_ = archive_entry_new();
    if (archive_ == nullptr || entry_ == nullptr) return InternalError("libarchive: out of memory");
    // No blocking: records are not padded to 10 KiB, and the archive ends right after the two zero
    // blocks, as Go's archive/tar writes it.
    if (archive_write_set_format_pax_restricted(archive_) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(archive_, 0) != ARCHIVE_OK ||
        archive_write_open(archive_, this, nullptr, &LayerTarWriter::OnWrite, nullptr) != ARCHIVE_OK) {
      return ArchiveError("starting the layer tar");
    }
    return OkStatus();
  }

  static la_ssize_t OnWrite(struct archive* a, void* self_ptr, const void* data, size_t n) {
    auto* self = static_cast<LayerTarWriter*>(self_ptr);
    Status s = self->Output(data, n);
    if (!s.ok()) {
      self->output_error_ = s;
      archive_set_error(a, EIO, "%s", "output failed");
      return -1;
    }
    return static_cast<la_ssize_t>(n);
  }

  // Headers arrive as 512-byte writes; gather them so that the hash/compress/upload chain sees
  // large writes. Big data writes go straight through.
  Status Output(const void* data, size_t n) {
    if (out_buf_.size() + n > kBufferSize) KILN_RETURN_IF_ERROR(FlushOutput());
    if (n >= kBufferSize) return out_->Write(data, n);
    out_buf_.insert(out_buf_.end(), static_cast<const char*>(data), static_cast<const char*>(data) + n);
    return OkStatus();
  }

  Status FlushOutput() {
    if (out_buf_.empty()) return OkStatus();
    Status s = out_->Write(out_buf_.data(), out_buf_.size());
    out_buf_.clear();
    return s;
  }

  Status ArchiveError(const std::string& what) {
    if (!output_error_.ok()) return output_error_.WithContext(what);
    const char* msg = archive_error_string(archive_);
    return IoError(what + ": " + (msg ? msg : "libarchive error"));
  }

  // Makes the top of the stack the directory `dir`, opening (and writing, as parent entries) the
  // directories in between without following symlinks.
  Status EnterDirectory(const std::string& dir) {
    auto is_ancestor = [&](const std::string& a) {
      return a.empty() || dir == a || (dir.size() > a.size() && dir.compare(0, a.size(), a) == 0 && dir[a.size()] == '/');
    };
    while (!is_ancestor(stack_.back().path)) {
      ::close(stack_.back().fd);
      stack_.pop_back();
    }
    while (stack_.back().path != dir) {
      const std::string& top = stack_.back().path;
      size_t start = top.empty() ? 0 : top.size() + 1;
      size_t end = dir.find('/', start);
      if (end == std::string::npos) end = dir.size();
      std::string path = dir.substr(0, end);
      KILN_RETURN_IF_ERROR(OpenAndWriteDirectory(path, dir.substr(start, end - start)));
    }
    return OkStatus();
  }

  Status OpenAndWriteDirectory(const std::string& path, const std::string& name) {
    int fd = ::openat(stack_.back().fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOTDIR || errno == ELOOP) {
        return FailedPrecondition("layer path " + path + " is not a directory (a symlink?)");
      }
      return ErrnoStatus("opening directory " + path + " in the rootfs", errno);
    }
    stack_.push_back({path, fd});
    struct stat st;
    if (::fstat(fd, &st) != 0) return ErrnoStatus("stat " + path, errno);
    KILN_ASSIGN_OR_RETURN(Xattrs x, ReadXattrs(fd, "", path));
    SetCommon(path + "/", st, x);
    return WriteHeader(path);
  }

  void SetCommon(const std::string& name, const struct stat& st, const Xattrs& x) {
    archive_entry_clear(entry_);
    archive_entry_copy_pathname(entry_, name.c_str());
    archive_entry_set_mode(entry_, st.st_mode);
    uint32_t uid = st.st_uid, gid = st.st_gid;
    if (x.owner) {
      uid = x.owner->uid;
      gid = x.owner->gid;
    } else if (options_.map_owner) {
      options_.map_owner(uid, gid);
    }
    archive_entry_set_uid(entry_, uid);
    archive_entry_set_gid(entry_, gid);
    int64_t mtime = st.st_mtim.tv_sec;
    if (options_.source_date_epoch && mtime > *options_.source_date_epoch) mtime = *options_.source_date_epoch;
    archive_entry_set_mtime(entry_, mtime, 0);
    for (const auto& [k, v] : x.attrs) archive_entry_xattr_add_entry(entry_, k.c_str(), v.data(), v.size());
  }

  Status WriteHeader(const std::string& what) {
    int r = archive_write_header(archive_, entry_);
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ArchiveError("writing the tar header of " + what);
    ++stats_.entries;
    return OkStatus();
  }

  Status WritePath(const Planned& p) {
    const std::string path = JoinPath(p.parent, p.name);
    int dirfd = stack_.back().fd;
    struct stat st;
    if (::fstatat(dirfd, p.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ErrnoStatus("stat " + path, errno);
    if (S_ISDIR(st.st_mode)) return OpenAndWriteDirectory(path, p.name);
    if (S_ISSOCK(st.st_mode)) return OkStatus();  // sockets cannot be archived; Docker skips them too
    // Non-regular entries are reached by path for xattrs: opening a fifo or device is not an option.
    // /proc/self/fd/N resolves to the directory we hold, and l*xattr does not follow the last name.
    std::string proc_path = "/proc/self/fd/" + std::to_string(dirfd) + "/" + p.name;
    if (st.st_nlink > 1) {
      auto [it, first] = inodes_.try_emplace({st.st_dev, st.st_ino}, path);
      if (!first) {
        // The content and xattrs belong to the inode and were written with the first name; the
        // header still carries the (rootless-corrected) owner and mode, as Go's archive/tar does.
        KILN_ASSIGN_OR_RETURN(Xattrs x, ReadXattrs(-1, proc_path, path));
        x.attrs.clear();
        SetCommon(path, st, x);
        archive_entry_copy_hardlink(entry_, it->second.c_str());
        archive_entry_set_size(entry_, 0);
        ++stats_.hardlinks;
        return WriteHeader(path);
      }
    }
    if (S_ISREG(st.st_mode)) return WriteRegular(dirfd, p.name, path);

    KILN_ASSIGN_OR_RETURN(Xattrs x, ReadXattrs(-1, proc_path, path));
    SetCommon(path, st, x);
    if (S_ISLNK(st.st_mode)) {
      std::string target(st.st_size > 0 ? static_cast<size_t>(st.st_size) + 1 : 256, '\0');
      for (;;) {
        ssize_t n = ::readlinkat(dirfd, p.name.c_str(), target.data(), target.size());
        if (n < 0) return ErrnoStatus("reading symlink " + path, errno);
        if (static_cast<size_t>(n) < target.size()) {
          target.resize(static_cast<size_t>(n));
          break;
        }
        target.resize(target.size() * 2);
      }
      archive_entry_copy_symlink(entry_, target.c_str());
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      archive_entry_set_rdevmajor(entry_, major(st.st_rdev));
      archive_entry_set_rdevminor(entry_, minor(st.st_rdev));
    }
    return WriteHeader(path);
  }

  Status WriteRegular(int dirfd, const std::string& name, const std::string& path) {
    int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    int fd = use_noatime_ ? ::openat(dirfd, name.c_str(), flags | O_NOATIME) : -1;
    if (fd < 0 && use_noatime_ && errno == EPERM) use_noatime_ = false;  // only the owner may ask
    if (fd < 0) fd = ::openat(dirfd, name.c_str(), flags);
    if (fd < 0) return ErrnoStatus("opening " + path + " in the rootfs", errno);
    UniqueFd closer(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return ErrnoStatus("stat " + path, errno);
    if (!S_ISREG(st.st_mode)) return FailedPrecondition(path + " changed type while the layer was written");
    KILN_ASSIGN_OR_RETURN(Xattrs x, ReadXattrs(fd, "", path));
    SetCommon(path, st, x);
    archive_entry_set_size(entry_, st.st_size);
    KILN_RETURN_IF_ERROR(WriteHeader(path));
    uint64_t remaining = static_cast<uint64_t>(st.st_size);
    if (remaining > 0) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    while (remaining > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, buf_.size()));
      ssize_t n = ::read(fd, buf_.data(), want);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("reading " + path, errno);
      }
      if (n == 0) return FailedPrecondition(path + " shrank while the layer was written");
      la_ssize_t w = archive_write_data(archive_, buf_.data(), static_cast<size_t>(n));
      if (w != n) return ArchiveError("writing " + path + " into the layer tar");
      remaining -= static_cast<uint64_t>(n);
      if (options_.on_file_bytes) options_.on_file_bytes(static_cast<uint64_t>(n));
    }
    stats_.file_bytes += static_cast<uint64_t>(st.st_size);
    return OkStatus();
  }

  Status WriteMarker(const Planned& p) {
    const std::string path = JoinPath(p.parent, p.name);
    archive_entry_clear(entry_);
    archive_entry_copy_pathname(entry_, path.c_str());
    archive_entry_set_mode(entry_, S_IFREG);  // mode 0, uid/gid 0, as containerd writes whiteouts
    archive_entry_set_size(entry_, 0);
    archive_entry_set_mtime(entry_, options_.source_date_epoch.value_or(0), 0);
    return WriteHeader(path);
  }

  const TarOptions& options_;
  Writer* out_;
  std::vector<char> buf_;
  std::vector<char> out_buf_;
  struct archive* archive_ = nullptr;
  struct archive_entry* entry_ = nullptr;
  std::vector<Dir> stack_;
  std::map<std::pair<dev_t, ino_t>, std::string> inodes_;
  bool use_noatime_ = true;
  Status output_error_;
  TarStats stats_;
};

}  // namespace

Result<TarStats> WriteLayerTar(const std::string& rootfs, const LayerChanges& changes, const TarOptions& options,
                               Writer* out) {
  LayerTarWriter writer(options, out);
  return writer.Run(rootfs, changes);
}

}  // namespace kiln::layers
