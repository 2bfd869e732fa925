#include "executor/sandbox/rootfs_touches.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/path.h"
#include "core/unique_fd.h"

namespace kiln::sandbox::internal {
namespace {

constexpr size_t kMaxSwappedFile = 1 << 20;  // resolv.conf and hosts are tiny; refuse anything odd


bool SameTime(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

// "/dir/name" for messages.
std::string Join(const std::string& dir_rel, const std::string& name) { return "/" + JoinPath(dir_rel, name); }

Status WriteAll(int fd, const std::string& data, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + off, data.size() - off, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus("writing " + what, n < 0 ? errno : EIO);
    off += static_cast<size_t>(n);
  }
  return OkStatus();
}

Result<std::string> ReadAllFd(int fd, const std::string& what) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading " + what, errno);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxSwappedFile) return FailedPrecondition(what + " is larger than 1 MiB; not replacing it");
  }
}

// Gives a file the original's content, owner, mode and times.
Status RestoreContent(int fd, const std::string& content, const struct stat& st, const std::string& what) {
  if (::ftruncate(fd, 0) != 0) return ErrnoStatus("truncating " + what, errno);
  KILN_RETURN_IF_ERROR(WriteAll(fd, content, what));
  if (::fchown(fd, st.st_uid, st.st_gid) != 0) return ErrnoStatus("restoring the owner of " + what, errno);
  if (::fchmod(fd, st.st_mode & 07777) != 0) return ErrnoStatus("restoring the mode of " + what, errno);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(fd, times) != 0) return ErrnoStatus("restoring the times of " + what, errno);
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<RootfsTouches>> RootfsTouches::Open(const std::string& rootfs) {
  int fd = ::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening rootfs " + rootfs, errno);
  return std::unique_ptr<RootfsTouches>(new RootfsTouches(fd));
}

RootfsTouches::~RootfsTouches() {
  Undo().IgnoreError();
  ::close(root_fd_);
}

