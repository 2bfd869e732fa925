// kiln: a daemonless container image builder.
#include <algorithm>
#include <cstring>
#include <vector>
#include <iostream>
#include <string>
#include <string_view>

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
  // The command line as CLI11 should see it. Go's flag parsing (Kaniko's) takes "-v=trace" for a
  // short option, where CLI11 would read the value "=trace": such words are split in two.
  std::vector<std::string> words;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i > 0 && a.size() > 2 && a[0] == '-' && a[1] != '-' && a[2] == '=') {
      words.emplace_back(a.substr(0, 2));
      words.emplace_back(a.substr(3));
    } else {
      words.emplace_back(a);
    }
  }
  // Installed as Kaniko's /kaniko/executor, the binary takes Kaniko's command line unchanged;
  // `executor version` (Kaniko's subcommand) and `executor --version` stay what they are, and so does
  // `executor tree ...` (the jobs `kiln tree build --emit` writes run kiln's image that way).
  std::string self = argv[0];
  bool own_word = argc >= 2 && (std::strcmp(argv[1], "build") == 0 || std::strcmp(argv[1], "version") == 0 ||
                                std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "tree") == 0);
  if (self.substr(self.rfind('/') + 1) == "executor" && !own_word) words.insert(words.begin() + 1, "build");
  std::vector<char*> args;
  for (std::string& w : words) args.push_back(w.data());
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kiln::cmd::kExitUsage;
  }
  return exit_code;
}
