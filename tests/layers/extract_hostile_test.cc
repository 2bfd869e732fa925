// The hostile-layer corpus: every case is built here, extracted, and must either fail cleanly or stay
// inside the rootfs. A sibling "outside" directory with sentinel files (and the host's /etc/passwd)
// is snapshotted before and compared after every case.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include <gtest/gtest.h>

#include "layers/extract.h"
#include "layers/safe_path.h"
#include "tests/layers/hostile_tar.h"
#include "tests/testing/temp_dir.h"

namespace kiln::layers {
namespace {

using testing::EntrySpec;
using testing::ExtractBlob;
using testing::Gzip;
using testing::Snapshot;
using testing::TarBuilder;
using testing::Zstd;
using kiln::testing::ReadFile;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;

bool Exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

class HostileTest : public ::testing::TestWithParam<ResolveMode> {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    WriteFile(outside_ + "/sentinel", "sentinel");
    WriteFile(outside_ + "/victim", "victim");
    WriteFile(outside_ + "/dir/file", "file");
    before_ = Snapshot(outside_);
    passwd_before_ = testing::Snapshot("/etc/passwd");
  }
  void TearDown() override {
    // The heart of every case: nothing outside the rootfs changed.
    EXPECT_EQ(Snapshot(outside_), before_) << "the directory next to the rootfs changed";
    EXPECT_EQ(testing::Snapshot("/etc/passwd"), passwd_before_);
    EXPECT_FALSE(Exists("/etc/kiln-hostile-abs"));
    EXPECT_FALSE(Exists("/tmp/kiln-hostile-pwn"));
    std::string entries;
    kiln::testing::RunShell("ls -A " + tmp_.path(), &entries);
    EXPECT_EQ(entries, "outside\nrootfs\n");
    // Deep trees exceed PATH_MAX for std::filesystem; remove the rootfs by fd.
    int fd = ::open(tmp_.path().c_str(), O_PATH | O_DIRECTORY);
    EXPECT_TRUE(RemoveAllAt(fd, "rootfs").ok());
    ::close(fd);
  }

  ExtractOptions Options() {
    ExtractOptions o;
    o.resolve = GetParam();
    o.warn = [this](std::string_view w) { warnings_.emplace_back(w); };
    return o;
  }
  Result<ExtractResult> Extract(const std::string& blob) { return ExtractBlob(blob, root_, Options()); }
  // Asserts the hostile bytes really are in the stream (libarchive's writer does not sanitise).
  static std::string Tar(TarBuilder& b, std::string_view must_contain) {
    std::string t = b.Finish();
    EXPECT_NE(t.find(must_contain), std::string::npos) << must_contain;
    return t;
  }

  TempDir tmp_;
  std::string root_ = tmp_.Sub("rootfs");
  std::string outside_ = tmp_.Sub("outside");
  std::map<std::string, std::string> before_, passwd_before_;
  std::vector<std::string> warnings_;
};

TEST_P(HostileTest, DotDotTraversalIsRefused) {
  for (std::string name : {"../../x", "a/../../x", "../outside/sentinel", "./../outside/victim", "a/b/../../../x"}) {
    TarBuilder b;
    b.File(name, "pwned");
    auto r = Extract(Tar(b, name));
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied) << r.status().ToString();
    EXPECT_NE(r.status().message().find("climbs above the root"), std::string::npos);
  }
  // `..` that stays inside is fine.
  TarBuilder ok;
  ok.File("a/../inside", "i");
  ASSERT_TRUE(Extract(ok.Finish()).ok());
  EXPECT_EQ(ReadFile(root_ + "/inside"), "i");
}

TEST_P(HostileTest, AbsoluteNamesLandInsideTheRootfs) {
  TarBuilder b;
  b.File("/etc/kiln-hostile-abs", "abs").File(outside_ + "/sentinel", "pwned").File("//" + outside_ + "/new", "n");
  auto r = Extract(Tar(b, "/etc/kiln-hostile-abs"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(root_ + "/etc/kiln-hostile-abs"), "abs");
  EXPECT_EQ(ReadFile(root_ + outside_ + "/sentinel"), "pwned");
  EXPECT_TRUE(Exists(root_ + outside_ + "/new"));
}

TEST_P(HostileTest, SymlinkEscapeWithinOneLayer) {
  TarBuilder b;
  b.Symlink("evil", outside_).File("evil/pwn", "pwned").File("evil/sentinel", "pwned");
  auto r = Extract(Tar(b, outside_));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Followed as if the rootfs were `/`.
  EXPECT_EQ(ReadFile(root_ + outside_ + "/pwn"), "pwned");
  EXPECT_EQ(ReadFile(root_ + outside_ + "/sentinel"), "pwned");
}

TEST_P(HostileTest, SymlinkEscapeAcrossTwoLayers) {
  TarBuilder l1;
  l1.Symlink("evil", outside_).Symlink("tmpdir", "/tmp");
  ASSERT_TRUE(Extract(l1.Finish()).ok());
  TarBuilder l2;
  l2.File("evil/pwn", "pwned").File("evil/dir/file", "pwned").File("tmpdir/kiln-hostile-pwn", "pwned");
  auto r = Extract(l2.Finish());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(root_ + outside_ + "/pwn"), "pwned");
  EXPECT_EQ(ReadFile(root_ + "/tmp/kiln-hostile-pwn"), "pwned");
}

