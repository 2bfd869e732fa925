// ProbeForeignExec on a stand-in binfmt_misc directory: native architectures, a usable qemu handler
// (enabled, F flag), one without F, none, and an architecture qemu does not emulate.
#include "executor/sandbox/foreign_exec.h"

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace kiln::sandbox {
namespace {

Platform P(const std::string& arch) { return Platform{"linux", arch, "", "", {}}; }

void Handler(const testing::TempDir& dir, const std::string& name, const std::string& interpreter,
             const std::string& flags, bool enabled = true) {
  testing::WriteFile(dir.Sub(name), std::string(enabled ? "enabled\n" : "disabled\n") + "interpreter " + interpreter +
                                        "\nflags: " + flags + "\noffset 0\nmagic 7f454c46\n");
}

TEST(ForeignExecTest, NativeArchitecturesNeedNothing) {
  testing::TempDir empty;
  EXPECT_TRUE(ProbeForeignExec(P("amd64"), P("amd64"), empty.path()).native);
  EXPECT_TRUE(ProbeForeignExec(P("386"), P("amd64"), empty.path()).native);
  EXPECT_TRUE(ProbeForeignExec(P("arm"), P("arm64"), empty.path()).native);
  ForeignExec arm64 = ProbeForeignExec(P("arm64"), P("amd64"), empty.path());
  EXPECT_FALSE(arm64.native);
  EXPECT_FALSE(arm64.emulated);
  EXPECT_NE(arm64.problem.find("no qemu-aarch64 handler is registered"), std::string::npos) << arm64.problem;
  EXPECT_NE(arm64.problem.find("kiln index create"), std::string::npos) << arm64.problem;
}

TEST(ForeignExecTest, AnEnabledHandlerWithTheFFlagIsUsed) {
  testing::TempDir dir;
  testing::WriteFile(dir.Sub("status"), "enabled\n");
  Handler(dir, "qemu-aarch64_be", "/usr/bin/qemu-aarch64_be-static", "F");  // not arm64's
  Handler(dir, "qemu-riscv64", "/usr/bin/qemu-riscv64-static", "F", /*enabled=*/false);
  Handler(dir, "qemu-aarch64", "/usr/bin/qemu-aarch64-static", "OCF");
  ForeignExec e = ProbeForeignExec(P("arm64"), P("amd64"), dir.path());
  EXPECT_TRUE(e.emulated);
  EXPECT_EQ(e.how, "through /usr/bin/qemu-aarch64-static (binfmt_misc, F flag)");
  EXPECT_FALSE(ProbeForeignExec(P("riscv64"), P("amd64"), dir.path()).emulated);  // disabled
}

TEST(ForeignExecTest, WithoutTheFFlagOrWithoutQemuItSaysWhy) {
  testing::TempDir dir;
  Handler(dir, "qemu-s390x", "/usr/libexec/qemu-binfmt/s390x-binfmt-P", "P");
  Handler(dir, "qemu-ppc64le", "/usr/bin/qemu-ppc64le", "");
  ForeignExec ppc = ProbeForeignExec(P("ppc64le"), P("amd64"), dir.path());
  EXPECT_FALSE(ppc.emulated);
  EXPECT_NE(ppc.problem.find("without the F flag"), std::string::npos) << ppc.problem;
  ForeignExec wasm = ProbeForeignExec(P("wasm"), P("amd64"), dir.path());
  EXPECT_NE(wasm.problem.find("qemu has no emulator for wasm"), std::string::npos) << wasm.problem;
}

}  // namespace
}  // namespace kiln::sandbox
