// Whether this machine can run a RUN step's programs built for another architecture, and how.
//
// The kernel runs foreign binaries only through binfmt_misc: a handler (qemu-user-static's, e.g.
// /usr/bin/qemu-aarch64-static) registered for the ELF machine, with the F ("fix binary") flag so
// that the interpreter was opened at registration and works inside a chroot or user namespace where
// its path does not exist. A default pod cannot register one (it needs CAP_SYS_ADMIN in the host's
// namespaces); the node or a privileged DaemonSet does (`docker run --privileged tonistiigi/binfmt`,
// or Debian's qemu-user-static + binfmt-support on the host).
#pragma once

#include <string>

#include "core/image_model.h"

namespace kiln::sandbox {

struct ForeignExec {
  bool native = false;  ///< the architecture is this machine's own (or one it runs natively)
  bool emulated = false;  ///< a usable binfmt_misc handler is registered
  /// For the log: "natively", "through /usr/bin/qemu-aarch64-static (binfmt_misc, F flag)".
  std::string how;
  /// When neither: what is missing and what to do, for the error at the RUN line.
  std::string problem;
};

/// Looks at `binfmt_dir` (normally /proc/sys/fs/binfmt_misc) for a handler of `target`'s
/// architecture. `host` is this machine (Platform::Host()).
ForeignExec ProbeForeignExec(const Platform& target, const Platform& host,
                             const std::string& binfmt_dir = "/proc/sys/fs/binfmt_misc");

}  // namespace kiln::sandbox
