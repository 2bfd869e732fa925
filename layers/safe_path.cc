#include "layers/safe_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

namespace kiln::layers {
namespace {

// Linux's limit on symlinks followed in one lookup (MAXSYMLINKS); openat2 enforces the same.
constexpr int kMaxSymlinks = 40;

std::string ProcFdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// Queues the components of `path` at the back of `out`, or at its front (a symlink's target, walked
// before the rest of the path).
void SplitInto(std::string_view path, std::deque<std::string>* out, bool front) {
  PathComponents parts(path);
  out->insert(front ? out->begin() : out->end(), parts.begin(), parts.end());
}

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

Result<UniqueFd> RootDir::Walk(std::string_view rel, bool create, std::vector<std::string>* created) {
  std::deque<std::string> todo;
  SplitInto(rel, &todo, false);
  std::vector<std::string> stack;  // resolved components below the root, all real directories
  std::string resolved;            // the same, joined with '/' (kept in step: paths can be deep)
  UniqueFd cur(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return ErrnoStatus("duplicating rootfs fd", errno);
  auto stack_path = [&resolved]() -> const std::string& { return resolved; };
  auto pop = [&] {
    stack.pop_back();
    size_t slash = resolved.rfind('/');
    resolved.resize(slash == std::string::npos ? 0 : slash);
  };
  auto reopen = [&]() -> Status {
    UniqueFd fd(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
    for (const auto& c : stack) {
      int next = ::openat(fd.get(), c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) return ErrnoStatus("reopening " + stack_path(), errno);
      fd.Reset(next);
    }
    cur = std::move(fd);
    return OkStatus();
  };
  int links = 0;
  const std::string what = rel.empty() ? "/" : std::string(rel);
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      // chroot semantics: `..` of the root is the root.
      if (!stack.empty()) {
        pop();
        KILN_RETURN_IF_ERROR(reopen());
      }
      continue;
    }
    KILN_RETURN_IF_ERROR(UnlockIfNeeded(cur.get(), stack_path()));
    int fd = ::openat(cur.get(), c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), c.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus("creating directory " + JoinPath(stack_path(), c), errno);
      }
      if (created) created->push_back(JoinPath(stack_path(), c));
      fd = ::openat(cur.get(), c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) return ErrnoStatus("resolving " + what + " in the rootfs", errno);
    UniqueFd next(fd);
    struct stat st;
    if (::fstat(next.get(), &st) != 0) return ErrnoStatus("resolving " + what, errno);
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) return ErrnoStatus("resolving " + what, ELOOP);
      KILN_ASSIGN_OR_RETURN(std::string target, ReadLinkFd(next.get(), JoinPath(stack_path(), c)));
      if (!target.empty() && target[0] == '/') {
        // An absolute target is absolute within the rootfs.
        stack.clear();
        resolved.clear();
        KILN_RETURN_IF_ERROR(reopen());
      }
      SplitInto(target, &todo, true);
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      return Status(ErrorCode::kFailedPrecondition,
                    "resolving " + what + ": " + JoinPath(stack_path(), c) + " is not a directory");
    }
    if (!resolved.empty()) resolved += '/';
    resolved += c;
    stack.push_back(std::move(c));
    cur = std::move(next);
  }
  KILN_RETURN_IF_ERROR(UnlockIfNeeded(cur.get(), stack_path()));
  return cur;
}

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
