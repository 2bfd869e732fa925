// The ptrace sandbox's start: the traced child (stop, seccomp filter, chdir, exec), the tracer's
// attach, and the probe. The event loop is in ptrace_loop.cc, execve rewriting in ptrace_execve.cc.
// Everything here runs in a single-threaded process (the sandbox execs `kiln sandbox-trace` for every
// step), so ordinary C++ is fine, including after fork in the tracer itself (only the traced child is
// restricted, and it only calls a few raw functions).
#include "executor/sandbox/ptrace_tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "executor/sandbox/child.h"
#include "executor/sandbox/command_runner.h"
#include "executor/sandbox/ptrace_loop.h"
#include "executor/sandbox/ptrace_syscalls.h"

extern char** environ;

namespace kiln::sandbox {

#if defined(__x86_64__)

namespace {

using internal::Tracer;

// A root step keeps only the capabilities a container's root has by default (Docker's and runc's
// set), as in the other tiers: this tier has no namespaces, so without this a root step could load
// modules, reach raw devices, change the clock or open files by handle past the tracer's paths.
void DropToContainerCapabilities() {
  static const int kKept[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,     CAP_MKNOD,
                              CAP_NET_RAW, CAP_SETGID,      CAP_SETUID,           CAP_SETFCAP,    CAP_SETPCAP,
                              CAP_NET_BIND_SERVICE,         CAP_SYS_CHROOT,       CAP_KILL,       CAP_AUDIT_WRITE};
  for (int cap = 0; cap <= 63; ++cap) {
    if (std::find(std::begin(kKept), std::end(kKept), cap) != std::end(kKept)) continue;
    // EINVAL past the kernel's last capability: nothing more to drop.
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

// In the traced child: stop for the tracer, install the filter, go to the working directory and exec.
[[noreturn]] void TraceeMain(const TraceSpec& spec, const std::vector<sock_filter>& filter,
                             const std::vector<std::string>& candidates) {
  auto report = [&](internal::Stage stage, int err) {
    if (spec.report_fd < 0) return;
    internal::Report r{internal::ReportKind::kSetupFailed, stage, err, 0};
    while (::write(spec.report_fd, &r, sizeof r) < 0 && errno == EINTR) {
    }
  };
  if (::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) {
    ::dprintf(2, "kiln: ptrace sandbox: PTRACE_TRACEME: %s\n", ::strerror(errno));
    ::_exit(125);
  }
  // The tracer made itself non-dumpable before the fork; the step must be readable by it (its memory
  // and /proc/PID/cwd), so it becomes dumpable again, as any exec would make it.
  ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  ::raise(SIGSTOP);
  if (::geteuid() == 0) DropToContainerCapabilities();
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(125);
  sock_fprog prog{static_cast<unsigned short>(filter.size()), const_cast<sock_filter*>(filter.data())};
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    ::dprintf(2, "kiln: ptrace sandbox: installing the seccomp filter: %s\n", ::strerror(errno));
    ::_exit(125);
  }
  // Rewritten by the tracer: this is the guest path.
  if (::chdir(spec.workdir.c_str()) != 0) {
    int err = errno;
    report(internal::Stage::kChdir, err);
    ::dprintf(2, "kiln: RUN: working directory %s: %s\n", spec.workdir.c_str(), ::strerror(err));
    ::_exit(125);
  }
  std::vector<char*> argv;
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int err = ENOENT;
  for (const std::string& c : candidates) {
    ::execve(c.c_str(), argv.data(), environ);
    if (errno != ENOENT && errno != ENOTDIR) err = errno;
  }
  report(internal::Stage::kExec, err);
  if (spec.report_fd >= 0) ::_exit(125);
  if (err == ENOENT && spec.argv[0].find('/') == std::string::npos) {
    ::dprintf(2, "kiln: RUN: exec: \"%s\": executable file not found in $PATH\n", spec.argv[0].c_str());
    ::_exit(127);
  }
  ::dprintf(2, "kiln: RUN: exec: \"%s\": %s\n", spec.argv[0].c_str(), ::strerror(err));
  ::_exit(err == ENOENT ? 127 : 126);
}

constexpr long kTraceOptions = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACESECCOMP | PTRACE_O_TRACEFORK |
                               PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;

}  // namespace

bool PtraceSandboxSupported() { return true; }

Result<int> RunTraced(const TraceSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("ptrace sandbox: empty command");
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  std::vector<std::string> candidates = ExecCandidates(spec.argv[0], env);
  std::vector<sock_filter> filter = internal::BuildTraceFilter();
  // Only the step's failed exec may write to the report pipe; what the step runs must not inherit it.
  if (spec.report_fd >= 0) ::fcntl(spec.report_fd, F_SETFD, FD_CLOEXEC);
  // What kiln's memory holds must not be readable by the step, which runs as the same uid.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  pid_t child = ::fork();
  if (child < 0) return ErrnoStatus("ptrace sandbox: fork", errno);
  if (child == 0) TraceeMain(spec, filter, candidates);
  int st = 0;
  if (::waitpid(child, &st, 0) != child || !WIFSTOPPED(st)) {
    if (WIFEXITED(st) || WIFSIGNALED(st)) return st;  // TRACEME refused: the child said why
    return ErrnoStatus("ptrace sandbox: waiting for the step to stop", errno);
  }
  if (::ptrace(PTRACE_SETOPTIONS, child, nullptr, reinterpret_cast<void*>(kTraceOptions)) != 0) {
    int err = errno;
    ::kill(child, SIGKILL);
    return ErrnoStatus("ptrace sandbox: PTRACE_SETOPTIONS", err);
  }
  Tracer tracer(PathTranslator(spec.rootfs, {"/proc", "/dev", "/sys"}), child, spec.emulators);
  ::ptrace(PTRACE_CONT, child, nullptr, nullptr);
  return tracer.Loop();
}

std::string ProbePtraceSandbox() {
  // A child that stops, installs a filter tracing getppid, calls it and exits: the tracer must see
  // the seccomp stop and the exit.
  std::vector<sock_filter> f = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(f.size()), f.data()};
  pid_t child = ::fork();
  if (child < 0) return std::string("fork: ") + ::strerror(errno);
  if (child == 0) {
    if (::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) ::_exit(10);
    ::raise(SIGSTOP);
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(11);
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) ::_exit(12);
    ::syscall(SYS_getppid);
    ::_exit(0);
  }
  int st = 0;
  auto fail = [&](const std::string& why) {
    ::kill(child, SIGKILL);
    while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
    }
    return why;
  };
  if (::waitpid(child, &st, 0) != child) return fail("waitpid failed");
  if (WIFEXITED(st)) {
    int c = WEXITSTATUS(st);
    return c == 10 ? "ptrace(PTRACE_TRACEME) is refused (seccomp profile or Yama)" : "the probe exited early";
  }
  if (::ptrace(PTRACE_SETOPTIONS, child, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL)) != 0) {
    return fail(std::string("PTRACE_SETOPTIONS: ") + ::strerror(errno));
  }
  ::ptrace(PTRACE_CONT, child, nullptr, nullptr);
  bool saw_seccomp = false;
  for (;;) {
    if (::waitpid(child, &st, 0) != child) return fail("waitpid failed");
    if (WIFEXITED(st)) {
      int c = WEXITSTATUS(st);
      if (c == 11 || c == 12) return "installing a seccomp filter is refused";
      if (!saw_seccomp) return "seccomp did not stop the probe for its tracer";
      return "";
    }
    if (WIFSIGNALED(st)) return "the probe was killed by signal " + std::to_string(WTERMSIG(st));
    if ((st >> 16) == PTRACE_EVENT_SECCOMP) saw_seccomp = true;
    ::ptrace(PTRACE_CONT, child, nullptr, nullptr);
  }
}

#else  // !__x86_64__

bool PtraceSandboxSupported() { return false; }
Result<int> RunTraced(const TraceSpec&) { return Unsupported("the ptrace sandbox is implemented for x86_64 only"); }
std::string ProbePtraceSandbox() { return "the ptrace sandbox is implemented for x86_64 only"; }

#endif

}  // namespace kiln::sandbox
