// ExtractLayer semantics: entry types, metadata, whiteouts, replacement, ownership (root and rootless).
#include "layers/extract.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "layers/rootless.h"
#include "tests/layers/hostile_tar.h"
#include "tests/testing/temp_dir.h"

namespace kiln::layers {
namespace {

using testing::EntrySpec;
using testing::ExtractBlob;
using testing::Gzip;
using testing::TarBuilder;
using testing::Zstd;
using kiln::testing::ReadFile;
using kiln::testing::TempDir;

struct stat Lstat(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}
bool Exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}
std::string GetXattr(const std::string& p, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(p.c_str(), name, buf, sizeof buf);
  return n < 0 ? "<none>" : std::string(buf, static_cast<size_t>(n));
}

class ExtractTest : public ::testing::TestWithParam<ResolveMode> {
 protected:
  ExtractOptions Options() {
    ExtractOptions o;
    o.resolve = GetParam();
    o.warn = [this](std::string_view w) { warnings_.emplace_back(w); };
    return o;
  }
  Result<ExtractResult> Extract(const std::string& blob) { return ExtractBlob(blob, root_, Options()); }

  TempDir tmp_;
  std::string root_ = [this] {
    std::string r = tmp_.Sub("rootfs");
    ::mkdir(r.c_str(), 0755);
    return r;
  }();
  std::vector<std::string> warnings_;
};

TEST_P(ExtractTest, AllEntryTypesWithMetadata) {
  std::string tar = TarBuilder()
                        .Add({.name = "etc/", .type = S_IFDIR, .perm = 0750, .uid = 7, .gid = 8, .mtime = 1600000000})
                        .Add({.name = "etc/passwd", .perm = 0640, .content = "root:x:0:0\n", .uid = 10, .gid = 20,
                              .mtime = 1500000000, .mtime_nsec = 123456789,
                              .xattrs = {{"user.note", "hi"}, {"trusted.t", "tv"}}})
                        .Add({.name = "bin/su", .perm = 04755, .content = "ELF", .uid = 0, .gid = 0})
                        .Add({.name = "etc/link", .type = S_IFLNK, .perm = 0777, .link = "passwd", .uid = 5,
                              .gid = 6, .mtime = 1400000000})
                        .Hardlink("etc/hard", "etc/passwd")
                        .Add({.name = "run/fifo", .type = S_IFIFO, .perm = 0620, .uid = 3, .gid = 4})
                        .Add({.name = "dev/null", .type = S_IFCHR, .perm = 0666, .rdev = makedev(1, 3)})
                        .Add({.name = "tmp/", .type = S_IFDIR, .perm = 01777})
                        .Finish();
  auto r = Extract(tar);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->diff_id, Sha256Of(tar));
  EXPECT_EQ(r->compression, Compression::kNone);
  EXPECT_EQ(r->entries, 8u);
  EXPECT_EQ(r->uncompressed_bytes, tar.size());
  EXPECT_EQ(r->used_openat2, GetParam() == ResolveMode::kAuto && KernelHasOpenat2());

  auto etc = Lstat(root_ + "/etc");
  EXPECT_TRUE(S_ISDIR(etc.st_mode));
  EXPECT_EQ(etc.st_mode & 07777, 0750u);
  EXPECT_EQ(etc.st_uid, 7u);
  EXPECT_EQ(etc.st_mtim.tv_sec, 1600000000);  // set after its children were added

