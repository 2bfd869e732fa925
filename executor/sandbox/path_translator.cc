#include "executor/sandbox/path_translator.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>

#include "core/in_root.h"
#include "core/path.h"

namespace kiln::sandbox {
namespace {

// Linux gives up after 40 symlinks in one lookup (MAXSYMLINKS).
constexpr int kMaxSymlinks = 40;

// Looks at guest paths through their host path under the rootfs (lstat/readlink). Anything lstat
// cannot see counts as missing: the kernel will answer for it. A link readlink cannot read is an
// error (never hand the kernel a link it would resolve on the host).
class HostPathWalker : public InRootWalker {
 public:
  explicit HostPathWalker(const std::string& rootfs) : rootfs_(rootfs) {}
  Result<Entry> Look(const std::string& name) override {
    std::string host = rootfs_ + dir_ + "/" + name;
    struct stat st;
    if (::lstat(host.c_str(), &st) != 0) return Entry{Kind::kMissing, {}};
    if (S_ISDIR(st.st_mode)) return Entry{Kind::kDirectory, {}};
    if (!S_ISLNK(st.st_mode)) return Entry{Kind::kOther, {}};
    std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : PATH_MAX) + 1, '\0');
    ssize_t n = ::readlink(host.c_str(), target.data(), target.size());
    if (n < 0) {
      error_ = errno;
      return ErrnoStatus("reading the link " + host, errno);
    }
    target.resize(static_cast<size_t>(n));
    return Entry{Kind::kSymlink, std::move(target)};
  }
  Status Enter(const std::string& name) override {
    dir_ += "/" + name;
    return OkStatus();
  }
  Status Leave() override {
    dir_.resize(dir_.rfind('/'));
    return OkStatus();
  }
  Status Restart() override {
    dir_.clear();
    return OkStatus();
  }
  int error() const { return error_; }

 private:
  const std::string& rootfs_;
  std::string dir_;  // "/a/b": the guest directory the walker is on
  int error_ = 0;
};

std::string Join(const std::vector<std::string>& components) {
  std::string out;
  for (const std::string& c : components) out += "/" + c;
  return out;
}

// What of another process a step must not read (see SetOwnProcess). `ps` still lists every process
// by its stat and status; the command line is private, as hidepid makes it, since CI jobs pass
// tokens and passwords there.
constexpr std::string_view kPrivateProcEntries[] = {"environ", "cmdline", "mem", "maps",         "smaps", "auxv",
                                                    "fd",      "fdinfo",  "cwd",          "root",  "exe",
                                                    "map_files", "pagemap", "smaps_rollup", "stack", "syscall",
                                                    "personality"};

// The entries of /dev a container runtime provides (runc's default devices and links).
bool IsContainerDevice(std::string_view name) {
  for (std::string_view d : {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "fd", "stdin",
                             "stdout", "stderr"}) {
    if (name == d) return true;
  }
  return false;
}

