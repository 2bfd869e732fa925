#include "executor/sandbox/fake_command_runner.h"

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace kiln::sandbox {
namespace {

using kiln::testing::ReadFile;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;

RunSpec SpecIn(const std::string& rootfs, std::string cmd) {
  RunSpec s;
  s.rootfs = rootfs;
  s.argv = {"/bin/sh", "-c", std::move(cmd)};
  s.env = {"PATH=/usr/bin:/bin"};
  return s;
}

TEST(FakeCommandRunnerTest, RecordsSpecsAndPlaysTheScriptInOrder) {
  TempDir dir;
  FakeCommandRunner fake;
  FakeRun first;
  first.exit_code = 0;
  first.output = "installing\n";
  fake.Push(first);
  FakeRun second;
  second.exit_code = 3;
  fake.Push(second);

  StringWriter out;
  RunSpec a = SpecIn(dir.path(), "apt-get install -y curl");
  a.output = &out;
  a.uid = 1000;
  auto r1 = fake.Run(a);
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(r1->success());
  EXPECT_EQ(out.data(), "installing\n");

  auto r2 = fake.Run(SpecIn(dir.path(), "false"));
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->exit_code, 3);
  EXPECT_EQ(r2->Describe(), "exit code 3");

  auto r3 = fake.Run(SpecIn(dir.path(), "true"));  // script used up: success
  ASSERT_TRUE(r3.ok());
  EXPECT_TRUE(r3->success());

  ASSERT_EQ(fake.specs().size(), 3u);
  EXPECT_EQ(fake.specs()[0].argv, (std::vector<std::string>{"/bin/sh", "-c", "apt-get install -y curl"}));
  EXPECT_EQ(fake.specs()[0].uid, 1000u);
  EXPECT_EQ(fake.specs()[0].output, nullptr);
  EXPECT_EQ(fake.specs()[1].argv[2], "false");
  EXPECT_EQ(fake.pending(), 0u);
}

TEST(FakeCommandRunnerTest, SignalsAndErrors) {
  TempDir dir;
  FakeCommandRunner fake;
  FakeRun killed;
  killed.signal = 9;
  fake.Push(killed);
  FakeRun broken;
  broken.error = FailedPrecondition("no sandbox");
  fake.Push(broken);
  auto r = fake.Run(SpecIn(dir.path(), "x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->signal, 9);
  EXPECT_EQ(r->exit_code, 137);
  EXPECT_NE(r->Describe().find("killed by signal 9"), std::string::npos);
  auto e = fake.Run(SpecIn(dir.path(), "y"));
  EXPECT_EQ(e.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(fake.specs().size(), 2u);  // failed runs are recorded too
}

TEST(FakeCommandRunnerTest, AppliesFileChangesToTheRootfs) {
  TempDir dir;
  WriteFile(dir.Sub("etc/old.conf"), "old");
  WriteFile(dir.Sub("var/cache/a/b"), "cache");
  FakeCommandRunner fake;
  FakeRun run;
  run.changes = {FakeFileChange::Write("/usr/bin/tool", "#!/bin/sh\n", 0755),
                 FakeFileChange::Mkdir("srv/data", 0700),
                 FakeFileChange::Symlink("usr/bin/t", "tool"),
                 FakeFileChange::Remove("etc/old.conf"),
                 FakeFileChange::Remove("var/cache"),
                 FakeFileChange::Remove("not/there")};
  fake.Push(run);
  auto r = fake.Run(SpecIn(dir.path(), "make install"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(dir.Sub("usr/bin/tool")), "#!/bin/sh\n");
  struct stat st;
  ASSERT_EQ(::stat(dir.Sub("usr/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat(dir.Sub("srv/data").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(std::filesystem::read_symlink(dir.Sub("usr/bin/t")), "tool");
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("etc/old.conf")));
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("var/cache")));
}

TEST(FakeCommandRunnerTest, RefusesChangesOutsideTheRootfsAndInvalidSpecs) {
  TempDir dir;
  FakeCommandRunner fake;
  FakeRun run;
  run.changes = {FakeFileChange::Write("../escape", "x")};
  fake.Push(run);
  auto r = fake.Run(SpecIn(dir.Sub("rootfs"), "x"));
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);

  RunSpec bad = SpecIn(dir.path(), "x");
  bad.env = {"NOEQUALS"};
  EXPECT_EQ(fake.Run(bad).status().code(), ErrorCode::kInvalidArgument);
  bad = SpecIn("relative/root", "x");
  EXPECT_EQ(fake.Run(bad).status().code(), ErrorCode::kInvalidArgument);
  bad = SpecIn(dir.path(), "x");
  bad.argv.clear();
  EXPECT_EQ(fake.Run(bad).status().code(), ErrorCode::kInvalidArgument);
  bad = SpecIn(dir.path(), "x");
  bad.workdir = "work";
  EXPECT_EQ(fake.Run(bad).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace kiln::sandbox
