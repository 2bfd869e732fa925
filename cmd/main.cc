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
  app.set_version_flag("--version", std::string("kiln ") + kiln::cmd::kKilnVersion);
  int exit_code = kiln::cmd::kExitOk;
  for (const auto& [name, fn] : kiln::cmd::CommandTable()) fn(app, &exit_code);
  // Installed as Kaniko's /kaniko/executor, the binary takes Kaniko's command line unchanged.
  std::vector<char*> args(argv, argv + argc);
  std::string self = argv[0];
  static char build[] = "build";
  // `executor version` (Kaniko's subcommand) and `executor --version` stay what they are.
  bool own_word = argc >= 2 && (std::strcmp(argv[1], "build") == 0 || std::strcmp(argv[1], "version") == 0 ||
                                std::strcmp(argv[1], "--version") == 0);
  if (self.substr(self.rfind('/') + 1) == "executor" && !own_word) {
    args.insert(args.begin() + 1, build);
  }
  // Go's flag parsing (Kaniko's) takes "-v=trace" for a short option; CLI11 would read "=trace".
  std::vector<std::string> split_storage;
  split_storage.reserve(args.size() * 2);
  std::vector<char*> parsed_args;
  for (size_t i = 0; i < args.size(); ++i) {
    const char* a = args[i];
    if (i > 0 && a[0] == '-' && a[1] != '-' && a[1] != '\0' && a[2] == '=') {
      split_storage.emplace_back(a, 2);
      split_storage.emplace_back(a + 3);
      parsed_args.push_back(split_storage[split_storage.size() - 2].data());
      parsed_args.push_back(split_storage.back().data());
    } else {
      parsed_args.push_back(args[i]);
    }
  }
  args = parsed_args;
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kiln::cmd::kExitUsage;
  }
  return exit_code;
}