// "self", "thread-self" or a number: a /proc entry of a process.
bool IsPid(std::string_view s) {
  if (s == "self" || s == "thread-self") return true;
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

PathTranslator::PathTranslator(std::string rootfs, std::vector<std::string> passthrough) : rootfs_(std::move(rootfs)) {
  while (rootfs_.size() > 1 && rootfs_.back() == '/') rootfs_.pop_back();
  for (std::string& p : passthrough) {
    while (!p.empty() && p.front() == '/') p.erase(p.begin());
    while (!p.empty() && p.back() == '/') p.pop_back();
    if (!p.empty()) passthrough_.push_back(std::move(p));
  }
}

bool PathTranslator::IsPassthrough(const std::vector<std::string>& components) const {
  if (components.empty()) return false;
  for (const std::string& p : passthrough_) {
    if (components[0] == p) return true;
  }
  return false;
}

PathTranslator::Translated PathTranslator::ToHost(std::string_view guest_dir, std::string_view path,
                                                  Follow follow) const {
  Translated out;
  if (path.empty()) {
    out.error = ENOENT;  // as the kernel answers (AT_EMPTY_PATH calls never get here)
    return out;
  }
  if (path.size() >= PATH_MAX) {
    out.error = ENAMETOOLONG;
    return out;
  }
  // "dir/" and "dir/." name a directory: a final symlink is followed and the kernel still checks
  // that the result is a directory, so the suffix stays on the host path.
  size_t slash = path.rfind('/');
  std::string_view last = slash == std::string_view::npos ? path : path.substr(slash + 1);
  std::string suffix;
  if (last == ".") {
    suffix = "/.";
  } else if (path.back() == '/' && path.find_first_not_of('/') != std::string_view::npos) {
    suffix = "/";
  }
  if (!suffix.empty() || last == "..") follow = Follow::kYes;

  std::vector<std::string> start;
  for (std::string_view c : PathComponents(guest_dir)) start.emplace_back(c);
  HostPathWalker walker(rootfs_);
  int refused = 0;  // the errno a /proc rule answers with
  InRootOptions options;
  options.follow_last = follow == Follow::kYes;
  options.max_links = kMaxSymlinks;
  options.step = [&](const std::vector<std::string>& done, const std::deque<std::string>& todo) -> Result<InRootStep> {
    if (!IsPassthrough(done)) return InRootStep::kLook;
    // The entries of a process: /proc/PID/PART/..., or /proc/PID/task/TID/PART/... of one thread.
    bool task = done.size() >= 4 && done[2] == "task" && IsPid(done[3]);
    size_t at = task ? 4 : 2;  // index of PART in `done`
    if (done[0] == "proc" && done.size() > at && IsPid(done[1])) {
      std::string_view part = done[at];
      size_t below = done.size() - at - 1;  // components taken below PART so far
      // PID/root is the step's root, the rootfs, not the host's "/"; the link itself stays visible
      // to lstat and readlink.
      if (part == "root" && below == 0 && (!todo.empty() || follow == Follow::kYes)) return InRootStep::kRestartAtRoot;
      if (below == 0 && own_process_ && done[1] != "self" && done[1] != "thread-self" && !own_process_(done[1])) {
        for (std::string_view p : kPrivateProcEntries) {
          if (part == p) {
            refused = EACCES;
            return PermissionDenied("a private entry of another process");
          }
        }
      }
      // A process's cwd and open files are host paths the kernel would follow from there, out of
      // the rootfs; naming something below them is refused (the links themselves stay usable).
      bool magic_dir = part == "cwd" && below == 0;
      bool fd_link = (part == "fd" || part == "map_files") && below == 1;
      if ((magic_dir || fd_link) && !todo.empty()) {
        refused = EACCES;
        return PermissionDenied("a path below another process's link");
      }
    }
    // The host's /dev holds its disks and kernel interfaces (/dev/vda, /dev/kmsg, /dev/mem); only
    // what a container's /dev has is passed through.
    if (done[0] == "dev" && done.size() >= 2 && !IsContainerDevice(done[1])) {
      refused = ENOENT;
      return NotFound("not in a container's /dev");
    }
    // Below a passthrough directory the kernel resolves links on the host; ".." is applied here,
    // so that /dev/../etc stays in the rootfs.
    return InRootStep::kTakeAsWritten;
  };
  Result<InRootPath> resolved = ResolveInRoot(path, start, walker, options);
  if (!resolved.ok()) {
    out.error = refused != 0 ? refused : walker.error() != 0 ? walker.error() : EIO;
    return out;
  }
  if (resolved->stop == InRootPath::Stop::kLoop) {
    out.error = ELOOP;
    return out;
  }
  // Missing, or a file in the middle of a path: the kernel stops at this component and answers
  // (ENOENT, ENOTDIR) for the path as it is.
  const std::vector<std::string>& done = resolved->components;
  std::string rest;
  for (const std::string& r : resolved->unresolved) rest += "/" + r;
  out.host = (IsPassthrough(done) ? "" : rootfs_) + Join(done) + rest;
  if (out.host.empty()) out.host = "/";
  struct stat st;
  if (suffix == "/." && ::stat(out.host.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) suffix.clear();  // said all it had to
  if (!suffix.empty() && out.host.back() != '/') out.host += suffix;
  if (out.host.size() >= PATH_MAX) {
    out.error = ENAMETOOLONG;
    out.host.clear();
  }
  return out;
}

std::optional<std::string> PathTranslator::ToGuest(std::string_view host) const {
  if (host == rootfs_) return std::string("/");
  if (host.size() > rootfs_.size() && host.compare(0, rootfs_.size(), rootfs_) == 0 && host[rootfs_.size()] == '/') {
    return std::string(host.substr(rootfs_.size()));
  }
  for (const std::string& p : passthrough_) {
    if (host.size() > p.size() && host[0] == '/' && host.compare(1, p.size(), p) == 0 &&
        (host.size() == p.size() + 1 || host[p.size() + 1] == '/')) {
      return std::string(host);
    }
  }
  return std::nullopt;
}

}  // namespace kiln::sandbox
