// The subcommands of the kiln executable. Each Register* adds one CLI11 subcommand whose callback
// stores the exit code in *exit_code. Exit codes: 0 success, 1 build/operation failed, 2 usage error.
#pragma once

#include <CLI/CLI.hpp>

namespace kiln::cmd {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

void RegisterVersion(CLI::App& app, int* exit_code);
void RegisterPack(CLI::App& app, int* exit_code);

}  // namespace kiln::cmd
