// RUN for another architecture on a machine whose binfmt_misc has no qemu handler (this one, and
// every default Kubernetes pod): kiln runs the steps through Debian's static qemu-aarch64 under its
// ptrace tracer. The base is a real arm64 busybox (Debian's busybox-static:arm64), the builds push to
// a real registry and the images are read back by skopeo and umoci.
//
// Skipped, with the reason, on a machine that is not amd64, without qemu-user-static, where the
// arm64 busybox cannot be downloaded, or where a binfmt_misc handler would take the steps instead.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "core/image_model.h"
#include "executor/sandbox/foreign_exec.h"
#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::RunKiln;
using testing::RunShell;

constexpr char kTracedLine[] =
    "RUN for linux/arm64: through /usr/bin/qemu-aarch64-static under the ptrace tracer (binfmt_misc has no handler)";

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

class ForeignBuildTest : public testing::BuildEnvSuite {
 protected:
  static void SetUpTestSuite() {
    BuildEnvSuite::SetUpTestSuite();
    if (env_ == nullptr) return;
    if (Platform::Host().architecture != "amd64") {
      skip_ = "these tests emulate arm64 on amd64; this machine is " + Platform::Host().ToString();
      return;
    }
    if (testing::QemuAarch64() != "/usr/bin/qemu-aarch64-static") {
      skip_ = "needs Debian's qemu-user-static (/usr/bin/qemu-aarch64-static; scripts/setup.sh installs it)";
      return;
    }
    sandbox::ForeignExec way = sandbox::ProbeForeignExec(*Platform::Parse("linux/arm64"), Platform::Host());
    if (way.way != sandbox::ForeignExec::Way::kQemuTraced) {
      skip_ = "RUN for arm64 does not go through the tracer here: " + way.how + way.problem;
      return;
    }
    std::string why;
    if (testing::Arm64Busybox(&why).empty()) {
      skip_ = why;
      return;
    }
    testing::PushToRegistry("oci:" + testing::Arm64BusyboxLayout(env_->kiln()) + ":latest", env_->reg(), "bb:arm64");
    // A two-platform base, as Docker Hub's busybox is: the amd64 busybox and the arm64 one.
    auto idx = RunKiln(env_->kiln(), "index create --insecure " + env_->Ref("bb:multi") + " " +
                                         env_->Ref("busybox:latest") + " " + env_->Ref("bb:arm64"));
    if (idx.rc != 0) {
      skip_ = "kiln index create of the base failed: " + idx.err;  // IndexCreateTest covers that command
      return;
    }
  }
  void SetUp() override {
    BuildEnvSuite::SetUp();
    if (!skip_.empty()) GTEST_SKIP() << skip_;
  }

  // The files of `repo_tag`'s image for `arch` (a single image, or the index's child for it).
  static std::string Unpack(const std::string& repo_tag, const std::string& arch) {
    std::string dir = env_->NewDir("read-" + arch), out;
    int rc = RunShell("skopeo --override-os linux --override-arch " + arch + " copy " +
                          testing::SkopeoSourceFlags(env_->reg()) + " docker://" + env_->Ref(repo_tag) + " oci:" + dir +
                          "/layout:img && umoci raw unpack --image " + dir + "/layout:img " + dir + "/rootfs",
                      &out);
    EXPECT_EQ(rc, 0) << out;
    return dir + "/rootfs";
  }

  inline static std::string skip_;
};

