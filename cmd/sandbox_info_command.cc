// `kiln sandbox-info`: which RUN sandbox tiers this machine (or pod) offers and why the others are
// unavailable — the same detection `kiln build` does at its first RUN step, without building.
#include <iostream>

#include "cmd/commands.h"
#include "executor/sandbox/tier_detection.h"

namespace kiln::cmd {
namespace {

void RegisterSandboxInfo(CLI::App& app, int* exit_code) {
  CLI::App* sub = app.add_subcommand("sandbox-info", "Show which RUN sandbox tiers this environment allows");
  sub->callback([exit_code] {
    sandbox::TierDetection d = sandbox::DetectSandboxTiers();
    std::cout << d.Describe() << "\n";
    *exit_code = kExitOk;
  });
}

}  // namespace

KILN_REGISTER_COMMAND("sandbox-info", RegisterSandboxInfo);

}  // namespace kiln::cmd
