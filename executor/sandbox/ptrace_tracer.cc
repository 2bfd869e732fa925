// The tracer of the ptrace sandbox. Everything here runs in a single-threaded process (the sandbox
// execs `kiln sandbox-trace` for every step), so ordinary C++ is fine, including after fork in the
// tracer itself (only the traced child is restricted, and it only calls a few raw functions).
#include "executor/sandbox/ptrace_tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "executor/sandbox/child.h"
#include "executor/sandbox/command_runner.h"
#include "executor/sandbox/exec_target.h"
#include "executor/sandbox/path_translator.h"
#include "executor/sandbox/ptrace_syscalls.h"
#include "executor/sandbox/tracee_memory.h"

extern char** environ;

namespace kiln::sandbox {

#if defined(__x86_64__)

namespace {

using internal::Arg;
using internal::ExitFix;
using internal::FollowRule;
using internal::GetRegs;
using internal::kScratchSize;
using internal::PathArg;
using internal::ReadMemory;
using internal::ScratchWriter;
using internal::SetRegs;
using internal::WriteMemory;

constexpr int kMaxInterpreterDepth = 4;  // #! chains, as the kernel allows

std::optional<std::string> ReadString(pid_t tid, uint64_t addr) { return internal::ReadString(tid, addr, PATH_MAX); }

std::optional<std::string> ReadLink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

struct ThreadState {
  uint64_t scratch = 0;
  bool scratch_failed = false;
  enum class Pending : uint8_t { kNone, kInject, kRestore } pending = Pending::kNone;
  user_regs_struct saved{};   // registers as the step set them, restored at syscall exit
  int fail_errno = 0;         // make the call fail with this errno (the call itself was skipped)
  ExitFix fix = ExitFix::kNone;
  int8_t buf_reg = -1, size_reg = -1;
  std::string fix_path;       // readlink: the host path that was read
  std::string exec_guest;     // execve: the program's guest path, for /proc/self/exe
};

class Tracer {
 public:
  Tracer(PathTranslator translator, pid_t first) : tr_(std::move(translator)), first_(first) {
    started_.insert(first);
    // Only the step's own processes are open to it under /proc (see PathTranslator::SetOwnProcess).
    tr_.SetOwnProcess([this](std::string_view pid) {
      pid_t p = 0;
      for (char c : pid) p = p * 10 + (c - '0');
      return started_.count(p) > 0 || threads_.count(p) > 0;
    });
  }

  // Runs until the first process exits; returns its wait status.
  Result<int> Loop();

 private:
  void OnSeccompStop(pid_t tid);
  void OnSyscallExit(pid_t tid);
  void Resume(pid_t tid, int sig = 0) { ::ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig))); }
  void ResumeToExit(pid_t tid) { ::ptrace(PTRACE_SYSCALL, tid, nullptr, nullptr); }
  // Makes the call at this seccomp stop fail with `err` (skipped; errno set at its exit).
  void Fail(pid_t tid, ThreadState& t, user_regs_struct regs, int err);
  // The guest path of a directory the step holds (its cwd for AT_FDCWD, else a descriptor).
  struct Dir {
    std::optional<std::string> guest;
    int error = 0;  // fail the call with this (the directory cannot be placed in the rootfs)
  };
  Dir GuestDir(pid_t tid, long dirfd);
  bool HandleExecve(pid_t tid, ThreadState& t, user_regs_struct& regs, ScratchWriter& w, int* err);
  pid_t TgidOf(pid_t tid);

  PathTranslator tr_;
  pid_t first_;
  std::unordered_map<pid_t, ThreadState> threads_;
  std::unordered_map<pid_t, std::string> exe_;  // tgid → guest path of the program it runs
  std::unordered_set<pid_t> started_;            // processes and threads past their first stop
  std::unordered_map<std::string, bool> loader_takes_argv0_;  // host path of an ld.so → knows --argv0
};

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