  auto pw = Lstat(root_ + "/etc/passwd");
  EXPECT_EQ(ReadFile(root_ + "/etc/passwd"), "root:x:0:0\n");
  EXPECT_EQ(pw.st_mode & 07777, 0640u);
  EXPECT_EQ(pw.st_uid, 10u);
  EXPECT_EQ(pw.st_gid, 20u);
  EXPECT_EQ(pw.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(pw.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(pw.st_nlink, 2u);
  EXPECT_EQ(GetXattr(root_ + "/etc/passwd", "user.note"), "hi");
  EXPECT_EQ(GetXattr(root_ + "/etc/passwd", "trusted.t"), "tv");
  EXPECT_EQ(GetXattr(root_ + "/etc/passwd", kRootlessXattr), "<none>");  // root: real chown, no xattr

  EXPECT_EQ(Lstat(root_ + "/etc/hard").st_ino, pw.st_ino);
  EXPECT_EQ(Lstat(root_ + "/bin/su").st_mode & 07777, 04755u);  // setuid survives chown
  auto link = Lstat(root_ + "/etc/link");
  EXPECT_TRUE(S_ISLNK(link.st_mode));
  EXPECT_EQ(link.st_uid, 5u);
  EXPECT_EQ(link.st_mtim.tv_sec, 1400000000);
  char target[64] = {};
  ASSERT_GT(::readlink((root_ + "/etc/link").c_str(), target, sizeof target), 0);
  EXPECT_STREQ(target, "passwd");
  auto fifo = Lstat(root_ + "/run/fifo");
  EXPECT_TRUE(S_ISFIFO(fifo.st_mode));
  EXPECT_EQ(fifo.st_mode & 07777, 0620u);
  EXPECT_EQ(fifo.st_gid, 4u);
  auto dev = Lstat(root_ + "/dev/null");
  EXPECT_TRUE(S_ISCHR(dev.st_mode));
  EXPECT_EQ(dev.st_rdev, makedev(1, 3));
  EXPECT_EQ(Lstat(root_ + "/tmp").st_mode & 07777, 01777u);
  EXPECT_EQ(Lstat(root_ + "/bin").st_mode & 07777, 0755u);  // implicit parent
}

TEST_P(ExtractTest, CompressionsGiveSameTreeAndDiffId) {
  std::string tar = TarBuilder().File("a", std::string(100000, 'x')).File("b/c", "cc").Finish();
  for (const std::string& blob : {tar, Gzip(tar), Gzip(tar.substr(0, 5000)) + Gzip(tar.substr(5000)), Zstd(tar)}) {
    TempDir dir;
    auto r = ExtractBlob(blob, dir.path(), Options());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->diff_id, Sha256Of(tar));
    EXPECT_EQ(r->compressed_bytes, blob.size());
    EXPECT_EQ(ReadFile(dir.Sub("a")), std::string(100000, 'x'));
    EXPECT_EQ(ReadFile(dir.Sub("b/c")), "cc");
  }
}

TEST_P(ExtractTest, DigestAndDiffIdAreVerified) {
  std::string tar = TarBuilder().File("a", "content").Finish();
  std::string blob = Gzip(tar);
  StringReader r1(blob);
  auto bad = ExtractLayer(r1, {Sha256Of("other"), std::nullopt, std::nullopt}, root_, Options());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kDigestMismatch);
  EXPECT_NE(bad.status().message().find("expected"), std::string::npos);

  StringReader r2(blob);
  auto size = ExtractLayer(r2, {Sha256Of(blob), blob.size() + 1, std::nullopt}, root_, Options());
  EXPECT_EQ(size.status().code(), ErrorCode::kDigestMismatch);

  StringReader r3(blob);
  auto diff = ExtractLayer(r3, {Sha256Of(blob), blob.size(), Sha256Of(blob)}, root_, Options());
  EXPECT_EQ(diff.status().code(), ErrorCode::kDigestMismatch);

  StringReader r4(blob);
  auto good = ExtractLayer(r4, {Sha256Of(blob), blob.size(), Sha256Of(tar)}, root_, Options());
  EXPECT_TRUE(good.ok()) << good.status().ToString();
}

TEST_P(ExtractTest, WhiteoutsDeleteFromLowerLayers) {
  ASSERT_TRUE(Extract(TarBuilder()
                          .File("keep", "k")
                          .File("gone", "g")
                          .File("tree/a/b", "b")
                          .Symlink("ln", "/keep")
                          .Finish())
                  .ok());
  auto r = Extract(TarBuilder()
                       .File(".wh.gone", "")
                       .File("tree/.wh.a", "")
                       .File(".wh.ln", "")
                       .File(".wh.never-existed", "")
                       .File("nodir/.wh.x", "")
                       .Finish());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Exists(root_ + "/keep"));
  EXPECT_FALSE(Exists(root_ + "/gone"));
  EXPECT_FALSE(Exists(root_ + "/.wh.gone"));
  EXPECT_FALSE(Exists(root_ + "/tree/a"));
  EXPECT_TRUE(Exists(root_ + "/tree"));
  EXPECT_FALSE(Exists(root_ + "/ln"));
  EXPECT_FALSE(Exists(root_ + "/nodir"));
}

