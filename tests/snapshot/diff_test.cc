// Diff on real directory trees: each test builds a tree, takes a baseline, makes one kind of change
// and states the exact change set.
#include "snapshot/diff.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace kiln::snapshot {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;

class DiffTest : public ::testing::Test {
 protected:
  DiffTest() : root_(tmp_.Sub("root")) { std::filesystem::create_directories(root_); }

  std::string P(const std::string& rel) const { return root_ + "/" + rel; }
  void Mkdir(const std::string& rel) { std::filesystem::create_directories(P(rel)); }
  void Write(const std::string& rel, const std::string& content) { WriteFile(P(rel), content); }

  Baseline Take() {
    auto b = Baseline::Take(root_, options_);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return std::move(b).value();
  }
  // Takes `before` now; Changes() then walks again and diffs.
  void Before() { before_.emplace(Take()); }
  ChangeSet Changes() {
    Baseline after = Take();
    auto c = Diff(*before_, after);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : ChangeSet{};
  }

  TempDir tmp_;
  std::string root_;
  WalkOptions options_;
  std::optional<Baseline> before_;
};

TEST_F(DiffTest, UnchangedTreeIsEmpty) {
  Write("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  Write("usr/bin/tool", "#!/bin/sh\n");
  ASSERT_EQ(::symlink("tool", P("usr/bin/alias").c_str()), 0);
  Before();
  ChangeSet c = Changes();
  EXPECT_TRUE(c.empty());
  EXPECT_THAT(c.added_or_modified, IsEmpty());
}

TEST_F(DiffTest, AddFileReportsItAndItsParents) {
  Write("a/b/old", "x");
  Write("top", "x");
  Before();
  Write("a/b/new", "hello");
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, ElementsAre("a", "a/b", "a/b/new"));
  EXPECT_THAT(c.deleted, IsEmpty());
  EXPECT_THAT(c.opaque_dirs, IsEmpty());
}

TEST_F(DiffTest, AddedDirectoryBringsItsWholeTree) {
  Write("keep", "x");
  Before();
  Write("new/x/y", "1");
  Write("new/z", "2");
  EXPECT_THAT(Changes().added_or_modified, ElementsAre("new", "new/x", "new/x/y", "new/z"));
}

TEST_F(DiffTest, ModifyContentSameSize) {
  Write("d/f", "aaaa");
  Write("d/g", "zzzz");
  Before();
  Write("d/f", "bbbb");
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, ElementsAre("d", "d/f"));
  EXPECT_THAT(c.deleted, IsEmpty());
}

TEST_F(DiffTest, Chmod) {
  Write("f", "x");
  Write("g", "x");
  Before();
  ASSERT_EQ(::chmod(P("f").c_str(), 04755), 0);
  EXPECT_THAT(Changes().added_or_modified, ElementsAre("f"));
}

TEST_F(DiffTest, Chown) {
  Write("f", "x");
  Write("g", "x");
  Before();
  ASSERT_EQ(::lchown(P("f").c_str(), 1234, 5678), 0) << "tests run as root";
  EXPECT_THAT(Changes().added_or_modified, ElementsAre("f"));
}

TEST_F(DiffTest, XattrOnFile) {
  Write("f", "x");
  Write("g", "x");
  Before();
  if (::setxattr(P("f").c_str(), "user.kiln", "1", 1, 0) != 0) GTEST_SKIP() << "no user xattrs here";
  EXPECT_THAT(Changes().added_or_modified, ElementsAre("f"));
}

TEST_F(DiffTest, XattrOnDirectory) {
  Write("d/f", "x");
  Before();
  if (::setxattr(P("d").c_str(), "user.kiln", "1", 1, 0) != 0) GTEST_SKIP() << "no user xattrs here";
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, ElementsAre("d"));
  // And a second change of its value only.
  before_.emplace(Take());
  ASSERT_EQ(::setxattr(P("d").c_str(), "user.kiln", "2", 1, 0), 0);
  EXPECT_THAT(Changes().added_or_modified, ElementsAre("d"));
}

TEST_F(DiffTest, DirectoryChmodAndChown) {
  Write("d/f", "x");
  Write("e/f", "x");
  Before();
  ASSERT_EQ(::chmod(P("d").c_str(), 0700), 0);
  ASSERT_EQ(::lchown(P("e").c_str(), 7, 7), 0);
  EXPECT_THAT(Changes().added_or_modified, ElementsAre("d", "e"));
}

TEST_F(DiffTest, RenameOver) {
  Write("d/a", "old");
  Write("d/b", "new");
  Before();
  ASSERT_EQ(::rename(P("d/b").c_str(), P("d/a").c_str()), 0);
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, ElementsAre("d", "d/a"));
  EXPECT_THAT(c.deleted, ElementsAre("d/b"));
}