// The step's programs, its nested execs (the shell running uname), a #! script whose interpreter is
// an arm64 ELF and argv[0] are the guest's; the files it reads and writes are the rootfs's.
TEST_F(ForeignBuildTest, RunOnArm64GoesThroughQemuUnderTheTracer) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/bb:arm64\n"
                                    "COPY hello.sh /usr/local/bin/hello\n"
                                    "RUN uname -m > /arch.txt && echo \"$0\" > /argv0.txt && "
                                    "chmod 0755 /usr/local/bin/hello && hello world && "
                                    "if test -e /usr/bin/qemu-aarch64-static; then echo host > /seen.txt; "
                                    "else echo rootfs > /seen.txt; fi\n"
                                    "RUN [\"/bin/sh\", \"-c\", \"cat /proc/cpuinfo > /dev/null && uname -m >> /arch.txt\"]\n"},
                                   {"hello.sh", "#!/bin/sh\necho \"$0 $1 $(uname -m)\" > /script.txt\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("foreign/run:1") + " --custom-platform linux/arm64");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Count(r.err, kTracedLine), 1u) << r.err;  // once for the stage, not per RUN

  testing::ReadBack img = env_->Read("foreign/run:1");
  EXPECT_EQ(img.config["architecture"], "arm64");
  EXPECT_EQ(testing::ReadFile(img.rootfs + "/arch.txt"), "aarch64\naarch64\n");
  EXPECT_EQ(testing::ReadFile(img.rootfs + "/argv0.txt"), "/bin/sh\n");
  EXPECT_EQ(testing::ReadFile(img.rootfs + "/script.txt"), "/usr/local/bin/hello world aarch64\n");
  EXPECT_EQ(testing::ReadFile(img.rootfs + "/seen.txt"), "rootfs\n");
  // The RUN layers hold what the steps wrote, and nothing of qemu or the tracer.
  std::vector<std::string> first = img.LayerEntries(img.manifest["layers"].size() - 2);
  bool has_arch = false;
  for (const std::string& e : first) {
    has_arch = has_arch || e == "arch.txt" || e == "./arch.txt";
    EXPECT_EQ(e.find("qemu"), std::string::npos) << e;
  }
  EXPECT_TRUE(has_arch) << ::testing::PrintToString(first);
}

// Two platforms in one build: amd64 natively, arm64 through qemu; each index child has its own files.
TEST_F(ForeignBuildTest, TwoPlatformBuildHasEachPlatformsOwnFiles) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/bb:multi\n"
                                    "ARG TARGETARCH\n"
                                    "RUN uname -m > /arch.txt && echo \"$TARGETARCH\" > /targetarch.txt\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("foreign/two:1") + " --custom-platform linux/amd64,linux/arm64");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Count(r.err, kTracedLine), 1u) << r.err;
  EXPECT_EQ(r.err.find("RUN for linux/amd64"), std::string::npos) << r.err;  // this machine's own: nothing to say

  std::string raw;
  ASSERT_EQ(RunShell("skopeo inspect --raw " + testing::SkopeoSourceFlags(env_->reg()) + " docker://" +
                         env_->Ref("foreign/two:1"),
                     &raw),
            0)
      << raw;
  json idx = json::parse(raw);
  ASSERT_EQ(idx["manifests"].size(), 2u);
  for (const auto& [arch, uname] : {std::pair<std::string, std::string>{"amd64", "x86_64"}, {"arm64", "aarch64"}}) {
    std::string rootfs = Unpack("foreign/two:1", arch);
    EXPECT_EQ(testing::ReadFile(rootfs + "/arch.txt"), uname + "\n") << arch;
    EXPECT_EQ(testing::ReadFile(rootfs + "/targetarch.txt"), arch + "\n") << arch;
    EXPECT_EQ(testing::Stat(rootfs, "/bin/busybox").type, 'f') << arch;
  }
}

// A stage with no RUN needs no emulation: no sandbox, no qemu, nothing said about either.
TEST_F(ForeignBuildTest, StageWithoutRunNeedsNoEmulation) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/bb:arm64\nCOPY a.txt /a.txt\nENV X=1\n"}, {"a.txt", "a\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("foreign/norun:1") + " --custom-platform linux/arm64");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err.find("RUN for linux/arm64"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("RUN sandbox"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("qemu"), std::string::npos) << r.err;
  testing::ReadBack img = env_->Read("foreign/norun:1");
  EXPECT_EQ(img.config["architecture"], "arm64");
  EXPECT_EQ(testing::ReadFile(img.rootfs + "/a.txt"), "a\n");
}

// A tier the user forced cannot take the step to the tracer: the build says so at the RUN line.
TEST_F(ForeignBuildTest, AForcedTierOtherThanPtraceIsRefusedWithTheWayOut) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/bb:arm64\nRUN uname -m > /arch.txt\n"}});
  auto r = env_->Build(ctx, "--no-push --custom-platform linux/arm64 --sandbox chroot");
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("Dockerfile:2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("needs the ptrace sandbox"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--sandbox=auto or --sandbox=ptrace"), std::string::npos) << r.err;
  // Forced to ptrace, it runs.
  auto traced = env_->Build(ctx, "--destination " + env_->Ref("foreign/ptrace:1") + " --custom-platform linux/arm64 "
                                 "--sandbox ptrace");
  ASSERT_EQ(traced.rc, 0) << traced.err;
  EXPECT_EQ(testing::ReadFile(env_->Read("foreign/ptrace:1").rootfs + "/arch.txt"), "aarch64\n");
}

}  // namespace
}  // namespace kiln
