// The system calls the ptrace sandbox watches (x86_64): which arguments are paths, relative to which
// directory descriptor, whether they follow a final symlink, and what must be fixed when they return;
// and the seccomp filter that stops the step at each of them. Internal to the sandbox.
#pragma once

#if defined(__x86_64__)

#include <linux/filter.h>

#include <cstdint>
#include <vector>

namespace kiln::sandbox::internal {

enum class FollowRule : uint8_t {
  kAlways,
  kNever,
  kUnlessFlag,  // follows unless (arg[flag_reg] & flag) (AT_SYMLINK_NOFOLLOW)
  kIfFlag,      // follows only if (arg[flag_reg] & flag) (AT_SYMLINK_FOLLOW)
  kOpenFlags,   // open flags in arg[flag_reg]: not with O_NOFOLLOW or O_CREAT|O_EXCL
};

struct PathArg {
  int8_t path_reg = -1;   // argument index of the path pointer
  int8_t dirfd_reg = -1;  // argument index of the directory fd; -1: relative to the cwd
  FollowRule follow = FollowRule::kAlways;
  int8_t flag_reg = -1;
  uint64_t flag = 0;
};

/// What the tracer rewrites in a call's result: getcwd's buffer, readlink's buffer (for /proc links).
enum class ExitFix : uint8_t { kNone, kGetcwd, kReadlink };

struct SyscallRule {
  long nr;
  PathArg paths[2];
  ExitFix exit = ExitFix::kNone;
  int8_t buf_reg = -1, size_reg = -1;  // for the exit fixes
};

/// The rule for system call `nr`, or nullptr when the tracer leaves it alone.
const SyscallRule* FindSyscallRule(long nr);

/// The step's seccomp filter: SECCOMP_RET_TRACE for every call with a rule, ENOSYS for the calls
/// that would reach host paths unseen (openat2, execveat, io_uring, file handles) and for non-x86_64
/// entry points, a no-op prctl(PR_SET_DUMPABLE), ALLOW for the rest.
std::vector<sock_filter> BuildTraceFilter();

}  // namespace kiln::sandbox::internal

#endif  // __x86_64__
