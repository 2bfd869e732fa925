// Which RUN sandbox the environment allows, found by trying rather than guessing: the user-namespace
// tier is probed by really creating the namespaces, mapping ids and mounting a fresh /proc.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "executor/sandbox/id_mapping.h"

namespace kiln::sandbox {

/// The isolation a RUN step gets, strongest first.
enum class SandboxTier {
  kUserNamespace = 1,  // rootless: user, mount, pid, uts, ipc namespaces; /proc, minimal /dev; pivot_root
  kChroot = 2,         // root without CAP_SYS_ADMIN (an ordinary Kubernetes pod): chroot, no mounts
  kPtrace = 3,         // neither: paths rewritten by a tracer (ptrace_tracer.h); steps run as kiln's uid
  kInPlace = 4,        // Kaniko's mode: the step runs in kiln's own filesystem; only when asked for
};

/// "rootless (user namespace)", "chroot", "ptrace", "in place".
std::string_view SandboxTierName(SandboxTier tier);

/// The outcome of probing the environment.
struct TierDetection {
  bool user_namespace = false;
  std::string user_namespace_problem;  // why tier 1 is unavailable (empty when available)
  IdMapPlan id_mapping;                // the mapping tier 1 uses (after any fallback to single)
  std::string id_mapping_note;         // e.g. why the subordinate ranges were not usable

  bool chroot = false;
  std::string chroot_problem;          // why tier 2 is unavailable (empty when available)
  bool can_mknod = false;              // tier 2 can create /dev/null and friends
  bool can_drop_sys_chroot = false;    // tier 2 can take CAP_SYS_CHROOT from root steps (CAP_SETPCAP)

  bool ptrace = false;
  std::string ptrace_problem;          // why tier 3 is unavailable (empty when available)

  /// The strongest tier that works (never kInPlace: that one is chosen, not detected).
  std::optional<SandboxTier> Best() const;
  /// For the build log: the chosen tier and how it is set up, e.g.
  /// "rootless (user namespace), single mapping: uid 0→1000, gid 0→1000 (no subordinate ids)".
  std::string Describe() const;
  /// The error for "no tier works": names the reason of each tier.
  std::string NoTierMessage() const;
};

/// What to do when AppArmor blocks unprivileged user namespaces (Ubuntu 24.04 and later).
inline constexpr char kAppArmorUsernsAdvice[] =
    "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1, "
    "Ubuntu 24.04's default): allow kiln with a profile, e.g. /etc/apparmor.d/kiln containing "
    "`abi <abi/4.0>, include <tunables/global> profile kiln /usr/local/bin/kiln flags=(unconfined) { userns, }` "
    "loaded by `apparmor_parser -r /etc/apparmor.d/kiln`, or turn the restriction off with "
    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`";

/// The user-namespace tier alone: whether it works and with which mapping (subordinate ids, falling
/// back to a single mapping when newuidmap refuses).
struct UserNamespaceProbe {
  std::string problem;  // empty when the tier works
  IdMapPlan id_mapping;
  std::string id_mapping_note;
};
UserNamespaceProbe ProbeUserNamespace();

/// Probes tiers 1, 2 and 3. Takes a few milliseconds (forks short-lived probe children). Thread-safe.
TierDetection DetectSandboxTiers();

}  // namespace kiln::sandbox
