// `kiln login` and `kiln logout`: write or remove a registry's entry in Docker's config.json
// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), the file kiln, Docker and Kaniko read, so
// a developer can log in without Docker installed. Other keys of the file are kept; the file is
// written atomically with mode 0600. The password is read from stdin with --password-stdin (as
// `docker login` recommends) and never printed.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "cmd/commands.h"
#include "core/io.h"
#include "registry/credentials.h"
#include "registry/transport.h"

namespace kiln::cmd {
namespace {

struct LoginFlags {
  std::string registry;
  std::string username;
  std::string password;
  bool password_stdin = false;
};

std::string Env(const char* k) {
  const char* v = std::getenv(k);
  return v == nullptr ? std::string() : std::string(v);
}

int RunLogin(LoginFlags& f) {
  if (f.password_stdin) {
    if (!f.password.empty()) {
      std::cerr << "kiln login: --password and --password-stdin are exclusive\n";
      return kExitUsage;
    }
    FdReader in(STDIN_FILENO, false);
    Result<std::string> text = ReadAll(in, 64 << 10);
    if (!text.ok()) {
      std::cerr << "kiln login: reading the password from stdin: " << text.status().message() << "\n";
      return kExitFailure;
    }
    f.password = *text;
    while (!f.password.empty() && (f.password.back() == '\n' || f.password.back() == '\r')) f.password.pop_back();
  }
  if (f.username.empty() || f.password.empty()) {
    std::cerr << "kiln login: give --username and --password-stdin (or --password)\n";
    return kExitUsage;
  }
  if (f.username.find(':') != std::string::npos) {
    std::cerr << "kiln login: a user name cannot contain ':'\n";
    return kExitUsage;
  }
  Result<std::string> path = registry::DockerConfigFileForLogin(Env("DOCKER_CONFIG"), Env("HOME"));
  if (!path.ok()) {
    std::cerr << "kiln login: " << path.status().message() << "\n";
    return kExitFailure;
  }
  Status s = registry::UpdateDockerConfigAuth(*path, f.registry, registry::Base64Encode(f.username + ":" + f.password));
  if (!s.ok()) {
    std::cerr << "kiln login: " << s.message() << "\n";
    return kExitFailure;
  }
  std::cerr << "kiln login: credentials for " << f.registry << " saved in " << *path << "\n";
  return kExitOk;
}

void RegisterLogin(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<LoginFlags>();
  CLI::App* sub = app.add_subcommand("login", "Save a registry's credentials in Docker's config.json");
  sub->add_option("registry", f->registry, "The registry, e.g. registry.example.com:5000")->required();
  sub->add_option("-u,--username", f->username, "User name");
  sub->add_option("-p,--password", f->password, "Password (prefer --password-stdin: arguments are visible to ps)");
  sub->add_flag("--password-stdin", f->password_stdin, "Read the password from stdin");
  sub->callback([f, exit_code] { *exit_code = RunLogin(*f); });

  auto registry = std::make_shared<std::string>();
  CLI::App* out = app.add_subcommand("logout", "Remove a registry's credentials from Docker's config.json");
  out->add_option("registry", *registry, "The registry")->required();
  out->callback([registry, exit_code] {
    Result<std::string> path = registry::DockerConfigFileForLogin(Env("DOCKER_CONFIG"), Env("HOME"));
    Status s = path.ok() ? registry::UpdateDockerConfigAuth(*path, *registry, "") : path.status();
    if (!s.ok()) {
      std::cerr << "kiln logout: " << s.message() << "\n";
      *exit_code = kExitFailure;
      return;
    }
    std::cerr << "kiln logout: removed " << *registry << " from " << *path << "\n";
    *exit_code = kExitOk;
  });
}

}  // namespace

KILN_REGISTER_COMMAND("login", RegisterLogin);

}  // namespace kiln::cmd
