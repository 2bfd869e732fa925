// The ptrace sandbox (tier 3): runs a command with a rootfs as its "/" without any privilege, for a
// kiln that is neither root nor allowed user namespaces (a Kubernetes pod with runAsNonRoot and the
// default seccomp profile).
//
// How: the step is a traced child with a seccomp filter that stops it (SECCOMP_RET_TRACE) at every
// system call that takes a path. The tracer rewrites each path with a PathTranslator into the host
// path under the rootfs, resolving symlinks inside the rootfs, and restores the registers when the
// call returns. execve is rewritten so that the image's own dynamic loader runs the program
// (ROOTFS/lib64/ld-linux-x86-64.so.2 --argv0 ARGV0 /usr/bin/prog ...): the kernel would otherwise look
// up PT_INTERP and #! interpreters on the host. getcwd and readlink of /proc/PID/{exe,cwd,fd/N}
// report guest paths. /proc, /dev and /sys are the host's. Every process and thread the step starts
// is traced; all of them are killed when the first one exits.
//
// Limits, all documented for users: the step runs as the tracer's own uid and gid (no id switch
// without privileges); AF_UNIX socket paths are not translated; openat2, execveat and io_uring fail
// with ENOSYS; programs see /proc/self/exe as the program path only through readlink. It is not a
// security boundary against a hostile step running as the same uid (such a step could also read
// anything else that uid can); it gives cooperating build steps the rootfs as their "/". x86_64 only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace kiln::sandbox {

struct TraceSpec {
  std::string rootfs;              // absolute host path, realpath'd
  std::string workdir = "/";       // guest path; must exist in the rootfs
  std::vector<std::string> argv;   // argv[0] without '/' is looked up in $PATH inside the rootfs
  int report_fd = -1;              // the sandbox's report pipe (child.h records), or -1
  // ELF machine by qemu's name ("aarch64") → absolute host path of a static qemu-user binary that
  // runs it. Only foreign machines belong here; an ELF of a machine not listed goes to the kernel.
  std::map<std::string, std::string> emulators;
  // The environment is the calling process's own (the sandbox execs the tracer with the step's).
};

/// Whether this build of kiln has the tracer (x86_64 Linux).
bool PtraceSandboxSupported();

/// Runs `spec` traced to completion and returns the first process's wait status (as waitpid reports
/// it). Errors: the tracer could not start the step at all (fork, ptrace or seccomp refused). When the
/// step cannot change to its working directory or exec its command, that is reported on `report_fd`
/// as the other tiers' child does (Stage::kChdir / kExec) and the step exits 125; without a report fd
/// it says so on stderr and exits 127 (not found) or 126, as a shell would. Must be called from a single-threaded process (it forks and waits
/// for any child).
Result<int> RunTraced(const TraceSpec& spec);

/// Probes whether ptrace with seccomp stops works here (a default container seccomp profile allows
/// it; some hardened ones do not). Empty string: it works; else the reason. Forks a short child.
std::string ProbePtraceSandbox();

}  // namespace kiln::sandbox
