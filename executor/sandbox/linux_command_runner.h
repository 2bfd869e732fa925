// LinuxCommandRunner: runs RUN steps in the strongest sandbox the machine allows (see
// tier_detection.h for the tiers).
//
// What a step sees, by tier:
//  1 (user namespace): the rootfs as its root (pivot_root; the host's tree is detached), a fresh
//    /proc of its own pid namespace (kiln's supervisor is pid 1 and reaps), a tmpfs /dev with null,
//    zero, full, random, urandom and tty bound from the host plus /dev/pts and /dev/shm, read-only
//    private copies of the host's /etc/resolv.conf and /etc/hosts bound over the rootfs's, the host
//    network (or only loopback with NetworkMode::kNone), the given host name. Ids are mapped as
//    IdMapPlan describes; when kiln is root the mapping is the identity.
//  2 (chroot): the rootfs as its root via chroot(2), no /proc, /dev/null etc. created with mknod
//    when CAP_MKNOD allows, the host's resolv.conf and hosts copied in. Root steps lose
//    CAP_SYS_CHROOT (the classic chroot escape needs it). Background processes that leave the step's
//    process group (setsid) can outlive the step. Host name and kNone are not available.
//  3 (ptrace): for a kiln that is neither root nor allowed user namespaces. kiln execs itself as a
//    tracer (`kiln sandbox-trace`, ptrace_tracer.h) that rewrites every path the step uses into the
//    rootfs; /proc, /dev and /sys are the host's, resolv.conf and hosts are copied in as in tier 2.
//    Steps run as kiln's own uid and gid only (a step with another USER fails with a message that
//    says so); files they create are owned by kiln on disk (the caller records the step's ids).
//  4 (in place): kiln's own filesystem, as Kaniko does; only when the caller forces it.
// In every tier: exactly spec.env, no descriptor but stdin (/dev/null), stdout and stderr (both the
// output pipe), default signal dispositions, its own session. Everything kiln adds to the rootfs is
// removed afterwards (see rootfs_touches.h for the one thing the kernel will not let us undo: ctime).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "executor/sandbox/command_runner.h"
#include "executor/sandbox/tier_detection.h"

namespace kiln::sandbox {

struct LinuxCommandRunnerOptions {
  enum class Tier { kAuto, kUserNamespace, kChroot, kPtrace, kInPlace };
  /// kAuto picks DetectSandboxTiers().Best(); the others force a tier (and fail if it is unusable).
  Tier tier = Tier::kAuto;
  /// Paths of kiln's own state (credentials, caches, layout dirs). Run refuses a rootfs that contains
  /// any of them. The scratch directory and the kiln binary are always checked.
  std::vector<std::string> protected_paths;
  /// Where tier 1 keeps its private copies of resolv.conf and hosts during a run ("" = $TMPDIR or /tmp).
  std::string scratch_dir;
  /// The host files whose content the step sees as /etc/resolv.conf and /etc/hosts.
  std::string host_resolv_conf = "/etc/resolv.conf";
  std::string host_hosts = "/etc/hosts";
  /// Set when kiln itself already runs as root in its own user namespace for the whole build
  /// (build_namespace.h), entered with this mapping. Tier 1 then nests each step's namespaces inside
  /// with the identity mapping; the log and messages about unmapped ids speak of this one.
  std::optional<IdMapPlan> build_namespace;
  std::string build_namespace_note;
  /// Tier 3: the kiln binary that runs `sandbox-trace` ("" = this process's own executable).
  std::string tracer_binary;
};

class LinuxCommandRunner : public CommandRunner {
 public:
  /// Detects the tiers and picks one. Fails with kFailedPrecondition when no tier is usable (the
  /// message says why each failed) or the forced tier is not; callers that may never run a RUN step
  /// should create the runner lazily.
  static Result<std::unique_ptr<LinuxCommandRunner>> Create(LinuxCommandRunnerOptions options = {});

  /// Runs `spec` in the chosen tier. Tier 4 requires spec.rootfs == "/"; tiers 1 to 3 refuse "/".
  /// A spec with an Emulation runs in the ptrace tier (its tracer puts qemu in front of each foreign
  /// exec) when the tier was picked automatically and ptrace works here; it then runs only as kiln's
  /// own uid and gid. Fails with kFailedPrecondition when a tier was forced or ptrace is unusable.
  /// Thread-safe in tiers 1 to 3: Runs in different rootfs directories may overlap (parallel stages;
  /// the forked child makes only raw system calls and closes what other threads had open).
  Result<RunResult> Run(const RunSpec& spec) override;
  bool concurrent() const override { return tier_ != SandboxTier::kInPlace; }

  SandboxTier tier() const { return tier_; }
  /// One line for the build log, e.g. "RUN sandbox: rootless (user namespace), identity mapping …".
  std::string DescribeTier() const;
  const TierDetection& detection() const { return detection_; }

 private:
  LinuxCommandRunner(LinuxCommandRunnerOptions options, TierDetection detection, SandboxTier tier)
      : options_(std::move(options)), detection_(std::move(detection)), tier_(tier) {}

  // The tier a step with an Emulation runs in (see Run), or why it cannot run.
  Result<SandboxTier> EmulationTier(const RunSpec& spec) const;

  LinuxCommandRunnerOptions options_;
  TierDetection detection_;
  SandboxTier tier_;
};

}  // namespace kiln::sandbox
