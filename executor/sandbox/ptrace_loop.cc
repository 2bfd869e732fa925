// The tracer's event loop and its path rewriting. Everything here runs in a single-threaded process
// (the sandbox execs `kiln sandbox-trace` for every step).
#include "executor/sandbox/ptrace_loop.h"

#if defined(__x86_64__)

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace kiln::sandbox::internal {

namespace {

// /proc and /sys are the host's own in this tier (no namespaces): a step running as root could
// change the host's sysctls (kernel.core_pattern runs a program as the host's root) or trigger
// sysrq. Opening them for writing, creating or truncating there is refused as on a read-only /proc.
bool WritesKernelSettings(long nr, const PathArg& pa, uint64_t flags, const std::string& host) {
  auto under = [&host](std::string_view dir) {
    return host.compare(0, dir.size(), dir) == 0 && (host.size() == dir.size() || host[dir.size()] == '/');
  };
  if (!under("/proc/sys") && !under("/sys") && host != "/proc/sysrq-trigger") return false;
  if (nr == SYS_creat || nr == SYS_truncate) return true;
  if (pa.follow != FollowRule::kOpenFlags) return false;
  return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) != 0;
}

std::optional<std::string> ReadLink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

std::optional<std::string> Tracer::ReadPath(pid_t tid, uint64_t addr) { return internal::ReadString(tid, addr, PATH_MAX); }

Tracer::Dir Tracer::GuestDir(pid_t tid, long dirfd) {
  std::string link = "/proc/" + std::to_string(tid) + (dirfd == AT_FDCWD ? std::string("/cwd") : "/fd/" + std::to_string(dirfd));
  Dir d;
  std::optional<std::string> host = ReadLink(link);
  if (!host) {
    // No such descriptor: the kernel answers EBADF itself. Anything else: refuse, never guess.
    d.error = errno == ENOENT && dirfd != AT_FDCWD ? 0 : EACCES;
    return d;
  }
  if (host->empty() || (*host)[0] != '/') return d;  // a pipe, socket...: the kernel answers ENOTDIR
  std::optional<std::string> guest = tr_.ToGuest(*host);
  if (!guest) {
    d.error = EACCES;  // a host directory the step should not be able to name
    return d;
  }
  d.guest = std::move(*guest);
  return d;
}

pid_t Tracer::TgidOf(pid_t tid) {
  FILE* f = ::fopen(("/proc/" + std::to_string(tid) + "/status").c_str(), "re");
  if (!f) return tid;
  char line[256];
  pid_t tgid = tid;
  while (::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "Tgid:", 5) == 0) {
      tgid = static_cast<pid_t>(std::atoi(line + 5));
      break;
    }
  }
  ::fclose(f);
  return tgid;
}

void Tracer::Fail(pid_t tid, ThreadState& t, user_regs_struct regs, int err) {
  t.saved = regs;
  t.fail_errno = err;
  t.pending = ThreadState::Pending::kRestore;
  regs.orig_rax = static_cast<uint64_t>(-1);  // skip the call
  SetRegs(tid, regs);
  ResumeToExit(tid);
}