TEST_P(ExtractTest, OpaqueDirectoryHidesLowerButKeepsThisLayer) {
  ASSERT_TRUE(Extract(TarBuilder()
                          .File("d/lower1", "1")
                          .File("d/sub/lower2", "2")
                          .File("d/-early", "lower")
                          .File("other/x", "x")
                          .Finish())
                  .ok());
  // "-early" sorts before ".wh..wh..opq", so this layer's version precedes the marker.
  auto r = Extract(TarBuilder()
                       .Dir("d/")
                       .File("d/-early", "upper")
                       .Dir("d/sub/")
                       .File("d/.wh..wh..opq", "")
                       .File("d/new", "n")
                       .Finish());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(Exists(root_ + "/d/lower1"));
  EXPECT_FALSE(Exists(root_ + "/d/sub/lower2"));  // d/sub is this layer's, its lower content is hidden
  EXPECT_TRUE(Exists(root_ + "/d/sub"));
  EXPECT_EQ(ReadFile(root_ + "/d/-early"), "upper");
  EXPECT_EQ(ReadFile(root_ + "/d/new"), "n");
  EXPECT_FALSE(Exists(root_ + "/d/.wh..wh..opq"));
  EXPECT_TRUE(Exists(root_ + "/other/x"));
}

TEST_P(ExtractTest, EntriesReplaceDifferentTypes) {
  ASSERT_TRUE(Extract(TarBuilder()
                          .File("dir-to-file/child", "c")
                          .File("file-to-dir", "f")
                          .File("file-to-link", "f")
                          .File("keepdir/old", "o")
                          .Add({.name = "keepdir", .type = S_IFDIR, .perm = 0700})
                          .File("overwrite", "old")
                          .Finish())
                  .ok());
  auto r = Extract(TarBuilder()
                       .File("dir-to-file", "now a file")
                       .Dir("file-to-dir/")
                       .File("file-to-dir/inside", "i")
                       .Symlink("file-to-link", "dir-to-file")
                       .Add({.name = "keepdir", .type = S_IFDIR, .perm = 0711, .uid = 42})
                       .File("overwrite", "new", 0600)
                       .Finish());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(root_ + "/dir-to-file"), "now a file");
  EXPECT_EQ(ReadFile(root_ + "/file-to-dir/inside"), "i");
  EXPECT_TRUE(S_ISLNK(Lstat(root_ + "/file-to-link").st_mode));
  EXPECT_TRUE(Exists(root_ + "/keepdir/old"));  // a directory over a directory merges
  EXPECT_EQ(Lstat(root_ + "/keepdir").st_mode & 07777, 0711u);
  EXPECT_EQ(Lstat(root_ + "/keepdir").st_uid, 42u);
  EXPECT_EQ(ReadFile(root_ + "/overwrite"), "new");
  EXPECT_EQ(Lstat(root_ + "/overwrite").st_mode & 07777, 0600u);
}

TEST_P(ExtractTest, HardlinksWithinAndAcrossLayers) {
  ASSERT_TRUE(Extract(TarBuilder().File("lower", "L").Finish()).ok());
  auto r = Extract(TarBuilder()
                       .File("a", "A")
                       .Hardlink("b", "a")
                       .Hardlink("c", "lower")
                       .Symlink("s", "a")
                       .Hardlink("s2", "s")  // a hardlink to a symlink links the symlink
                       .Finish());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Lstat(root_ + "/a").st_ino, Lstat(root_ + "/b").st_ino);
  EXPECT_EQ(Lstat(root_ + "/c").st_ino, Lstat(root_ + "/lower").st_ino);
  EXPECT_TRUE(S_ISLNK(Lstat(root_ + "/s2").st_mode));
  auto missing = Extract(TarBuilder().Hardlink("x", "does/not/exist").Finish());
  EXPECT_FALSE(missing.ok());
}

