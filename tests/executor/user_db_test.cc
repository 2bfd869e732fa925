#include "executor/steps/user_db.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using testing::TempDir;
using testing::WriteFile;

constexpr char kPasswd[] =
    "# the users\n"
    "root:x:0:0:root:/root:/bin/sh\n"
    "\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "app:x:1000:1001:App:/home/app:/bin/sh\n"
    "user2:x:1002:1002::/home/user2\n"
    "1234:x:2000:2000::/home/n:/bin/sh\n"
    "broken:x:abc:1:bad uid\n"
    "short:x:5\n"
    "  spaced:x:3000:3000::/s:/bin/sh  \n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "# comment\n"
    "daemon:x:1:app\n"
    "appgrp:x:1001:\n"
    "docker:x:999:app,user2\n"
    "wheel:x:10: app , other\n"
    "bad:x:zz:app\n"
    "staff:x:50\n";

class UserDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_.Sub("etc/passwd"), kPasswd);
    WriteFile(dir_.Sub("etc/group"), kGroup);
  }
  TempDir dir_;
};

TEST(ParsePasswdTest, SkipsCommentsBlanksAndMalformedLines) {
  auto users = ParsePasswd(kPasswd);
  std::vector<std::string> names;
  for (const auto& u : users) names.push_back(u.name);
  EXPECT_EQ(names, (std::vector<std::string>{"root", "daemon", "app", "user2", "1234", "spaced"}));
  EXPECT_EQ(users[2].uid, 1000u);
  EXPECT_EQ(users[2].gid, 1001u);
  EXPECT_EQ(users[2].home, "/home/app");
}

TEST(ParseGroupTest, MembersTrimmedAndBadGidSkipped) {
  auto groups = ParseGroup(kGroup);
  ASSERT_EQ(groups.size(), 6u);
  EXPECT_EQ(groups[4].name, "wheel");
  EXPECT_EQ(groups[4].members, (std::vector<std::string>{"app", "other"}));
  EXPECT_EQ(groups[5].name, "staff");
  EXPECT_TRUE(groups[5].members.empty());
}

struct UserCase {
  std::string spec;
  uint32_t uid, gid;
  std::vector<uint32_t> groups;
  std::string home;
};

TEST_F(UserDbTest, ResolveUserTable) {
  const std::vector<UserCase> cases = {
      {"root", 0, 0, {}, "/root"},
      {"app", 1000, 1001, {1, 10, 999}, "/home/app"},
      {"1000", 1000, 1001, {1, 10, 999}, "/home/app"},  // numeric matches the passwd entry
      {"app:docker", 1000, 999, {}, "/home/app"},       // explicit group: no supplementary groups
      {"app:5", 1000, 5, {}, "/home/app"},
      {"4242", 4242, 0, {}, "/"},                        // unknown uid is fine, gid 0
      {"4242:4243", 4242, 4243, {}, "/"},
      {"1234", 2000, 2000, {}, "/home/n"},               // a name made of digits wins over the uid
      {"user2", 1002, 1002, {999}, "/home/user2"},
      {"spaced", 3000, 3000, {}, "/s"},
      {"", 0, 0, {}, "/root"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.spec);
    auto u = ResolveUser(dir_.path(), c.spec);
    ASSERT_TRUE(u.ok()) << u.status().ToString();
    EXPECT_EQ(u->uid, c.uid);
    EXPECT_EQ(u->gid, c.gid);
    EXPECT_EQ(u->supplementary_groups, c.groups);
    EXPECT_EQ(u->home, c.home);
  }
}

TEST_F(UserDbTest, ResolveUserErrors) {
  auto u = ResolveUser(dir_.path(), "nobody");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().message(), "unable to find user nobody: no matching entries in passwd file");
  u = ResolveUser(dir_.path(), "app:nogroup");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().message(), "unable to find group nogroup: no matching entries in group file");
  EXPECT_FALSE(ResolveUser(dir_.path(), "broken").ok());  // its uid is not a number: never root
  EXPECT_FALSE(ResolveUser(dir_.path(), "app:").ok());
  EXPECT_FALSE(ResolveUser(dir_.path(), "99999999999").ok());
}

TEST_F(UserDbTest, ChownTable) {
  struct Case {
    std::string spec;
    uint32_t uid, gid;
  };
  const std::vector<Case> cases = {
      {"app", 1000, 1001},         // name: primary group
      {"1000", 1000, 1000},        // numeric: gid = uid (BuildKit)
      {"app:docker", 1000, 999},
      {"app:77", 1000, 77},
      {"55:docker", 55, 999},
      {"55:66", 55, 66},
      {"user2", 1002, 1002},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.spec);
    auto r = ResolveChown(dir_.path(), c.spec);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->first, c.uid);
    EXPECT_EQ(r->second, c.gid);
  }
  EXPECT_EQ(ResolveChown(dir_.path(), "ghost").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(ResolveChown(dir_.path(), "app:ghosts").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(ResolveChown(dir_.path(), ":1").status().code(), ErrorCode::kInvalidArgument);
}

TEST(UserDbNoFilesTest, NumericWorksWithoutPasswdNamesDoNot) {
  TempDir dir;
  auto u = ResolveUser(dir.path(), "123:456");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->uid, 123u);
  EXPECT_EQ(u->gid, 456u);
  EXPECT_FALSE(ResolveUser(dir.path(), "app").ok());
  auto c = ResolveChown(dir.path(), "7");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, std::make_pair(7u, 7u));
}

TEST(UserDbHostileTest, PasswdSymlinkOutsideRootStaysInside) {
  TempDir dir;
  // /etc/passwd -> /../../../../etc/passwd: resolved in the rootfs, it is <rootfs>/etc/passwd's
  // own target chain, never the host's file.
  ::mkdir(dir.Sub("etc").c_str(), 0755);
  WriteFile(dir.Sub("real/passwd"), "app:x:77:78::/h:/bin/sh\n");
  ASSERT_EQ(::symlink("../../../../../../real/passwd", dir.Sub("etc/passwd").c_str()), 0);
  auto u = ResolveUser(dir.path(), "app");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->uid, 77u);
  // A link to the host's /etc/passwd resolves to <rootfs>/etc/passwd, which is the link itself:
  // a loop, or missing — never the host's root entry.
  TempDir dir2;
  ::mkdir(dir2.Sub("etc").c_str(), 0755);
  ASSERT_EQ(::symlink("/etc/shadow-kiln-missing", dir2.Sub("etc/passwd").c_str()), 0);
  EXPECT_FALSE(ResolveUser(dir2.path(), "daemon").ok());
}

TEST(UserDbNoFilesTest, RootNeedsNoPasswdOrGroupFile) {
  TempDir dir;  // no /etc at all, like a scratch image
  auto u = ResolveUser(dir.path(), "root:root");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->uid, 0u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_FALSE(ResolveUser(dir.path(), "app").ok());
  EXPECT_FALSE(ResolveUser(dir.path(), "0:wheel").ok());
}

}  // namespace
}  // namespace kiln::executor
