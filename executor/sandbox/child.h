// The code that runs between fork/clone and execve, and the plan it follows. Internal to the sandbox.
//
// kiln may be multi-threaded when it runs a step, so after fork the child may only make
// async-signal-safe calls: no malloc, no locks, no C++ strings. Everything the child needs (paths,
// argv, envp, the list of mounts) is therefore prepared in a ChildPlan before the fork, and the child
// reports failures as fixed-size records on a pipe instead of formatting messages.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::sandbox::internal {

/// What a record on the report pipe says.
enum class ReportKind : int32_t { kSetupFailed = 1, kExited = 2, kProbeOk = 3 };

/// Where setup failed; `detail` indexes the plan's path table (mounts, device nodes) when relevant.
enum class Stage : int32_t {
  kSync = 1, kMakePrivate, kBindRootfs, kMountProc, kMountDev, kDevNode, kBindFile, kLoopback,
  kHostname, kPivotRoot, kForkStep, kChroot, kDropCap, kSetgroups, kSetgid, kSetuid, kChdir, kExec,
  kSetsid, kProbeMountProc, kProbeMountTmpfs, kStepMount, kStepMountReadOnly,
};

struct Report {
  ReportKind kind;
  Stage stage;
  int32_t err;      // errno
  int32_t detail;   // index into the plan's bind table, or the wait status for kExited
};

/// A bind mount of a host file or device onto a path inside the rootfs (tier 1), or a tmpfs there.
struct BindMount {
  const char* source;
  const char* target;
  bool create_file;  // create an empty file as the target first (inside the /dev tmpfs)
  bool read_only;
  unsigned long locked_flags;  // MS_NOSUID etc. of the source mount, which a remount must keep
  bool step_mount = false;     // RUN --mount: failures are kStepMount*, and read-only must hold
  const char* tmpfs_options = nullptr;  // non-null: mount a tmpfs with these options, `source` unused
};

/// Everything the child needs, as raw pointers into storage owned by the parent's plan builder.
struct ChildPlan {
  int tier = 1;               // 1 user namespace, 2 chroot, 3 ptrace (exec of the tracer), 4 in place
  bool probe = false;         // tier 1 detection probe: set up namespaces and mounts, report, exit
  int report_fd = -1;         // O_CLOEXEC; records go here
  int sync_fd = -1;           // tier 1: one byte arrives once the id maps are written
  int out_fd = -1;            // becomes stdout and stderr of the step
  int stdin_fd = -1;          // /dev/null, becomes stdin
  int max_fd = 1024;          // fallback bound for closing descriptors without close_range(2)

  const char* rootfs = nullptr;        // absolute, resolved
  const char* proc_target = nullptr;   // tier 1: rootfs/proc
  const char* dev_target = nullptr;    // tier 1: rootfs/dev
  const char* devpts_target = nullptr;
  const char* devshm_target = nullptr;
  const char* const* dev_links = nullptr;        // pairs {target, linkpath}, nullptr-terminated
  const BindMount* binds = nullptr;
  size_t num_binds = 0;
  bool net_none = false;
  const char* hostname = nullptr;
  size_t hostname_len = 0;

  bool drop_sys_chroot = false;        // tier 2: take CAP_SYS_CHROOT from the step (chroot escape)
  bool change_ids = true;              // call setgid/setuid (and setgroups when allowed)
  bool set_groups = true;
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  size_t num_groups = 0;
  const char* workdir = "/";
  const char* const* exec_candidates = nullptr;  // paths to try in order, nullptr-terminated
  char* const* argv = nullptr;
  char* const* envp = nullptr;
};

/// Body of the supervising child (pid 1 of the new pid namespace in tier 1; a subreaper in tiers 2
/// and 3). Sets up the sandbox, forks the step, waits for it and reports its wait status.
[[noreturn]] void SupervisorMain(const ChildPlan& plan);

/// The clone(2) flags of tier 1 for `plan`.
unsigned long Tier1CloneFlags(const ChildPlan& plan);

/// Creates a child like fork(2) but in new namespaces (`flags`); returns as fork does.
pid_t CloneWithFlags(unsigned long flags);

}  // namespace kiln::sandbox::internal
