// What an execve would run, read from the file as the kernel reads it: a #! script (interpreter and
// its one optional argument) or an ELF program with or without a PT_INTERP loader. Used by the ptrace
// sandbox, which must start interpreters and loaders from the image rather than the host. Internal.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kiln::sandbox::internal {

struct ExecTarget {
  bool script = false;
  std::string interpreter;  // #! interpreter, or the ELF's PT_INTERP ("" for a static program)
  std::string script_arg;   // the optional #! argument
  std::string machine;      // an ELF's machine by qemu's name (ElfMachineName); "" for anything else
};

/// Reads the start of `host_path`; nullopt when it cannot be opened or is a #! line with no
/// interpreter (execve then reports why). A format it does not know gives an empty interpreter.
std::optional<ExecTarget> InspectExecutable(const std::string& host_path);

/// qemu-user's name for the machine of an ELF header (e.g. "x86_64", "aarch64", "arm", "ppc64le",
/// "s390x", "riscv64", "mips64el"), from e_ident's class and byte order and e_machine; "" when `head`
/// (at least its first 20 bytes) is no ELF header or the machine is one qemu-user has no name for here.
std::string ElfMachineName(const unsigned char* head, size_t size);

/// One entry of a rebuilt argument vector: new text, or the guest's own argv[from_guest].
struct ArgvSlot {
  std::string text;
  int from_guest = -1;
  bool operator==(const ArgvSlot&) const = default;
};

/// The argument vector that runs a guest program through qemu-user, as binfmt_misc would but with
/// everything explicit: `qemu` (a host path), `-L /` (no interpreter prefix: the tracer already puts
/// the guest's "/" at the rootfs), `-0` and the guest's argv[0] (what the program sees as its name),
/// the program's path as the guest named it ("./" put before a relative one, which qemu could
/// otherwise read as an option), then the guest's argv[1..argc-1]. With argc 0 the program's path is
/// its argv[0].
std::vector<ArgvSlot> EmulatedArgv(const std::string& qemu, const std::string& program, size_t guest_argc);

}  // namespace kiln::sandbox::internal
