#include "executor/sandbox/foreign_exec.h"

#include <dirent.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace kiln::sandbox {
namespace {

// qemu's name for an OCI architecture ("" when qemu has none).
std::string QemuArch(const Platform& p) {
  const std::string& a = p.architecture;
  if (a == "amd64") return "x86_64";
  if (a == "386") return "i386";
  if (a == "arm64") return "aarch64";
  if (a == "arm") return "arm";
  if (a == "ppc64le") return "ppc64le";
  if (a == "s390x") return "s390x";
  if (a == "riscv64") return "riscv64";
  if (a == "mips64le") return "mips64el";
  return "";
}

// Architectures a host runs without emulation: its own, and 32-bit x86 on amd64 / 32-bit ARM on
// arm64 hardware that keeps AArch32 (assumed, as Docker does for linux/arm on arm64).
bool RunsNatively(const Platform& target, const Platform& host) {
  if (target.architecture == host.architecture) return true;
  if (host.architecture == "amd64" && target.architecture == "386") return true;
  if (host.architecture == "arm64" && target.architecture == "arm") return true;
  return false;
}

struct Handler {
  bool enabled = false;
  std::string interpreter;
  std::string flags;
};

Handler ReadHandler(const std::string& path) {
  Handler h;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line == "enabled") h.enabled = true;
    if (line.rfind("interpreter ", 0) == 0) h.interpreter = line.substr(12);
    if (line.rfind("flags: ", 0) == 0) h.flags = line.substr(7);
  }
  return h;
}

}  // namespace

ForeignExec ProbeForeignExec(const Platform& target, const Platform& host, const std::string& binfmt_dir) {
  ForeignExec out;
  if (RunsNatively(target, host)) {
    out.native = true;
    out.how = "natively";
    return out;
  }
  std::string qemu = QemuArch(target);
  std::string wanted = "qemu-" + qemu;
  std::string without_f;
  if (!qemu.empty()) {
    if (DIR* d = ::opendir(binfmt_dir.c_str())) {
      while (struct dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == ".." || name == "register" || name == "status") continue;
        Handler h = ReadHandler(binfmt_dir + "/" + name);
        std::string base = h.interpreter.substr(h.interpreter.rfind('/') + 1);
        // "qemu-aarch64", "qemu-aarch64-static", but not "qemu-aarch64_be".
        if (!h.enabled || base.rfind(wanted, 0) != 0) continue;
        std::string rest = base.substr(wanted.size());
        if (!rest.empty() && rest[0] != '-') continue;
        if (h.flags.find('F') == std::string::npos) {
          without_f = h.interpreter;
          continue;
        }
        out.emulated = true;
        out.how = "through " + h.interpreter + " (binfmt_misc, F flag)";
        break;
      }
      ::closedir(d);
    }
  }
  if (out.emulated) return out;
  std::string plat = target.ToString();
  if (qemu.empty()) {
    out.problem = "RUN for " + plat + " cannot run on this " + host.ToString() + " machine: qemu has no emulator for " +
                  target.architecture;
  } else if (!without_f.empty()) {
    out.problem = "RUN for " + plat + " needs emulation, and the binfmt_misc handler " + without_f +
                  " is registered without the F flag, so it cannot start inside the build's root; register it with "
                  "F (e.g. `update-binfmts` from qemu-user-static 7+, or the tonistiigi/binfmt image)";
  } else {
    out.problem = "RUN for " + plat + " needs emulation on this " + host.ToString() + " machine, and no " + wanted +
                  " handler is registered in binfmt_misc (" + binfmt_dir + "). Register qemu-user-static on the node "
                  "(a pod cannot), build this platform on a runner of its architecture and merge with `kiln index "
                  "create`, or keep RUN out of the stages built for it (FROM --platform=$BUILDPLATFORM)";
  }
  return out;
}

}  // namespace kiln::sandbox