TEST_P(ExtractTest, SymlinkedParentDirectoriesAreFollowedInsideTheRootfs) {
  // Debian's usr-merge: /bin -> usr/bin; later layers write bin/foo and expect usr/bin/foo.
  ASSERT_TRUE(Extract(TarBuilder().Dir("usr/bin/").Symlink("bin", "usr/bin").Symlink("abs", "/usr").Finish()).ok());
  auto r = Extract(TarBuilder().File("bin/foo", "f").File("abs/bin/bar", "b").Finish());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(root_ + "/usr/bin/foo"), "f");
  EXPECT_EQ(ReadFile(root_ + "/usr/bin/bar"), "b");
  EXPECT_TRUE(S_ISLNK(Lstat(root_ + "/bin").st_mode));
}

TEST_P(ExtractTest, RootEntrySkipPathsAndNonAsciiNames) {
  ExtractOptions o = Options();
  o.skip_paths = {"proc", "kiln/cache"};
  ::mkdir((root_ + "/kiln").c_str(), 0755);
  ::mkdir((root_ + "/kiln/cache").c_str(), 0755);
  kiln::testing::WriteFile(root_ + "/kiln/cache/keep", "k");
  std::string tar = TarBuilder()
                        .Add({.name = "./", .type = S_IFDIR, .perm = 0751, .mtime = 1234567890})
                        .File("proc/self", "nope")
                        .File("kiln/cache/keep", "overwritten?")
                        .File(".wh.kiln", "")
                        .Finish();
  auto r = ExtractBlob(tar, root_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Lstat(root_).st_mode & 07777, 0751u);
  EXPECT_EQ(Lstat(root_).st_mtim.tv_sec, 1234567890);
  EXPECT_FALSE(Exists(root_ + "/proc"));
  EXPECT_EQ(ReadFile(root_ + "/kiln/cache/keep"), "k");

  // A UTF-8 pax path record, read under the C locale the tests (and kiln) run in.
  std::string pax = testing::PaxFile("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac", "utf8") + std::string(1024, '\0');
  auto r1 = ExtractBlob(pax, root_, o);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(ReadFile(root_ + "/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac"), "utf8");

  // A plain ustar header carries raw bytes (here Latin-1), which are kept as they are.
  std::string raw = testing::UstarHeader("r\xe9sum\xe9", 2) + "ok" + std::string(510, '\0') + std::string(1024, '\0');
  auto r2 = ExtractBlob(raw, root_, o);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(ReadFile(root_ + "/r\xe9sum\xe9"), "ok");
}

TEST_P(ExtractTest, DeviceNodesCanBeRefused) {
  ExtractOptions o = Options();
  o.create_device_nodes = false;
  auto r = ExtractBlob(TarBuilder()
                           .Add({.name = "dev/sda", .type = S_IFBLK, .perm = 0660, .rdev = makedev(8, 0)})
                           .Add({.name = "dev/p", .type = S_IFIFO})
                           .Finish(),
                       root_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(Exists(root_ + "/dev/sda"));
  EXPECT_TRUE(Exists(root_ + "/dev/p"));  // FIFOs need no privilege
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("dev/sda"), std::string::npos);
}

