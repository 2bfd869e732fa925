// Build checks: BuildKit's lint rules that point at a Dockerfile's risky or confusing lines without
// stopping the build (`docker build --check`). kiln runs them on every plan and build and prints what
// they find as warnings with file:line:column; `kiln build --check` only checks.
//
// Rules (BuildKit's names, so a `# check=` directive written for BuildKit means the same here):
//   SecretsUsedInArgOrEnv  an ARG or ENV key that names a secret (…_TOKEN, PASSWORD, API_KEY, …):
//                          its value stays in the image's config or history; use RUN --mount=type=secret
//   JSONArgsRecommended    CMD or ENTRYPOINT in shell form: the program runs under /bin/sh -c and
//                          does not get the container's signals
//   StageNameCasing        a stage name that is not lower case
//   FromAsCasing           FROM and AS written in different case
// The `# check=skip=<rule>[,<rule>...]|all;error=true` directive skips rules, or makes a finding fail
// the build.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "executor/dockerfile/parser.h"

namespace kiln::dockerfile {

struct CheckConfig {
  bool skip_all = false;
  std::set<std::string> skip;
  bool error = false;  ///< findings fail the build
};

/// Parses a `# check=` directive's value ("" = defaults). Unknown keys and rule names are errors
/// naming them (BuildKit warns; a typo in a skip list should not pass silently).
Result<CheckConfig> ParseCheckDirective(std::string_view value);

struct CheckFinding {
  std::string rule;     ///< "SecretsUsedInArgOrEnv"
  std::string message;  ///< the finding without position
  Location loc;
  std::string formatted;  ///< "Dockerfile:3:1: SecretsUsedInArgOrEnv: …" with the line and caret
};

/// Runs every rule not skipped by `config` over the parsed Dockerfile (instructions in ARGs before
/// the first FROM included).
std::vector<CheckFinding> RunChecks(const Dockerfile& df, const CheckConfig& config);

/// BuildKit's test for a secret-looking name: one of apikey, auth, credential(s), key, password,
/// pword, passwd, secret, token as a whole `_`-separated word (case-insensitive), unless a word is
/// "public" (PUBLIC_KEY).
bool LooksLikeSecretName(std::string_view name);

}  // namespace kiln::dockerfile