TEST_F(DiffTest, RenameOverWithIdenticalStat) {
  // Same size, mode and (forced) mtime: only the inode tells the replacement apart.
  Write("a", "1111");
  Write("b", "2222");
  struct timespec times[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, P("a").c_str(), times, 0), 0);
  ASSERT_EQ(::utimensat(AT_FDCWD, P("b").c_str(), times, 0), 0);
  Before();
  ASSERT_EQ(::rename(P("b").c_str(), P("a").c_str()), 0);
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, ElementsAre("a"));
  EXPECT_THAT(c.deleted, ElementsAre("b"));
}

TEST_F(DiffTest, DeleteFile) {
  Write("d/f", "x");
  Write("d/g", "x");
  Before();
  ASSERT_EQ(::unlink(P("d/f").c_str()), 0);
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, ElementsAre("d"));
  EXPECT_THAT(c.deleted, ElementsAre("d/f"));
  EXPECT_THAT(c.opaque_dirs, IsEmpty());
}

TEST_F(DiffTest, DeleteDirTreeReportsOnlyTheTop) {
  Write("a/b/c/d", "x");
  Write("a/b/e", "x");
  Write("a/f", "x");
  Write("keep", "x");
  Before();
  std::filesystem::remove_all(P("a"));
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, IsEmpty());
  EXPECT_THAT(c.deleted, ElementsAre("a"));
}

TEST_F(DiffTest, ReplaceDirWithFile) {
  Write("x/d/child", "x");
  Write("x/d/sub/grandchild", "x");
  Before();
  std::filesystem::remove_all(P("x/d"));
  Write("x/d", "now a file");
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, ElementsAre("x", "x/d"));
  EXPECT_THAT(c.deleted, IsEmpty());
  EXPECT_THAT(c.opaque_dirs, IsEmpty());
}

TEST_F(DiffTest, ReplaceFileWithDir) {
  Write("f", "a file");
  Before();
  ASSERT_EQ(::unlink(P("f").c_str()), 0);
  Write("f/inside", "x");
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, ElementsAre("f", "f/inside"));
  EXPECT_THAT(c.opaque_dirs, ElementsAre("f"));
  EXPECT_THAT(c.deleted, IsEmpty());
}

TEST_F(DiffTest, ReplaceDirWithNewDirIsOpaque) {
  Write("d/old1", "x");
  Write("d/sub/old2", "x");
  Write("d/same-name", "x");
  Before();
  // Keep the old directory alive until the new one exists so the new one gets a different inode.
  ASSERT_EQ(::rename(P("d").c_str(), P("d.old").c_str()), 0);
  Write("d/new", "y");
  Write("d/same-name", "x");
  std::filesystem::remove_all(P("d.old"));
  ChangeSet c = Changes();
  EXPECT_THAT(c.opaque_dirs, ElementsAre("d"));
  EXPECT_THAT(c.added_or_modified, ElementsAre("d", "d/new", "d/same-name"));
  EXPECT_THAT(c.deleted, IsEmpty());
}

TEST_F(DiffTest, SymlinkRetarget) {
  Write("a", "x");
  Write("b", "x");
  ASSERT_EQ(::symlink("a", P("l").c_str()), 0);
  Before();
  ASSERT_EQ(::symlink("b", P("l.tmp").c_str()), 0);
  ASSERT_EQ(::rename(P("l.tmp").c_str(), P("l").c_str()), 0);
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, ElementsAre("l"));
  EXPECT_THAT(c.deleted, IsEmpty());
}

TEST_F(DiffTest, HardlinkAddedReportsBothNames) {
  // The original's link count and ctime change; the layer writer needs it to emit a hardlink entry.
  Write("a", "x");
  Write("other", "x");
  Before();
  ASSERT_EQ(::link(P("a").c_str(), P("b").c_str()), 0);
  EXPECT_THAT(Changes().added_or_modified, ElementsAre("a", "b"));
}

