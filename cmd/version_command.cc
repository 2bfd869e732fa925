#include <iostream>

#include "cmd/commands.h"


namespace kiln::cmd {

namespace {
void RegisterVersion(CLI::App& app, int* exit_code) {
  CLI::App* sub = app.add_subcommand("version", "Print kiln's version");
  sub->callback([exit_code] {
    std::cout << "kiln " << kKilnVersion << "\n";
    *exit_code = kExitOk;
  });
}

}  // namespace

KILN_REGISTER_COMMAND("version", RegisterVersion);

}  // namespace kiln::cmd
