#include "executor/sandbox/foreign_exec.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "executor/sandbox/exec_target.h"

namespace kiln::sandbox {

std::string QemuMachine(const Platform& p) {
  const std::string& a = p.architecture;
  if (a == "amd64") return "x86_64";
  if (a == "386") return "i386";
  if (a == "arm64") return "aarch64";
  if (a == "arm") return "arm";
  if (a == "ppc64le") return "ppc64le";
  if (a == "s390x") return "s390x";
  if (a == "riscv64") return "riscv64";
  if (a == "mips64le") return "mips64el";
  if (a == "mips64") return "mips64";
  if (a == "loong64") return "loongarch64";
  return "";
}

namespace {

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

// A static qemu-user binary for `machine` in `dirs`; `dynamic` gets the first one that is not static.
std::string FindStaticQemu(const std::string& machine, const std::vector<std::string>& dirs, std::string* dynamic) {
  for (const char* suffix : {"-static", ""}) {
    for (const std::string& dir : dirs) {
      if (dir.empty() || dir[0] != '/') continue;  // a relative PATH entry would depend on the cwd
      std::string path = dir + "/qemu-" + machine + suffix;
      if (::access(path.c_str(), X_OK) != 0) continue;
      std::optional<internal::ExecTarget> t = internal::InspectExecutable(path);
      if (!t || t->script || t->machine.empty()) continue;
      if (t->interpreter.empty()) return path;
      if (dynamic->empty()) *dynamic = path;
    }
  }
  return "";
}

}  // namespace

ForeignExec ProbeForeignExec(const Platform& target, const Platform& host, const ForeignExecEnv& env) {
  using Way = ForeignExec::Way;
  ForeignExec out;
  const std::string plat = target.ToString();
  if (RunsNatively(target, host)) {
    out.way = Way::kNative;
    out.how = "RUN for " + plat + ": natively";
    return out;
  }
  const std::string qemu = QemuMachine(target);
  const std::string wanted = "qemu-" + qemu;
  const std::string& binfmt_dir = env.binfmt_dir;
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
        out.way = Way::kBinfmt;
        out.how = "RUN for " + plat + ": through " + h.interpreter + " (binfmt_misc, F flag)";
        break;
      }
      ::closedir(d);
    }
  }
  if (out.way == Way::kBinfmt) return out;
  if (qemu.empty()) {
    out.problem = "RUN for " + plat + " cannot run on this " + host.ToString() + " machine: qemu has no emulator for " +
                  target.architecture;
    return out;
  }
  std::string dynamic;
  std::string found = FindStaticQemu(qemu, env.qemu_dirs, &dynamic);
  const std::string why_not_binfmt = without_f.empty()
                                         ? "binfmt_misc has no handler"
                                         : "binfmt_misc's handler " + without_f + " lacks the F flag";
  if (!found.empty()) {
    out.way = Way::kQemuTraced;
    out.machine = qemu;
    out.qemu = found;
    out.how = "RUN for " + plat + ": through " + found + " under the ptrace tracer (" + why_not_binfmt + ")";
    return out;
  }
  std::string install = "install a static " + wanted + " (Debian and Ubuntu: `apt-get install qemu-user-static`; " +
                        "kiln looks in its PATH, /usr/bin and /usr/local/bin) and kiln runs the steps through it " +
                        "under its ptrace tracer";
  if (!dynamic.empty()) install += " (" + dynamic + " is dynamically linked, which the tracer cannot run)";
  if (!without_f.empty()) {
    out.problem = "RUN for " + plat + " needs emulation, and the binfmt_misc handler " + without_f +
                  " is registered without the F flag, so it cannot start inside the build's root; register it with "
                  "F (e.g. `update-binfmts` from qemu-user-static 7+, or the tonistiigi/binfmt image), or " + install;
  } else {
    out.problem = "RUN for " + plat + " needs emulation on this " + host.ToString() + " machine, and no " + wanted +
                  " handler is registered in binfmt_misc (" + binfmt_dir + "): " + install + ", register " +
                  "qemu-user-static on the node (a pod cannot), build this platform on a runner of its architecture "
                  "and merge with `kiln index create`, or keep RUN out of the stages built for it "
                  "(FROM --platform=$BUILDPLATFORM)";
  }
  return out;
}

}  // namespace kiln::sandbox
