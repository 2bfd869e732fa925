// Build arguments and variable scopes: --build-arg values, the global (pre-FROM) ARGs, automatic
// platform args, predefined proxy args, and the per-stage ARG/ENV state used for expansion.
//
// Docker's rules (Dockerfile reference, "ARG" and "Using ARG variables"):
//  - ARGs before the first FROM are global: usable in FROM lines only, unless a stage redeclares
//    them with `ARG NAME` (which then inherits the global value).
//  - A --build-arg only takes effect for an ARG that is declared; it overrides the ARG's default.
//  - ENV always overrides an ARG of the same name.
//  - HTTP_PROXY, HTTPS_PROXY, FTP_PROXY, NO_PROXY, ALL_PROXY (and lower-case) are predefined: given
//    as --build-arg they reach RUN without an ARG, and never appear in the image history.
//  - TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT
//    are in the global scope automatically; a stage gets them with `ARG TARGETARCH` etc.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/image_model.h"
#include "core/status.h"
#include "executor/dockerfile/instructions.h"
#include "executor/dockerfile/shell_lex.h"

namespace kiln::dockerfile {

/// The platform type of the image model (core/image_model.h): one type from FROM --platform to the
/// image config.
using Platform = kiln::Platform;

/// Parses a build platform ("os/arch[/variant]", from FROM --platform or --custom-platform) with
/// kiln::Platform::Parse (every component [A-Za-z0-9_.-]+), then as containerd's Normalize does for
/// builds: arm64's only variant (v8) is dropped, so TARGETVARIANT is "" for linux/arm64/v8 as in
/// BuildKit. Errors are kInvalidArgument with a plain message.
Result<Platform> ParsePlatform(std::string_view s);

/// Whether `name` is one of the predefined proxy args.
bool IsProxyArg(std::string_view name);

/// The user's --build-arg values and which of them the build consumed.
class BuildArgs {
 public:
  BuildArgs() = default;
  /// Parses each "NAME=value" or "NAME" (value taken from `environ`; ignored when absent there, as
  /// docker build does). Errors for an empty name.
  static Result<BuildArgs> FromFlags(const std::vector<std::string>& flags,
                                     const std::map<std::string, std::string>& environ);

  void Set(const std::string& name, const std::string& value) { values_[name] = value; }
  std::optional<std::string> Get(std::string_view name) const;
  const std::map<std::string, std::string, std::less<>>& values() const { return values_; }

  /// Marks `name` as consumed (an ARG declared it).
  void MarkUsed(const std::string& name) const { used_.insert(name); }
  const std::set<std::string>& used() const { return used_; }
  /// Build args given but never declared by an ARG of the build (proxy args excluded), sorted.
  std::vector<std::string> Unused() const;

 private:
  std::map<std::string, std::string, std::less<>> values_;
  mutable std::set<std::string> used_;
};

/// The global scope: resolved pre-FROM ARGs plus the automatic platform args.
struct GlobalArgs {
  Vars values;                   ///< name → value, for expanding FROM lines
  std::set<std::string> declared;  ///< names declared by global ARG instructions
};

/// The automatic platform args for `target` and `build`.
Vars PlatformArgs(const Platform& target, const Platform& build);

/// Resolves the ARG instructions before the first FROM, in order: a default is expanded with the
/// args before it; a matching --build-arg replaces it. Marks declared build args as used.
Result<GlobalArgs> ResolveGlobalArgs(const std::vector<Instruction>& meta_args, const BuildArgs& build_args,
                                     const Platform& target, const Platform& build, char escape);

/// The ARG and ENV state of one stage as its instructions run. Copyable (a stage based on another
/// stage starts from a copy of the parent's ENV).
class StageScope {
 public:
  StageScope(const GlobalArgs* global, const BuildArgs* build_args) : global_(global), build_args_(build_args) {}

  /// The base image's config Env ("K=V" entries) or the parent stage's ENV.
  void SeedEnv(const std::vector<std::string>& image_env);
  void SeedEnv(const Vars& env) { env_ = env; }

  /// Applies an ARG instruction: each value is the --build-arg if given, else the default expanded
  /// with the current variables, else the global ARG's value; `ARG NAME` with none of these declares
  /// NAME unset. Errors come from expansion (plain messages).
  Status ApplyArg(const ArgInst& arg, char escape);
  /// Applies an ENV instruction: every key and value is expanded with the variables as they were
  /// before the instruction (Docker: `ENV a=1 b=$a` does not see the new a).
  Status ApplyEnv(const EnvInst& env, char escape);

  /// Variables for expanding words now: declared ARGs overlaid by ENV.
  Vars ExpansionVars() const;
  /// The environment of a RUN: ENV, declared ARGs (not overriding ENV), and proxy build args.
  Vars RunEnvironment() const;
  /// ENV only (what goes into the image config).
  const Vars& env() const { return env_; }
  /// Declared ARGs that have a value, in declaration order of first declaration.
  const std::vector<std::pair<std::string, std::string>>& args() const { return args_; }

 private:
  const GlobalArgs* global_;
  const BuildArgs* build_args_;
  Vars env_;
  std::vector<std::pair<std::string, std::string>> args_;
  std::set<std::string> unset_args_;
};

}  // namespace kiln::dockerfile