void Tracer::OnSeccompStop(pid_t tid) {
  ThreadState& t = threads_[tid];
  user_regs_struct regs;
  if (!GetRegs(tid, &regs)) return;
  long nr = static_cast<long>(regs.orig_rax);
  const internal::SyscallRule* rule = internal::FindSyscallRule(nr);
  if (rule == nullptr) {
    Resume(tid);
    return;
  }
  if (t.scratch == 0 && !t.scratch_failed) {
    // First rewrite in this thread: map a scratch area by running mmap in place of this call, then
    // rerun the call (the instruction pointer goes back over the 2-byte `syscall`).
    t.saved = regs;
    t.pending = ThreadState::Pending::kInject;
    user_regs_struct m = regs;
    m.orig_rax = SYS_mmap;
    m.rdi = 0;
    m.rsi = kScratchSize;
    m.rdx = PROT_READ | PROT_WRITE;
    m.r10 = MAP_PRIVATE | MAP_ANONYMOUS;
    m.r8 = static_cast<uint64_t>(-1);
    m.r9 = 0;
    SetRegs(tid, m);
    ResumeToExit(tid);
    return;
  }
  if (t.scratch_failed) {
    Fail(tid, t, regs, ENOMEM);
    return;
  }

  user_regs_struct changed = regs;
  ScratchWriter w(t.scratch);
  t.fix = rule->exit;
  t.buf_reg = rule->buf_reg;
  t.size_reg = rule->size_reg;
  t.fix_path.clear();
  if (nr == SYS_execve) {
    int err = 0;
    if (!HandleExecve(tid, t, changed, w, &err)) {
      if (err != 0) {
        Fail(tid, t, regs, err);
      } else {
        Resume(tid);
      }
      return;
    }
  } else {
    for (const PathArg& pa : rule->paths) {
      if (pa.path_reg < 0) continue;
      uint64_t ptr = Arg(regs, pa.path_reg);
      if (ptr == 0) continue;  // e.g. utimensat(fd, NULL, ...): the fd itself
      std::optional<std::string> path = ReadPath(tid, ptr);
      if (!path) {
        Fail(tid, t, regs, EFAULT);  // unreadable or too long: never pass it on untranslated
        return;
      }
      if (path->empty()) continue;  // AT_EMPTY_PATH (the fd itself) or ENOENT: the kernel decides
      std::string dir = "/";
      if ((*path)[0] != '/') {
        long dirfd = pa.dirfd_reg >= 0 ? static_cast<long>(static_cast<int>(Arg(regs, pa.dirfd_reg))) : AT_FDCWD;
        Dir g = GuestDir(tid, dirfd);
        if (g.error != 0) {
          Fail(tid, t, regs, g.error);
          return;
        }
        if (!g.guest) continue;  // not a directory or no such fd: the kernel reports that itself
        dir = *g.guest;
      }
      bool follow = true;
      uint64_t flags = pa.flag_reg >= 0 ? Arg(regs, pa.flag_reg) : 0;
      switch (pa.follow) {
        case FollowRule::kAlways: follow = true; break;
        case FollowRule::kNever: follow = false; break;
        case FollowRule::kUnlessFlag: follow = (flags & pa.flag) == 0; break;
        case FollowRule::kIfFlag: follow = (flags & pa.flag) != 0; break;
        case FollowRule::kOpenFlags:
          follow = (flags & O_NOFOLLOW) == 0 && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
          break;
      }
      PathTranslator::Translated h = tr_.ToHost(dir, *path, follow ? PathTranslator::Follow::kYes : PathTranslator::Follow::kNo);
      if (h.error == 0 && WritesKernelSettings(nr, pa, flags, h.host)) h.error = EROFS;
      if (h.error != 0) {
        Fail(tid, t, regs, h.error);
        return;
      }
      if (rule->exit == ExitFix::kReadlink) t.fix_path = h.host;
      Arg(changed, pa.path_reg) = w.AddString(h.host);
    }
  }
  if (!w.Flush(tid)) {
    Fail(tid, t, regs, ENAMETOOLONG);
    return;
  }
  t.saved = regs;
  // A successful execve never comes back here: the exec event starts the thread's state afresh.
  t.pending = ThreadState::Pending::kRestore;
  SetRegs(tid, changed);
  ResumeToExit(tid);
}

