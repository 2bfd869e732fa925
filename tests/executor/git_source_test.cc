// CheckoutGit: the git commands a checkout runs (a fake GitRunner records them), and the same
// checkouts with Debian's git against bare repositories this test makes (branch, annotated tag,
// commit, subdir, --keep-git-dir, credentials kept out of .git/config, commit mtimes). And
// VerifyGitChecksum's prefix rule.
#include "executor/steps/git_source.h"

#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "tests/testing/registry_server.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using testing::RunShell;
using testing::TempDir;

const std::string kSha = "1111111111111111111111111111111111111111";
const std::string kTag = "2222222222222222222222222222222222222222";

// Answers each command from a script (matched on the git subcommand) and records it.
class FakeGitRunner : public GitRunner {
 public:
  Result<std::string> Run(const std::vector<std::string>& args) override {
    std::string line;
    for (const std::string& a : args) line += (line.empty() ? "" : " ") + a;
    calls.push_back(line);
    for (auto& [needle, answer] : answers) {
      if (line.find(needle) != std::string::npos) return answer;
    }
    return std::string();
  }
  std::vector<std::string> calls;
  std::vector<std::pair<std::string, Result<std::string>>> answers;
};

bool Contains(const std::vector<std::string>& calls, const std::string& s) {
  for (const std::string& c : calls) {
    if (c.find(s) != std::string::npos) return true;
  }
  return false;
}

TEST(GitSourceTest, ABranchIsFetchedShallowAndTheGitDirRemoved) {
  TempDir tmp;
  FakeGitRunner git;
  git.answers = {{"cat-file -t", std::string("commit\n")},
                 {"rev-parse FETCH_HEAD^{commit}", kSha + "\n"},
                 {"show -s --format=%ct", std::string("1700000000\n")}};
  GitUrl url;
  url.remote = "https://h/r.git";
  url.ref = "main";
  std::string dest = tmp.Sub("co");
  // The fake does not create a .git, so make the one the checkout removes.
  ASSERT_EQ(::mkdir(dest.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((dest + "/.git").c_str(), 0700), 0);
  auto c = CheckoutGit(git, url, dest, {});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->commit, kSha);
  EXPECT_EQ(c->tag_object, "");
  EXPECT_EQ(c->commit_time, 1700000000);
  ASSERT_GE(git.calls.size(), 5u);
  EXPECT_EQ(git.calls[0], "-c init.defaultBranch=main init -q " + dest);
  EXPECT_EQ(git.calls[1], "-C " + dest + " remote add origin https://h/r.git");
  EXPECT_EQ(git.calls[2], "-C " + dest + " fetch -q --depth=1 --no-tags origin main");
  EXPECT_TRUE(Contains(git.calls, "checkout -q " + kSha));
  struct stat st;
  EXPECT_NE(::stat((dest + "/.git").c_str(), &st), 0);
}

TEST(GitSourceTest, TheDefaultBranchAnAnnotatedTagAndAnExpectedCommit) {
  TempDir tmp;
  FakeGitRunner git;
  git.answers = {{"cat-file -t", std::string("tag\n")},
                 {"rev-parse FETCH_HEAD^{commit}", kSha + "\n"},
                 {"rev-parse FETCH_HEAD", kTag + "\n"}};
  GitUrl url;
  url.remote = "https://h/r.git";
  GitCheckoutOptions keep;
  keep.keep_git_dir = true;
  auto c = CheckoutGit(git, url, tmp.Sub("a"), keep);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(Contains(git.calls, "fetch -q --depth=1 --no-tags origin HEAD"));
  EXPECT_EQ(c->tag_object, kTag);
  EXPECT_TRUE(Contains(git.calls, "remote set-url origin https://h/r.git"));

  url.commit = "3333333333333333333333333333333333333333";
  auto wrong = CheckoutGit(git, url, tmp.Sub("b"), {});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), ErrorCode::kDigestMismatch);
  EXPECT_NE(wrong.status().message().find(kSha), std::string::npos) << wrong.status().message();
}

TEST(GitSourceTest, ACommitTheServerWillNotServeShallowIsFetchedWhole) {
  TempDir tmp;
  FakeGitRunner git;
  git.answers = {{"--depth=1 --no-tags origin " + kSha, FailedPrecondition("git fetch failed: not our ref")},
                 {"cat-file -t", std::string("commit\n")},
                 {"rev-parse", kSha + "\n"}};
  GitUrl url;
  url.remote = "git@h:r.git";
  url.ref = kSha;
  auto c = CheckoutGit(git, url, tmp.Sub("co"), {});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(Contains(git.calls, "fetch -q --tags origin +refs/heads/*:refs/remotes/origin/*"));
  EXPECT_TRUE(Contains(git.calls, "cat-file -e " + kSha + "^{commit}"));
}

