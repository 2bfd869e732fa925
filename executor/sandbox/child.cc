// Everything here runs in a freshly forked child and must stay async-signal-safe: raw system calls,
// no allocation, no stdio, no C++ library calls that may lock.
//
// Tier 1 starts the supervisor with a raw clone(2), which glibc does not see: the child inherits
// glibc's "this process has threads" state and every lock another thread of kiln held at that
// instant (malloc arenas, stdio, the thread list). glibc's fork() would take those locks (and run
// atfork handlers), and its setuid/setgid/setgroups would try to signal threads that do not exist
// here, so both hang when kiln had a busy thread (a layer upload, another stage). The step is
// therefore forked with a raw clone too, and ids are changed with raw system calls, which act on
// the calling thread, the only one there is.
#include "executor/sandbox/child.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace kiln::sandbox::internal {
namespace {

void SendReport(const ChildPlan& plan, ReportKind kind, Stage stage, int err, int detail) {
  Report r{kind, stage, err, detail};
  // A short write is impossible for 16 bytes on a pipe (atomic below PIPE_BUF); retry EINTR only.
  while (::write(plan.report_fd, &r, sizeof r) < 0 && errno == EINTR) {
  }
}

[[noreturn]] void Fail(const ChildPlan& plan, Stage stage, int detail = 0) {
  SendReport(plan, ReportKind::kSetupFailed, stage, errno, detail);
  ::_exit(125);
}

// Closes every descriptor >= 3 except `keep` (close_range(2) when the kernel has it).
void CloseFdsExcept(int keep, int max_fd) {
  auto close_span = [max_fd](unsigned lo, unsigned hi) {
    if (lo > hi) return;
    if (::syscall(SYS_close_range, lo, hi, 0) == 0) return;
    unsigned stop = hi < static_cast<unsigned>(max_fd) ? hi : static_cast<unsigned>(max_fd);
    for (unsigned fd = lo; fd <= stop; ++fd) ::close(static_cast<int>(fd));
  };
  if (keep >= 3) {
    close_span(3, static_cast<unsigned>(keep) - 1);
    close_span(static_cast<unsigned>(keep) + 1, ~0U);
  } else {
    close_span(3, ~0U);
  }
}

// The supervisor is a copy of kiln, holding every descriptor kiln had open when it forked: other
// stages' pipes (whose readers would wait for its exit to see EOF), sockets of uploads. It keeps
// only the four it uses.
void CloseInheritedFds(const ChildPlan& plan) {
  int keep[4] = {plan.report_fd, plan.sync_fd, plan.out_fd, plan.stdin_fd};
  for (int i = 1; i < 4; ++i) {  // insertion sort, no allocation
    for (int j = i; j > 0 && keep[j] < keep[j - 1]; --j) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  }
  unsigned lo = 3;
  auto close_below = [&plan](unsigned from, unsigned to) {  // [from, to)
    if (from >= to) return;
    if (::syscall(SYS_close_range, from, to - 1, 0) == 0) return;
    unsigned stop = to < static_cast<unsigned>(plan.max_fd) ? to : static_cast<unsigned>(plan.max_fd);
    for (unsigned fd = from; fd < stop; ++fd) ::close(static_cast<int>(fd));
  };
  for (int fd : keep) {
    if (fd < static_cast<int>(lo)) continue;
    close_below(lo, static_cast<unsigned>(fd));
    lo = static_cast<unsigned>(fd) + 1;
  }
  close_below(lo, ~0U);
}

// kiln may ignore SIGPIPE or block signals; ignored dispositions and the mask survive execve, and a
// step must start with the defaults, as under Docker.
void ResetSignals() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &sa, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

void Mkdir(const char* path, mode_t mode) {
  if (::mkdir(path, mode) == 0) ::chmod(path, mode);  // mode without the umask
}

// The proc of a pid namespace still shows the host's kernel settings, and a step whose root is the
// host's root (kiln as root, identity mapping) may write them: kernel.core_pattern would run a
// program of its choosing as the host's root. As runc does, they are made read-only. No allocation
// (we are a forked child): the paths are assembled on the stack.
void ReadOnlyKernelSettings(const ChildPlan& plan) {
  static const char* const kReadOnly[] = {"/sys", "/sysrq-trigger", "/irq", "/bus", "/fs"};
  char path[PATH_MAX];
  size_t base = std::strlen(plan.proc_target);
  for (const char* sub : kReadOnly) {
    size_t n = std::strlen(sub);
    if (base + n + 1 > sizeof path) Fail(plan, Stage::kMountProc);
    std::memcpy(path, plan.proc_target, base);
    std::memcpy(path + base, sub, n + 1);
    if (::mount(path, path, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      if (errno == ENOENT) continue;  // not in this kernel
      Fail(plan, Stage::kMountProc);
    }
    if (::mount(nullptr, path, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                nullptr) != 0) {
      Fail(plan, Stage::kMountProc);
    }
  }
}

// Builds the tier 1 view of the rootfs in our private mount namespace and makes it our root.
void SetUpTier1(const ChildPlan& plan) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Fail(plan, Stage::kMakePrivate);
  // pivot_root needs the new root to be a mount point.
  if (::mount(plan.rootfs, plan.rootfs, nullptr, MS_BIND | MS_REC, nullptr) != 0) Fail(plan, Stage::kBindRootfs);
  // A new pid namespace needs its own proc; the host's would show (and expose) kiln's processes.
  if (::mount("proc", plan.proc_target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    Fail(plan, Stage::kMountProc);
  }
  ReadOnlyKernelSettings(plan);
  if (::mount("tmpfs", plan.dev_target, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") != 0) {
    Fail(plan, Stage::kMountDev);
  }
  // /dev/pts and /dev/shm are conveniences; a kernel that refuses them still runs most steps.
  Mkdir(plan.devpts_target, 0755);
  ::mount("devpts", plan.devpts_target, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
  Mkdir(plan.devshm_target, 01777);
  ::mount("shm", plan.devshm_target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  for (const char* const* l = plan.dev_links; l && l[0]; l += 2) ::symlink(l[0], l[1]);

  for (size_t i = 0; i < plan.num_binds; ++i) {
    const BindMount& b = plan.binds[i];
    if (b.create_file) {
      int fd = ::open(b.target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
      if (fd < 0) Fail(plan, Stage::kDevNode, static_cast<int>(i));
      ::close(fd);
    }
    if (b.tmpfs_options != nullptr) {
      if (::mount("tmpfs", b.target, "tmpfs", MS_NOSUID | MS_NODEV, b.tmpfs_options) != 0) {
        Fail(plan, Stage::kStepMount, static_cast<int>(i));
      }
      continue;
    }
    if (::mount(b.source, b.target, nullptr, MS_BIND, nullptr) != 0) {
      Fail(plan, b.step_mount ? Stage::kStepMount : Stage::kBindFile, static_cast<int>(i));
    }
    if (b.read_only) {
      // kiln's own binds are private copies, so a writable one exposes nothing; a RUN --mount's
      // read-only must hold.
      if (::mount(nullptr, b.target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | b.locked_flags, nullptr) != 0 &&
          b.step_mount) {
        Fail(plan, Stage::kStepMountReadOnly, static_cast<int>(i));
      }
    }
  }

  if (plan.net_none) {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    std::memset(&ifr, 0, sizeof ifr);
    std::memcpy(ifr.ifr_name, "lo", 3);
    if (s < 0 || ::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) Fail(plan, Stage::kLoopback);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) Fail(plan, Stage::kLoopback);
    ::close(s);
  }
  if (plan.hostname_len > 0 && ::sethostname(plan.hostname, plan.hostname_len) != 0) Fail(plan, Stage::kHostname);

  // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves no path back to
  // the host's filesystem (chroot alone could be escaped by a root step).
  if (::chdir(plan.rootfs) != 0) Fail(plan, Stage::kPivotRoot);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) Fail(plan, Stage::kPivotRoot);
  if (::umount2(".", MNT_DETACH) != 0) Fail(plan, Stage::kPivotRoot);
  if (::chdir("/") != 0) Fail(plan, Stage::kPivotRoot);
}

[[noreturn]] void ProbeTier1(const ChildPlan& plan) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Fail(plan, Stage::kMakePrivate);
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    Fail(plan, Stage::kProbeMountProc);
  }
  if (::mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=755,size=64k") != 0) Fail(plan, Stage::kProbeMountTmpfs);
  SendReport(plan, ReportKind::kProbeOk, Stage::kSync, 0, 0);
  ::_exit(0);
}

// The supervisor is a copy of kiln's memory, credentials included: non-dumpable, neither /proc/PID/mem
// nor ptrace lets the step read it. Only after the id maps are in place: non-dumpable makes
// /proc/PID/uid_map root-owned, and an unprivileged kiln could no longer write it.
void MakeUnreadable() { ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

bool DropBoundingCap(int cap) { return ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0; }

[[noreturn]] void StepMain(const ChildPlan& plan) {
  // Its own session and process group: no controlling terminal, and one kill(-pgid) ends it.
  if (::setsid() < 0) Fail(plan, Stage::kSetsid);
  ::dup2(plan.stdin_fd, 0);
  ::dup2(plan.out_fd, 1);
  ::dup2(plan.out_fd, 2);
  CloseFdsExcept(plan.report_fd, plan.max_fd);
  ResetSignals();
  if (plan.tier == 3) {
    // The tracer reports exec and working-directory failures on fd 3, as this child would.
    if (plan.report_fd == 3) {
      ::fcntl(3, F_SETFD, 0);
    } else if (::dup2(plan.report_fd, 3) != 3) {
      Fail(plan, Stage::kExec);
    }
  }

  if (plan.tier == 2) {
    if (::chroot(plan.rootfs) != 0) Fail(plan, Stage::kChroot);
    if (::chdir("/") != 0) Fail(plan, Stage::kChroot);
    // A root step holding CAP_SYS_CHROOT can leave a plain chroot (chroot into a subdirectory, then
    // walk up past the old root). Without a mount namespace the only defence is to take the
    // capability away before the step starts.
    if (plan.drop_sys_chroot && !DropBoundingCap(CAP_SYS_CHROOT)) Fail(plan, Stage::kDropCap);
  }
  if (plan.change_ids) {
    // Raw system calls: see the top of this file.
    if (plan.set_groups && ::syscall(SYS_setgroups, plan.num_groups, plan.groups) != 0) Fail(plan, Stage::kSetgroups);
    if (::syscall(SYS_setgid, plan.gid) != 0) Fail(plan, Stage::kSetgid);
    if (::syscall(SYS_setuid, plan.uid) != 0) Fail(plan, Stage::kSetuid);
  }
  if (::chdir(plan.workdir) != 0) Fail(plan, Stage::kChdir);

  int exec_err = ENOENT;
  for (const char* const* c = plan.exec_candidates; c && *c; ++c) {
    ::execve(*c, plan.argv, plan.envp);
    // Like execvp: remember a more telling error than "not found" from a later PATH entry.
    if (errno != ENOENT && errno != ENOTDIR) exec_err = errno;
  }
  errno = exec_err;
  Fail(plan, Stage::kExec);
}

}  // namespace

unsigned long Tier1CloneFlags(const ChildPlan& plan) {
  unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (plan.net_none) flags |= CLONE_NEWNET;
  return flags;
}

pid_t CloneWithFlags(unsigned long flags) {
  // The raw system call with a null stack behaves like fork (the child continues on a copy of our
  // stack) while taking namespace flags; the child becomes pid 1 of a new pid namespace directly.
  return static_cast<pid_t>(::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

namespace {

volatile sig_atomic_t g_step = 0;

void KillStepGroup(int) {
  if (g_step > 0) {
    ::kill(-g_step, SIGKILL);
    ::kill(g_step, SIGKILL);
  }
}

}  // namespace

void SupervisorMain(const ChildPlan& plan) {
  // If kiln dies, the step must not outlive it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  CloseInheritedFds(plan);

  if (plan.tier == 1) {
    char go = 0;
    ssize_t n;
    while ((n = ::read(plan.sync_fd, &go, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) {
      errno = EPIPE;
      Fail(plan, Stage::kSync);
    }
    ::close(plan.sync_fd);
    MakeUnreadable();
    if (plan.probe) ProbeTier1(plan);
    SetUpTier1(plan);
  } else {
    MakeUnreadable();
    // Orphans of the step are re-parented to us, so they can be reaped (and are not left as zombies).
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  }

  pid_t step = CloneWithFlags(0);  // a raw fork: see the top of this file
  if (step < 0) Fail(plan, Stage::kForkStep);
  if (step == 0) StepMain(plan);
  ::close(plan.out_fd);
  if (plan.tier != 1) {
    // kiln stopping (core/stop_signals.h) sends us SIGTERM: end the step's process group now; the
    // loop below then reaps it as usual. (Tier 1 is sent SIGKILL: the pid namespace ends with us.)
    g_step = step;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = KillStepGroup;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
  }

  int status = 0;
  for (;;) {
    int st = 0;
    pid_t p = ::waitpid(-1, &st, 0);
    if (p == step) {
      status = st;
      break;
    }
    if (p < 0 && errno != EINTR) break;
  }
  if (plan.tier != 1) {
    // Without a pid namespace nothing ends the step's background processes for us.
    ::kill(-step, SIGKILL);
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 20;) {
      pid_t r = ::waitpid(-1, nullptr, WNOHANG);
      if (r > 0) continue;
      if (r < 0 && errno != EINTR) break;  // ECHILD: nothing left
      ::nanosleep(&pause, nullptr);        // left the process group (setsid): give up after 200 ms
      ++i;
    }
  }
  // In tier 1 our exit makes the kernel kill everything left in the pid namespace.
  SendReport(plan, ReportKind::kExited, Stage::kSync, 0, status);
  ::_exit(0);
}

}  // namespace kiln::sandbox::internal
