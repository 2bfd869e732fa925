// RUN --mount in the real sandbox, every tier: what the step sees at each target, where its writes
// go, and that the rootfs is left exactly as it was (the snapshot must never see a mount).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "executor/sandbox/linux_command_runner.h"
#include "tests/sandbox/sandbox_testing.h"
#include "tests/testing/temp_dir.h"

namespace kiln::sandbox {
namespace {

using kiln::testing::ReadFile;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;
using testing::ListTree;
using testing::RecordingWriter;
using Tier = LinuxCommandRunnerOptions::Tier;

struct Ran {
  Status status;
  RunResult result;
  std::string output;
};

class StepMountTest : public ::testing::TestWithParam<Tier> {
 protected:
  void SetUp() override {
    if (!testing::HaveBusybox()) GTEST_SKIP() << "needs Debian's busybox-static (/bin/busybox)";
    if (GetParam() == Tier::kChroot && ::geteuid() != 0) GTEST_SKIP() << "the chroot tier needs root";
    LinuxCommandRunnerOptions o;
    o.tier = GetParam();
    o.tracer_binary = KILN_BINARY;
    ::mkdir(dir_.Sub("work").c_str(), 0700);
    o.scratch_dir = dir_.Sub("work");
    auto r = LinuxCommandRunner::Create(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    runner_ = std::move(r).value();
    rootfs_ = dir_.Sub("rootfs");
    testing::MakeBusyboxRootfs(rootfs_);
  }

  bool tier1() const { return GetParam() == Tier::kUserNamespace; }

  Ran Sh(const std::string& script, std::vector<StepMount> mounts) {
    RunSpec s;
    s.rootfs = rootfs_;
    s.argv = {"/bin/sh", "-c", script};
    s.env = {"PATH=/bin"};
    s.mounts = std::move(mounts);
    RecordingWriter w;
    s.output = &w;
    auto r = runner_->Run(s);
    Ran out;
    out.status = r.status();
    if (r.ok()) out.result = *r;
    out.output = w.data();
    return out;
  }

  static StepMount Dir(std::string source, std::string target, StepMount::Writes writes) {
    StepMount m;
    m.kind = StepMount::Kind::kDirectory;
    m.source = std::move(source);
    m.target = std::move(target);
    m.writes = writes;
    return m;
  }

  // The work directory holds nothing after a run: no private copies, no held-aside content.
  std::string WorkLeftovers() {
    std::string out;
    kiln::testing::RunShell("find " + dir_.Sub("work") + " -mindepth 1", &out);
    return out;
  }

  TempDir dir_;
  std::string rootfs_;
  std::unique_ptr<LinuxCommandRunner> runner_;
};

TEST_P(StepMountTest, CacheWritesPersistAndTheRootfsIsUntouched) {
  WriteFile(dir_.Sub("cache/old"), "from the last build\n");
  auto before = ListTree(rootfs_);
  Ran r = Sh("cat /var/cache/pkgs/old; echo new > /var/cache/pkgs/new",
             {Dir(dir_.Sub("cache"), "/var/cache/pkgs", StepMount::Writes::kKept)});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(r.result.success()) << r.output;
  EXPECT_EQ(r.output, "from the last build\n");
  EXPECT_EQ(ReadFile(dir_.Sub("cache/new")), "new\n");
  EXPECT_EQ(before, ListTree(rootfs_));  // /var and /var/cache were made for the step and removed again
  EXPECT_EQ(WorkLeftovers(), "");
}

TEST_P(StepMountTest, WhatTheImageHasAtTheTargetIsHiddenThenBackExactly) {
  WriteFile(rootfs_ + "/data/from-image", "image\n");
  WriteFile(dir_.Sub("cache/from-cache"), "cache\n");
  auto before = ListTree(rootfs_);
  Ran r = Sh("ls /data; echo step > /data/written", {Dir(dir_.Sub("cache"), "/data", StepMount::Writes::kKept)});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "from-cache\n");
  EXPECT_EQ(before, ListTree(rootfs_));  // same inodes, times and content
  EXPECT_EQ(ReadFile(dir_.Sub("cache/written")), "step\n");
}

TEST_P(StepMountTest, ReadOnlyBindNeverChangesTheSource) {
  WriteFile(dir_.Sub("ctx/go.mod"), "module x\n");
  auto before_src = ListTree(dir_.Sub("ctx"));
  auto before = ListTree(rootfs_);
  Ran r = Sh("cat /src/go.mod; echo changed 2>/dev/null > /src/go.mod; echo rc=$?",
             {Dir(dir_.Sub("ctx"), "/src", StepMount::Writes::kReadOnly)});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  // Tier 1 refuses the write; tiers 2 and 3 cannot, and throw it away instead.
  EXPECT_EQ(r.output, std::string("module x\nrc=") + (tier1() ? "1" : "0") + "\n");
  EXPECT_EQ(before_src, ListTree(dir_.Sub("ctx")));
  EXPECT_EQ(before, ListTree(rootfs_));
  EXPECT_EQ(WorkLeftovers(), "");
}

TEST_P(StepMountTest, WritableBindDiscardsTheStepsWrites) {
  WriteFile(dir_.Sub("ctx/a"), "a\n");
  auto before_src = ListTree(dir_.Sub("ctx"));
  auto before = ListTree(rootfs_);
  Ran r = Sh("echo b > /src/b && rm /src/a && ls /src", {Dir(dir_.Sub("ctx"), "/src", StepMount::Writes::kDiscarded)});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "b\n");
  EXPECT_EQ(before_src, ListTree(dir_.Sub("ctx")));
  EXPECT_EQ(before, ListTree(rootfs_));
  EXPECT_EQ(WorkLeftovers(), "");
}

TEST_P(StepMountTest, SecretFileIsVisibleToTheStepOnly) {
  WriteFile(dir_.Sub("secrets/token"), "s3cr3t-value", 0400);
  StepMount m;
  m.kind = StepMount::Kind::kFile;
  m.source = dir_.Sub("secrets/token");
  m.target = "/run/secrets/token";
  auto before = ListTree(rootfs_);
  Ran r = Sh("stat -c %a /run/secrets/token; cat /run/secrets/token", {m});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "400\ns3cr3t-value");
  EXPECT_EQ(before, ListTree(rootfs_));
  Ran without = Sh("cat /run/secrets/token", {});
  ASSERT_TRUE(without.status.ok());
  EXPECT_FALSE(without.result.success());
  std::string hits;
  kiln::testing::RunShell("grep -rl s3cr3t-value " + rootfs_ + " " + dir_.Sub("work") + " ; true", &hits);
  EXPECT_EQ(hits, "");
}

