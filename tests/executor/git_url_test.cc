// Git URLs: which sources are git repositories (BuildKit's rules, plus file://...git), how their
// fragments split into ref, subdirectory and commit, and Kaniko's git:// context form.
#include "executor/steps/git_url.h"

#include <gtest/gtest.h>

namespace kiln::executor {
namespace {

TEST(GitUrlTest, WhatIsAGitRepository) {
  for (const char* yes : {"https://github.com/moby/buildkit.git", "https://h/r.git#main", "http://h/r.git#v1:sub",
                          "git://h/r", "git://127.0.0.1:9418/r.git#main", "ssh://git@h/r.git", "git@github.com:a/b.git",
                          "git@github.com:a/b.git#v1.2:dir", "deploy-user@h.example:repo", "file:///srv/git/r.git",
                          "file:///srv/git/r.git#v1:dir", "HTTPS://h/r.git", "https://h/r.git?x=1#main"}) {
    EXPECT_TRUE(IsGitUrl(yes)) << yes;
  }
  for (const char* no : {"https://h/file.tar.gz", "https://h/r.git/x", "http://h/r", "https://h/x?y=.git",
                         "file:///srv/r", "s3://b/r.git", "./r.git", "r.git", "dir/sub", "user@host", "@h:x",
                         "us er@h:x", "docker-image://alpine", "/abs/r.git"}) {
    EXPECT_FALSE(IsGitUrl(no)) << no;
  }
}

TEST(GitUrlTest, FragmentsSplitIntoRefSubdirAndCommit) {
  auto u = ParseGitUrl("https://h/org/r.git#v1.2:docs/site");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->remote, "https://h/org/r.git");
  EXPECT_EQ(u->ref, "v1.2");
  EXPECT_EQ(u->subdir, "docs/site");
  EXPECT_EQ(u->commit, "");
  EXPECT_FALSE(u->scp_style);

  u = ParseGitUrl("https://h/r.git");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->ref, "");
  EXPECT_EQ(u->subdir, "");

  // An empty ref with a subdir: the default branch (BuildKit's "#:dir").
  u = ParseGitUrl("https://h/r.git#:dir/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->ref, "");
  EXPECT_EQ(u->subdir, "dir");

  u = ParseGitUrl("git@github.com:org/r.git#refs/heads/main:/a/./b/../c");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->scp_style);
  EXPECT_EQ(u->remote, "git@github.com:org/r.git");
  EXPECT_EQ(u->ref, "refs/heads/main");
  EXPECT_EQ(u->subdir, "a/c");

  const std::string sha = "0123456789abcdef0123456789abcdef01234567";
  u = ParseGitUrl("https://h/r.git##ref=main,subdir=x,commit=" + sha);
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->ref, "main");
  EXPECT_EQ(u->subdir, "x");
  EXPECT_EQ(u->commit, sha);
  u = ParseGitUrl("https://h/r.git##commit=" + sha);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->ref, sha);  // BuildKit: the commit is the ref when none is given

  u = ParseGitUrl("file:///tmp/repos/r.git#" + sha);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->remote, "file:///tmp/repos/r.git");
  EXPECT_EQ(u->ref, sha);
}

TEST(GitUrlTest, MalformedFragmentsAreErrors) {
  for (const char* bad : {"https://h/r.git#main:../../etc", "https://h/r.git#--upload-pack=x", "https://h/r.git##ref",
                          "https://h/r.git##branch=main", "https://h/r.git#main#abc", "https://h/r.git#a b",
                          "https://h/notgit"}) {
    auto u = ParseGitUrl(bad);
    EXPECT_FALSE(u.ok()) << bad;
    if (!u.ok()) { EXPECT_EQ(u.status().code(), ErrorCode::kInvalidArgument) << bad; }
  }
}

