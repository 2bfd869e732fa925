// CommandRunner: how the executor runs a RUN step inside a rootfs, behind an interface with a fake.
//
// The executor turns `RUN cmd` into argv ["/bin/sh", "-c", "cmd"] (from SHELL), resolves USER to
// numeric ids from the rootfs's /etc/passwd and /etc/group, computes the environment the step may see
// and hands all of it over as a RunSpec. A runner adds nothing of kiln's own process (environment,
// open files, credentials) to what the step sees.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "core/io.h"
#include "core/status.h"

namespace kiln::sandbox {

/// Network a step sees. kHost is Docker's/Kaniko's default for builds (RUN can reach package
/// mirrors); kNone gives the step its own network namespace with only loopback up.
enum class NetworkMode { kHost, kNone };

/// Something the step sees at `target` in place of what the rootfs has there, for the step's
/// duration only (RUN --mount). Nothing of it stays in the rootfs: after Run the rootfs holds what it
/// held before at the target, so a snapshot never sees the mount's content. How each tier does it:
///  tier 1 (user namespace): real mounts in the step's mount namespace (bind, tmpfs); a read-only
///    bind is remounted read-only; kDiscarded directories are bound from a private copy.
///  tiers 2 and 3 (chroot, ptrace; no mounts possible): staging. What the image has at the target is
///    moved aside (a rename within the work directory), the content is put there — a kKept source
///    by rename (copied in and back when it lies on another filesystem), anything else as a copy —
///    and after the step everything is taken out again, even when the step failed. Read-only cannot
///    be enforced there: writes to a kReadOnly mount are discarded instead.
///  tier 4 (in place): not supported.
struct StepMount {
  enum class Kind {
    kDirectory,  ///< `source` is a directory
    kFile,       ///< `source` is a single non-directory (a regular file, a socket)
    kTmpfs,      ///< an empty, writable directory (tier 1: a tmpfs of `size_limit` bytes)
  };
  /// What becomes of the step's writes under the target.
  enum class Writes {
    kReadOnly,   ///< refused where the tier can (tier 1), discarded elsewhere
    kDiscarded,  ///< allowed, and thrown away with the step (bind rw, tmpfs)
    kKept,       ///< they land in `source` (cache mounts, the ssh agent socket)
  };
  Kind kind = Kind::kDirectory;
  /// Absolute host path of the content; "" for kTmpfs. Must not lie inside the rootfs.
  std::string source;
  /// Absolute path inside the rootfs, resolved there as the step would (symlinks followed within the
  /// rootfs); missing parents are created for the step and removed afterwards unless the step wrote
  /// into them. Not "/"; no target may lie below another.
  std::string target;
  Writes writes = Writes::kReadOnly;
  int64_t size_limit = 0;  ///< kTmpfs: bytes, 0 = the kernel's default
};

/// Everything a RUN step needs; the runner adds nothing of its own.
struct RunSpec {
  /// Absolute host path of the root filesystem the step runs in. "/" only for the in-place tier.
  std::string rootfs;
  /// The full command; argv[0] without a '/' is looked up in the PATH of `env` (as runc does), or in
  /// Docker's default PATH when `env` has none. REQUIRES: non-empty.
  std::vector<std::string> argv;
  /// Exactly the environment of the step, as "KEY=VALUE" entries.
  std::vector<std::string> env;
  /// Absolute working directory inside the rootfs. It must exist (WORKDIR creates it); a missing one
  /// fails the run with kNotFound.
  std::string workdir = "/";
  /// Numeric user, group and supplementary groups as seen inside the rootfs.
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> supplementary_groups;
  NetworkMode network = NetworkMode::kHost;
  /// Host name the step sees (tier 1 only; tiers 2 and 3 keep the machine's). Empty: unchanged.
  std::string hostname;
  /// RUN --mount: what the step sees at each target (see StepMount).
  std::vector<StepMount> mounts;
  /// Programs built for another machine, run through qemu-user when binfmt_misc has no handler for
  /// them (foreign_exec.h, ForeignExec::Way::kQemuTraced): every exec of an ELF for `machine` (qemu's
  /// name, "aarch64") runs `qemu`, the absolute host path of a static qemu-user binary, on it. Only the
  /// ptrace tier's tracer can put qemu in front of each exec, so LinuxCommandRunner runs such a step in
  /// that tier whatever tier it picked for others (see there). Empty `machine`: no emulation.
  struct Emulation {
    std::string machine;
    std::string qemu;
  };
  Emulation emulation;
  /// Receives the step's combined stdout and stderr as it is produced, in arbitrary chunks. Not owned;
  /// not closed by the runner; nullptr discards the output. Called only from the thread inside Run().
  Writer* output = nullptr;
  /// When given and it becomes true while the step runs (another stage of a --jobs build failed),
  /// the step's whole process tree is ended as on a stop of kiln; the result is then a death by
  /// signal. Read from the thread inside Run(), polled a few times a second.
  const std::atomic<bool>* cancel = nullptr;
};

/// How a step ended. A step that ran and failed is a RunResult, not an error Status.
struct RunResult {
  /// The exit code when the step exited normally; 128 + signal when it was killed (shell convention).
  int exit_code = 0;
  /// The signal that killed the step, 0 when it exited.
  int signal = 0;
  std::chrono::nanoseconds duration{0};
  /// Set by a sandbox whose steps cannot own files as themselves (the ptrace tier): what the step
  /// created belongs to kiln on disk, and the caller must record the step's uid and gid for it.
  bool creator_ids_not_on_disk = false;

  bool success() const { return exit_code == 0 && signal == 0; }
  /// "exit code 3" or "killed by signal 9 (Killed)", for error messages and logs.
  std::string Describe() const;
  /// For a failed step: what about the sandbox may have caused it ("" when nothing); Describe adds it.
  std::string failure_hint;
};

/// Runs one command to completion. Run returns an error Status only when the command could not be
/// started as specified (sandbox setup failed, argv[0] not found, workdir missing, user not mappable,
/// output sink failed); the command's own failure is a RunResult with a non-zero exit code.
/// Implementations are not required to be thread-safe: one Run at a time per runner, unless
/// concurrent() says that Runs in different rootfs directories may overlap.
class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  virtual Result<RunResult> Run(const RunSpec& spec) = 0;
  /// True when Run may be called from several threads at once (for different rootfs directories).
  virtual bool concurrent() const { return false; }
};

/// Where execve looks for `argv0`, in order: itself when it contains a '/', else each directory of
/// the PATH in `env` ("KEY=VALUE" entries; the last PATH wins), or of Docker's default PATH.
std::vector<std::string> ExecCandidates(const std::string& argv0, const std::vector<std::string>& env);

/// Checks the parts of `spec` every runner relies on (non-empty argv, absolute rootfs and workdir,
/// well-formed env entries, mount targets absolute, not "/", not nested, sources given). Returns
/// kInvalidArgument naming the problem.
Status ValidateRunSpec(const RunSpec& spec);

}  // namespace kiln::sandbox
