#include "executor/pipeline/work_dirs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/io.h"
#include "layers/safe_path.h"

namespace kiln::executor {
namespace {

constexpr char kPrefix[] = "build-";
constexpr char kKeepMarker[] = ".kiln-keep-work";

Result<UniqueFd> LockWorkArea(const std::string& work, int how) {
  std::string path = work + "/.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return ErrnoStatus("opening " + path, errno);
  while (::flock(fd.get(), how) != 0) {
    if (errno != EINTR) return ErrnoStatus("locking " + path, errno);
  }
  return fd;
}

}  // namespace

Result<WorkDirLease> CreateWorkDir(const std::string& state_dir, bool keep) {
  std::string work = state_dir + "/work";
  KILN_RETURN_IF_ERROR(MakeDirs(work, 0700));
  KILN_ASSIGN_OR_RETURN(UniqueFd area, LockWorkArea(work, LOCK_SH));
  std::string tmpl = work + "/" + kPrefix + "XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("creating a work directory in " + state_dir, errno);
  WorkDirLease lease;
  lease.path = tmpl;
  lease.lock.Reset(::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!lease.lock.valid()) return ErrnoStatus("opening " + tmpl, errno);
  if (::flock(lease.lock.get(), LOCK_EX | LOCK_NB) != 0) return ErrnoStatus("locking " + tmpl, errno);
  if (keep) {
    UniqueFd marker(::openat(lease.lock.get(), kKeepMarker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!marker.valid()) return ErrnoStatus("marking " + tmpl + " to be kept", errno);
  }
  return lease;
}

Result<CleanReport> RemoveStaleWorkDirs(const std::string& state_dir, bool include_kept) {
  CleanReport report;
  std::string work = state_dir + "/work";
  UniqueFd dir(::open(work.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!dir.valid()) {
    if (errno == ENOENT) return report;
    return ErrnoStatus("opening " + work, errno);
  }
  KILN_ASSIGN_OR_RETURN(UniqueFd area, LockWorkArea(work, LOCK_EX));
  std::vector<std::string> names;
  {
    DIR* d = ::fdopendir(::dup(dir.get()));
    if (d == nullptr) return ErrnoStatus("listing " + work, errno);
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind(kPrefix, 0) == 0) names.push_back(name);
    }
    ::closedir(d);
  }
  for (const std::string& name : names) {
    UniqueFd fd(::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.valid() && ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        ++report.in_use;
        continue;
      }
      return ErrnoStatus("locking " + work + "/" + name, errno);
    }
    struct stat st;
    if (!include_kept && fd.valid() && ::fstatat(fd.get(), kKeepMarker, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      ++report.kept;
      continue;
    }
    Status s = layers::RemoveAllAt(dir.get(), name);
    if (!s.ok()) {
      std::string hint;
      if (s.message().find("ermission") != std::string::npos || s.message().find("not permitted") != std::string::npos) {
        hint = " (files a rootless RUN step made belong to the subordinate ids of kiln's user namespace: run "
               "`kiln clean` as the user that ran the build, where user namespaces work, or as root)";
      }
      return s.WithContext("removing the stale work directory " + work + "/" + name + hint);
    }
    ++report.removed;
  }
  return report;
}

}  // namespace kiln::executor
