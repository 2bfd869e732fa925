// The registry-access flags `kiln copy` and `kiln warm` share (Kaniko's names), declared once and
// turned into registry::RegistryAccessOptions once.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "registry/access_options.h"

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

}  // namespace kiln::cmd