TEST_P(HostileTest, RelativeSymlinkEscapeIsClampedAtTheRoot) {
  TarBuilder b;
  b.Symlink("a", "../../../../../../../..")
      .File("a/x", "x")
      .Symlink("b", "../outside")
      .File("b/sentinel", "pwned")
      .Symlink("c", "sub/../../../outside")
      .File("c/victim", "pwned");
  auto r = Extract(Tar(b, "../../../../../../../.."));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(root_ + "/x"), "x");
  EXPECT_EQ(ReadFile(root_ + "/outside/sentinel"), "pwned");
  EXPECT_EQ(ReadFile(root_ + "/outside/victim"), "pwned");
}

TEST_P(HostileTest, AbsoluteSymlinkInTheMiddleOfAPath) {
  TarBuilder b;
  b.Symlink("d/up", "/").File("d/up" + outside_ + "/sentinel", "pwned").Symlink("e", "/d/up/d/up/..");
  b.File("e" + outside_ + "/victim", "pwned");
  auto r = Extract(b.Finish());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(root_ + outside_ + "/sentinel"), "pwned");
  EXPECT_EQ(ReadFile(root_ + outside_ + "/victim"), "pwned");
}

TEST_P(HostileTest, SymlinkLoopsFailCleanly) {
  TarBuilder b;
  b.Symlink("loop", "loop").File("loop/x", "x");
  auto r = Extract(b.Finish());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("symbolic links"), std::string::npos) << r.status().ToString();
}

TEST_P(HostileTest, ParentReplacedBySymlinkWithinALayer) {
  // "d" is a directory (its fd cached for d/a), then replaced by a symlink out; d/b must not follow
  // the stale directory nor the host path.
  TarBuilder b;
  b.File("d/a", "a").Symlink("d", outside_).File("d/b", "pwned").File("d/sentinel", "pwned");
  auto r = Extract(b.Finish());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(root_ + outside_ + "/b"), "pwned");
  EXPECT_FALSE(Exists(root_ + "/d/a"));
}

TEST_P(HostileTest, HardlinkEscapes) {
  {
    TarBuilder b;
    b.Hardlink("h", "/etc/passwd");  // no etc/passwd in this rootfs: must not link the host's
    auto r = Extract(Tar(b, "/etc/passwd"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kNotFound) << r.status().ToString();
  }
  for (std::string target : {"../outside/sentinel", "../../etc/passwd", "a/../../x"}) {
    TarBuilder b;
    b.Hardlink("h", target);
    auto r = Extract(Tar(b, target));
    ASSERT_FALSE(r.ok()) << target;
    EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied) << r.status().ToString();
  }
  {
    TarBuilder b;
    b.Symlink("evil", outside_).Hardlink("h", "evil/sentinel");  // through a symlink
    auto r = Extract(b.Finish());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kNotFound) << r.status().ToString();
  }
  {
    // With an etc/passwd inside, the absolute hardlink name means that one.
    TarBuilder b;
    b.File("etc/passwd", "inner").Symlink("etc2", "/etc").Hardlink("h", "/etc/passwd").Hardlink("h2", "etc2/passwd");
    auto r = Extract(b.Finish());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    struct stat a, h, h2;
    ASSERT_EQ(::lstat((root_ + "/etc/passwd").c_str(), &a), 0);
    ASSERT_EQ(::lstat((root_ + "/h").c_str(), &h), 0);
    ASSERT_EQ(::lstat((root_ + "/h2").c_str(), &h2), 0);
    EXPECT_EQ(a.st_ino, h.st_ino);
    EXPECT_EQ(a.st_ino, h2.st_ino);
    EXPECT_EQ(a.st_nlink, 3u);
  }
}

