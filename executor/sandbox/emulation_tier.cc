// LinuxCommandRunner's choice of tier for a step whose programs run through qemu-user
// (RunSpec::Emulation): only the ptrace tier's tracer can hand each exec of a foreign program to qemu.
#include "executor/sandbox/linux_command_runner.h"

#include <unistd.h>

namespace kiln::sandbox {

Result<SandboxTier> LinuxCommandRunner::EmulationTier(const RunSpec& spec) const {
  if (tier_ == SandboxTier::kPtrace) return tier_;
  std::string what = "RUN through " + spec.emulation.qemu + " needs the ptrace sandbox (only its tracer can hand " +
                     "each exec of a " + spec.emulation.machine + " program to qemu when binfmt_misc has no handler)";
  if (options_.tier != LinuxCommandRunnerOptions::Tier::kAuto) {
    return FailedPrecondition(what + ", and the " + std::string(SandboxTierName(tier_)) +
                              " sandbox was asked for (--sandbox); use --sandbox=auto or --sandbox=ptrace, or "
                              "register a qemu binfmt_misc handler with the F flag on the node");
  }
  if (!detection_.ptrace) {
    return FailedPrecondition(what + ", which is unavailable here: " + detection_.ptrace_problem +
                              "; register a qemu binfmt_misc handler with the F flag on the node instead");
  }
  if (options_.tracer_binary.empty()) return NotFound(what + ": cannot find kiln's own binary (/proc/self/exe)");
  if (spec.uid != ::geteuid() || spec.gid != ::getegid()) {
    return FailedPrecondition("RUN as uid " + std::to_string(spec.uid) + ", gid " + std::to_string(spec.gid) +
                              ": programs for " + spec.emulation.machine + " run through qemu under the ptrace " +
                              "tracer, which runs steps only as kiln's own uid " + std::to_string(::geteuid()) +
                              " and gid " + std::to_string(::getegid()) + "; register a qemu binfmt_misc " +
                              "handler with the F flag on the node to run them as other users");
  }
  return SandboxTier::kPtrace;
}

}  // namespace kiln::sandbox
