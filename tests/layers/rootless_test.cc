#include "layers/rootless.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/unique_fd.h"
#include "tests/testing/temp_dir.h"

namespace kiln::layers {
namespace {

TEST(RootlessTest, RoundTrip) {
  for (RootlessOwner o : {RootlessOwner{0, 0}, RootlessOwner{1000, 1000}, RootlessOwner{65534, 0},
                          RootlessOwner{0, 4294967294u}}) {
    auto d = DecodeRootlessOwner(EncodeRootlessOwner(o));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, o);
  }
}

TEST(RootlessTest, MatchesProtobufWireFormat) {
  // uid=1000 gid=33: 08 e8 07 10 21, as protoc encodes it.
  EXPECT_EQ(EncodeRootlessOwner({1000, 33}), std::string("\x08\xe8\x07\x10\x21", 5));
  EXPECT_EQ(EncodeRootlessOwner({0, 0}), "");
}

TEST(RootlessTest, RejectsGarbage) {
  EXPECT_FALSE(DecodeRootlessOwner(std::string("\x0a\x01\x00", 3)).has_value());  // length-delimited field
  EXPECT_FALSE(DecodeRootlessOwner(std::string("\x08\xff", 2)).has_value());      // truncated varint
}

// Reading and writing on disk. user.* xattrs need a filesystem that keeps them (tmpfs and ext4 do).
class RootlessXattrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteFile(dir_.Sub("f"), "x");
    ASSERT_EQ(::mkdir(dir_.Sub("d").c_str(), 0755), 0);
    ASSERT_EQ(::symlink("f", dir_.Sub("link").c_str()), 0);
    if (::setxattr(dir_.Sub("f").c_str(), "user.probe", "1", 1, 0) != 0) GTEST_SKIP() << "no user xattrs here";
    ::removexattr(dir_.Sub("f").c_str(), "user.probe");
    dirfd_ = UniqueFd(::open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_GE(dirfd_.get(), 0);
  }
  UniqueFd Open(const std::string& rel, int flags) {
    UniqueFd fd(::openat(dirfd_.get(), rel.c_str(), flags | O_CLOEXEC | O_NOFOLLOW));
    EXPECT_GE(fd.get(), 0) << rel;
    return fd;
  }
  std::string Raw(const std::string& rel) {
    char buf[64];
    ssize_t n = ::lgetxattr(dir_.Sub(rel).c_str(), kRootlessXattr, buf, sizeof buf);
    return n < 0 ? "<none>" : std::string(buf, static_cast<size_t>(n));
  }

  testing::TempDir dir_;
  UniqueFd dirfd_;
};

TEST_F(RootlessXattrTest, WrittenThroughAnFdReadBackEveryWay) {
  UniqueFd f = Open("f", O_RDONLY);
  ASSERT_TRUE(WriteRootlessOwner(f.get(), {1000, 33}, "/f").ok());
  EXPECT_EQ(Raw("f"), EncodeRootlessOwner({1000, 33}));  // umoci's encoding, under umoci's name
  EXPECT_EQ(ReadRootlessOwner(f.get()), (RootlessOwner{1000, 33}));
  EXPECT_EQ(ReadRootlessOwner(dirfd_.get(), "f"), (RootlessOwner{1000, 33}));
  UniqueFd path_fd = Open("f", O_PATH);
  EXPECT_EQ(ReadRootlessOwner(path_fd.get()), (RootlessOwner{1000, 33}));
}

TEST_F(RootlessXattrTest, OPathDirectoryAndNameInDirectory) {
  UniqueFd d = Open("d", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(WriteRootlessOwner(d.get(), {5, 6}, "/d").ok());
  EXPECT_EQ(ReadRootlessOwner(dirfd_.get(), "d"), (RootlessOwner{5, 6}));

  Result<bool> stored = WriteRootlessOwner(dirfd_.get(), "f", {7, 0}, "/f");
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  EXPECT_TRUE(*stored);
  EXPECT_EQ(ReadRootlessOwner(dirfd_.get(), "f"), (RootlessOwner{7, 0}));
  // A nested name is resolved inside the directory.
  testing::WriteFile(dir_.Sub("d/g"), "y");
  ASSERT_TRUE(WriteRootlessOwner(dirfd_.get(), "d/g", {8, 9}, "/d/g").ok());
  EXPECT_EQ(ReadRootlessOwner(dirfd_.get(), "d/g"), (RootlessOwner{8, 9}));
}

TEST_F(RootlessXattrTest, SymlinkIsNotFollowed) {
  // The kernel refuses user.* xattrs on a symlink: nothing stored, and its target is left alone.
  Result<bool> stored = WriteRootlessOwner(dirfd_.get(), "link", {1, 2}, "/link");
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  EXPECT_FALSE(*stored);
  EXPECT_EQ(Raw("f"), "<none>");
  ASSERT_TRUE(WriteRootlessOwner(dirfd_.get(), "f", {3, 4}, "/f").ok());
  EXPECT_EQ(ReadRootlessOwner(dirfd_.get(), "link"), std::nullopt);  // the target's owner is not read
}

TEST_F(RootlessXattrTest, ImageOwnerPrefersTheAttributeAndNeverReadsThroughALink) {
  struct stat f_st, link_st;
  ASSERT_EQ(::fstatat(dirfd_.get(), "f", &f_st, AT_SYMLINK_NOFOLLOW), 0);
  ASSERT_EQ(::fstatat(dirfd_.get(), "link", &link_st, AT_SYMLINK_NOFOLLOW), 0);
  // Without the attribute: the owner on disk.
  EXPECT_EQ(ImageOwner(-1, dirfd_.get(), "f", f_st), (RootlessOwner{f_st.st_uid, f_st.st_gid}));
  ASSERT_TRUE(WriteRootlessOwner(dirfd_.get(), "f", {1000, 1001}, "/f").ok());
  // With it: the attribute, by name or through an open fd.
  EXPECT_EQ(ImageOwner(-1, dirfd_.get(), "f", f_st), (RootlessOwner{1000, 1001}));
  UniqueFd f = Open("f", O_RDONLY);
  EXPECT_EQ(ImageOwner(f.get(), -1, nullptr, f_st), (RootlessOwner{1000, 1001}));
  // A symlink to it is the link's own owner, not its target's.
  EXPECT_EQ(ImageOwner(-1, dirfd_.get(), "link", link_st), (RootlessOwner{link_st.st_uid, link_st.st_gid}));
}

TEST_F(RootlessXattrTest, NoneOrMalformedReadsAsNone) {
  EXPECT_EQ(ReadRootlessOwner(dirfd_.get(), "f"), std::nullopt);
  EXPECT_EQ(ReadRootlessOwner(dirfd_.get(), "missing"), std::nullopt);
  ASSERT_EQ(::setxattr(dir_.Sub("f").c_str(), kRootlessXattr, "\x0a\x01", 2, 0), 0);
  EXPECT_EQ(ReadRootlessOwner(dirfd_.get(), "f"), std::nullopt);
}

TEST_F(RootlessXattrTest, ErrorsNameThePath) {
  Result<bool> r = WriteRootlessOwner(dirfd_.get(), "missing/x", {1, 1}, "/missing/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "recording the owner of /missing/x in user.rootlesscontainers: No such file or directory");
  Status s = WriteRootlessOwner(-1, {1, 1}, "/nowhere");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("recording the owner of /nowhere in user.rootlesscontainers"), std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace kiln::layers
