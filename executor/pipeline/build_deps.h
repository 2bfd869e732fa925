// BuildDeps: the side effects of a build that a caller (or a test) can replace.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "executor/log/build_log.h"
#include "executor/sandbox/command_runner.h"
#include "executor/sandbox/id_mapping.h"
#include "executor/steps/git_source.h"
#include "executor/steps/url_fetcher.h"
#include "registry/credentials.h"
#include "registry/transport.h"

namespace kiln::executor {

/// Replaceable parts. Defaults: LinuxCommandRunner (created at the first RUN), credentials from
/// docker config files, libcurl for registries and ADD URLs.
struct BuildDeps {
  BuildLog* log = nullptr;  ///< required
  sandbox::CommandRunner* runner = nullptr;
  std::unique_ptr<registry::Keychain> keychain;
  UrlFetcher* url_fetcher = nullptr;
  /// Runs git for git sources (ADD, --context, --build-context); empty: Debian's git CLI.
  GitRunnerFactory git;
  /// The wire to registries for pulls and pushes (tests: a loopback or fake transport). nullptr:
  /// libcurl with the options' TLS settings.
  registry::Transport* registry_transport = nullptr;
  /// Set by RunInBuildNamespace when the build runs as root in kiln's own user namespace: the mapping
  /// it was entered with (for the log and for RUN's messages about unmapped ids).
  std::optional<sandbox::IdMapPlan> build_namespace;
  std::string build_namespace_note;
};

}  // namespace kiln::executor
