// kiln: a daemonless container image builder.
#include <algorithm>
#include <cstring>
#include <vector>
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
  // Installed as Kaniko's /kaniko/executor, the binary takes Kaniko's command line unchanged.
  std::vector<char*> args(argv, argv + argc);
  std::string self = argv[0];
  static char build[] = "build";
  if (self.substr(self.rfind('/') + 1) == "executor" && (argc < 2 || std::strcmp(argv[1], "build") != 0)) {
    args.insert(args.begin() + 1, build);
  }
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kiln::cmd::kExitUsage;
  }
  return exit_code;
}