Result<int> RootfsTouches::OpenDir(const std::string& dir_rel) const {
  int fd = ::fcntl(root_fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("duplicating the rootfs descriptor", errno);
  for (std::string_view c : PathComponents(dir_rel)) {
    std::string part(c);
    int next = ::openat(fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    ::close(fd);
    if (next < 0) {
      if (err == ENOENT || err == ENOTDIR || err == ELOOP) return -1;
      return ErrnoStatus("opening /" + dir_rel + " in the rootfs", err);
    }
    fd = next;
  }
  return fd;
}

Result<RootfsTouches::Outcome> RootfsTouches::Create(const std::string& dir_rel, const std::string& name,
                                                     NewKind kind, mode_t mode, dev_t rdev) {
  KILN_ASSIGN_OR_RETURN(int dfd_raw, OpenDir(dir_rel));
  if (dfd_raw < 0) return Outcome::kUnusable;
  UniqueFd dfd(dfd_raw);
  std::string what = Join(dir_rel, name);
  struct stat st;
  if (::fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    bool fits = (kind == NewKind::kDir && S_ISDIR(st.st_mode)) || (kind == NewKind::kFile && S_ISREG(st.st_mode)) ||
                kind == NewKind::kCharDevice;  // whatever the image ships as a device, it keeps
    return fits ? Outcome::kExisted : Outcome::kUnusable;
  }
  if (errno != ENOENT) return ErrnoStatus("inspecting " + what + " in the rootfs", errno);

  Entry e;
  e.kind = Entry::Kind::kCreated;
  e.dir_rel = dir_rel;
  e.name = name;
  struct stat dst;
  if (::fstat(dfd.get(), &dst) != 0) return ErrnoStatus("inspecting /" + dir_rel, errno);
  e.dir_atime = dst.st_atim;
  e.dir_mtime_before = dst.st_mtim;
  int rc = 0;
  switch (kind) {
    case NewKind::kDir:
      rc = ::mkdirat(dfd.get(), name.c_str(), mode);
      break;
    case NewKind::kFile: {
      int fd = ::openat(dfd.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
      rc = fd < 0 ? -1 : ::close(fd);
      break;
    }
    case NewKind::kCharDevice:
      rc = ::mknodat(dfd.get(), name.c_str(), S_IFCHR | mode, rdev);
      break;
  }
  if (rc != 0) return ErrnoStatus("creating " + what + " in the rootfs", errno);
  ::fchmodat(dfd.get(), name.c_str(), mode, 0);  // the exact mode, whatever kiln's umask
  if (::fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) e.ino = st.st_ino;
  if (::fstat(dfd.get(), &dst) == 0) e.dir_mtime_after = dst.st_mtim;
  entries_.push_back(std::move(e));
  return Outcome::kCreated;
}

Result<RootfsTouches::Outcome> RootfsTouches::EnsureDir(const std::string& dir_rel, const std::string& name,
                                                        mode_t mode) {
  return Create(dir_rel, name, NewKind::kDir, mode, 0);
}

Result<RootfsTouches::Outcome> RootfsTouches::EnsureFile(const std::string& dir_rel, const std::string& name) {
  return Create(dir_rel, name, NewKind::kFile, 0644, 0);
}

Result<RootfsTouches::Outcome> RootfsTouches::EnsureCharDevice(const std::string& dir_rel, const std::string& name,
                                                               dev_t rdev) {
  return Create(dir_rel, name, NewKind::kCharDevice, 0666, rdev);
}

Result<RootfsTouches::Outcome> RootfsTouches::SwapFileContent(const std::string& dir_rel, const std::string& name,
                                                              const std::string& content) {
  KILN_ASSIGN_OR_RETURN(int dfd_raw, OpenDir(dir_rel));
  if (dfd_raw < 0) return Outcome::kUnusable;
  UniqueFd dfd(dfd_raw);
  std::string what = Join(dir_rel, name);
  struct stat st;
  if (::fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) return ErrnoStatus("inspecting " + what + " in the rootfs", errno);
    KILN_ASSIGN_OR_RETURN(Outcome created, EnsureFile(dir_rel, name));
    if (created != Outcome::kCreated) return created;
    int fd = ::openat(dfd.get(), name.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("opening " + what, errno);
    UniqueFd f(fd);
    KILN_RETURN_IF_ERROR(WriteAll(fd, content, what));
    return Outcome::kCreated;
  }
  if (!S_ISREG(st.st_mode)) return Outcome::kUnusable;  // a symlink (e.g. to systemd-resolved's file)
  int fd = ::openat(dfd.get(), name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening " + what, errno);
  UniqueFd f(fd);
  Entry e;
  e.kind = Entry::Kind::kSwapped;
  e.dir_rel = dir_rel;
  e.name = name;
  if (::fstat(fd, &e.original_st) != 0) return ErrnoStatus("inspecting " + what, errno);
  e.ino = e.original_st.st_ino;
  KILN_ASSIGN_OR_RETURN(e.original, ReadAllFd(fd, what));
  // Record before writing: if the write fails half-way, Undo still puts the original back.
  entries_.push_back(e);
  if (::ftruncate(fd, 0) != 0) return ErrnoStatus("truncating " + what, errno);
  KILN_RETURN_IF_ERROR(WriteAll(fd, content, what));
  return Outcome::kExisted;
}

Status RootfsTouches::UndoOne(const Entry& e) {
  KILN_ASSIGN_OR_RETURN(int dfd_raw, OpenDir(e.dir_rel));
  if (dfd_raw < 0) return OkStatus();  // the step removed the directory itself: nothing of ours is left
  UniqueFd dfd(dfd_raw);
  std::string what = Join(e.dir_rel, e.name);
  struct stat st;
  bool present = ::fstatat(dfd.get(), e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;

  if (e.kind == Entry::Kind::kSwapped) {
    if (present && S_ISREG(st.st_mode) && st.st_ino == e.ino) {
      int fd = ::openat(dfd.get(), e.name.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return ErrnoStatus("reopening " + what, errno);
      UniqueFd f(fd);
      return RestoreContent(fd, e.original, e.original_st, what);
    }
    // The step replaced or removed the file; put the original back as a new file.
    if (present) {
      if (S_ISDIR(st.st_mode)) return FailedPrecondition("cannot restore " + what + ": the step made it a directory");
      if (::unlinkat(dfd.get(), e.name.c_str(), 0) != 0) return ErrnoStatus("removing the step's " + what, errno);
    }
    int fd = ::openat(dfd.get(), e.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("recreating " + what, errno);
    UniqueFd f(fd);
    return RestoreContent(fd, e.original, e.original_st, what);
  }

  if (!present || st.st_ino != e.ino) return OkStatus();  // gone, or the step put its own file there
  // Restore the directory's times only if nobody but us changed it since; otherwise its new mtime is
  // a genuine change made by the step.
  struct stat dst;
  bool untouched = ::fstat(dfd.get(), &dst) == 0 && SameTime(e.dir_mtime_after, dst.st_mtim);
  if (::unlinkat(dfd.get(), e.name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0) {
    if (errno == ENOTEMPTY || errno == EEXIST) return OkStatus();  // the step filled it: it is the step's now
    return ErrnoStatus("removing " + what + " from the rootfs", errno);
  }
  if (untouched) {
    struct timespec times[2] = {e.dir_atime, e.dir_mtime_before};
    if (::futimens(dfd.get(), times) != 0) return ErrnoStatus("restoring the times of /" + e.dir_rel, errno);
  }
  return OkStatus();
}

Status RootfsTouches::Undo() {
  Status first;
  while (!entries_.empty()) {
    Entry e = std::move(entries_.back());
    entries_.pop_back();
    Status s = UndoOne(e);
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

}  // namespace kiln::sandbox::internal
