// Work directories: each build's is locked for its life; the housekeeping removes only unlocked ones.
#include "executor/pipeline/work_dirs.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

bool Exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

TEST(WorkDirsTest, MissingWorkAreaIsNothingToClean) {
  testing::TempDir dir;
  Result<CleanReport> r = RemoveStaleWorkDirs(dir.path(), false);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->removed, 0);
  EXPECT_EQ(r->in_use, 0);
}

TEST(WorkDirsTest, ALiveBuildsDirectoryIsKeptAStaleOneRemoved) {
  testing::TempDir dir;
  Result<WorkDirLease> live = CreateWorkDir(dir.path());
  ASSERT_TRUE(live.ok()) << live.status().message();
  EXPECT_EQ(live->path.rfind(dir.path() + "/work/build-", 0), 0u) << live->path;
  // A build that died: its directory, with a subtree its owner locked itself out of.
  Result<WorkDirLease> dead = CreateWorkDir(dir.path());
  ASSERT_TRUE(dead.ok());
  std::string stale = dead->path;
  std::filesystem::create_directories(stale + "/rootfs/etc");
  std::ofstream(stale + "/rootfs/etc/secret") << "x";
  ::chmod((stale + "/rootfs/etc/secret").c_str(), 0);
  ::chmod((stale + "/rootfs/etc").c_str(), 0);
  dead->lock.Reset();  // what the kernel does when the process is killed

  Result<CleanReport> r = RemoveStaleWorkDirs(dir.path(), false);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->removed, 1);
  EXPECT_EQ(r->in_use, 1);
  EXPECT_FALSE(Exists(stale));
  EXPECT_TRUE(Exists(live->path));
  // Not kiln's: other names in the work area are left alone.
  std::filesystem::create_directories(dir.Sub("work/other"));
  live->lock.Reset();
  r = RemoveStaleWorkDirs(dir.path(), false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->removed, 1);
  EXPECT_FALSE(Exists(live->path));
  EXPECT_TRUE(Exists(dir.Sub("work/other")));
}

TEST(WorkDirsTest, TheLockIsHeldAcrossProcesses) {
  testing::TempDir dir;
  Result<WorkDirLease> live = CreateWorkDir(dir.path());
  ASSERT_TRUE(live.ok());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Result<CleanReport> r = RemoveStaleWorkDirs(dir.path(), false);
    ::_exit(r.ok() && r->removed == 0 && r->in_use == 1 ? 0 : 1);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_TRUE(Exists(live->path));
}

TEST(WorkDirsTest, KeptDirectoriesGoOnlyWhenCleanAsksForThem) {
  testing::TempDir dir;
  Result<WorkDirLease> kept = CreateWorkDir(dir.path(), /*keep=*/true);
  ASSERT_TRUE(kept.ok());
  std::string path = kept->path;
  kept->lock.Reset();  // the build is over
  Result<CleanReport> r = RemoveStaleWorkDirs(dir.path(), false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->removed, 0);
  EXPECT_EQ(r->kept, 1);
  EXPECT_TRUE(Exists(path));
  r = RemoveStaleWorkDirs(dir.path(), true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->removed, 1);
  EXPECT_FALSE(Exists(path));
}

}  // namespace
}  // namespace kiln::executor
