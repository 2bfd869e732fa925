#include "layers/safe_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "core/in_root.h"

namespace kiln::layers {
namespace {

// Linux's limit on symlinks followed in one lookup (MAXSYMLINKS); openat2 enforces the same.
constexpr int kMaxSymlinks = 40;

std::string ProcFdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

long Openat2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  struct open_how how = {};
  how.flags = flags;
  how.resolve = resolve;
  return ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

Result<std::string> ReadLinkFd(int fd, std::string_view what) {
  std::string buf(256, '\0');
  for (;;) {
    // An empty path with an O_PATH fd of the symlink reads the link itself (Linux ≥ 2.6.39).
    ssize_t n = ::readlinkat(fd, "", buf.data(), buf.size());
    if (n < 0) return ErrnoStatus("reading symlink " + std::string(what), errno);
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    if (buf.size() >= 65536) return InvalidArgument("symlink " + std::string(what) + " is too long");
    buf.resize(buf.size() * 2);
  }
}

}  // namespace

Result<std::string> CleanArchivePath(std::string_view name) {
  std::vector<std::string_view> parts;
  for (std::string_view c : PathComponents(name)) {
    if (c == ".") continue;
    if (c == "..") {
      // Docker clamps such names at the root; we refuse them: no honest layer contains one, and a
      // clear error is easier to reason about than a silently relocated file.
      if (parts.empty()) return PermissionDenied("path \"" + std::string(name) + "\" climbs above the root");
      parts.pop_back();
      continue;
    }
    parts.push_back(c);
  }
  std::string out;
  for (std::string_view p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

bool KernelHasOpenat2() {
  static const bool has = [] {
    long fd = Openat2(AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (fd < 0) return false;  // ENOSYS before Linux 5.6, or EPERM under a seccomp filter
    ::close(static_cast<int>(fd));
    return true;
  }();
  return has;
}

Result<RootDir> RootDir::Open(const std::string& path, ResolveMode mode, bool unlock_dirs) {
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening rootfs " + path, errno);
  bool use_openat2 = mode == ResolveMode::kAuto && KernelHasOpenat2();
  return RootDir(UniqueFd(fd), path, use_openat2, unlock_dirs);
}

Status RootDir::UnlockIfNeeded(int dirfd, std::string_view rel) {
  if (!unlock_dirs_) return OkStatus();
  struct stat st;
  if (::fstat(dirfd, &st) != 0) return ErrnoStatus("inspecting " + std::string(rel.empty() ? "/" : rel), errno);
  if (st.st_uid != ::geteuid() || (st.st_mode & 0700) == 0700) return OkStatus();
  // chmod through /proc follows the magic link to exactly this inode; fchmod refuses O_PATH fds.
  if (::chmod(ProcFdPath(dirfd).c_str(), (st.st_mode & 07777) | 0700) != 0) {
    return ErrnoStatus("making " + std::string(rel.empty() ? "/" : rel) + " writable", errno);
  }
  unlocked_.emplace_back(std::string(rel), st.st_mode & 07777);
  return OkStatus();
}

Result<UniqueFd> RootDir::OpenDir(std::string_view rel, bool create, std::vector<std::string>* created) {
  if (use_openat2_) {
    std::string p = rel.empty() ? std::string(".") : std::string(rel);
    for (int attempt = 0; attempt < 8; ++attempt) {
      long fd = Openat2(root_.get(), p.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC,
                        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
      if (fd >= 0) {
        UniqueFd out(static_cast<int>(fd));
        KILN_RETURN_IF_ERROR(UnlockIfNeeded(out.get(), rel));
        return out;
      }
      // EAGAIN: a rename raced the lookup (RESOLVE_IN_ROOT refuses to guess); try again.
      if (errno != EAGAIN) break;
    }
    // Missing components to create, a directory we must unlock, a path over PATH_MAX: the manual
    // walk handles all of them with the same semantics and reports real errors itself.
  }
  return Walk(rel, create, created);
}

namespace {

// RootDir's walk: an fd on each directory (openat O_PATH|O_NOFOLLOW, never a path the kernel could
// resolve through a symlink), creating missing directories when asked and unlocking directories an
// unprivileged extractor owns but cannot write.
class FdWalker : public InRootWalker {
 public:
  FdWalker(RootDir* root, bool create, std::vector<std::string>* created)
      : root_(root), create_(create), created_(created) {}

  Result<Entry> Look(const std::string& name) override {
    KILN_RETURN_IF_ERROR(root_->UnlockIfNeeded(cur_.get(), resolved_));
    int fd = ::openat(cur_.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create_) {
      if (::mkdirat(cur_.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus("creating directory " + JoinPath(resolved_, name), errno);
      }
      if (created_) created_->push_back(JoinPath(resolved_, name));
      fd = ::openat(cur_.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0 && errno == ENOENT) return Entry{Kind::kMissing, {}};
    if (fd < 0) return ErrnoStatus("resolving " + JoinPath(resolved_, name) + " in the rootfs", errno);
    UniqueFd next(fd);
    struct stat st;
    if (::fstat(next.get(), &st) != 0) return ErrnoStatus("resolving " + JoinPath(resolved_, name), errno);
    if (S_ISLNK(st.st_mode)) {
      KILN_ASSIGN_OR_RETURN(std::string target, ReadLinkFd(next.get(), JoinPath(resolved_, name)));
      return Entry{Kind::kSymlink, std::move(target)};
    }
    if (!S_ISDIR(st.st_mode)) return Entry{Kind::kOther, {}};
    looked_ = std::move(next);
    return Entry{Kind::kDirectory, {}};
  }
  Status Enter(const std::string& name) override {
    cur_ = std::move(looked_);
    stack_.push_back(name);
    resolved_ = JoinPath(resolved_, name);
    return OkStatus();
  }
  Status Leave() override {
    stack_.pop_back();
    resolved_ = std::string(SplitParent(resolved_).first);
    return Reopen();
  }
  Status Restart() override {
    stack_.clear();
    resolved_.clear();
    return Reopen();
  }

  UniqueFd Take() { return std::move(cur_); }
  const std::string& resolved() const { return resolved_; }

 private:
  // The directory at stack_, opened again from the root.
  Status Reopen() {
    UniqueFd fd(::fcntl(root_->fd(), F_DUPFD_CLOEXEC, 0));
    if (!fd.valid()) return ErrnoStatus("duplicating rootfs fd", errno);
    for (const std::string& c : stack_) {
      int next = ::openat(fd.get(), c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) return ErrnoStatus("reopening " + resolved_, errno);
      fd.Reset(next);
    }
    cur_ = std::move(fd);
    return OkStatus();
  }

  RootDir* root_;
  bool create_;
  std::vector<std::string>* created_;
  UniqueFd cur_, looked_;
  std::vector<std::string> stack_;  // the directories entered below the root
  std::string resolved_;            // the same, joined with '/'
};

}  // namespace

Result<UniqueFd> RootDir::Walk(std::string_view rel, bool create, std::vector<std::string>* created) {
  const std::string what = rel.empty() ? "/" : std::string(rel);
  FdWalker walker(this, create, created);
  InRootOptions options;
  options.max_links = kMaxSymlinks;
  KILN_ASSIGN_OR_RETURN(InRootPath p, ResolveInRoot(rel, {}, walker, options));
  switch (p.stop) {
    case InRootPath::Stop::kMissing:
      return ErrnoStatus("resolving " + what + " in the rootfs", ENOENT);
    case InRootPath::Stop::kLoop:
      return ErrnoStatus("resolving " + what, ELOOP);
    case InRootPath::Stop::kNotDirectory:
      return Status(ErrorCode::kFailedPrecondition, "resolving " + what + ": " + p.Joined() + " is not a directory");
    case InRootPath::Stop::kResolved:
      break;
  }
  if (p.last_kind != InRootWalker::Kind::kDirectory && !p.components.empty()) {
    return Status(ErrorCode::kFailedPrecondition, "resolving " + what + ": " + p.Joined() + " is not a directory");
  }
  UniqueFd dir = walker.Take();
  KILN_RETURN_IF_ERROR(UnlockIfNeeded(dir.get(), walker.resolved()));
  return dir;
}

namespace {

// Looks at names below a root fd by their path relative to it (fstatat/readlinkat, never following).
// The resolved prefix holds no symlink, so the kernel's walk of "prefix/name" follows none.
class RootFdWalker : public InRootWalker {
 public:
  explicit RootFdWalker(int root_fd) : root_fd_(root_fd) {}
  Result<Entry> Look(const std::string& name) override {
    std::string p = JoinPath(dir_, name);
    struct stat st;
    if (::fstatat(root_fd_, p.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return Entry{Kind::kMissing, {}};
      return ErrnoStatus("resolving /" + p, errno);
    }
    if (S_ISDIR(st.st_mode)) return Entry{Kind::kDirectory, {}};
    if (!S_ISLNK(st.st_mode)) return Entry{Kind::kOther, {}};
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlinkat(root_fd_, p.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoStatus("reading symlink /" + p, errno);
    target.resize(static_cast<size_t>(n));
    return Entry{Kind::kSymlink, std::move(target)};
  }
  Status Enter(const std::string& name) override {
    dir_ = JoinPath(dir_, name);
    return OkStatus();
  }
  Status Leave() override {
    dir_ = std::string(SplitParent(dir_).first);
    return OkStatus();
  }
  Status Restart() override {
    dir_.clear();
    return OkStatus();
  }

 private:
  int root_fd_;
  std::string dir_;
};

}  // namespace

Result<std::string> ResolveBelow(int root_fd, std::string_view rel) {
  RootFdWalker walker(root_fd);
  InRootOptions options;
  options.after_missing = InRootOptions::AfterMissing::kLexical;  // a destination to be created
  KILN_ASSIGN_OR_RETURN(InRootPath p, ResolveInRoot(rel, {}, walker, options));
  switch (p.stop) {
    case InRootPath::Stop::kResolved:
      return p.Joined();
    case InRootPath::Stop::kNotDirectory:
      return Status(ErrorCode::kFailedPrecondition,
                    "resolving /" + std::string(rel) + ": /" + p.Joined() + " is not a directory");
    case InRootPath::Stop::kLoop:
      return ErrnoStatus("resolving /" + std::string(rel), ELOOP);
    case InRootPath::Stop::kMissing:
      break;
  }
  return InternalError("resolving /" + std::string(rel) + ": missing component not taken lexically");
}

Result<std::string> RootDir::Resolve(std::string_view rel) const { return ResolveBelow(root_.get(), rel); }

Status RemoveAllAt(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return OkStatus();
    return ErrnoStatus("inspecting " + name, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) return ErrnoStatus("removing " + name, errno);
    return OkStatus();
  }
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES && st.st_uid == ::geteuid()) {
    // Our own read-only directory (an unprivileged extraction of a 0555 dir): allowed to open it up.
    // fstatat above saw a directory, so this chmod does not follow a symlink.
    if (::fchmodat(dirfd, name.c_str(), 0700, 0) == 0) {
      fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
  }
  if (fd < 0) return ErrnoStatus("opening " + name + " to remove it", errno);
  if ((st.st_mode & 0700) != 0700 && st.st_uid == ::geteuid()) ::fchmod(fd, 0700);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus("listing " + name, err);
  }
  // List first, then remove: removing entries during readdir may make it skip others.
  std::vector<std::string> children;
  while (struct dirent* e = ::readdir(dir)) {
    std::string child = e->d_name;
    if (child != "." && child != "..") children.push_back(std::move(child));
  }
  Status status;
  for (const auto& child : children) {
    status = RemoveAllAt(::dirfd(dir), child);
    if (!status.ok()) break;
  }
  ::closedir(dir);
  if (!status.ok()) return status.WithContext("removing " + name);
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus("removing directory " + name, errno);
  }
  return OkStatus();
}

}  // namespace kiln::layers
