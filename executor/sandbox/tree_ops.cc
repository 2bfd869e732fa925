#include "executor/sandbox/tree_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/path.h"

namespace kiln::sandbox::internal {
namespace {

// The names in directory `fd` (not "." and ".."); `fd` stays open.
Result<std::vector<std::string>> ListDir(int fd, const std::string& what) {
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return ErrnoStatus("listing " + what, errno);
  DIR* d = ::fdopendir(dup);
  if (d == nullptr) {
    int err = errno;
    ::close(dup);
    return ErrnoStatus("listing " + what, err);
  }
  ::rewinddir(d);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoStatus("listing " + what, err);
  return names;
}

Status CopyBytes(int in, int out, const std::string& what) {
  bool plain = false;
  char buf[1 << 16];
  for (;;) {
    ssize_t n;
    if (!plain) {
      n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        plain = true;
        continue;
      }
    } else {
      n = ::read(in, buf, sizeof buf);
      if (n > 0) {
        for (ssize_t off = 0; off < n;) {
          ssize_t w = ::write(out, buf + off, static_cast<size_t>(n - off));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) return ErrnoStatus("writing " + what, w < 0 ? errno : EIO);
          off += w;
        }
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("copying " + what, errno);
    if (n == 0) return OkStatus();
  }
}

Status SetOwner(int fd, const char* name, const struct stat& st, bool keep_owner, const std::string& what) {
  if (!keep_owner) return OkStatus();
  int rc = name == nullptr ? ::fchown(fd, st.st_uid, st.st_gid)
                           : ::fchownat(fd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return ErrnoStatus("setting the owner of " + what, errno);
  return OkStatus();
}

Status CopyNode(int src_dir, const std::string& src_name, int dst_dir, const std::string& dst_name, bool keep_owner,
                const std::string& what, bool top) {
  struct stat st;
  if (::fstatat(src_dir, src_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ErrnoStatus("reading " + what, errno);
  const char* dn = dst_name.c_str();
  if (S_ISDIR(st.st_mode)) {
    UniqueFd src(::openat(src_dir, src_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!src.valid()) return ErrnoStatus("opening " + what, errno);
    if (::mkdirat(dst_dir, dn, 0700) != 0) return ErrnoStatus("creating the copy of " + what, errno);
    UniqueFd dst(::openat(dst_dir, dn, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dst.valid()) return ErrnoStatus("opening the copy of " + what, errno);
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(src.get(), what));
    for (const std::string& n : names) {
      KILN_RETURN_IF_ERROR(CopyNode(src.get(), n, dst.get(), n, keep_owner, what + "/" + n, false));
    }
    KILN_RETURN_IF_ERROR(SetOwner(dst.get(), nullptr, st, keep_owner, what));
    if (::fchmod(dst.get(), st.st_mode & 07777) != 0) return ErrnoStatus("setting the mode of " + what, errno);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    ::futimens(dst.get(), times);
    return OkStatus();
  }
  if (S_ISREG(st.st_mode)) {
    UniqueFd in(::openat(src_dir, src_name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in.valid()) return ErrnoStatus("opening " + what, errno);
    UniqueFd out(::openat(dst_dir, dn, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) return ErrnoStatus("creating the copy of " + what, errno);
    KILN_RETURN_IF_ERROR(CopyBytes(in.get(), out.get(), what));
    KILN_RETURN_IF_ERROR(SetOwner(out.get(), nullptr, st, keep_owner, what));
    if (::fchmod(out.get(), st.st_mode & 07777) != 0) return ErrnoStatus("setting the mode of " + what, errno);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    ::futimens(out.get(), times);
    return OkStatus();
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
    ssize_t n = ::readlinkat(src_dir, src_name.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoStatus("reading the link " + what, errno);
    target.resize(static_cast<size_t>(n));
    if (::symlinkat(target.c_str(), dst_dir, dn) != 0) return ErrnoStatus("creating the copy of " + what, errno);
    KILN_RETURN_IF_ERROR(SetOwner(dst_dir, dn, st, keep_owner, what));
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    ::utimensat(dst_dir, dn, times, AT_SYMLINK_NOFOLLOW);
    return OkStatus();
  }
  if (top) return FailedPrecondition(what + " is neither a directory, a regular file nor a symlink");
  return OkStatus();  // devices, fifos, sockets inside a tree: left out
}

}  // namespace

Result<UniqueFd> OpenDirBelow(int dir_fd, const std::string& rel) {
  UniqueFd fd(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("duplicating a directory descriptor", errno);
  for (std::string_view c : PathComponents(rel)) {
    std::string part(c);
    int next = ::openat(fd.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR || err == ELOOP) {
        return NotFound("/" + rel + " is no longer a directory (" + part + " is missing, a symlink or a file)");
      }
      return ErrnoStatus("opening /" + rel, err);
    }
    fd.Reset(next);
  }
  return fd;
}

Status CopyTreeTo(const std::string& src, int dst_dir_fd, const std::string& name, bool keep_owner,
                  const std::string& what) {
  size_t slash = src.find_last_of('/');
  std::string parent = slash == 0 ? "/" : src.substr(0, slash);
  std::string base = src.substr(slash + 1);
  if (slash == std::string::npos || base.empty()) return InvalidArgument("copying " + what + ": bad source " + src);
  UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoStatus("opening " + parent, errno);
  return CopyNode(dir.get(), base, dst_dir_fd, name, keep_owner, what, true);
}

Status CopyTreeAt(int src_dir_fd, const std::string& src_name, int dst_dir_fd, const std::string& name,
                  bool keep_owner, const std::string& what) {
  return CopyNode(src_dir_fd, src_name, dst_dir_fd, name, keep_owner, what, true);
}

Status RemoveTreeAt(int dir_fd, const std::string& name, const std::string& what) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return OkStatus();
    return ErrnoStatus("inspecting " + what, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) return ErrnoStatus("removing " + what, errno);
    return OkStatus();
  }
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES && ::fchmodat(dir_fd, name.c_str(), 0700, 0) == 0) {
    fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0) return ErrnoStatus("opening " + what, errno);
  UniqueFd d(fd);
  if ((st.st_mode & 0300) != 0300) ::fchmod(d.get(), (st.st_mode & 07777) | 0700);
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(d.get(), what));
  for (const std::string& n : names) KILN_RETURN_IF_ERROR(RemoveTreeAt(d.get(), n, what + "/" + n));
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) return ErrnoStatus("removing " + what, errno);
  return OkStatus();
}

}  // namespace kiln::sandbox::internal
