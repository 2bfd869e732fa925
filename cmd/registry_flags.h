// The registry-access flags `kiln copy` and `kiln warm` share (Kaniko's names), declared once and
// turned into registry::RegistryAccessOptions once.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "registry/access_options.h"
#include "registry/client.h"
#include "registry/credentials.h"
#include "registry/curl_transport.h"

namespace kiln::cmd {

struct RegistryFlags {
  std::vector<std::string> insecure_registries;
  std::vector<std::string> skip_verify_registries;
  std::vector<std::string> registry_certificates;  // HOST=PATH
  std::vector<std::string> mirrors;
  std::vector<std::string> registry_maps;  // REG=MIRROR[/PATH][;...]

  /// Declares --insecure-registry, --skip-tls-verify-registry, --registry-certificate and
  /// --registry-mirror on `sub` (each repeatable, one value per occurrence).
  void Declare(CLI::App* sub);
  /// Adds them to `access` (which starts from RegistryAccessOptions::FromEnvironment()). Fails with
  /// kInvalidArgument naming the flag for a malformed --registry-certificate.
  Status ApplyTo(registry::RegistryAccessOptions& access) const;
};

/// The registry client of a command that is not a build (copy, warm, index create): libcurl with
/// `access`'s TLS settings, credentials where Docker, Kaniko and podman keep them (the environment's
/// DOCKER_CONFIG / HOME, credential helpers, auth.json). Owns what the client points at.
class CommandRegistryClient {
 public:
  static Result<std::unique_ptr<CommandRegistryClient>> Create(const registry::RegistryAccessOptions& access);
  registry::Client& client() { return *client_; }

 private:
  CommandRegistryClient() = default;
  std::unique_ptr<registry::CurlTransport> wire_;
  registry::ProcessHelperRunner helpers_;
  std::unique_ptr<registry::Keychain> keychain_;
  std::unique_ptr<registry::Client> client_;
};

}  // namespace kiln::cmd
