// RunSpec::Emulation in the real sandbox: an arm64 rootfs (Debian's busybox-static:arm64) whose
// programs run through Debian's static qemu-aarch64 under the ptrace tracer, from a runner that picked
// its tier automatically (the user-namespace one, as root on CI) and from one forced to ptrace; and
// the refusals (a forced tier, another USER).
#include <unistd.h>

#include <gtest/gtest.h>

#include "executor/sandbox/linux_command_runner.h"
#include "tests/sandbox/sandbox_testing.h"
#include "tests/testing/base_images.h"
#include "tests/testing/temp_dir.h"

namespace kiln::sandbox {
namespace {

using kiln::testing::ReadFile;
using kiln::testing::WriteFile;

class EmulationTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if !defined(__x86_64__)
    GTEST_SKIP() << "the ptrace tracer is x86_64 only";
#endif
    qemu_ = kiln::testing::QemuAarch64();
    if (qemu_.empty()) GTEST_SKIP() << "needs Debian's qemu-user-static (qemu-aarch64-static)";
    std::string why, busybox = kiln::testing::Arm64Busybox(&why);
    if (busybox.empty()) GTEST_SKIP() << why;
    rootfs_ = dir_.Sub("rootfs");
    WriteFile(rootfs_ + "/bin/busybox", ReadFile(busybox), 0755);
    for (const char* applet : {"sh", "echo", "uname", "cat", "ls", "test", "true", "id", "readlink"}) {
      ::symlink("busybox", (rootfs_ + "/bin/" + applet).c_str());
    }
  }

  std::unique_ptr<LinuxCommandRunner> Runner(LinuxCommandRunnerOptions::Tier tier) {
    LinuxCommandRunnerOptions o;
    o.tier = tier;
    o.tracer_binary = KILN_BINARY;
    auto r = LinuxCommandRunner::Create(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  RunSpec Spec(const std::string& script) {
    RunSpec s;
    s.rootfs = rootfs_;
    s.argv = {"/bin/sh", "-c", script};
    s.env = {"PATH=/bin"};
    s.uid = ::geteuid();
    s.gid = ::getegid();
    s.emulation = {"aarch64", qemu_};
    return s;
  }

  struct Ran {
    Status status;
    RunResult result;
    std::string output;
  };
  Ran Run(CommandRunner& runner, RunSpec spec) {
    testing::RecordingWriter w;
    spec.output = &w;
    auto r = runner.Run(spec);
    Ran out;
    out.status = r.status();
    if (r.ok()) out.result = *r;
    out.output = w.data();
    return out;
  }

  kiln::testing::TempDir dir_;
  std::string rootfs_, qemu_;
};

TEST_F(EmulationTest, AnAutomaticRunnerRunsAnEmulatedStepUnderTheTracer) {
  auto runner = Runner(LinuxCommandRunnerOptions::Tier::kAuto);
  ASSERT_NE(runner, nullptr);
  WriteFile(rootfs_ + "/bin/hello", "#!/bin/sh\necho \"script $0 $1 $(uname -m)\"\n", 0755);
  WriteFile(rootfs_ + "/etc/marker", "in the rootfs\n");
  // A program of this machine inside the arm64 rootfs goes to the kernel, not to qemu.
  WriteFile(rootfs_ + "/opt/x86/busybox", ReadFile("/bin/busybox"), 0755);
  Ran r = Run(*runner, Spec("uname -m; echo \"$0\"; hello there; cat /etc/marker; cd /bin && ./uname -m; "
                            "/opt/x86/busybox uname -m; test -e " + qemu_ + " && echo host-visible || echo host-hidden"));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(r.result.success()) << r.output;
  EXPECT_EQ(r.output, "aarch64\n/bin/sh\nscript /bin/hello there aarch64\nin the rootfs\naarch64\nx86_64\nhost-hidden\n");
  EXPECT_TRUE(r.result.creator_ids_not_on_disk);  // the ptrace tier ran it

  // The same step without the emulation: the kernel cannot run the arm64 shell here.
  RunSpec plain = Spec("true");
  plain.emulation = {};
  Ran no = Run(*runner, plain);
  EXPECT_FALSE(no.status.ok() && no.result.success()) << no.output;
}

// Real images are dynamically linked: qemu loads the guest's PT_INTERP (/lib/ld-linux-aarch64.so.1)
// and glibc loads its libraries, all through the tracer into the rootfs.
TEST_F(EmulationTest, DynamicallyLinkedProgramsOfADebianUserland) {
  std::string why, userland = kiln::testing::Arm64DebianUserland(&why);
  if (userland.empty()) GTEST_SKIP() << why;
  auto runner = Runner(LinuxCommandRunnerOptions::Tier::kAuto);
  ASSERT_NE(runner, nullptr);
  RunSpec spec = Spec("uname -m; echo \"$0\"; readlink -f /proc/self/exe; ls /lib/ld-linux-aarch64.so.1; "
                      "printf '#!/bin/dash\\necho script $0 $1\\n' > /tmp/s && chmod +x /tmp/s && /tmp/s x");
  spec.rootfs = userland;
  spec.env = {"PATH=/usr/bin:/bin"};
  Ran r = Run(*runner, spec);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "aarch64\n/bin/sh\n/bin/readlink\n/lib/ld-linux-aarch64.so.1\nscript /tmp/s x\n") << r.output;
  EXPECT_TRUE(r.result.success());
}

TEST_F(EmulationTest, ARunnerForcedToPtraceRunsItToo) {
  auto runner = Runner(LinuxCommandRunnerOptions::Tier::kPtrace);
  ASSERT_NE(runner, nullptr);
  Ran r = Run(*runner, Spec("uname -m; readlink /proc/self/exe"));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "aarch64\n/bin/busybox\n");
}

TEST_F(EmulationTest, AnotherForcedTierOrAnotherUserIsRefusedWithTheReason) {
  if (::geteuid() != 0) GTEST_SKIP() << "the chroot tier needs root";
  auto chroot = Runner(LinuxCommandRunnerOptions::Tier::kChroot);
  ASSERT_NE(chroot, nullptr);
  Ran r = Run(*chroot, Spec("uname -m"));
  EXPECT_EQ(r.status.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status.message().find("needs the ptrace sandbox"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("--sandbox=auto or --sandbox=ptrace"), std::string::npos) << r.status.message();

  auto runner = Runner(LinuxCommandRunnerOptions::Tier::kAuto);
  ASSERT_NE(runner, nullptr);
  RunSpec other = Spec("id -u");
  other.uid = ::geteuid() + 1000;
  Ran o = Run(*runner, other);
  EXPECT_EQ(o.status.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(o.status.message().find("programs for aarch64 run through qemu under the ptrace tracer"), std::string::npos)
      << o.status.message();
}

}  // namespace
}  // namespace kiln::sandbox
