#include "executor/sandbox/tier_detection.h"

#include <linux/capability.h>
#include <string.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "executor/sandbox/launch.h"
#include "executor/sandbox/linux_caps.h"
#include "executor/sandbox/ptrace_tracer.h"

namespace kiln::sandbox {
namespace {

std::string ReadTrimmed(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

bool AppArmorRestrictsUserns() {
  return ::geteuid() != 0 && ReadTrimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1";
}

// Known switches that turn user namespaces off, for a message that says what to change.
std::string UsernsHints() {
  std::string hints;
  std::string max = ReadTrimmed("/proc/sys/user/max_user_namespaces");
  if (max == "0") hints += "; /proc/sys/user/max_user_namespaces is 0";
  std::string clone = ReadTrimmed("/proc/sys/kernel/unprivileged_userns_clone");
  if (clone == "0" && ::geteuid() != 0) hints += "; /proc/sys/kernel/unprivileged_userns_clone is 0";
  if (AppArmorRestrictsUserns()) hints += std::string("; ") + kAppArmorUsernsAdvice;
  if (hints.empty()) hints = "; probably refused by a seccomp profile (Kubernetes' and Docker's default block it)";
  return hints;
}

std::string ProbeStageText(internal::Stage stage) {
  switch (stage) {
    case internal::Stage::kSync:
      return "the id mapping was not installed";
    case internal::Stage::kMakePrivate:
      return "making mounts private in the new mount namespace";
    case internal::Stage::kProbeMountProc:
      return "mounting a fresh /proc (refused when the existing /proc is partly masked, as inside most containers)";
    case internal::Stage::kProbeMountTmpfs:
      return "mounting a tmpfs";
    default:
      return "setting up";
  }
}

// One probe with `mapping`; empty string on success, else the reason.
std::string Probe(const IdMapPlan& mapping) {
  internal::ChildPlan plan;
  plan.tier = 1;
  plan.probe = true;
  auto launched = internal::Launch(plan, &mapping, nullptr);
  if (!launched.ok()) return launched.status().message() + UsernsHints();
  if (!launched->mapping_error.ok()) {
    return "installing the id mapping: " + launched->mapping_error.message() +
           (AppArmorRestrictsUserns() ? std::string("; ") + kAppArmorUsernsAdvice : "");
  }
  if (launched->ProbeOk()) return "";
  std::string advice = AppArmorRestrictsUserns() ? std::string("; ") + kAppArmorUsernsAdvice : "";
  if (auto f = launched->SetupFailure()) return ProbeStageText(f->stage) + ": " + ::strerror(f->err) + advice;
  return "the probe process died without reporting" + advice;
}

}  // namespace

std::string_view SandboxTierName(SandboxTier tier) {
  switch (tier) {
    case SandboxTier::kUserNamespace:
      return "rootless (user namespace)";
    case SandboxTier::kChroot:
      return "chroot";
    case SandboxTier::kPtrace:
      return "ptrace";
    case SandboxTier::kInPlace:
      return "in place";
  }
  return "unknown";
}

std::optional<SandboxTier> TierDetection::Best() const {
  if (user_namespace) return SandboxTier::kUserNamespace;
  if (chroot) return SandboxTier::kChroot;
  if (ptrace) return SandboxTier::kPtrace;
  return std::nullopt;
}

std::string TierDetection::Describe() const {
  auto best = Best();
  if (!best) return "no RUN sandbox available";
  std::string out(SandboxTierName(*best));
  if (*best == SandboxTier::kUserNamespace) {
    out += ", " + id_mapping.Describe();
    if (!id_mapping_note.empty()) out += " (" + id_mapping_note + ")";
  } else if (*best == SandboxTier::kChroot) {
    out += " (user namespaces unavailable: " + user_namespace_problem + ")";
    if (!can_mknod) out += "; no CAP_MKNOD, so no /dev/null inside the rootfs";
    if (!can_drop_sys_chroot) out += "; no CAP_SETPCAP, so root steps keep CAP_SYS_CHROOT";
  } else {
    out += ": steps run as kiln's own uid " + std::to_string(::geteuid()) + " and gid " + std::to_string(::getegid()) +
           ", the rootfs made their / by rewriting paths (user namespaces unavailable: " + user_namespace_problem +
           "; chroot unavailable: " + chroot_problem + ")";
  }
  return out;
}

std::string TierDetection::NoTierMessage() const {
  return "RUN needs user namespaces, root with CAP_SYS_CHROOT, or ptrace. User namespaces: " + user_namespace_problem +
         ". Chroot: " + chroot_problem + ". Ptrace: " + ptrace_problem + ".";
}

UserNamespaceProbe ProbeUserNamespace() {
  UserNamespaceProbe p;
  p.id_mapping = PlanIdMapping();
  p.problem = Probe(p.id_mapping);
  if (!p.problem.empty() && p.id_mapping.kind == IdMapPlan::Kind::kSubordinate) {
    // newuidmap may refuse (wrong file capabilities, stale /etc/subuid): a single mapping still works.
    p.id_mapping_note = "subordinate ids unusable: " + p.problem;
    p.id_mapping = SingleIdMapping();
    p.problem = Probe(p.id_mapping);
  }
  return p;
}

TierDetection DetectSandboxTiers() {
  TierDetection d;
  UserNamespaceProbe userns = ProbeUserNamespace();
  d.id_mapping = std::move(userns.id_mapping);
  d.id_mapping_note = std::move(userns.id_mapping_note);
  d.user_namespace = userns.problem.empty();
  d.user_namespace_problem = std::move(userns.problem);

  if (::geteuid() != 0) {
    d.chroot_problem = "kiln runs as uid " + std::to_string(::geteuid()) + ", not root";
  } else if (!HasEffectiveCap(CAP_SYS_CHROOT)) {
    d.chroot_problem = "kiln runs as root but without CAP_SYS_CHROOT";
  } else {
    d.chroot = true;
  }
  d.can_mknod = HasEffectiveCap(CAP_MKNOD);
  d.can_drop_sys_chroot = HasEffectiveCap(CAP_SETPCAP);
  d.ptrace_problem = ProbePtraceSandbox();
  d.ptrace = d.ptrace_problem.empty();
  return d;
}

}  // namespace kiln::sandbox
