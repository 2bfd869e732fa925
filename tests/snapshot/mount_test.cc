// Tests that need mounts: a tmpfs mount point inside the rootfs, and a filesystem with one-second
// timestamps where a same-size rewrite in the same second leaves the whole stat tuple unchanged.
// Each test moves the process into its own mount namespace first, so nothing leaks to the host;
// they skip when mounting is not permitted.
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "snapshot/diff.h"
#include "tests/testing/temp_dir.h"

namespace kiln::snapshot {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using kiln::testing::RunShell;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;

// Returns an empty string on success, or why mounting is unavailable.
std::string PrivateMountNamespace() {
  if (::unshare(CLONE_NEWNS) != 0) return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return std::string("making / private: ") + std::strerror(errno);
  }
  return "";
}

Baseline MustTake(const std::string& root, const WalkOptions& options = {}) {
  auto b = Baseline::Take(root, options);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return std::move(b).value();
}

ChangeSet MustDiff(const Baseline& a, const Baseline& b) {
  auto c = Diff(a, b);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : ChangeSet{};
}

TEST(MountTest, MountPointsAreNeitherIndexedNorDescended) {
  if (std::string why = PrivateMountNamespace(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  std::string root = tmp.Sub("root");
  WriteFile(root + "/etc/hostname", "box\n");
  std::filesystem::create_directories(root + "/mnt/cache");
  if (::mount("tmpfs", (root + "/mnt/cache").c_str(), "tmpfs", 0, "size=1m") != 0) {
    if (errno == EPERM) GTEST_SKIP() << "mount: EPERM";
    FAIL() << "mount tmpfs: " << std::strerror(errno);
  }
  WriteFile(root + "/mnt/cache/inside", "x");
  // A bind mount from the same filesystem keeps st_dev; it must still be seen as a mount point.
  WriteFile(tmp.Sub("outside/secret"), "s");
  std::filesystem::create_directories(root + "/bound");
  ASSERT_EQ(::mount(tmp.Sub("outside").c_str(), (root + "/bound").c_str(), nullptr, MS_BIND, nullptr), 0);

  Baseline before = MustTake(root);
  EXPECT_THAT(before.mount_points(), ElementsAre("bound", "mnt/cache"));
  EXPECT_THAT(before.Paths(), ElementsAre("etc", "etc/hostname", "mnt"));

  WriteFile(root + "/mnt/cache/more", "y");
  WriteFile(tmp.Sub("outside/more"), "y");
  EXPECT_TRUE(MustDiff(before, MustTake(root)).empty());

  WriteFile(root + "/etc/hostname", "other\n");
  ChangeSet c = MustDiff(before, MustTake(root));
  EXPECT_THAT(c.added_or_modified, ElementsAre("etc", "etc/hostname"));
  ::umount2((root + "/bound").c_str(), MNT_DETACH);
  ::umount2((root + "/mnt/cache").c_str(), MNT_DETACH);
}

int64_t NowNanos() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

TEST(MountTest, RacySameSizeRewriteInTheSameSecond) {
  if (std::string why = PrivateMountNamespace(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  std::string image = tmp.Sub("fs.img"), root = tmp.Sub("root");
  std::filesystem::create_directories(root);
  std::string out;
  // ext2 with 128-byte inodes stores whole seconds only: the case the fingerprints exist for.
  if (RunShell("truncate -s 4M " + image + " && mkfs.ext2 -q -F -I 128 " + image, &out) != 0) {
    GTEST_SKIP() << "mkfs.ext2 unavailable: " << out;
  }
  if (RunShell("mount -o loop " + image + " " + root, &out) != 0) GTEST_SKIP() << "loop mount failed: " << out;

  bool raced = false;
  for (int attempt = 0; attempt < 5 && !raced; ++attempt) {
    // Start just after a second boundary so write, walk and rewrite share one second.
    int64_t now = NowNanos();
    ::usleep(static_cast<useconds_t>((1000000000LL - now % 1000000000LL) / 1000 + 20000));
    WriteFile(root + "/d/f", "aaaa");
    WriteFile(root + "/d/g", "gggg");
    Baseline before = MustTake(root);
    EXPECT_GE(before.racy_count(), 2u);
    WriteFile(root + "/d/f", "bbbb");
    Baseline after = MustTake(root);
    auto b = before.Find("d/f"), a = after.Find("d/f");
    ASSERT_TRUE(a && b);
    if (a->mtime_ns != b->mtime_ns || a->ctime_ns != b->ctime_ns) continue;  // crossed a second
    raced = true;
    ASSERT_EQ(a->size, b->size);
    ASSERT_EQ(a->inode, b->inode);
    ChangeSet c = MustDiff(before, after);
    EXPECT_THAT(c.added_or_modified, ElementsAre("d", "d/f"));  // d as the parent of a change
    EXPECT_THAT(c.deleted, IsEmpty());
  }
  EXPECT_TRUE(raced) << "never managed to rewrite within one second";
  ::umount2(root.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace kiln::snapshot
