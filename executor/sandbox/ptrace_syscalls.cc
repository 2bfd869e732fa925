#include "executor/sandbox/ptrace_syscalls.h"

#if defined(__x86_64__)

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

namespace kiln::sandbox::internal {
namespace {

// Newer than Debian 12's headers.
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

constexpr PathArg P(int reg, FollowRule f = FollowRule::kAlways) { return PathArg{int8_t(reg), -1, f, -1, 0}; }
constexpr PathArg D(int dreg, int reg, FollowRule f = FollowRule::kAlways, int freg = -1, uint64_t flag = 0) {
  return PathArg{int8_t(reg), int8_t(dreg), f, int8_t(freg), flag};
}
constexpr auto kNo = FollowRule::kNever;
constexpr auto kUnless = FollowRule::kUnlessFlag;

const SyscallRule kRules[] = {
    {SYS_open, {PathArg{0, -1, FollowRule::kOpenFlags, 1, 0}}},
    {SYS_creat, {P(0)}},
    {SYS_openat, {PathArg{1, 0, FollowRule::kOpenFlags, 2, 0}}},
    {SYS_stat, {P(0)}},
    {SYS_lstat, {P(0, kNo)}},
    {SYS_newfstatat, {D(0, 1, kUnless, 3, AT_SYMLINK_NOFOLLOW)}},
    {SYS_statx, {D(0, 1, kUnless, 2, AT_SYMLINK_NOFOLLOW)}},
    {SYS_access, {P(0)}},
    {SYS_faccessat, {D(0, 1)}},
    {SYS_faccessat2, {D(0, 1, kUnless, 3, AT_SYMLINK_NOFOLLOW)}},
    {SYS_readlink, {P(0, kNo)}, ExitFix::kReadlink, 1, 2},
    {SYS_readlinkat, {D(0, 1, kNo)}, ExitFix::kReadlink, 2, 3},
    {SYS_chdir, {P(0)}},
    {SYS_getcwd, {}, ExitFix::kGetcwd, 0, 1},
    {SYS_mkdir, {P(0, kNo)}},
    {SYS_mkdirat, {D(0, 1, kNo)}},
    {SYS_rmdir, {P(0, kNo)}},
    {SYS_unlink, {P(0, kNo)}},
    {SYS_unlinkat, {D(0, 1, kNo)}},
    {SYS_rename, {P(0, kNo), P(1, kNo)}},
    {SYS_renameat, {D(0, 1, kNo), D(2, 3, kNo)}},
    {SYS_renameat2, {D(0, 1, kNo), D(2, 3, kNo)}},
    {SYS_link, {P(0, kNo), P(1, kNo)}},
    {SYS_linkat, {D(0, 1, FollowRule::kIfFlag, 4, AT_SYMLINK_FOLLOW), D(2, 3, kNo)}},
    {SYS_symlink, {P(1, kNo)}},  // argument 0 is the link's content, not a path to resolve
    {SYS_symlinkat, {D(1, 2, kNo)}},
    {SYS_chmod, {P(0)}},
    {SYS_fchmodat, {D(0, 1)}},
    {SYS_fchmodat2, {D(0, 1, kUnless, 3, AT_SYMLINK_NOFOLLOW)}},
    {SYS_chown, {P(0)}},
    {SYS_lchown, {P(0, kNo)}},
    {SYS_fchownat, {D(0, 1, kUnless, 4, AT_SYMLINK_NOFOLLOW)}},
    {SYS_utime, {P(0)}},
    {SYS_utimes, {P(0)}},
    {SYS_futimesat, {D(0, 1)}},
    {SYS_utimensat, {D(0, 1, kUnless, 3, AT_SYMLINK_NOFOLLOW)}},
    {SYS_truncate, {P(0)}},
    {SYS_mknod, {P(0, kNo)}},
    {SYS_mknodat, {D(0, 1, kNo)}},
    {SYS_statfs, {P(0)}},
    {SYS_chroot, {P(0)}},
    {SYS_getxattr, {P(0)}},
    {SYS_lgetxattr, {P(0, kNo)}},
    {SYS_setxattr, {P(0)}},
    {SYS_lsetxattr, {P(0, kNo)}},
    {SYS_listxattr, {P(0)}},
    {SYS_llistxattr, {P(0, kNo)}},
    {SYS_removexattr, {P(0)}},
    {SYS_lremovexattr, {P(0, kNo)}},
    {SYS_inotify_add_watch, {P(1)}},
    {SYS_execve, {P(0)}},  // handled on its own (interpreters), listed so the filter stops it
};

// Calls that would reach host paths in ways the tracer does not rewrite: refused, so programs take
// their fallbacks (every libc and runtime has one for these).
const long kRefused[] = {SYS_openat2, SYS_execveat, SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
                         SYS_name_to_handle_at, SYS_open_by_handle_at};

// Calls that reach other processes or the mount table, refused with EPERM as Docker's default
// seccomp profile refuses them: with ptrace or process_vm_writev a step could stop or rewrite kiln's
// tracer itself (as root it has CAP_SYS_PTRACE, so dumpability does not stop it) and leave the
// rootfs; pidfd_getfd would take kiln's descriptors; the mount calls take host paths the tracer does
// not rewrite; without a UTS namespace, sethostname would rename the host.
const long kDenied[] = {SYS_ptrace,     SYS_process_vm_readv, SYS_process_vm_writev, SYS_pidfd_getfd,
                        SYS_kcmp,       SYS_mount,            SYS_umount2,           SYS_pivot_root,
                        SYS_open_tree,  SYS_move_mount,       SYS_fsopen,            SYS_fsconfig,
                        SYS_fsmount,    SYS_fspick,           SYS_mount_setattr,     SYS_sethostname,
                        SYS_setdomainname};

}  // namespace

const SyscallRule* FindSyscallRule(long nr) {
  for (const SyscallRule& r : kRules) {
    if (r.nr == nr) return &r;
  }
  return nullptr;
}


std::vector<sock_filter> BuildTraceFilter() {
  std::vector<sock_filter> f;
  auto stmt = [&](uint16_t code, uint32_t k) { f.push_back(BPF_STMT(code, k)); };
  auto jump = [&](uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) { f.push_back(BPF_JUMP(code, k, jt, jf)); };
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);  // i386 / x32 entry points would bypass the rewriting
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
  jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);  // x32 system calls
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  // A step that makes itself non-dumpable (gpg-agent, ssh-agent do) would hide its cwd from the
  // tracer, which then could not place its relative paths: prctl(PR_SET_DUMPABLE, ...) "succeeds".
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_prctl, 0, 3);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]));
  jump(BPF_JMP | BPF_JEQ | BPF_K, PR_SET_DUMPABLE, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
  for (long nr : kRefused) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  }
  for (long nr : kDenied) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  }
  for (const SyscallRule& r : kRules) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(r.nr), 0, 1);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
  }
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  return f;
}

}  // namespace kiln::sandbox::internal

#endif  // __x86_64__
