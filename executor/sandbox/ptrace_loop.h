// The tracer of the ptrace sandbox: the per-thread state and the event loop that answers the step's
// seccomp stops (path rewriting, ptrace_loop.cc; execve rewriting, ptrace_execve.cc). Internal to the
// sandbox; RunTraced (ptrace_tracer.h) starts the step and runs the loop. Single-threaded.
#pragma once

#if defined(__x86_64__)

#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/status.h"
#include "executor/sandbox/path_translator.h"
#include "executor/sandbox/ptrace_syscalls.h"
#include "executor/sandbox/tracee_memory.h"

namespace kiln::sandbox::internal {

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
  // `emulators`: TraceSpec::emulators.
  Tracer(PathTranslator translator, pid_t first, std::map<std::string, std::string> emulators = {})
      : tr_(std::move(translator)), first_(first), emulators_(std::move(emulators)) {
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
  // Rewrites the execve at this seccomp stop in `regs` (ptrace_execve.cc). False: do not run the
  // rewritten call; `*err` is then the errno to fail it with, or 0 to let the kernel run it as is.
  bool HandleExecve(pid_t tid, ThreadState& t, user_regs_struct& regs, ScratchWriter& w, int* err);
  pid_t TgidOf(pid_t tid);
  // A path argument: a NUL-terminated string of at most PATH_MAX bytes in the step's memory.
  static std::optional<std::string> ReadPath(pid_t tid, uint64_t addr);

  PathTranslator tr_;
  pid_t first_;
  std::map<std::string, std::string> emulators_;  // ELF machine → host path of a static qemu-user
  std::unordered_map<pid_t, ThreadState> threads_;
  std::unordered_map<pid_t, std::string> exe_;  // tgid → guest path of the program it runs
  std::unordered_set<pid_t> started_;            // processes and threads past their first stop
  std::unordered_map<std::string, bool> loader_takes_argv0_;  // host path of an ld.so → knows --argv0
};

}  // namespace kiln::sandbox::internal

#endif  // __x86_64__
