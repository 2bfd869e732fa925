#include "layers/extract_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/path.h"
#include "layers/rootless.h"

namespace kiln::layers {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

std::string Display(std::string_view path) { return path.empty() ? "/" : "/" + std::string(path); }

// A path to a name inside an already-resolved directory, for the calls that have no *at() form
// (lsetxattr). The directory part is a magic link to exactly that directory, the name is not followed.
std::string ProcPath(int dirfd, const char* name) {
  std::string p = "/proc/self/fd/" + std::to_string(dirfd);
  if (name) {
    p += '/';
    p += name;
  }
  return p;
}

int Depth(const std::string& path) {
  return path.empty() ? -1 : static_cast<int>(std::count(path.begin(), path.end(), '/'));
}

}  // namespace

Result<std::unique_ptr<ExtractTree>> ExtractTree::Open(const std::string& rootfs, const ExtractOptions& options) {
  // An unprivileged extractor is subject to permission checks on its own read-only directories.
  KILN_ASSIGN_OR_RETURN(RootDir root, RootDir::Open(rootfs, options.resolve, ::geteuid() != 0));
  auto tree = std::unique_ptr<ExtractTree>(new ExtractTree(std::move(root), options));
  for (const auto& s : options.skip_paths) {
    KILN_ASSIGN_OR_RETURN(std::string clean, CleanArchivePath(s));
    if (clean.empty()) return InvalidArgument("cannot skip the whole rootfs");
    tree->skip_.push_back(std::move(clean));
  }
  return tree;
}

ExtractTree::ExtractTree(RootDir root, const ExtractOptions& options)
    : root_(std::move(root)), options_(options), privileged_(::geteuid() == 0) {
  using O = ExtractOptions::Ownership;
  chown_ = options.ownership == O::kChown || (options.ownership == O::kAuto && privileged_);
}

void ExtractTree::Warn(const std::string& message) {
  if (options_.warn) options_.warn(message);
}

namespace {
bool Under(std::string_view path, std::string_view dir) {
  return path == dir || (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}
}  // namespace

bool ExtractTree::Skipped(std::string_view path) const {
  for (const auto& s : skip_) {
    if (Under(path, s)) return true;
  }
  return false;
}

bool ExtractTree::Protected(std::string_view path) const {
  for (const auto& s : skip_) {
    if (Under(path, s) || path.empty() || Under(s, path)) return true;
  }
  return false;
}

void ExtractTree::RememberPath(const std::string& path) {
  std::string p = path;
  while (!p.empty() && this_layer_.insert(p).second) {
    size_t slash = p.rfind('/');
    p.resize(slash == std::string::npos ? 0 : slash);
  }
}

Result<std::shared_ptr<UniqueFd>> ExtractTree::Parent(std::string_view parent, bool create) {
  // Tar entries come grouped by directory; most lookups are for the previous entry's parent.
  if (cached_parent_ && cached_name_ == parent) return cached_parent_;
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, root_.OpenDir(parent, create));
  cached_parent_ = std::make_shared<UniqueFd>(std::move(fd));
  cached_name_ = std::string(parent);
  return cached_parent_;
}