TEST(GitSourceTest, AFailedFetchNamesTheRefAndTheRemote) {
  TempDir tmp;
  FakeGitRunner git;
  git.answers = {{"fetch", FailedPrecondition("git fetch failed (exit status 128): fatal: couldn't find remote ref nope")}};
  GitUrl url;
  url.remote = "https://user:secret@h/r.git";
  url.ref = "nope";
  auto c = CheckoutGit(git, url, tmp.Sub("co"), {});
  ASSERT_FALSE(c.ok());
  std::string m = c.status().message();
  EXPECT_NE(m.find("\"nope\""), std::string::npos) << m;
  EXPECT_NE(m.find("https://user:xxxxx@h/r.git"), std::string::npos) << m;
  EXPECT_EQ(m.find("secret"), std::string::npos) << m;
}

TEST(GitSourceTest, ChecksumIsAPrefixOfTheCommitOrTheTag) {
  GitCheckout c;
  c.commit = "abcdef0123456789abcdef0123456789abcdef01";
  EXPECT_TRUE(VerifyGitChecksum("abcdef0", c).ok());
  EXPECT_TRUE(VerifyGitChecksum(c.commit, c).ok());
  EXPECT_TRUE(VerifyGitChecksum("ABCDEF", c).ok());
  Status s = VerifyGitChecksum("abcdee", c);
  EXPECT_EQ(s.code(), ErrorCode::kDigestMismatch);
  EXPECT_NE(s.message().find("abcdee"), std::string::npos);
  EXPECT_NE(s.message().find(c.commit), std::string::npos);
  c.tag_object = "9999999999999999999999999999999999999999";
  EXPECT_TRUE(VerifyGitChecksum("9999", c).ok());
  EXPECT_EQ(VerifyGitChecksum("sha256:abc", c).code(), ErrorCode::kInvalidArgument);
}

// With Debian's git, against a bare repository made here.
class GitCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunShell("git --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "needs git";
    std::string w = tmp_.Sub("work");
    std::string script =
        "set -e; export GIT_AUTHOR_DATE='@1600000000 +0000' GIT_COMMITTER_DATE='@1600000000 +0000';"
        "git init -q -b main " + w + "; cd " + w + "; git config user.email t@e; git config user.name t;"
        "mkdir -p app/web; echo one > app/web/index.html; echo top > README; chmod 0755 README;"
        "ln -s README link; git add .; git commit -qm one; git tag -a v1 -m v1;"
        "export GIT_COMMITTER_DATE='@1700000000 +0000'; echo two > app/web/index.html; git commit -qam two;"
        "git clone -q --bare " + w + " " + tmp_.Sub("r.git");
    ASSERT_EQ(RunShell(script), 0);
    ASSERT_EQ(RunShell("git -C " + w + " rev-parse v1^{commit}", &v1_), 0);
    ASSERT_EQ(RunShell("git -C " + w + " rev-parse main", &main_), 0);
    v1_.resize(40);
    main_.resize(40);
  }
  std::string Read(const std::string& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  TempDir tmp_;
  std::string v1_, main_;
};

