#include "executor/sandbox/step_mounts.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/in_root.h"
#include "core/path.h"
#include "executor/sandbox/tree_ops.h"

namespace kiln::sandbox::internal {
namespace {

using Outcome = RootfsTouches::Outcome;

// Walks the rootfs by O_PATH descriptors, never following a link itself (the resolver does).
class FdWalker : public InRootWalker {
 public:
  explicit FdWalker(int root_fd) : root_fd_(root_fd) {}

  Result<Entry> Look(const std::string& name) override {
    struct stat st;
    Entry e;
    if (::fstatat(Current(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return e;
      return ErrnoStatus("looking at " + name + " in the rootfs", errno);
    }
    if (S_ISDIR(st.st_mode)) {
      e.kind = Kind::kDirectory;
    } else if (S_ISLNK(st.st_mode)) {
      e.kind = Kind::kSymlink;
      char buf[4096];
      ssize_t n = ::readlinkat(Current(), name.c_str(), buf, sizeof buf);
      if (n < 0) return ErrnoStatus("reading the link " + name + " in the rootfs", errno);
      e.link_target.assign(buf, static_cast<size_t>(n));
    } else {
      e.kind = Kind::kOther;
    }
    return e;
  }
  Status Enter(const std::string& name) override {
    int fd = ::openat(Current(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("entering " + name + " in the rootfs", errno);
    stack_.emplace_back(fd);
    return OkStatus();
  }
  Status Leave() override {
    if (!stack_.empty()) stack_.pop_back();
    return OkStatus();
  }
  Status Restart() override {
    stack_.clear();
    return OkStatus();
  }

 private:
  int Current() const { return stack_.empty() ? root_fd_ : stack_.back().get(); }
  int root_fd_;
  std::vector<UniqueFd> stack_;
};

}  // namespace

Result<MountPoint> PlaceMountPoint(int root_fd, const std::string& target, RootfsTouches& touches) {
  FdWalker walker(root_fd);
  InRootOptions o;
  o.follow_last = true;
  o.after_missing = InRootOptions::AfterMissing::kLexical;
  KILN_ASSIGN_OR_RETURN(InRootPath p, ResolveInRoot(target, {}, walker, o));
  if (p.stop == InRootPath::Stop::kLoop) return FailedPrecondition("RUN --mount: too many symlinks in " + target);
  if (p.stop == InRootPath::Stop::kNotDirectory) {
    return FailedPrecondition("RUN --mount: a parent of " + target + " is not a directory in the image");
  }
  if (p.components.empty()) return InvalidArgument("RUN --mount: " + target + " is the root of the image");
  MountPoint at;
  at.name = p.components.back();
  for (size_t i = 0; i + 1 < p.components.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(Outcome o2, touches.EnsureDir(at.dir_rel, p.components[i], 0755));
    if (o2 == Outcome::kUnusable) {
      return FailedPrecondition("RUN --mount: /" + JoinPath(at.dir_rel, p.components[i]) + " (a parent of " + target +
                                ") is not a directory in the image");
    }
    at.dir_rel = at.dir_rel.empty() ? p.components[i] : at.dir_rel + "/" + p.components[i];
  }
  return at;
}

Result<std::vector<MountPoint>> PrepareMountPoints(int root_fd, const std::vector<StepMount>& mounts,
                                                   RootfsTouches& touches) {
  std::vector<MountPoint> out;
  for (const StepMount& m : mounts) {
    KILN_ASSIGN_OR_RETURN(MountPoint at, PlaceMountPoint(root_fd, m.target, touches));
    bool file = m.kind == StepMount::Kind::kFile;
    KILN_ASSIGN_OR_RETURN(Outcome o, file ? touches.EnsureFile(at.dir_rel, at.name)
                                          : touches.EnsureDir(at.dir_rel, at.name, 0755));
    if (o == Outcome::kUnusable) {
      return FailedPrecondition("RUN --mount: " + m.target + " is " + (file ? "not a regular file" : "not a directory") +
                                " in the image, so " + (file ? "a file" : "a directory") + " cannot be mounted there");
    }
    out.push_back(std::move(at));
  }
  return out;
}

MountStaging::~MountStaging() { Unstage().IgnoreError(); }

Status MountStaging::Stage(const std::vector<StepMount>& mounts, RootfsTouches& touches) {
  UniqueFd hold(::open(hold_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!hold.valid()) return ErrnoStatus("opening " + hold_dir_, errno);
  for (const StepMount& m : mounts) {
    KILN_ASSIGN_OR_RETURN(MountPoint at, PlaceMountPoint(root_fd_, m.target, touches));
    KILN_ASSIGN_OR_RETURN(UniqueFd parent, OpenDirBelow(root_fd_, at.dir_rel));
    Staged s;
    s.mount = m;
    s.at = at;
    struct stat dst;
    if (::fstat(parent.get(), &dst) != 0) return ErrnoStatus("RUN --mount: inspecting /" + at.dir_rel, errno);
    s.dir_atime = dst.st_atim;
    s.dir_mtime_before = dst.st_mtim;
    staged_.push_back(std::move(s));
    Status placed = StageOne(staged_.back(), parent.get(), hold.get());
    if (::fstat(parent.get(), &dst) == 0) staged_.back().dir_mtime_staged = dst.st_mtim;
    KILN_RETURN_IF_ERROR(placed);
  }
  return OkStatus();
}

Status MountStaging::StageOne(Staged& s, int parent_fd, int hold_fd) {
  const std::string& name = s.at.name;
  const std::string what = "/" + s.at.Rel();
  struct stat st;
  if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    std::string held = "held-" + std::to_string(staged_.size());
    if (::renameat(parent_fd, name.c_str(), hold_fd, held.c_str()) != 0) {
      int err = errno;
      if (err == EXDEV) {
        return FailedPrecondition("RUN --mount on " + s.mount.target + ": " + hold_dir_ +
                                  " is not on the rootfs's filesystem, so the image's " + what +
                                  " cannot be moved aside for the step");
      }
      return ErrnoStatus("RUN --mount: moving the image's " + what + " aside", err);
    }
    s.held = held;
  } else if (errno != ENOENT) {
    return ErrnoStatus("RUN --mount: inspecting " + what, errno);
  }
  switch (s.mount.kind) {
    case StepMount::Kind::kTmpfs:
      if (::mkdirat(parent_fd, name.c_str(), 01777) != 0) return ErrnoStatus("RUN --mount: creating " + what, errno);
      ::fchmodat(parent_fd, name.c_str(), 01777, 0);
      s.placed = true;
      return OkStatus();
    case StepMount::Kind::kDirectory:
    case StepMount::Kind::kFile:
      break;
  }
  if (s.mount.writes == StepMount::Writes::kKept) {
    if (::renameat(AT_FDCWD, s.mount.source.c_str(), parent_fd, name.c_str()) == 0) {
      s.placed = s.moved = true;
      return OkStatus();
    }
    if (errno != EXDEV || s.mount.kind != StepMount::Kind::kDirectory) {
      return ErrnoStatus("RUN --mount: moving " + s.mount.source + " to " + what, errno);
    }
  }
  Status copied = CopyTreeTo(s.mount.source, parent_fd, name, keep_owner_, what);
  s.placed = true;  // even a partial copy must be removed
  return copied;
}

Status MountStaging::Unstage() {
  Status first = OkStatus();
  if (staged_.empty()) return first;
  UniqueFd hold(::open(hold_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!hold.valid()) first = ErrnoStatus("opening " + hold_dir_, errno);
  while (!staged_.empty()) {
    if (hold.valid()) {
      Status s = UnstageOne(staged_.back(), hold.get());
      if (first.ok() && !s.ok()) first = s;
    }
    staged_.pop_back();
  }
  return first;
}

// Returns a kept directory (or file) to its source, by rename or by copy.
static Status ReturnToSource(const StepMount& m, int parent_fd, const std::string& name, bool moved, bool keep_owner,
                             const std::string& what) {
  struct stat st;
  bool present = ::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  bool fits = present && (m.kind == StepMount::Kind::kDirectory ? S_ISDIR(st.st_mode) : !S_ISDIR(st.st_mode));
  if (moved && fits) {
    if (::renameat(parent_fd, name.c_str(), AT_FDCWD, m.source.c_str()) != 0) {
      return ErrnoStatus("RUN --mount: moving " + what + " back to " + m.source, errno);
    }
    return OkStatus();
  }
  // Copied in, or the step replaced the target with something else: rebuild the source from it.
  size_t slash = m.source.find_last_of('/');
  std::string sparent = slash == 0 ? "/" : m.source.substr(0, slash), sname = m.source.substr(slash + 1);
  UniqueFd sdir(::open(sparent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!sdir.valid()) return ErrnoStatus("RUN --mount: opening " + sparent, errno);
  KILN_RETURN_IF_ERROR(RemoveTreeAt(sdir.get(), sname, m.source));
  if (fits) {
    KILN_RETURN_IF_ERROR(CopyTreeAt(parent_fd, name, sdir.get(), sname, keep_owner, what));
  } else if (m.kind == StepMount::Kind::kDirectory && ::mkdirat(sdir.get(), sname.c_str(), 0755) != 0) {
    return ErrnoStatus("RUN --mount: recreating " + m.source, errno);
  }
  return RemoveTreeAt(parent_fd, name, what);
}

Status MountStaging::UnstageOne(const Staged& s, int hold_fd) {
  const std::string what = "/" + s.at.Rel();
  Result<UniqueFd> parent = OpenDirBelow(root_fd_, s.at.dir_rel);
  if (!parent.ok()) {
    // The step replaced a directory above the target (with a symlink, say): kiln does not follow it.
    return FailedPrecondition("RUN --mount on " + s.mount.target + ": the step replaced the directory around it (" +
                              parent.status().message() + "); the mount's content is not taken back");
  }
  int pfd = parent->get();
  struct stat dst;
  bool untouched = ::fstat(pfd, &dst) == 0 && dst.st_mtim.tv_sec == s.dir_mtime_staged.tv_sec &&
                   dst.st_mtim.tv_nsec == s.dir_mtime_staged.tv_nsec;
  Status st = UnstageContent(s, pfd, hold_fd);
  if (untouched) {
    struct timespec times[2] = {s.dir_atime, s.dir_mtime_before};
    ::futimens(pfd, times);
  }
  return st;
}

Status MountStaging::UnstageContent(const Staged& s, int pfd, int hold_fd) {
  const std::string what = "/" + s.at.Rel();
  Status st = OkStatus();
  if (s.placed) {
    if (s.mount.writes == StepMount::Writes::kKept && s.mount.kind != StepMount::Kind::kTmpfs) {
      st = ReturnToSource(s.mount, pfd, s.at.name, s.moved, keep_owner_, what);
    } else {
      st = RemoveTreeAt(pfd, s.at.name, what);
    }
  }
  if (!s.held.empty()) {
    if (st.ok()) KILN_RETURN_IF_ERROR(RemoveTreeAt(pfd, s.at.name, what));  // whatever the step left there
    if (::renameat(hold_fd, s.held.c_str(), pfd, s.at.name.c_str()) != 0) {
      Status back = ErrnoStatus("RUN --mount: putting the image's " + what + " back", errno);
      return st.ok() ? back : st;
    }
  }
  return st;
}

}  // namespace kiln::sandbox::internal
