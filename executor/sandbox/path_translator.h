// PathTranslator: maps the paths a step of the ptrace sandbox (tier 3) uses to host paths under its
// rootfs, resolving symbolic links as the kernel would if the rootfs were "/".
//
// The traced step runs without chroot, so every path it hands the kernel is rewritten first: an
// absolute "guest" path /usr/bin/awk becomes ROOTFS/usr/bin/awk, and every symlink met on the way is
// resolved here, inside the rootfs (an absolute link target starts again at the rootfs, ".." stops at
// it), so that the kernel's own walk of the result meets no symlink that could lead out. Only the
// last component may remain a symlink, when the system call does not follow it (lstat, readlink,
// unlink, open with O_NOFOLLOW, ...).
//
// A few guest directories are the host's own ("passthrough"): /proc, /dev and /sys, as a container
// runtime would mount them. Below them nothing is resolved here; the kernel walks them on the host.
// /proc/<pid>/root is the exception: it leads to the rootfs, not to the host's "/".
//
// Not a security boundary on its own: it decides what path a cooperating step means. The tracer
// (ptrace_tracer.h) applies it to every path-taking system call it intercepts.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::sandbox {

class PathTranslator {
 public:
  /// `rootfs`: an absolute host directory without symlinks in it (realpath'd) and without a trailing
  /// slash. `passthrough`: absolute guest directories taken from the host unchanged, e.g. {"/proc",
  /// "/dev", "/sys"}.
  PathTranslator(std::string rootfs, std::vector<std::string> passthrough);

  enum class Follow { kYes, kNo };

  struct Translated {
    int error = 0;     // 0, or the errno the system call should fail with (ELOOP, ENAMETOOLONG)
    std::string host;  // the host path to hand the kernel (when error == 0)
  };

  /// Translates `path` as the step passed it. A relative path starts at `guest_dir`, the absolute
  /// guest directory it is relative to (the step's working directory or a directory fd). `follow`
  /// says whether the system call follows a symlink in the last component; a trailing slash always
  /// does, as in the kernel. Components that do not exist are kept as written (the kernel then
  /// reports ENOENT or creates the last one). Reads the rootfs with lstat/readlink only.
  Translated ToHost(std::string_view guest_dir, std::string_view path, Follow follow) const;

  /// The guest path of host path `host` (absolute, as the kernel reports it in /proc/PID/cwd or
  /// getcwd): "/" for the rootfs itself, the part below it for paths inside, `host` unchanged inside
  /// a passthrough directory; nullopt for anything else (a host path the step cannot name).
  std::optional<std::string> ToGuest(std::string_view host) const;

  const std::string& rootfs() const { return rootfs_; }

  /// Says whether /proc/<pid> is one of the step's own processes ("self" and "thread-self" always
  /// are). When set, the private parts of any other process (environ, cmdline, mem, maps, auxv, fd, fdinfo,
  /// cwd, root, exe, map_files, pagemap, and the same below task/<tid>) are refused with EACCES: the
  /// step runs as kiln's uid, and the CI job's other processes of that uid hold its credentials in
  /// their environment, and command lines carry tokens. What `ps` lists processes by (stat, status,
  /// comm) stays readable.
  void SetOwnProcess(std::function<bool(std::string_view pid)> own) { own_process_ = std::move(own); }

 private:
  bool IsPassthrough(const std::vector<std::string>& components) const;

  std::string rootfs_;
  std::vector<std::string> passthrough_;  // without the leading slash: "proc", "dev", "sys"
  std::function<bool(std::string_view)> own_process_;
};

}  // namespace kiln::sandbox