TEST_F(GitCliTest, BranchTagCommitAndSubdir) {
  GitRunnerOptions o;
  o.environ = {{"PATH", "/usr/bin:/bin"}, {"HOME", tmp_.path()}};
  o.remote = "file://" + tmp_.Sub("r.git");
  auto git = NewCliGitRunner(o);

  auto url = ParseGitUrl("file://" + tmp_.Sub("r.git") + "#main:app/web");
  ASSERT_TRUE(url.ok());
  GitCheckoutOptions mtime;
  mtime.commit_mtime = true;
  auto c = CheckoutGit(*git, *url, tmp_.Sub("main"), mtime);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->commit, main_);
  EXPECT_EQ(c->commit_time, 1700000000);
  EXPECT_EQ(c->root, tmp_.Sub("main/app/web"));
  EXPECT_EQ(Read(c->root + "/index.html"), "two\n");
  struct stat st;
  ASSERT_EQ(::lstat((c->root + "/index.html").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 1700000000);
  EXPECT_NE(::stat(tmp_.Sub("main/.git").c_str(), &st), 0);

  url = ParseGitUrl("file://" + tmp_.Sub("r.git") + "#v1");
  auto tag = CheckoutGit(*git, *url, tmp_.Sub("tag"), {});
  ASSERT_TRUE(tag.ok()) << tag.status().message();
  EXPECT_EQ(tag->commit, v1_);
  EXPECT_EQ(tag->tag_object.size(), 40u);
  EXPECT_NE(tag->tag_object, v1_);
  EXPECT_EQ(Read(tag->root + "/app/web/index.html"), "one\n");
  ASSERT_EQ(::lstat(tmp_.Sub("tag/README").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::lstat(tmp_.Sub("tag/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));

  url = ParseGitUrl("file://" + tmp_.Sub("r.git") + "#" + v1_);
  GitCheckoutOptions keep;
  keep.keep_git_dir = true;
  auto commit = CheckoutGit(*git, *url, tmp_.Sub("commit"), keep);
  ASSERT_TRUE(commit.ok()) << commit.status().message();
  EXPECT_EQ(commit->commit, v1_);
  EXPECT_EQ(::stat(tmp_.Sub("commit/.git/HEAD").c_str(), &st), 0);

  url = ParseGitUrl("file://" + tmp_.Sub("r.git") + "#main:no/such/dir");
  auto missing = CheckoutGit(*git, *url, tmp_.Sub("missing"), {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no/such/dir"), std::string::npos) << missing.status().message();

  url = ParseGitUrl("file://" + tmp_.Sub("r.git") + "#nope");
  auto unknown = CheckoutGit(*git, *url, tmp_.Sub("unknown"), {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("nope"), std::string::npos) << unknown.status().message();
}

TEST_F(GitCliTest, CredentialsInTheUrlDoNotStayInTheKeptGitDir) {
  // A file:// remote ignores userinfo; what matters is what --keep-git-dir leaves behind.
  GitRunnerOptions o;
  o.environ = {{"PATH", "/usr/bin:/bin"}, {"HOME", tmp_.path()}, {"GIT_AUTH_TOKEN", "tok3n"}};
  o.remote = "file://" + tmp_.Sub("r.git");
  auto git = NewCliGitRunner(o);
  GitUrl url;
  url.remote = o.remote;
  url.ref = "main";
  GitCheckoutOptions keep;
  keep.keep_git_dir = true;
  auto c = CheckoutGit(*git, url, tmp_.Sub("kept"), keep);
  ASSERT_TRUE(c.ok()) << c.status().message();
  std::string config = Read(tmp_.Sub("kept/.git/config"));
  EXPECT_EQ(config.find("tok3n"), std::string::npos) << config;
  EXPECT_EQ(config.find("extraheader"), std::string::npos) << config;
}

// An HTTP git host sees GIT_AUTH_TOKEN as BuildKit sends it; the token is on no command line and in
// no message. The "host" is a python server on 127.0.0.1 that records the Authorization header.
TEST_F(GitCliTest, TheAuthTokenGoesToTheHttpHostAsAHeaderAndNowhereElse) {
  int port = testing::UnusedLoopbackPort();
  std::string seen = tmp_.Sub("seen");
  std::string server = tmp_.Sub("server.py");
  testing::WriteFile(server,
                     "import http.server, sys\n"
                     "class H(http.server.BaseHTTPRequestHandler):\n"
                     "    def do_GET(self):\n"
                     "        with open(sys.argv[2], 'a') as f: f.write(str(self.headers.get('Authorization')) + '\\n')\n"
                     "        self.send_response(403); self.end_headers()\n"
                     "    def log_message(self, *a): pass\n"
                     "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n");
  std::string pidfile = tmp_.Sub("pid");
  ASSERT_EQ(RunShell("python3 " + server + " " + std::to_string(port) + " " + seen + " </dev/null >/dev/null 2>&1 & echo $! > " + pidfile), 0);
  for (int i = 0; i < 100 && RunShell("curl -s -o /dev/null http://127.0.0.1:" + std::to_string(port) + "/") != 0; ++i) {
    ::usleep(50000);
  }
  GitRunnerOptions o;
  o.environ = {{"PATH", "/usr/bin:/bin"}, {"HOME", tmp_.path()}, {"GIT_AUTH_TOKEN", "tok3n"}};
  o.remote = "http://127.0.0.1:" + std::to_string(port) + "/org/r.git";
  auto git = NewCliGitRunner(o);
  GitUrl url;
  url.remote = o.remote;
  url.ref = "main";
  auto c = CheckoutGit(*git, url, tmp_.Sub("co"), {});
  RunShell("kill $(cat " + pidfile + ")");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("403"), std::string::npos) << c.status().message();
  EXPECT_EQ(c.status().message().find("tok3n"), std::string::npos) << c.status().message();
  std::string headers = Read(seen);
  // base64("x-access-token:tok3n")
  EXPECT_NE(headers.find("basic eC1hY2Nlc3MtdG9rZW46dG9rM24="), std::string::npos) << headers;
}

}  // namespace
}  // namespace kiln::executor