TEST_F(DiffTest, DeviceNumberChange) {
  Mkdir("dev2");
  if (::mknod(P("dev2/c").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) GTEST_SKIP() << "mknod not permitted";
  Before();
  ASSERT_EQ(::unlink(P("dev2/c").c_str()), 0);
  ASSERT_EQ(::mknod(P("dev2/c").c_str(), S_IFCHR | 0666, makedev(1, 5)), 0);
  EXPECT_THAT(Changes().added_or_modified, ElementsAre("dev2", "dev2/c"));
}

TEST_F(DiffTest, CreateAndRemoveLeavesNoTrace) {
  // Only the directory's mtime/ctime moved: Docker does not report it and neither do we, so a
  // step that cleans up after itself adds no layer.
  Write("tmp/keep", "x");
  Before();
  Write("tmp/scratch/file", "x");
  std::filesystem::remove_all(P("tmp/scratch"));
  EXPECT_TRUE(Changes().empty());
}

TEST_F(DiffTest, IgnoredPrefixes) {
  options_.ignore_paths = {"/proc", "/var/run/", "//etc//mtab"};
  Write("proc/1/status", "x");
  Write("var/run/pid", "1");
  Write("var/lib/state", "1");
  Write("etc/mtab", "x");
  Write("process", "not ignored: only whole components match");
  Before();
  EXPECT_THAT(before_->ignored(), ElementsAre("etc/mtab", "proc", "var/run"));
  EXPECT_FALSE(before_->Find("proc").has_value());
  EXPECT_FALSE(before_->Find("var/run/pid").has_value());
  EXPECT_TRUE(before_->Find("process").has_value());
  Write("proc/2/status", "x");
  Write("var/run/pid", "2");
  std::filesystem::remove_all(P("etc/mtab"));
  Write("var/runx", "y");
  Write("process", "changed too");
  ChangeSet c = Changes();
  // var's mtime changed because of var/runx; etc's because of mtab, but mtab is ignored and etc
  // itself is otherwise unchanged.
  EXPECT_THAT(c.added_or_modified, ElementsAre("process", "var", "var/runx"));
  EXPECT_THAT(c.deleted, IsEmpty());
}

TEST_F(DiffTest, InvalidIgnorePathIsRefused) {
  options_.ignore_paths = {"/../etc"};
  auto b = Baseline::Take(root_, options_);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), ErrorCode::kInvalidArgument);
  options_.ignore_paths = {"/"};
  EXPECT_FALSE(Baseline::Take(root_, options_).ok());
}

TEST_F(DiffTest, SymlinksAreNeverFollowed) {
  Write("real/file", "x");
  ASSERT_EQ(::symlink("/", P("escape").c_str()), 0);
  ASSERT_EQ(::symlink("real", P("alias").c_str()), 0);
  Before();
  EXPECT_THAT(before_->Paths(), ElementsAre("alias", "escape", "real", "real/file"));
  auto e = before_->Find("escape");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type, FileType::kSymlink);
  EXPECT_EQ(e->symlink_target, "/");
  EXPECT_FALSE(before_->Find("alias/file").has_value());
}

TEST_F(DiffTest, OddNames) {
  Write("keep", "x");
  Before();
  const std::string names[] = {"with space", "new\nline", std::string("bytes\xff\xfe"), "tab\there", "-dash"};
  for (const auto& n : names) Write("d/" + n, n);
  ChangeSet c = Changes();
  EXPECT_THAT(c.added_or_modified, ElementsAre("d", "d/-dash", "d/bytes\xff\xfe", "d/new\nline", "d/tab\there",
                                               "d/with space"));
  before_.emplace(Take());
  ASSERT_EQ(::unlink(P("d/new\nline").c_str()), 0);
  c = Changes();
  EXPECT_THAT(c.deleted, ElementsAre("d/new\nline"));
}

TEST_F(DiffTest, NameOrderIsBytewise) {
  // '/' (0x2f) sorts after ' ' and '-', and 0xff after ASCII; parents still precede children.
  Write("keep", "x");
  Before();
  Write("a/x", "1");
  Write("a b", "1");
  Write("a-c", "1");
  Write("\xff", "1");
  EXPECT_THAT(Changes().added_or_modified, ElementsAre("a", "a b", "a-c", "a/x", "\xff"));
}

TEST_F(DiffTest, ChainedBaselinesReportEachStepOnce) {
  Write("f", "1");
  Before();
  Write("g", "2");
  Baseline second = Take();
  auto c1 = Diff(*before_, second);
  ASSERT_TRUE(c1.ok());
  EXPECT_THAT(c1->added_or_modified, ElementsAre("g"));
  Baseline third = Take();
  auto c2 = Diff(second, third);
  ASSERT_TRUE(c2.ok());
  EXPECT_TRUE(c2->empty());
}

TEST_F(DiffTest, FindReportsTheStatTuple) {
  Write("d/f", "hello");
  ASSERT_EQ(::chmod(P("d/f").c_str(), 0640), 0);
  ASSERT_EQ(::lchown(P("d/f").c_str(), 10, 20), 0);
  Before();
  struct stat st;
  ASSERT_EQ(::lstat(P("d/f").c_str(), &st), 0);
  auto e = before_->Find("d/f");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->name, "f");
  EXPECT_EQ(e->type, FileType::kRegular);
  EXPECT_EQ(e->mode, 0640u);
  EXPECT_EQ(e->uid, 10u);
  EXPECT_EQ(e->gid, 20u);
  EXPECT_EQ(e->size, 5u);
  EXPECT_EQ(e->nlink, 1u);
  EXPECT_EQ(e->inode, st.st_ino);
  EXPECT_EQ(e->mtime_ns, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
  EXPECT_EQ(e->ctime_ns, st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec);
  EXPECT_EQ(before_->size(), 2u);
  EXPECT_FALSE(before_->Find("d/missing").has_value());
  EXPECT_FALSE(before_->Find("d/f/below-a-file").has_value());
}

