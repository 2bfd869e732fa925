// What an execve would run, read from the file as the kernel reads it: a #! script (interpreter and
// its one optional argument) or an ELF program with or without a PT_INTERP loader. Used by the ptrace
// sandbox, which must start interpreters and loaders from the image rather than the host. Internal.
#pragma once

#include <optional>
#include <string>

namespace kiln::sandbox::internal {

struct ExecTarget {
  bool script = false;
  std::string interpreter;  // #! interpreter, or the ELF's PT_INTERP ("" for a static program)
  std::string script_arg;   // the optional #! argument
};

/// Reads the start of `host_path`; nullopt when it cannot be opened or is a #! line with no
/// interpreter (execve then reports why). A format it does not know gives an empty interpreter.
std::optional<ExecTarget> InspectExecutable(const std::string& host_path);

}  // namespace kiln::sandbox::internal
