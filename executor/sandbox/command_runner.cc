#include "executor/sandbox/command_runner.h"

#include <string.h>

#include "core/path.h"

namespace kiln::sandbox {
namespace {

// "/a/./b/../c/" -> "/a/c"; ".." of the root stays at the root.
std::string CleanAbsolute(const std::string& path) {
  std::vector<std::string_view> parts;
  for (std::string_view c : PathComponents(path)) {
    if (c == ".") continue;
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(c);
  }
  std::string out;
  for (std::string_view c : parts) (out += '/') += c;
  return out.empty() ? "/" : out;
}

}  // namespace

std::string RunResult::Describe() const {
  if (signal != 0) {
    const char* name = ::strsignal(signal);
    return "killed by signal " + std::to_string(signal) + (name ? std::string(" (") + name + ")" : "");
  }
  return "exit code " + std::to_string(exit_code) + (failure_hint.empty() ? "" : " (" + failure_hint + ")");
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
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const StepMount& m = spec.mounts[i];
    std::string target = CleanAbsolute(m.target);
    if (m.target.empty() || m.target[0] != '/') return InvalidArgument("RUN --mount: target \"" + m.target + "\" is not absolute");
    if (target == "/") return InvalidArgument("RUN --mount: the target cannot be /");
    if (m.kind != StepMount::Kind::kTmpfs && (m.source.empty() || m.source[0] != '/')) {
      return InvalidArgument("RUN --mount on " + target + ": the source must be an absolute host path");
    }
    for (size_t j = 0; j < i; ++j) {
      std::string other = CleanAbsolute(spec.mounts[j].target);
      if (other == target) return InvalidArgument("RUN --mount: two mounts on " + target);
      auto below = [](const std::string& a, const std::string& b) {
        return a.size() > b.size() && a.compare(0, b.size(), b) == 0 && a[b.size()] == '/';
      };
      if (below(target, other) || below(other, target)) {
        return InvalidArgument("RUN --mount: " + (below(target, other) ? target + " lies below " + other
                                                                        : other + " lies below " + target) +
                               "; kiln does not nest mount targets");
      }
    }
  }
  if (!spec.emulation.machine.empty() && (spec.emulation.qemu.empty() || spec.emulation.qemu[0] != '/')) {
    return InvalidArgument("RUN for " + spec.emulation.machine + ": the qemu-user binary must be an absolute host path");
  }
  return OkStatus();
}

std::vector<std::string> ExecCandidates(const std::string& argv0, const std::vector<std::string>& env) {
  if (argv0.find('/') != std::string::npos) return {argv0};
  // Docker's default PATH, used when the step's environment has none (as runc does).
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const std::string& e : env) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);  // the last one wins, as with getenv on a merged env
  }
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find(':', pos);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(pos, end - pos);
    out.push_back((dir.empty() ? "." : dir) + "/" + argv0);
    pos = end + 1;
  }
  return out;
}

}  // namespace kiln::sandbox