TEST_P(ExtractTest, RootlessOwnershipGoesToXattr) {
  ExtractOptions o = Options();
  o.ownership = ExtractOptions::Ownership::kRootlessXattr;
  std::string tar = TarBuilder()
                        .Add({.name = "d/", .type = S_IFDIR, .perm = 0555, .uid = 1000, .gid = 1001})
                        .Add({.name = "d/f", .perm = 04750, .content = "x", .uid = 33, .gid = 44})
                        .Add({.name = "d/forged", .content = "x", .uid = 0, .gid = 0,
                              .xattrs = {{kRootlessXattr, EncodeRootlessOwner({1, 2})}}})
                        .Add({.name = "d/l", .type = S_IFLNK, .link = "f", .uid = 5})
                        .Finish();
  auto r = ExtractBlob(tar, root_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto f = Lstat(root_ + "/d/f");
  EXPECT_EQ(f.st_uid, ::geteuid());
  EXPECT_EQ(f.st_mode & 07777, 04750u);
  EXPECT_EQ(DecodeRootlessOwner(GetXattr(root_ + "/d/f", kRootlessXattr)), (RootlessOwner{33, 44}));
  EXPECT_EQ(DecodeRootlessOwner(GetXattr(root_ + "/d", kRootlessXattr)), (RootlessOwner{1000, 1001}));
  // A layer cannot forge the bookkeeping xattr; the entry's own uid/gid (0:0) are recorded.
  EXPECT_EQ(GetXattr(root_ + "/d/forged", kRootlessXattr), "");
  EXPECT_EQ(Lstat(root_ + "/d").st_mode & 07777, 0555u);
  // Symlinks cannot carry user.* xattrs: reported, not fatal.
  ASSERT_FALSE(warnings_.empty());
  EXPECT_NE(warnings_.back().find("symlinks"), std::string::npos);

  // With real chown, a forged xattr from the layer is dropped as well.
  TempDir other;
  auto r2 = ExtractBlob(tar, other.path(), Options());
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(GetXattr(other.Sub("d/forged"), kRootlessXattr), "<none>");
}

// A real unprivileged extraction: fork, drop to nobody, extract two layers into a directory it owns.
TEST_P(ExtractTest, UnprivilegedProcessFillsReadOnlyDirectories) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged uid";
  ASSERT_EQ(::chown(tmp_.path().c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chown(root_.c_str(), 65534, 65534), 0);
  std::string l1 = TarBuilder()
                       .Add({.name = "ro/", .type = S_IFDIR, .perm = 0555, .uid = 0})
                       .Add({.name = "ro/file", .perm = 0400, .content = "one", .uid = 0, .gid = 0})
                       .Add({.name = "ro/sub/", .type = S_IFDIR, .perm = 0500})
                       .Add({.name = "ro/sub/gone", .content = "g"})
                       .Add({.name = "dev/null", .type = S_IFCHR, .perm = 0666, .rdev = makedev(1, 3)})
                       .Finish();
  std::string l2 = TarBuilder()
                       .Add({.name = "ro/added", .perm = 02755, .content = "two", .uid = 12, .gid = 13})
                       .File("ro/sub/.wh.gone", "")
                       .Add({.name = "ro/file", .perm = 0444, .content = "replaced", .uid = 1})
                       .Finish();
  ResolveMode mode = GetParam();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(10);
    ExtractOptions o;
    o.resolve = mode;
    int warnings = 0;
    o.warn = [&warnings](std::string_view) { ++warnings; };
    if (!ExtractBlob(l1, root_, o).ok()) ::_exit(11);
    if (warnings == 0) ::_exit(12);  // the device node must be reported as skipped
    auto r = ExtractBlob(l2, root_, o);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      ::_exit(13);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(Lstat(root_ + "/ro").st_mode & 07777, 0555u);
  EXPECT_EQ(Lstat(root_ + "/ro/sub").st_mode & 07777, 0500u);
  EXPECT_EQ(Lstat(root_ + "/ro/added").st_uid, 65534u);
  EXPECT_EQ(Lstat(root_ + "/ro/added").st_mode & 07777, 02755u);
  EXPECT_EQ(ReadFile(root_ + "/ro/added"), "two");
  EXPECT_EQ(ReadFile(root_ + "/ro/file"), "replaced");
  EXPECT_FALSE(Exists(root_ + "/ro/sub/gone"));
  EXPECT_FALSE(Exists(root_ + "/dev/null"));
  EXPECT_EQ(DecodeRootlessOwner(GetXattr(root_ + "/ro/added", kRootlessXattr)), (RootlessOwner{12, 13}));
  EXPECT_EQ(DecodeRootlessOwner(GetXattr(root_ + "/ro/file", kRootlessXattr)), (RootlessOwner{1, 0}));
  EXPECT_EQ(DecodeRootlessOwner(GetXattr(root_ + "/ro", kRootlessXattr)), (RootlessOwner{0, 0}));
}

INSTANTIATE_TEST_SUITE_P(Resolvers, ExtractTest, ::testing::Values(ResolveMode::kAuto, ResolveMode::kManual),
                         [](const auto& info) { return info.param == ResolveMode::kAuto ? "Auto" : "Manual"; });

}  // namespace
}  // namespace kiln::layers
