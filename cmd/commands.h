// The subcommands of the kiln executable. Each subcommand lives in its own file and registers itself
// with a file-scope KILN_REGISTER_COMMAND(name, fn): main() builds the CLI from the table, in name
// order, so adding a command never touches main.cc. A Register function adds one CLI11 subcommand
// whose callback stores the exit code in *exit_code.
//
// Exit codes (documented in the README): 0 success, 1 the build or operation failed, 2 usage error
// (bad flags, unsupported Kaniko flag, malformed Dockerfile arguments, a malformed policy file), 77 the
// build breaks its policy (--policy, $KILN_POLICY; docs/policy.md), reported before any RUN step ran
// or anything was pushed. 77 is sysexits' EX_NOPERM: far from the small codes RUN steps usually exit
// with (which kiln passes through, as Kaniko does; a test RUN here exits 3).
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

namespace kiln::cmd {

#ifndef KILN_VERSION
#define KILN_VERSION "0.1.0"  // cmd/CMakeLists.txt passes the project's version
#endif
/// kiln's version, as `kiln --version`, `kiln version` and the man page print it.
inline constexpr const char* kKilnVersion = KILN_VERSION;

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitPolicy = 77;

using RegisterFn = void (*)(CLI::App& app, int* exit_code);

/// The table of subcommands: name → register function.
std::map<std::string, RegisterFn>& CommandTable();

/// Adds `fn` to the table at static-initialisation time.
struct CommandRegistration {
  CommandRegistration(const char* name, RegisterFn fn) { CommandTable()[name] = fn; }
};

#define KILN_REGISTER_COMMAND(name, fn) \
  static const ::kiln::cmd::CommandRegistration kiln_command_registration_##fn{name, fn}

}  // namespace kiln::cmd