TEST_F(DiffTest, RecentFilesAreFingerprintedOldOnesAreNot) {
  // Everything in this fresh tree was just written, so every non-directory is racy.
  Write("a", "x");
  Write("d/b", "x");
  Before();
  EXPECT_EQ(before_->racy_count(), 2u);
  // A few clock ticks later (this filesystem stores nanoseconds) nothing is racy any more, and a
  // same-size rewrite is still caught by ctime alone.
  ::usleep(100 * 1000);
  Before();
  EXPECT_EQ(before_->racy_count(), 0u);
  Write("d/b", "y");
  EXPECT_THAT(Changes().added_or_modified, ElementsAre("d", "d/b"));
}

TEST_F(DiffTest, MemoryIsCompact) {
  for (int i = 0; i < 2000; ++i) Write("dir" + std::to_string(i % 20) + "/file-" + std::to_string(i), "");
  ::usleep(100 * 1000);  // past the racy window: no fingerprints
  Before();
  EXPECT_EQ(before_->size(), 2020u);
  EXPECT_EQ(before_->racy_count(), 0u);
  // Entries are 56 bytes plus their name.
  EXPECT_LT(before_->MemoryBytes() / before_->size(), 80u) << before_->MemoryBytes();
}

}  // namespace
}  // namespace kiln::snapshot

namespace kiln::snapshot {
namespace {

TEST_F(DiffTest, ParallelWalkMatchesSequential) {
  for (int i = 0; i < 600; ++i) {
    Write("d" + std::to_string(i % 7) + "/e" + std::to_string(i % 13) + "/f" + std::to_string(i), "x");
  }
  ASSERT_EQ(::symlink("d0", P("link").c_str()), 0);
  ::usleep(100 * 1000);  // past the racy window, so both walks fingerprint nothing
  options_.threads = 1;
  Baseline seq = Take();
  options_.threads = 4;
  Baseline par = Take();
  EXPECT_EQ(seq.size(), par.size());
  EXPECT_EQ(seq.Paths(), par.Paths());
  EXPECT_EQ(seq.racy_count(), 0u);
  EXPECT_EQ(par.racy_count(), 0u);
  auto c = Diff(seq, par);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->empty());
  Write("d3/e5/new", "y");
  Baseline later = Take();
  auto c2 = Diff(seq, later);
  ASSERT_TRUE(c2.ok());
  EXPECT_THAT(c2->added_or_modified, ElementsAre("d3", "d3/e5", "d3/e5/new"));
}

}  // namespace
}  // namespace kiln::snapshot

namespace kiln::snapshot {
namespace {

// ext4 hands a freed inode number straight back: `rm -rf d && mkdir d` often gives the new directory
// the old number. Its birth time still differs, and the diff must call it a replaced (opaque) dir.
TEST(DiffReuseTest, DirectoryRecreatedWithTheSameInodeNumberIsOpaque) {
  testing::TempDir tmp;
  std::string root = tmp.path() + "/root";
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  std::string d = root + "/d";
  bool reused = false;
  for (int attempt = 0; attempt < 20 && !reused; ++attempt) {
    ASSERT_EQ(::system(("rm -rf " + d + " && mkdir " + d + " && touch " + d + "/old").c_str()), 0);
    struct stat before;
    ASSERT_EQ(::stat(d.c_str(), &before), 0);
    auto a = Baseline::Take(root, {});
    ASSERT_TRUE(a.ok());
    ASSERT_EQ(::system(("rm -rf " + d + " && mkdir " + d + " && touch " + d + "/new").c_str()), 0);
    struct stat after;
    ASSERT_EQ(::stat(d.c_str(), &after), 0);
    if (after.st_ino != before.st_ino) continue;  // this filesystem did not reuse it; try again
    reused = true;
    auto b = Baseline::Take(root, {});
    ASSERT_TRUE(b.ok());
    auto cs = Diff(*a, *b);
    ASSERT_TRUE(cs.ok()) << cs.status().message();
    EXPECT_EQ(cs->opaque_dirs, std::vector<std::string>{"d"});
    EXPECT_TRUE(cs->deleted.empty());
  }
  if (!reused) GTEST_SKIP() << "the filesystem of " << root << " never reused an inode number";
}

}  // namespace
}  // namespace kiln::snapshot
