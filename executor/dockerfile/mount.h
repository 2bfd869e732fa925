// RUN --mount: parsing the CSV value (Go encoding/csv rules) at parse time, and resolving it with
// variables at build time (BuildKit's commands_runmount.go).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "executor/dockerfile/instructions.h"
#include "executor/dockerfile/shell_lex.h"

namespace kiln::dockerfile {

enum class MountType { kBind, kCache, kTmpfs, kSecret, kSsh };
/// "bind", "cache", "tmpfs", "secret", "ssh".
std::string_view MountTypeName(MountType t);

/// A fully resolved mount, as the RUN sandbox needs it.
struct Mount {
  MountType type = MountType::kBind;
  std::string from;    ///< stage name/index or image (bind, cache); "" = build context
  std::string source;  ///< path in `from` (bind, cache), secret/ssh source
  std::string target;  ///< path in the container
  bool read_only = true;  ///< default: true for bind, secret, ssh; false for cache, tmpfs
  std::string id;      ///< cache id, secret id, ssh id
  std::string sharing;  ///< cache: "shared", "private", "locked" or "" (shared)
  bool required = false;  ///< secret, ssh
  std::optional<uint32_t> mode, uid, gid;  ///< cache, secret, ssh
  int64_t size_limit = 0;  ///< tmpfs, bytes (0 = unlimited)
  std::string env;  ///< secret: expose as this environment variable
};

/// Splits a --mount value into fields. Errors (plain messages, no location): CSV syntax, a `from=`
/// that uses a variable ("'from' doesn't support variable expansion, define alias stage instead").
Result<MountSpec> ParseMountSpec(std::string_view value);

/// Expands every value with `env` and validates the result with BuildKit's rules (types, keys
/// allowed per type, numbers, sharing modes, secret requirements). Errors are plain messages; the
/// caller adds the instruction's location.
Result<Mount> ResolveMount(const MountSpec& spec, const Vars& env, char escape);

/// docker/go-units RAMInBytes: "64m" → 67108864, "1.5g", "100", "2KiB".
Result<int64_t> ParseRamInBytes(std::string_view s);

}  // namespace kiln::dockerfile
