// ProbeForeignExec on a stand-in binfmt_misc directory and stand-in qemu directories: native
// architectures, a usable qemu handler (enabled, F flag), one without F, none; then a static qemu-user
// binary that the ptrace tracer can run, a dynamic one it cannot, and an architecture qemu does not
// emulate.
#include "executor/sandbox/foreign_exec.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace kiln::sandbox {
namespace {

using Way = ForeignExec::Way;

Platform P(const std::string& arch) { return Platform{"linux", arch, "", "", {}}; }

// binfmt_misc at `binfmt`, qemu looked for in `qemu_dirs` only.
ForeignExecEnv Env(const std::string& binfmt, std::vector<std::string> qemu_dirs = {}) {
  ForeignExecEnv e;
  e.binfmt_dir = binfmt;
  e.qemu_dirs = std::move(qemu_dirs);
  return e;
}

ForeignExec Probe(const std::string& target, const std::string& host, const ForeignExecEnv& env) {
  return ProbeForeignExec(P(target), P(host), env);
}

void Handler(const testing::TempDir& dir, const std::string& name, const std::string& interpreter,
             const std::string& flags, bool enabled = true) {
  testing::WriteFile(dir.Sub(name), std::string(enabled ? "enabled\n" : "disabled\n") + "interpreter " + interpreter +
                                        "\nflags: " + flags + "\noffset 0\nmagic 7f454c46\n");
}

TEST(ForeignExecTest, NativeArchitecturesNeedNothing) {
  testing::TempDir empty;
  EXPECT_EQ(Probe("amd64", "amd64", Env(empty.path())).way, Way::kNative);
  EXPECT_EQ(Probe("386", "amd64", Env(empty.path())).way, Way::kNative);
  ForeignExec arm = Probe("arm", "arm64", Env(empty.path()));
  EXPECT_EQ(arm.way, Way::kNative);
  EXPECT_EQ(arm.how, "RUN for linux/arm: natively");
  ForeignExec arm64 = Probe("arm64", "amd64", Env(empty.path()));
  EXPECT_EQ(arm64.way, Way::kNone);
  EXPECT_EQ(arm64.how, "");
  EXPECT_NE(arm64.problem.find("no qemu-aarch64 handler is registered"), std::string::npos) << arm64.problem;
  EXPECT_NE(arm64.problem.find("apt-get install qemu-user-static"), std::string::npos) << arm64.problem;
  EXPECT_NE(arm64.problem.find("kiln index create"), std::string::npos) << arm64.problem;
}

TEST(ForeignExecTest, AnEnabledHandlerWithTheFFlagIsUsed) {
  testing::TempDir dir, qemu;
  testing::WriteFile(qemu.Sub("qemu-aarch64-static"), testing::ReadFile("/bin/busybox"), 0755);  // never asked
  testing::WriteFile(dir.Sub("status"), "enabled\n");
  Handler(dir, "qemu-aarch64_be", "/usr/bin/qemu-aarch64_be-static", "F");  // not arm64's
  Handler(dir, "qemu-riscv64", "/usr/bin/qemu-riscv64-static", "F", /*enabled=*/false);
  Handler(dir, "qemu-aarch64", "/usr/bin/qemu-aarch64-static", "OCF");
  ForeignExec e = Probe("arm64", "amd64", Env(dir.path(), {qemu.path()}));
  EXPECT_EQ(e.way, Way::kBinfmt);
  EXPECT_EQ(e.how, "RUN for linux/arm64: through /usr/bin/qemu-aarch64-static (binfmt_misc, F flag)");
  EXPECT_EQ(e.qemu, "");  // the kernel runs it; no emulation in the RunSpec
  EXPECT_EQ(Probe("riscv64", "amd64", Env(dir.path())).way, Way::kNone);  // disabled
}

TEST(ForeignExecTest, WithoutTheFFlagOrWithoutQemuItSaysWhy) {
  testing::TempDir dir;
  Handler(dir, "qemu-s390x", "/usr/libexec/qemu-binfmt/s390x-binfmt-P", "P");
  Handler(dir, "qemu-ppc64le", "/usr/bin/qemu-ppc64le", "");
  ForeignExec ppc = Probe("ppc64le", "amd64", Env(dir.path()));
  EXPECT_EQ(ppc.way, Way::kNone);
  EXPECT_NE(ppc.problem.find("without the F flag"), std::string::npos) << ppc.problem;
  EXPECT_NE(ppc.problem.find("qemu-user-static"), std::string::npos) << ppc.problem;
  ForeignExec wasm = Probe("wasm", "amd64", Env(dir.path()));
  EXPECT_NE(wasm.problem.find("qemu has no emulator for wasm"), std::string::npos) << wasm.problem;
}

// Without a usable handler, a static qemu-user binary is the way: under the ptrace tracer.
TEST(ForeignExecTest, AStaticQemuUserRunsTheStepsUnderTheTracer) {
  if (::access("/bin/busybox", R_OK) != 0) GTEST_SKIP() << "needs Debian's busybox-static (a static program)";
  testing::TempDir binfmt, first, second;
  // Stand-ins: Debian's static busybox is a static ELF for this machine, as qemu-user-static is.
  testing::WriteFile(second.Sub("qemu-aarch64-static"), testing::ReadFile("/bin/busybox"), 0755);
  testing::WriteFile(first.Sub("qemu-aarch64"), testing::ReadFile("/bin/busybox"), 0755);
  ForeignExec e = Probe("arm64", "amd64", Env(binfmt.path(), {"relative/dir", first.path(), second.path()}));
  EXPECT_EQ(e.way, Way::kQemuTraced);
  EXPECT_EQ(e.machine, "aarch64");
  // -static is preferred in every directory before the plain name.
  EXPECT_EQ(e.qemu, second.Sub("qemu-aarch64-static"));
  EXPECT_EQ(e.how, "RUN for linux/arm64: through " + second.Sub("qemu-aarch64-static") +
                       " under the ptrace tracer (binfmt_misc has no handler)");
  ForeignExec plain = Probe("arm64", "amd64", Env(binfmt.path(), {first.path()}));
  EXPECT_EQ(plain.qemu, first.Sub("qemu-aarch64"));

  // A handler without F is no use inside the build's root, but the tracer still is.
  Handler(binfmt, "qemu-aarch64", "/usr/bin/qemu-aarch64", "");
  ForeignExec no_f = Probe("arm64", "amd64", Env(binfmt.path(), {second.path()}));
  EXPECT_EQ(no_f.way, Way::kQemuTraced);
  EXPECT_NE(no_f.how.find("(binfmt_misc's handler /usr/bin/qemu-aarch64 lacks the F flag)"), std::string::npos)
      << no_f.how;
}

TEST(ForeignExecTest, ADynamicQemuOrAScriptIsNotTaken) {
  if (::access("/bin/true", R_OK) != 0) GTEST_SKIP() << "needs /bin/true";
  testing::TempDir binfmt, dir;
  testing::WriteFile(dir.Sub("qemu-riscv64"), testing::ReadFile("/bin/true"), 0755);  // dynamically linked
  testing::WriteFile(dir.Sub("qemu-riscv64-static"), "#!/bin/sh\nexec qemu-riscv64 \"$@\"\n", 0755);
  ForeignExec e = Probe("riscv64", "amd64", Env(binfmt.path(), {dir.path()}));
  EXPECT_EQ(e.way, Way::kNone);
  EXPECT_NE(e.problem.find(dir.Sub("qemu-riscv64") + " is dynamically linked"), std::string::npos) << e.problem;
  // Not executable: not there.
  testing::TempDir other;
  testing::WriteFile(other.Sub("qemu-riscv64-static"), testing::ReadFile("/bin/busybox"), 0644);
  EXPECT_EQ(Probe("riscv64", "amd64", Env(binfmt.path(), {other.path()})).way, Way::kNone);
}

TEST(ForeignExecTest, QemuNamesOfOciArchitectures) {
  EXPECT_EQ(QemuMachine(P("arm64")), "aarch64");
  EXPECT_EQ(QemuMachine(P("amd64")), "x86_64");
  EXPECT_EQ(QemuMachine(P("arm")), "arm");
  EXPECT_EQ(QemuMachine(P("mips64le")), "mips64el");
  EXPECT_EQ(QemuMachine(P("wasm")), "");
}

}  // namespace
}  // namespace kiln::sandbox
