#include "executor/sandbox/command_runner.h"

#include <string.h>

namespace kiln::sandbox {

std::string RunResult::Describe() const {
  if (signal != 0) {
    const char* name = ::strsignal(signal);
    return "killed by signal " + std::to_string(signal) + (name ? std::string(" (") + name + ")" : "");
  }
  return "exit code " + std::to_string(exit_code);
}

Status ValidateRunSpec(const RunSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) return InvalidArgument("RUN: empty command");
  if (spec.rootfs.empty() || spec.rootfs[0] != '/') {
    return InvalidArgument("RUN: rootfs must be an absolute path, got \"" + spec.rootfs + "\"");
  }
  if (spec.workdir.empty() || spec.workdir[0] != '/') {
    return InvalidArgument("RUN: working directory must be absolute, got \"" + spec.workdir + "\"");
  }
  for (const std::string& e : spec.env) {
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("RUN: environment entry \"" + e.substr(0, e.find('=')) +
                             "\" is not of the form KEY=VALUE");
    }
  }
  for (const std::string& a : spec.argv) {
    if (a.find('\0') != std::string::npos) return InvalidArgument("RUN: argument contains a NUL byte");
  }
  if (spec.hostname.size() > 64) return InvalidArgument("RUN: host name longer than 64 bytes");
  return OkStatus();
}

}  // namespace kiln::sandbox
