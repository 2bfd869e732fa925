// Build secrets (`kiln build --secret`), for RUN --mount=type=secret.
//
// A secret is named on the command line by where its value lives — a file or an environment
// variable of kiln's own process — and read only when a step mounts it. Its value is never logged,
// never part of a cache key, and never written anywhere but the step's private copy (see
// StageSecretFile), which exists only while the step runs.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kiln::executor {

struct SecretSource {
  std::string id;
  enum class Kind { kFile, kEnv } kind = Kind::kFile;
  std::string from;  ///< kFile: the path; kEnv: the variable's name
};

/// Parses one --secret value, BuildKit's (buildx) syntax: `id=ID` with `src=FILE` (or `source=`),
/// `env=VAR`, and an optional `type=file|env`. With neither src nor env: the variable named ID when
/// `environ` has it, else the file named ID. Errors name the bad field.
Result<SecretSource> ParseSecretFlag(std::string_view value, const std::map<std::string, std::string>& environ);

/// The secrets a build was given, by id. Values are read on demand and never cached.
class SecretStore {
 public:
  SecretStore() = default;
  SecretStore(std::vector<SecretSource> sources, std::map<std::string, std::string> environ);

  bool Has(const std::string& id) const { return sources_.count(id) != 0; }
  /// The value of secret `id`; kNotFound when no --secret names it, or its variable is unset; the
  /// file's error when it cannot be read.
  Result<std::string> Read(const std::string& id) const;
  /// Checks that every file exists and every variable is set, before the build starts.
  Status Validate() const;
  /// The ids, sorted (for messages).
  std::vector<std::string> Ids() const;

 private:
  std::map<std::string, SecretSource> sources_;
  std::map<std::string, std::string> environ_;
};

/// Writes `value` to a new file `path` (which must not exist) with `mode`, owned by uid:gid when
/// given (needs root or a mapped id; kNotFound-free: errors say which). The caller removes it.
Status WriteSecretFile(const std::string& path, const std::string& value, mode_t mode, std::optional<uid_t> uid,
                       std::optional<gid_t> gid);

}  // namespace kiln::executor