TEST_P(StepMountTest, TmpfsStartsEmptyAndLeavesNothing) {
  WriteFile(rootfs_ + "/scratch/from-image", "image\n");
  auto before = ListTree(rootfs_);
  StepMount m;
  m.kind = StepMount::Kind::kTmpfs;
  m.target = "/scratch";
  m.writes = StepMount::Writes::kDiscarded;
  Ran r = Sh("ls -A /scratch; echo x > /scratch/y && cat /scratch/y", {m});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "x\n");
  EXPECT_EQ(before, ListTree(rootfs_));
}

TEST_P(StepMountTest, AFailedStepIsCleanedUpToo) {
  auto before = ListTree(rootfs_);
  ::mkdir(dir_.Sub("cache").c_str(), 0755);
  Ran r = Sh("echo partial > /c/p; exit 3", {Dir(dir_.Sub("cache"), "/c", StepMount::Writes::kKept)});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.result.exit_code, 3);
  EXPECT_EQ(before, ListTree(rootfs_));
  EXPECT_EQ(ReadFile(dir_.Sub("cache/p")), "partial\n");
}

TEST_P(StepMountTest, TargetsResolveThroughSymlinksInsideTheRootfs) {
  ::mkdir((rootfs_ + "/run").c_str(), 0755);
  ::mkdir((rootfs_ + "/var").c_str(), 0755);
  ASSERT_EQ(::symlink("/run", (rootfs_ + "/var/run").c_str()), 0);  // absolute: means the rootfs's /run
  WriteFile(dir_.Sub("cache/x"), "x\n");
  auto before = ListTree(rootfs_);
  Ran r = Sh("cat /var/run/c/x && cat /run/c/x", {Dir(dir_.Sub("cache"), "/var/run/c", StepMount::Writes::kKept)});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "x\nx\n");
  EXPECT_EQ(before, ListTree(rootfs_));
}

TEST_P(StepMountTest, AStepThatSwapsTheParentForASymlinkCannotRedirectKiln) {
  if (tier1()) GTEST_SKIP() << "tier 1 mounts: the step cannot move a mount point (EBUSY)";
  WriteFile(dir_.Sub("outside/sentinel"), "keep\n");
  ::mkdir(dir_.Sub("cache").c_str(), 0755);
  Ran r = Sh("mv /m /m2 && ln -s " + dir_.Sub("outside") + " /m && echo swapped",
             {Dir(dir_.Sub("cache"), "/m/c", StepMount::Writes::kKept)});
  EXPECT_FALSE(r.status.ok());  // kiln does not follow the link to take the mount back
  EXPECT_NE(r.status.message().find("replaced the directory around it"), std::string::npos) << r.status.ToString();
  std::string out;
  kiln::testing::RunShell("ls -A " + dir_.Sub("outside"), &out);
  EXPECT_EQ(out, "sentinel\n");
  EXPECT_EQ(ReadFile(dir_.Sub("outside/sentinel")), "keep\n");
}

TEST_P(StepMountTest, BadSpecsAreRefused) {
  ::mkdir(dir_.Sub("c").c_str(), 0755);
  Ran nested = Sh("true", {Dir(dir_.Sub("c"), "/a", StepMount::Writes::kKept),
                           Dir(dir_.Sub("c"), "/a/b", StepMount::Writes::kKept)});
  EXPECT_EQ(nested.status.code(), ErrorCode::kInvalidArgument);
  Ran root = Sh("true", {Dir(dir_.Sub("c"), "/", StepMount::Writes::kKept)});
  EXPECT_EQ(root.status.code(), ErrorCode::kInvalidArgument);
  Ran inside = Sh("true", {Dir(rootfs_ + "/bin", "/x", StepMount::Writes::kReadOnly)});
  EXPECT_EQ(inside.status.code(), ErrorCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Tiers, StepMountTest,
                         ::testing::Values(Tier::kUserNamespace, Tier::kChroot, Tier::kPtrace),
                         [](const auto& info) {
                           switch (info.param) {
                             case Tier::kUserNamespace: return "UserNamespace";
                             case Tier::kChroot: return "Chroot";
                             default: return "Ptrace";
                           }
                         });

}  // namespace
}  // namespace kiln::sandbox
