// RootfsTouches is the part of the sandbox that decides what the snapshot after RUN sees.
#include "executor/sandbox/rootfs_touches.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "tests/sandbox/sandbox_testing.h"
#include "tests/testing/temp_dir.h"

namespace kiln::sandbox::internal {
namespace {

using kiln::testing::ReadFile;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;
using Outcome = RootfsTouches::Outcome;

TEST(RootfsTouchesTest, CreatedEntriesGoAwayAndDirectoryTimesComeBack) {
  TempDir dir;
  ::mkdir(dir.Sub("etc").c_str(), 0755);
  struct timespec old[2] = {{100, 0}, {200, 0}};
  ::utimensat(AT_FDCWD, dir.path().c_str(), old, 0);
  ::utimensat(AT_FDCWD, dir.Sub("etc").c_str(), old, 0);
  auto before = sandbox::testing::ListTree(dir.path());

  auto t = RootfsTouches::Open(dir.path());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*(*t)->EnsureDir("", "proc", 0555), Outcome::kCreated);
  EXPECT_EQ(*(*t)->EnsureDir("", "etc", 0755), Outcome::kExisted);
  EXPECT_EQ(*(*t)->EnsureFile("etc", "hosts"), Outcome::kCreated);
  EXPECT_EQ(*(*t)->EnsureDir("", "dev", 0755), Outcome::kCreated);
  struct stat st;
  ASSERT_EQ(::stat(dir.Sub("proc").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  ASSERT_TRUE((*t)->Undo().ok());
  EXPECT_EQ(before, sandbox::testing::ListTree(dir.path()));
}

TEST(RootfsTouchesTest, WhatTheStepFilledIsKeptAndItsDirectoryChangesStay) {
  TempDir dir;
  auto t = RootfsTouches::Open(dir.path());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*(*t)->EnsureDir("", "etc", 0755), Outcome::kCreated);
  WriteFile(dir.Sub("etc/app.conf"), "the step's");  // as if written by the step
  ASSERT_TRUE((*t)->Undo().ok());
  EXPECT_EQ(ReadFile(dir.Sub("etc/app.conf")), "the step's");
}

TEST(RootfsTouchesTest, SwappedFilesAreRestoredInPlaceWhateverTheStepDid) {
  TempDir dir;
  WriteFile(dir.Sub("etc/resolv.conf"), "nameserver 192.0.2.1\n", 0640);
  WriteFile(dir.Sub("etc/hosts"), "127.0.0.1 image\n", 0644);
  struct timespec old[2] = {{1000, 1}, {2000, 2}};
  ::utimensat(AT_FDCWD, dir.Sub("etc/resolv.conf").c_str(), old, 0);
  auto before = sandbox::testing::ListTree(dir.path());

  auto t = RootfsTouches::Open(dir.path());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*(*t)->SwapFileContent("etc", "resolv.conf", "nameserver 10.0.0.1\n"), Outcome::kExisted);
  EXPECT_EQ(*(*t)->SwapFileContent("etc", "hosts", "host's hosts\n"), Outcome::kExisted);
  EXPECT_EQ(ReadFile(dir.Sub("etc/resolv.conf")), "nameserver 10.0.0.1\n");
  // The "step" replaces one file with a new inode and edits the other.
  ::unlink(dir.Sub("etc/hosts").c_str());
  WriteFile(dir.Sub("etc/hosts"), "rewritten by the step\n");
  WriteFile(dir.Sub("etc/resolv.conf"), "edited\n", 0600);
  ASSERT_TRUE((*t)->Undo().ok());

  auto after = sandbox::testing::ListTree(dir.path());
  EXPECT_EQ(before["etc/resolv.conf"], after["etc/resolv.conf"]);  // same inode, content, mode, times
  EXPECT_EQ(ReadFile(dir.Sub("etc/hosts")), "127.0.0.1 image\n");
  struct stat st;
  ASSERT_EQ(::stat(dir.Sub("etc/hosts").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST(RootfsTouchesTest, MissingSwappedFileIsCreatedThenRemoved) {
  TempDir dir;
  auto before = sandbox::testing::ListTree(dir.path());
  auto t = RootfsTouches::Open(dir.path());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*(*t)->EnsureDir("", "etc", 0755), Outcome::kCreated);
  EXPECT_EQ(*(*t)->SwapFileContent("etc", "resolv.conf", "nameserver 10.0.0.1\n"), Outcome::kCreated);
  EXPECT_EQ(ReadFile(dir.Sub("etc/resolv.conf")), "nameserver 10.0.0.1\n");
  ASSERT_TRUE((*t)->Undo().ok());
  EXPECT_EQ(before, sandbox::testing::ListTree(dir.path()));
}

TEST(RootfsTouchesTest, SymlinksAreUnusableNotFollowed) {
  TempDir dir;
  ::mkdir(dir.Sub("rootfs").c_str(), 0755);
  ::mkdir(dir.Sub("outside").c_str(), 0755);
  ::symlink(dir.Sub("outside").c_str(), dir.Sub("rootfs/etc").c_str());
  ::symlink("/etc/shadow", dir.Sub("rootfs/proc").c_str());
  auto t = RootfsTouches::Open(dir.Sub("rootfs"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*(*t)->EnsureDir("", "etc", 0755), Outcome::kUnusable);
  EXPECT_EQ(*(*t)->EnsureFile("etc", "hosts"), Outcome::kUnusable);
  EXPECT_EQ(*(*t)->SwapFileContent("etc", "resolv.conf", "x"), Outcome::kUnusable);
  EXPECT_EQ(*(*t)->EnsureDir("", "proc", 0555), Outcome::kUnusable);
  ASSERT_TRUE((*t)->Undo().ok());
  std::string out;
  kiln::testing::RunShell("ls -A " + dir.Sub("outside"), &out);
  EXPECT_EQ(out, "");
}

TEST(RootfsTouchesTest, DeviceNodes) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod needs CAP_MKNOD";
  TempDir dir;
  auto before = sandbox::testing::ListTree(dir.path());
  auto t = RootfsTouches::Open(dir.path());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*(*t)->EnsureDir("", "dev", 0755), Outcome::kCreated);
  struct stat host;
  ASSERT_EQ(::stat("/dev/null", &host), 0);
  EXPECT_EQ(*(*t)->EnsureCharDevice("dev", "null", host.st_rdev), Outcome::kCreated);
  struct stat st;
  ASSERT_EQ(::stat(dir.Sub("dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, host.st_rdev);
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  ASSERT_TRUE((*t)->Undo().ok());
  EXPECT_EQ(before, sandbox::testing::ListTree(dir.path()));
}

}  // namespace
}  // namespace kiln::sandbox::internal
