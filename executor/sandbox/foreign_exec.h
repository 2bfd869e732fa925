// Whether this machine can run a RUN step's programs built for another architecture, and how: the
// one place that decides it, once per stage, before the stage's first RUN.
//
// In order of preference:
//  1. natively: the architecture is this machine's (or one its CPU runs, 386 on amd64).
//  2. binfmt_misc: the kernel runs foreign binaries through a registered handler (qemu-user-static's,
//     e.g. /usr/bin/qemu-aarch64-static) with the F ("fix binary") flag, so that the interpreter was
//     opened at registration and works inside a chroot or user namespace where its path does not
//     exist. A default pod cannot register one (it needs CAP_SYS_ADMIN in the host's namespaces); the
//     node or a privileged DaemonSet does (`docker run --privileged tonistiigi/binfmt`, or Debian's
//     qemu-user-static + binfmt-support on the host).
//  3. qemu under the ptrace tracer: without a usable handler, a static qemu-user binary on this
//     machine (Debian's qemu-user-static: /usr/bin/qemu-aarch64-static) runs the step's programs;
//     the ptrace sandbox's tracer hands every exec of a foreign ELF to it (RunSpec::Emulation). Steps
//     then run in the ptrace tier: as kiln's own uid, slower (every exec starts qemu; every path
//     system call stops for the tracer).
//  4. none: the problem says what is missing and what to do.
// A stage without RUN never asks.
#pragma once

#include <string>
#include <vector>

#include "core/image_model.h"

namespace kiln::sandbox {

struct ForeignExec {
  enum class Way { kNative, kBinfmt, kQemuTraced, kNone };
  Way way = Way::kNone;
  /// kQemuTraced: qemu's name for the target's ELF machine ("aarch64") and the absolute host path of
  /// the static qemu-user binary (the two halves of RunSpec::Emulation).
  std::string machine;
  std::string qemu;
  /// For the build log, one line: "RUN for linux/arm64: natively", "... through
  /// /usr/bin/qemu-aarch64-static (binfmt_misc, F flag)", "... through /usr/bin/qemu-aarch64-static
  /// under the ptrace tracer (binfmt_misc has no handler)". Empty for kNone.
  std::string how;
  /// kNone: what is missing and what to do, for the error at the RUN line.
  std::string problem;
};

/// Where to look, normally the machine's own places.
struct ForeignExecEnv {
  std::string binfmt_dir = "/proc/sys/fs/binfmt_misc";
  /// Directories searched, in order, for qemu-MACHINE-static and then qemu-MACHINE; only a static
  /// binary (no PT_INTERP) is taken, since the tracer would look a dynamic one's libraries up in the
  /// image. The build passes kiln's PATH followed by /usr/bin and /usr/local/bin.
  std::vector<std::string> qemu_dirs = {"/usr/bin", "/usr/local/bin"};
};

/// Decides how RUN steps for `target` run on `host` (Platform::Host()). Reads `env.binfmt_dir` and
/// looks at the files in `env.qemu_dirs`; nothing else. Thread-safe.
ForeignExec ProbeForeignExec(const Platform& target, const Platform& host, const ForeignExecEnv& env = {});

/// qemu's name for an OCI architecture ("arm64" → "aarch64", "amd64" → "x86_64"); "" when qemu has none.
std::string QemuMachine(const Platform& p);

}  // namespace kiln::sandbox