TEST_P(HostileTest, WhiteoutEscapes) {
  {
    TarBuilder b;
    b.File("../.wh.victim", "");
    auto r = Extract(Tar(b, "../.wh.victim"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied);
  }
  for (std::string name : {".wh..", ".wh...", "d/.wh.."}) {
    TarBuilder b;
    b.File(name, "");
    auto r = Extract(b.Finish());
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().ToString();
  }
  TarBuilder l1;
  l1.Symlink("evil", outside_).Symlink("rel", "../outside").Symlink("up", "/..");
  ASSERT_TRUE(Extract(l1.Finish()).ok());
  TarBuilder l2;
  l2.File("evil/.wh.victim", "")
      .File("rel/.wh.sentinel", "")
      .File("evil/.wh.dir", "")
      .File("evil/.wh..wh..opq", "")
      .File("rel/.wh..wh..opq", "")
      .File("up/up/.wh.outside", "");
  auto r = Extract(l2.Finish());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Exists(root_ + "/evil"));  // the whiteouts resolved inside; nothing there to delete
}

TEST_P(HostileTest, DeviceNodes) {
  TarBuilder b;
  b.Add({.name = "dev/mem", .type = S_IFCHR, .perm = 0600, .rdev = makedev(1, 1)})
      .Symlink("evil", outside_)
      .Add({.name = "evil/null", .type = S_IFCHR, .perm = 0666, .rdev = makedev(1, 3)})
      .Add({.name = "evil/sda", .type = S_IFBLK, .perm = 0660, .rdev = makedev(8, 0)});
  std::string tar = b.Finish();
  auto r = Extract(tar);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  if (::geteuid() == 0) {
    struct stat st;
    ASSERT_EQ(::lstat((root_ + "/dev/mem").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_TRUE(Exists(root_ + outside_ + "/null"));
  }
  // Refused by option: skipped with one warning each, nothing created.
  TempDir other;
  ExtractOptions o = Options();
  o.create_device_nodes = false;
  warnings_.clear();
  auto r2 = ExtractBlob(tar, other.path(), o);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_FALSE(Exists(other.Sub("dev/mem")));
  EXPECT_EQ(warnings_.size(), 3u);

  TarBuilder esc;
  esc.Add({.name = "../dev-escape", .type = S_IFCHR, .perm = 0666, .rdev = makedev(1, 3)});
  EXPECT_EQ(Extract(esc.Finish()).status().code(), ErrorCode::kPermissionDenied);
}

TEST_P(HostileTest, VeryLongNames) {
  {
    TarBuilder b;
    b.File(std::string(300, 'n'), "x");  // one component over NAME_MAX
    auto r = Extract(b.Finish());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("too long"), std::string::npos) << r.status().ToString();
  }
  {
    TarBuilder b;
    b.Symlink("s", std::string(5000, 's'));  // target over PATH_MAX
    EXPECT_FALSE(Extract(b.Finish()).ok());
  }
  // 260 components, 4421 bytes: over PATH_MAX, still resolvable one component at a time. (Kept to
  // 260 levels: removing directories is slow on discard-mounted disks.)
  const std::string comp(16, 'd');
  std::string deep;
  for (int i = 0; i < 260; ++i) deep += comp + "/";
  TarBuilder b;
  b.File(deep + "f", "deep").File(deep + "../../.." + std::string(60, '/') + "g", "g");
  auto r = Extract(b.Finish());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  int fd = ::open(root_.c_str(), O_PATH | O_DIRECTORY);
  for (int i = 0; i < 260; ++i) {
    int next = ::openat(fd, comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW);
    ASSERT_GE(next, 0) << i;
    ::close(fd);
    fd = next;
    if (i == 256) {
      struct stat st;
      EXPECT_EQ(::fstatat(fd, "g", &st, 0), 0);
    }
  }
  struct stat st;
  EXPECT_EQ(::fstatat(fd, "f", &st, 0), 0);
  ::close(fd);
}

class BrokenStreamTest : public HostileTest {
 protected:
  std::string ValidTar() {
    std::string big(300000, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) % 251);
    TarBuilder b;
    b.File("a", big).File("b", "bbb");
    return b.Finish();
  }
};

TEST_P(BrokenStreamTest, TruncatedStreamsFailCleanly) {
  std::string tar = ValidTar();
  const std::string gz = Gzip(tar), zst = Zstd(tar);
  for (const std::string& blob : {tar.substr(0, 150000), tar.substr(0, 700), gz.substr(0, gz.size() / 2),
                                  gz.substr(0, gz.size() - 1), zst.substr(0, zst.size() - 3)}) {
    auto r = Extract(blob);  // the digest is of the truncated bytes: the stream itself must be caught
    ASSERT_FALSE(r.ok()) << blob.size();
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().ToString();
  }
}

TEST_P(BrokenStreamTest, CorruptGzipFailsCleanly) {
  std::string gz = Gzip(ValidTar());
  for (size_t at : {size_t{3}, gz.size() / 3, gz.size() - 5}) {
    std::string bad = gz;
    bad[at] ^= 0xff;
    auto r = Extract(bad);
    ASSERT_FALSE(r.ok()) << at;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().ToString();
  }
}