bool Tracer::HandleExecve(pid_t tid, ThreadState& t, user_regs_struct& regs, ScratchWriter& w, int* err) {
  std::optional<std::string> path = ReadString(tid, regs.rdi);
  if (!path) {
    *err = EFAULT;  // never let an execve through untranslated
    return false;
  }
  std::string dir = "/";
  if (path->empty() || (*path)[0] != '/') {
    Dir cwd = GuestDir(tid, AT_FDCWD);
    if (!cwd.guest) {
      *err = cwd.error != 0 ? cwd.error : EACCES;
      return false;
    }
    dir = *cwd.guest;
  }
  // The argument vector, as pointers into the step's memory (new strings go to the scratch area).
  struct ArgvEntry {
    uint64_t ptr = 0;
    std::string text;  // used when ptr == 0
  };
  std::vector<ArgvEntry> args;
  bool rewritten = false;
  auto load_args = [&]() -> bool {
    for (uint64_t p = regs.rsi; p != 0; p += 8) {
      uint64_t v = 0;
      if (!ReadMemory(tid, p, &v, sizeof v)) return false;
      if (v == 0) break;
      args.push_back(ArgvEntry{v, {}});
      if (args.size() > (kScratchSize / 16)) return false;
    }
    return true;
  };

  std::string prog = *path;
  if (prog.rfind("/proc/", 0) == 0) {
    // Re-executing itself: the program, not the loader the kernel knows it by.
    pid_t tgid = TgidOf(tid);
    if (prog == "/proc/self/exe" || prog == "/proc/" + std::to_string(tgid) + "/exe") {
      auto it = exe_.find(tgid);
      if (it != exe_.end()) prog = it->second;
    }
  }
  PathTranslator::Translated host = tr_.ToHost(dir, prog, PathTranslator::Follow::kYes);
  if (host.error != 0) {
    *err = host.error;
    return false;
  }
  std::string prog_host = host.host;  // where `prog` is on the host, for /proc/self/exe
  for (int depth = 0;; ++depth) {
    // The kernel checks execute permission before it looks at the content; so do we, so that a
    // non-executable file fails with EACCES rather than run through an interpreter.
    if (::access(host.host.c_str(), X_OK) != 0) break;
    std::optional<internal::ExecTarget> target = internal::InspectExecutable(host.host);
    if (!target || target->interpreter.empty()) break;  // static, unknown or unreadable: the kernel runs it
    if (!rewritten) {
      if (!load_args()) break;
      rewritten = true;
    }
    if (target->script) {
      if (depth >= kMaxInterpreterDepth) {
        *err = ELOOP;
        return false;
      }
      // As the kernel does: interpreter [arg] script-path-as-given remaining-args (argv[0] is dropped).
      std::vector<ArgvEntry> next;
      next.push_back(ArgvEntry{0, target->interpreter});
      if (!target->script_arg.empty()) next.push_back(ArgvEntry{0, target->script_arg});
      next.push_back(ArgvEntry{0, prog});
      for (size_t i = 1; i < args.size(); ++i) next.push_back(args[i]);
      args = std::move(next);
      prog = target->interpreter;
      host = tr_.ToHost(dir, prog, PathTranslator::Follow::kYes);
      if (host.error != 0) {
        *err = host.error;
        return false;
      }
      prog_host = host.host;
      continue;
    }
    // A dynamic ELF: run the image's own loader on it. glibc's ld.so (2.33 and later) and musl's take
    // --argv0; older loaders get the program path as argv[0].
    PathTranslator::Translated loader = tr_.ToHost(dir, target->interpreter, PathTranslator::Follow::kYes);
    if (loader.error != 0 || ::access(loader.host.c_str(), X_OK) != 0) break;  // let the kernel say ENOENT
    auto known = loader_takes_argv0_.find(loader.host);
    if (known == loader_takes_argv0_.end()) {
      bool found = false;
      if (FILE* f = ::fopen(loader.host.c_str(), "re")) {
        std::string body;
        char buf[65536];
        size_t n;
        while ((n = ::fread(buf, 1, sizeof buf, f)) > 0) body.append(buf, n);
        ::fclose(f);
        found = body.find("--argv0") != std::string::npos;
      }
      known = loader_takes_argv0_.emplace(loader.host, found).first;
    }
    std::vector<ArgvEntry> next;
    next.push_back(ArgvEntry{0, target->interpreter});
    if (known->second && !args.empty()) {
      next.push_back(ArgvEntry{0, "--argv0"});
      next.push_back(args[0]);
    }
    next.push_back(ArgvEntry{0, prog});
    for (size_t i = 1; i < args.size(); ++i) next.push_back(args[i]);
    args = std::move(next);
    host = loader;
    break;
  }
  t.exec_guest = tr_.ToGuest(prog_host).value_or(prog);
  regs.rdi = w.AddString(host.host);
  if (rewritten) {
    std::vector<uint64_t> ptrs;
    for (const ArgvEntry& a : args) ptrs.push_back(a.ptr != 0 ? a.ptr : w.AddString(a.text));
    ptrs.push_back(0);
    regs.rsi = w.AddPointers(ptrs);
  }
  return true;
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
      std::optional<std::string> path = ReadString(tid, ptr);
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
        std::optional<std::string> host = ReadString(tid, buf);
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
  Tracer tracer(PathTranslator(spec.rootfs, {"/proc", "/dev", "/sys"}), child);
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