Result<bool> ExtractTree::ClearFor(int dirfd, const std::string& base, const std::string& path, bool want_dir) {
  struct stat st;
  if (::fstatat(dirfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus("inspecting " + Display(path), errno);
  }
  if (S_ISDIR(st.st_mode) && want_dir) return true;
  // Anything else is replaced, as Docker does: the new entry hides the lower one entirely.
  Invalidate();  // a cached parent may have been reached through what we remove
  if (S_ISDIR(st.st_mode)) {
    KILN_RETURN_IF_ERROR(RemoveAllAt(dirfd, base).WithContext("replacing " + Display(path)));
    dirs_.erase(path);
  } else if (::unlinkat(dirfd, base.c_str(), 0) != 0) {
    return ErrnoStatus("replacing " + Display(path), errno);
  }
  return false;
}

Status ExtractTree::Apply(const TarEntry& e, FileData* data) {
  KILN_ASSIGN_OR_RETURN(std::string path, CleanArchivePath(e.name));
  if (Skipped(path)) return OkStatus();
  auto [parent_sv, base_sv] = SplitParent(path);
  if (base_sv.substr(0, kWhiteoutPrefix.size()) == kWhiteoutPrefix) return Whiteout(parent_sv, base_sv);

  if (path.empty()) {
    // "./": the root directory's own metadata.
    if (e.type != TarEntry::Type::kDir) return InvalidArgument("entry \"" + e.name + "\" would replace the rootfs");
    return ApplyDir(root_.fd(), ".", path, e);
  }
  RememberPath(path);
  const std::string parent(parent_sv), base(base_sv);
  KILN_ASSIGN_OR_RETURN(auto dir, Parent(parent, /*create=*/true));
  // Keep the parent fd alive even if the cache drops it (ClearFor invalidates).
  std::shared_ptr<UniqueFd> hold = dir;
  const int dirfd = hold->get();
  switch (e.type) {
    case TarEntry::Type::kFile: return ApplyFile(dirfd, base, path, e, data);
    case TarEntry::Type::kDir: return ApplyDir(dirfd, base, path, e);
    case TarEntry::Type::kHardlink: return ApplyHardlink(dirfd, base, path, e);
    case TarEntry::Type::kSymlink: {
      KILN_ASSIGN_OR_RETURN(bool keep, ClearFor(dirfd, base, path, false));
      (void)keep;
      // The target is stored verbatim: a symlink is harmless until followed, and kiln never
      // follows one out of the rootfs.
      if (::symlinkat(e.link.c_str(), dirfd, base.c_str()) != 0) {
        return ErrnoStatus("creating symlink " + Display(path), errno);
      }
      Invalidate();
      Target t{dirfd, base.c_str()};
      KILN_RETURN_IF_ERROR(Own(t, path, e));
      Xattrs(t, path, e);
      struct timespec ts[2] = {e.atime.value_or(e.mtime), e.mtime};
      if (::utimensat(dirfd, base.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoStatus("setting times of " + Display(path), errno);
      }
      return OkStatus();
    }
    case TarEntry::Type::kChar:
    case TarEntry::Type::kBlock:
    case TarEntry::Type::kFifo: return ApplySpecial(dirfd, base, path, e);
    case TarEntry::Type::kOther: break;
  }
  Warn("skipping " + Display(path) + ": unsupported tar entry type");
  return OkStatus();
}

Status ExtractTree::Whiteout(std::string_view parent, std::string_view base) {
  const bool opaque = base == kOpaqueMarker;
  std::string name(base.substr(kWhiteoutPrefix.size()));
  if (!opaque && (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)) {
    return InvalidArgument("invalid whiteout " + Display(JoinPath(parent, base)));
  }
  auto dir = root_.OpenDir(parent, /*create=*/false);
  if (!dir.ok()) {
    // Nothing below to delete (no such directory, or a lower file where the directory would be).
    if (dir.status().code() == ErrorCode::kNotFound || dir.status().code() == ErrorCode::kFailedPrecondition) {
      return OkStatus();
    }
    return dir.status();
  }
  if (opaque) return Opaque(dir->get(), std::string(parent));
  std::string target = JoinPath(parent, name);
  if (Protected(target)) {
    if (!Skipped(target)) Warn("ignoring whiteout of " + Display(target) + ": it holds a skipped path");
    return OkStatus();
  }
  Invalidate();
  dirs_.erase(target);
  return RemoveAllAt(dir->get(), name).WithContext("applying whiteout for " + Display(target));
}

Status ExtractTree::Opaque(int dirfd, const std::string& dirpath) {
  // The directory hides everything the lower layers put in it; what this layer already added
  // (entries can precede the marker in the tar) stays. Recurse into directories this layer kept, as
  // containerd does, since their lower content is hidden too.
  UniqueFd fd(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("opening " + Display(dirpath) + " to make it opaque", errno);
  DIR* d = ::fdopendir(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
  if (d == nullptr) return ErrnoStatus("listing " + Display(dirpath), errno);
  std::vector<std::pair<std::string, bool>> children;  // name, is a real directory
  while (struct dirent* ent = ::readdir(d)) {
    std::string n = ent->d_name;
    if (n != "." && n != "..") children.emplace_back(std::move(n), ent->d_type == DT_DIR);
  }
  ::closedir(d);
  Invalidate();
  for (const auto& [name, is_dir] : children) {
    std::string child = JoinPath(dirpath, name);
    if (Skipped(child)) continue;
    if (this_layer_.count(child) == 0 && !Protected(child)) {
      dirs_.erase(child);
      KILN_RETURN_IF_ERROR(RemoveAllAt(fd.get(), name).WithContext("making " + Display(dirpath) + " opaque"));
      continue;
    }
    struct stat st;
    if (::fstatat(fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(fd.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return ErrnoStatus("opening " + Display(child), errno);
      KILN_RETURN_IF_ERROR(Opaque(sub.get(), child));
    }
  }
  return OkStatus();
}

Status ExtractTree::ApplyFile(int dirfd, const std::string& base, const std::string& path, const TarEntry& e,
                              FileData* data) {
  KILN_ASSIGN_OR_RETURN(bool keep, ClearFor(dirfd, base, path, false));
  (void)keep;
  // O_EXCL|O_NOFOLLOW: the name was just cleared; if anything is there now, do not write through it.
  UniqueFd fd(::openat(dirfd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("creating " + Display(path), errno);
  int64_t end = 0;
  if (data != nullptr) {
    const void* buf;
    size_t size;
    int64_t offset;
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool more, data->Next(&buf, &size, &offset));
      if (!more) break;
      const char* p = static_cast<const char*>(buf);
      while (size > 0) {
        ssize_t w = ::pwrite(fd.get(), p, size, offset);
        if (w < 0) {
          if (errno == EINTR) continue;
          return ErrnoStatus("writing " + Display(path), errno);
        }
        p += w;
        size -= static_cast<size_t>(w);
        offset += w;
      }
      end = std::max(end, offset);
    }
  }
  // Sparse files end in a hole; give the file its full size.
  if (end < e.size && ::ftruncate(fd.get(), e.size) != 0) return ErrnoStatus("sizing " + Display(path), errno);
  Target t{fd.get(), nullptr};
  KILN_RETURN_IF_ERROR(Own(t, path, e));
  Xattrs(t, path, e);
  // After chown, which clears setuid/setgid.
  if (::fchmod(fd.get(), e.perm & 07777) != 0) return ErrnoStatus("setting mode of " + Display(path), errno);
  struct timespec ts[2] = {e.atime.value_or(e.mtime), e.mtime};
  if (::futimens(fd.get(), ts) != 0) return ErrnoStatus("setting times of " + Display(path), errno);
  return OkStatus();
}

Status ExtractTree::ApplyDir(int dirfd, const std::string& base, const std::string& path, const TarEntry& e) {
  if (!path.empty()) {
    KILN_ASSIGN_OR_RETURN(bool keep, ClearFor(dirfd, base, path, true));
    if (!keep && ::mkdirat(dirfd, base.c_str(), 0700) != 0) {
      return ErrnoStatus("creating directory " + Display(path), errno);
    }
  }
  UniqueFd opath(::openat(dirfd, base.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!opath.valid()) return ErrnoStatus("opening directory " + Display(path), errno);
  KILN_RETURN_IF_ERROR(root_.UnlockIfNeeded(opath.get(), path));
  UniqueFd fd(::openat(opath.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("opening directory " + Display(path), errno);
  Target t{fd.get(), nullptr};
  KILN_RETURN_IF_ERROR(Own(t, path, e));
  Xattrs(t, path, e);
  // The final mode and mtime wait for Finish: adding children changes the mtime, and a read-only
  // directory must stay writable for us until it is filled.
  mode_t now = (e.perm & 07777) | (privileged_ ? 0 : 0700);
  if (::fchmod(fd.get(), now) != 0) return ErrnoStatus("setting mode of " + Display(path), errno);
  dirs_[path] = DirMeta{static_cast<mode_t>(e.perm & 07777), std::make_pair(e.atime.value_or(e.mtime), e.mtime)};
  return OkStatus();
}

Status ExtractTree::ApplyHardlink(int dirfd, const std::string& base, const std::string& path, const TarEntry& e) {
  KILN_ASSIGN_OR_RETURN(std::string target, CleanArchivePath(e.link));
  if (target.empty()) return PermissionDenied("hardlink " + Display(path) + " points at the rootfs itself");
  if (target == path) return OkStatus();
  auto [tparent, tbase] = SplitParent(target);
  // Resolved inside the rootfs like any other name: a target through a symlink to /etc lands in
  // <rootfs>/etc, never in the host's.
  auto tdir = root_.OpenDir(tparent, /*create=*/false);
  if (!tdir.ok()) return tdir.status().WithContext("hardlink " + Display(path) + " to " + Display(target));
  std::string tname(tbase);
  struct stat tst;
  if (::fstatat(tdir->get(), tname.c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("hardlink " + Display(path) + " to " + Display(target), errno);
  }
  if (S_ISDIR(tst.st_mode)) return InvalidArgument("hardlink " + Display(path) + " points at directory " + Display(target));
  struct stat st;
  if (::fstatat(dirfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
      st.st_ino == tst.st_ino) {
    return OkStatus();  // already the same file
  }
  KILN_ASSIGN_OR_RETURN(bool keep, ClearFor(dirfd, base, path, false));
  (void)keep;
  // No AT_SYMLINK_FOLLOW: a hardlink to a symlink links the symlink, as tar does.
  if (::linkat(tdir->get(), tname.c_str(), dirfd, base.c_str(), 0) != 0) {
    return ErrnoStatus("hardlinking " + Display(path) + " to " + Display(target), errno);
  }
  return OkStatus();
}

Status ExtractTree::ApplySpecial(int dirfd, const std::string& base, const std::string& path, const TarEntry& e) {
  mode_t type = S_IFIFO;
  if (e.type == TarEntry::Type::kChar) type = S_IFCHR;
  if (e.type == TarEntry::Type::kBlock) type = S_IFBLK;
  if (type != S_IFIFO && !options_.create_device_nodes) {
    Warn("skipping device node " + Display(path) + ": device nodes are not created here");
    return OkStatus();
  }
  if (type != S_IFIFO && !privileged_) {
    Warn("skipping device node " + Display(path) + ": not permitted");
    return OkStatus();
  }
  KILN_ASSIGN_OR_RETURN(bool keep, ClearFor(dirfd, base, path, false));
  (void)keep;
  if (::mknodat(dirfd, base.c_str(), type | 0600, makedev(e.dev_major, e.dev_minor)) != 0) {
    if (errno == EPERM && type != S_IFIFO) {  // root without CAP_MKNOD (a user namespace)
      Warn("skipping device node " + Display(path) + ": not permitted");
      return OkStatus();
    }
    return ErrnoStatus("creating " + Display(path), errno);
  }
  Target t{dirfd, base.c_str()};
  KILN_RETURN_IF_ERROR(Own(t, path, e));
  Xattrs(t, path, e);
  // mknodat just created a non-symlink under this name, so following it is harmless.
  if (::fchmodat(dirfd, base.c_str(), e.perm & 07777, 0) != 0) {
    return ErrnoStatus("setting mode of " + Display(path), errno);
  }
  struct timespec ts[2] = {e.atime.value_or(e.mtime), e.mtime};
  if (::utimensat(dirfd, base.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("setting times of " + Display(path), errno);
  }
  return OkStatus();
}

Status ExtractTree::Own(Target t, const std::string& path, const TarEntry& e) {
  if (chown_) {
    int rc = t.name ? ::fchownat(t.fd, t.name, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) : ::fchown(t.fd, e.uid, e.gid);
    if (rc == 0) return OkStatus();
    if (errno == EINVAL && options_.ownership == ExtractOptions::Ownership::kAuto) {
      // An id the user namespace kiln runs in does not map (a single mapping, or an id above the
      // subordinate range): this file alone keeps its owner in the xattr; mapped ones are chowned.
      return RecordOwner(t, path, e);
    }
    if (errno != EPERM || options_.ownership != ExtractOptions::Ownership::kAuto) {
      return ErrnoStatus("setting owner of " + Display(path), errno);
    }
    Warn("cannot change file ownership (" + std::string(std::strerror(errno)) +
         "); keeping the image's uid/gid in " + kRootlessXattr + " xattrs instead");
    chown_ = false;
  }
  return RecordOwner(t, path, e);
}

Status ExtractTree::RecordOwner(Target t, const std::string& path, const TarEntry& e) {
  if (t.name == nullptr) return WriteRootlessOwner(t.fd, {e.uid, e.gid}, Display(path));
  KILN_ASSIGN_OR_RETURN(bool stored, WriteRootlessOwner(t.fd, t.name, {e.uid, e.gid}, Display(path)));
  if (!stored) {
    // The kernel allows user.* xattrs only on regular files and directories. The layer writer reads
    // the extracting user as root, so only a symlink or special file owned by someone else loses
    // its owner: worth a warning (rare), unlike the root-owned symlinks of every distribution.
    if (e.uid == 0 && e.gid == 0) return OkStatus();
    if (unowned_specials_++ == 0) {
      Warn("cannot record the image ownership of symlinks and special files without privileges (first: " +
           Display(path) + ")");
    }
  }
  return OkStatus();
}

void ExtractTree::Xattrs(Target t, const std::string& path, const TarEntry& e) {
  for (const auto& [name, value] : e.xattrs) {
    // Ownership xattrs are kiln's own bookkeeping; a layer must not forge them.
    if (name == kRootlessXattr) continue;
    bool needs_privilege = name.rfind("security.", 0) == 0 || name.rfind("trusted.", 0) == 0;
    if (needs_privilege && !privileged_) {
      if (!warned_privileged_xattr_) {
        Warn("skipping privileged xattrs (security.*, trusted.*) without root, first: " + name + " on " + Display(path));
        warned_privileged_xattr_ = true;
      }
      continue;
    }
    int rc = t.name ? ::lsetxattr(ProcPath(t.fd, t.name).c_str(), name.c_str(), value.data(), value.size(), 0)
                    : ::fsetxattr(t.fd, name.c_str(), value.data(), value.size(), 0);
    if (rc != 0) Warn("cannot set xattr " + name + " on " + Display(path) + ": " + std::strerror(errno));
  }
}

Status ExtractTree::Finish() {
  // Restore what the resolver unlocked unless this layer gave the directory a mode of its own.
  for (const auto& [path, mode] : root_.unlocked()) dirs_.try_emplace(path, DirMeta{mode, std::nullopt});
  std::vector<std::pair<const std::string*, const DirMeta*>> order;
  order.reserve(dirs_.size());
  for (const auto& [path, meta] : dirs_) order.emplace_back(&path, &meta);
  // Deepest first: a parent that becomes read-only (or untraversable) last cannot block its children.
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return Depth(*a.first) > Depth(*b.first); });
  Invalidate();
  for (const auto& [path, meta] : order) {
    auto [parent, base] = SplitParent(*path);
    auto dir = root_.OpenDir(parent, /*create=*/false);
    if (!dir.ok()) continue;  // removed or replaced later in this layer
    std::string name = path->empty() ? "." : std::string(base);
    UniqueFd fd(::openat(dir->get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) continue;  // no longer a directory
    if (meta->times) {
      struct timespec ts[2] = {meta->times->first, meta->times->second};
      if (::futimens(fd.get(), ts) != 0) return ErrnoStatus("setting times of " + Display(*path), errno);
    }
    if (::fchmod(fd.get(), meta->mode) != 0) return ErrnoStatus("setting mode of " + Display(*path), errno);
  }
  if (unowned_specials_ > 1) {
    Warn(std::to_string(unowned_specials_) + " symlinks/special files keep the extracting user's ownership");
  }
  return OkStatus();
}

}  // namespace kiln::layers