TEST_P(BrokenStreamTest, DigestMismatchFails) {
  std::string blob = Gzip(ValidTar());
  StringReader r(blob);
  auto res = ExtractLayer(r, {Sha256Of(blob + "x"), blob.size(), std::nullopt}, root_, Options());
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), ErrorCode::kDigestMismatch);
  EXPECT_NE(res.status().message().find("sha256:"), std::string::npos) << res.status().ToString();
}

TEST_P(BrokenStreamTest, DecompressionBombStopsAtTheLimit) {
  // One tar header for a 4 GiB file, then 4096 gzip members of 1 MiB of zeros each (~4 MiB blob).
  std::string zeros_gz = Gzip(std::string(1 << 20, '\0'), 9);
  std::string blob = Gzip(testing::UstarHeader("bomb", uint64_t{4} << 30));
  for (int i = 0; i < 4096; ++i) blob += zeros_gz;
  std::string zbomb = Zstd(testing::UstarHeader("bomb", uint64_t{4} << 30));
  std::string zeros_zst = Zstd(std::string(1 << 20, '\0'), 19);
  for (int i = 0; i < 4096; ++i) zbomb += zeros_zst;
  for (const std::string* b : {&blob, &zbomb}) {
    ExtractOptions o = Options();
    o.max_uncompressed_bytes = 64 << 20;
    auto start = std::chrono::steady_clock::now();
    auto r = ExtractBlob(*b, root_, o);
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("limit"), std::string::npos) << r.status().ToString();
    EXPECT_LT(secs, 5.0);
    struct stat st;
    ASSERT_EQ(::stat((root_ + "/bomb").c_str(), &st), 0);
    EXPECT_LE(st.st_size, 64 << 20);
  }
}

TEST_P(BrokenStreamTest, RatioLimitStopsABombEarlyAndNamesTheLayer) {
  // 256 MiB of zeros in a 4 GiB file: zstd packs each MiB into a few dozen bytes.
  std::string bomb = Zstd(testing::UstarHeader("bomb", uint64_t{4} << 30));
  std::string zeros_zst = Zstd(std::string(1 << 20, '\0'), 19);
  for (int i = 0; i < 256; ++i) bomb += zeros_zst;
  ExtractOptions o = Options();
  o.limits.max_ratio = 100;
  o.limits.ratio_min_bytes = 4 << 20;
  o.limits.max_ratio_setting = "--max-decompression-ratio";
  auto r = ExtractBlob(bomb, root_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  const std::string m = r.status().ToString();
  EXPECT_NE(m.find("layer " + Sha256Of(bomb).ToString() + " expands more than 100 times"), std::string::npos) << m;
  EXPECT_NE(m.find("--max-decompression-ratio changes the limit"), std::string::npos) << m;
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/bomb").c_str(), &st), 0);
  EXPECT_LE(st.st_size, 8 << 20);  // stopped just past the minimum size, not at the end of the stream
}

TEST_P(BrokenStreamTest, ByteLimitNamesTheLayerAndTheSetting) {
  std::string bomb = Gzip(testing::UstarHeader("bomb", uint64_t{1} << 30));
  std::string zeros_gz = Gzip(std::string(1 << 20, '\0'), 9);
  for (int i = 0; i < 64; ++i) bomb += zeros_gz;
  ExtractOptions o = Options();
  o.limits.max_bytes = 16 << 20;
  o.limits.max_bytes_setting = "--max-layer-size";
  auto r = ExtractBlob(bomb, root_, o);
  ASSERT_FALSE(r.ok());
  const std::string m = r.status().ToString();
  EXPECT_NE(m.find("layer " + Sha256Of(bomb).ToString() + " decompresses to more than 16 MiB"), std::string::npos) << m;
  EXPECT_NE(m.find("--max-layer-size changes the limit"), std::string::npos) << m;
}

TEST_P(BrokenStreamTest, DefaultLimitsLetARealLayerThrough) {
  // A layer of zeros below the ratio's minimum size passes the default limits, as does an ordinary one.
  std::string zeros = Zstd(TarBuilder().File("zeros", std::string(8 << 20, '\0')).Finish(), 19);
  ExtractOptions o = Options();
  o.limits = DecompressionLimits::Defaults();
  auto r = ExtractBlob(zeros, root_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->uncompressed_bytes / r->compressed_bytes, 1000u);
  auto v = ExtractBlob(Gzip(ValidTar()), root_, o);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
}

const auto kModes = ::testing::Values(ResolveMode::kAuto, ResolveMode::kManual);
const auto kName = [](const auto& info) { return info.param == ResolveMode::kAuto ? "Auto" : "Manual"; };
INSTANTIATE_TEST_SUITE_P(Resolvers, HostileTest, kModes, kName);
INSTANTIATE_TEST_SUITE_P(Resolvers, BrokenStreamTest, kModes, kName);

}  // namespace
}  // namespace kiln::layers
