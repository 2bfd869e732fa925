// kiln: a daemonless container image builder.
#include <cstring>
#include <iostream>
#include <string>

#include "cmd/commands.h"

namespace kiln::cmd {
std::map<std::string, RegisterFn>& CommandTable() {
  static std::map<std::string, RegisterFn> table;
  return table;
}
}  // namespace kiln::cmd

int main(int argc, char** argv) {
  CLI::App app{"kiln: build container images from Dockerfiles without a daemon or privileges", "kiln"};
  app.require_subcommand(1);
  int exit_code = kiln::cmd::kExitOk;
  for (const auto& [name, fn] : kiln::cmd::CommandTable()) fn(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kiln::cmd::kExitUsage;
  }
  return exit_code;
}