TEST(GitUrlTest, BuildKitsQueryForm) {
  auto u = ParseGitUrl("https://h/org/r.git?ref=v1.0&subdir=docs/site");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->remote, "https://h/org/r.git");  // the query is not the remote's
  EXPECT_EQ(u->ref, "v1.0");
  EXPECT_EQ(u->subdir, "docs/site");
  EXPECT_FALSE(u->keep_git_dir.has_value());
  EXPECT_FALSE(u->submodules.has_value());

  u = ParseGitUrl("https://h/r.git?branch=release%2F2");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->ref, "refs/heads/release/2");
  u = ParseGitUrl("git@h.example:r.git?tag=v2");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->remote, "git@h.example:r.git");
  EXPECT_EQ(u->ref, "refs/tags/v2");
  u = ParseGitUrl("file:///srv/r.git?tag=refs/tags/v2&keep-git-dir&submodules=false");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->ref, "refs/tags/v2");
  EXPECT_EQ(u->keep_git_dir, std::optional<bool>(true));
  EXPECT_EQ(u->submodules, std::optional<bool>(false));
  u = ParseGitUrl("https://h/r.git?keep-git-dir=0");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->keep_git_dir, std::optional<bool>(false));

  // A checksum: a hex prefix to verify; a full sha is also the ref when nothing else names one.
  const std::string sha = "0123456789abcdef0123456789abcdef01234567";
  u = ParseGitUrl("https://h/r.git?checksum=" + sha);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->checksum, sha);
  EXPECT_EQ(u->ref, sha);
  u = ParseGitUrl("https://h/r.git?commit=0123ABC&branch=main");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->checksum, "0123abc");
  EXPECT_EQ(u->ref, "refs/heads/main");
  u = ParseGitUrl("https://h/r.git?checksum=0123abc");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->ref, "");  // a prefix cannot be fetched: the default branch, verified

  // The fragment and the query together: they must agree.
  u = ParseGitUrl("https://h/r.git?ref=main&subdir=a/./b#main:a/b");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->ref, "main");
  EXPECT_EQ(u->subdir, "a/b");
  u = ParseGitUrl("https://h/r.git?subdir=x#v1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->ref, "v1");
  EXPECT_EQ(u->subdir, "x");

  // Kaniko's git:// contexts take the query too.
  u = ParseGitContext("git://h/r.git?branch=dev", "");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->remote, "https://h/r.git");
  EXPECT_EQ(u->ref, "refs/heads/dev");
}

TEST(GitUrlTest, MalformedQueriesAreErrors) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{
           {"https://h/r.git?ref=v1#v2", "ref conflicts"},
           {"https://h/r.git?subdir=a#:b", "subdir conflicts"},
           {"https://h/r.git?tag=v1&branch=main", "branch conflicts with tag"},
           {"https://h/r.git?ref=main&tag=v1", "ref conflicts"},
           {"https://h/r.git?branch=dev#main", "ref conflicts"},
           {"https://h/r.git?ref=a&ref=b", "multiple values"},
           {"https://h/r.git?ref=", "has no value"},
           {"https://h/r.git?depth=1", "unexpected query \"depth\""},
           {"https://h/r.git?keep-git-dir=maybe", "invalid keep-git-dir value"},
           {"https://h/r.git?checksum=xyz", "not hex"},
           {"https://h/r.git?subdir=../x", "leaves the repository"},
           {"https://h/r.git?ref=%zz", "bad %-escape"},
           {"https://h/r.git?ref=-x", "may not start with '-'"},
       }) {
    auto u = ParseGitUrl(c.url);
    ASSERT_FALSE(u.ok()) << c.url;
    EXPECT_EQ(u.status().code(), ErrorCode::kInvalidArgument) << c.url;
    EXPECT_NE(u.status().message().find(c.says), std::string::npos) << c.url << ": " << u.status().message();
  }
}

TEST(GitUrlTest, KanikoGitContexts) {
  const std::string sha = "89abcdef0123456789abcdef0123456789abcdef";
  auto u = ParseGitContext("git://github.com/acme/app.git#refs/heads/main#" + sha, "");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->remote, "https://github.com/acme/app.git");  // Kaniko clones git:// contexts over HTTPS
  EXPECT_EQ(u->ref, "refs/heads/main");
  EXPECT_EQ(u->commit, sha);

  u = ParseGitContext("git://127.0.0.1:8080/r.git#v2:app/web", "http");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->remote, "http://127.0.0.1:8080/r.git");  // GIT_PULL_METHOD=http
  EXPECT_EQ(u->ref, "v2");
  EXPECT_EQ(u->subdir, "app/web");

  // Other git URLs keep their own meaning.
  u = ParseGitContext("https://h/r.git#main:sub", "");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->remote, "https://h/r.git");
  EXPECT_EQ(u->subdir, "sub");
  EXPECT_FALSE(ParseGitContext("git://", "").ok());
}

TEST(GitUrlTest, CommitShasAndRedaction) {
  EXPECT_TRUE(IsCommitSha("0123456789abcdef0123456789abcdef01234567"));
  EXPECT_FALSE(IsCommitSha("0123456789ABCDEF0123456789abcdef01234567"));
  EXPECT_FALSE(IsCommitSha("0123456"));
  EXPECT_FALSE(IsCommitSha("main"));
  EXPECT_EQ(RedactGitUrl("https://user:s3cret@h/r.git#main"), "https://user:xxxxx@h/r.git#main");
  EXPECT_EQ(RedactGitUrl("https://ghp_token@h/r.git"), "https://xxxxx@h/r.git");
  EXPECT_EQ(RedactGitUrl("https://h/r.git"), "https://h/r.git");
  EXPECT_EQ(RedactGitUrl("git@github.com:a/b.git"), "git@github.com:a/b.git");
}

}  // namespace
}  // namespace kiln::executor