void Tracer::OnSyscallExit(pid_t tid) {
  ThreadState& t = threads_[tid];
  user_regs_struct regs;
  if (!GetRegs(tid, &regs)) return;
  switch (t.pending) {
    case ThreadState::Pending::kNone:
      break;
    case ThreadState::Pending::kInject: {
      int64_t rv = static_cast<int64_t>(regs.rax);
      if (rv < 0 && rv > -4096) {
        t.scratch_failed = true;
      } else {
        t.scratch = regs.rax;
      }
      user_regs_struct again = t.saved;
      again.rip -= 2;
      again.rax = t.saved.orig_rax;
      t.pending = ThreadState::Pending::kNone;
      SetRegs(tid, again);
      break;
    }
    case ThreadState::Pending::kRestore: {
      user_regs_struct out = t.saved;
      out.rax = regs.rax;
      if (t.fail_errno != 0) out.rax = static_cast<uint64_t>(-static_cast<int64_t>(t.fail_errno));
      int64_t rv = static_cast<int64_t>(out.rax);
      if (t.fail_errno == 0 && rv > 0 && t.fix == ExitFix::kGetcwd) {
        uint64_t buf = Arg(out, t.buf_reg), size = Arg(out, t.size_reg);
        std::optional<std::string> host = ReadPath(tid, buf);
        std::optional<std::string> guest = host ? tr_.ToGuest(*host) : std::nullopt;
        if (guest) {
          if (guest->size() + 1 > size) {
            out.rax = static_cast<uint64_t>(-ERANGE);
          } else if (WriteMemory(tid, buf, guest->c_str(), guest->size() + 1)) {
            out.rax = guest->size() + 1;
          }
        }
      } else if (t.fail_errno == 0 && rv > 0 && t.fix == ExitFix::kReadlink && t.fix_path.rfind("/proc/", 0) == 0) {
        // Magic links of /proc name host paths; the step should see its own.
        uint64_t buf = Arg(out, t.buf_reg), size = Arg(out, t.size_reg);
        std::string got(static_cast<size_t>(rv), '\0');
        std::optional<std::string> guest;
        size_t slash = t.fix_path.find('/', 6);
        std::string pid = t.fix_path.substr(6, slash == std::string::npos ? std::string::npos : slash - 6);
        if (slash != std::string::npos && t.fix_path.compare(slash, std::string::npos, "/exe") == 0) {
          pid_t p = pid == "self" ? TgidOf(tid) : static_cast<pid_t>(std::atoi(pid.c_str()));
          auto it = exe_.find(p);
          if (it != exe_.end()) guest = it->second;
        }
        if (!guest && ReadMemory(tid, buf, got.data(), got.size())) guest = tr_.ToGuest(got);
        if (guest) {
          size_t n = std::min<size_t>(guest->size(), size);
          if (WriteMemory(tid, buf, guest->data(), n)) out.rax = n;
        }
      }
      t.pending = ThreadState::Pending::kNone;
      t.fail_errno = 0;
      SetRegs(tid, out);
      break;
    }
  }
  Resume(tid);
}

Result<int> Tracer::Loop() {
  int first_status = -1;
  for (;;) {
    int st = 0;
    pid_t tid = ::waitpid(-1, &st, __WALL);
    if (tid < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) break;
      return ErrnoStatus("ptrace sandbox: waiting for the step", errno);
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      threads_.erase(tid);
      exe_.erase(tid);
      started_.erase(tid);  // a pid the kernel hands out again is no longer the step's
      if (tid == first_) {
        first_status = st;
        break;  // the rest is killed when we exit (PTRACE_O_EXITKILL)
      }
      continue;
    }
    if (!WIFSTOPPED(st)) continue;
    int sig = WSTOPSIG(st);
    int event = st >> 16;
    if (sig == (SIGTRAP | 0x80)) {
      OnSyscallExit(tid);
    } else if (event == PTRACE_EVENT_SECCOMP) {
      OnSeccompStop(tid);
    } else if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK || event == PTRACE_EVENT_CLONE) {
      unsigned long child = 0;
      ::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &child);
      ThreadState& c = threads_[static_cast<pid_t>(child)];
      // A forked copy has the parent's scratch area at the same address; a thread needs its own.
      if (event != PTRACE_EVENT_CLONE) c.scratch = threads_[tid].scratch;
      auto exe = exe_.find(tid);
      if (event != PTRACE_EVENT_CLONE && exe != exe_.end()) exe_[static_cast<pid_t>(child)] = exe->second;
      Resume(tid);
    } else if (event == PTRACE_EVENT_EXEC) {
      unsigned long former = 0;
      ::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &former);
      ThreadState moved = std::move(threads_[static_cast<pid_t>(former)]);
      if (static_cast<pid_t>(former) != tid) threads_.erase(static_cast<pid_t>(former));
      exe_[tid] = moved.exec_guest;
      threads_[tid] = ThreadState{};  // a new address space: no scratch area yet, nothing to restore
      started_.insert(tid);
      Resume(tid);  // PTRACE_CONT: the execve's exit stop is not needed
    } else if (!started_.count(tid)) {
      // The first stop of a new process or thread is the SIGSTOP it is born with: not the step's.
      started_.insert(tid);
      Resume(tid, sig == SIGSTOP ? 0 : sig);
    } else {
      siginfo_t si;
      // A group stop (no siginfo) is resumed; a signal is delivered as sent.
      if (::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &si) != 0) {
        Resume(tid);
      } else {
        Resume(tid, sig);
      }
    }
  }
  if (first_status < 0) return InternalError("ptrace sandbox: the step vanished without an exit status");
  return first_status;
}

}  // namespace kiln::sandbox::internal

#endif  // __x86_64__
