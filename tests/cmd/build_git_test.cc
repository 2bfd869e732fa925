// `kiln build` with git sources, end to end against the harness registry, read back with skopeo and
// umoci: ADD of a git repository (branch, annotated tag, commit, :subdir, --keep-git-dir, --chown,
// --checksum matching and not, an unreachable remote), the layer cache following a branch's new
// commit, Kaniko's `--context git://...` (served by git's http-backend behind python's CGI server,
// with GIT_PULL_METHOD=http) with --context-sub-path and --git, `--context tar://stdin`, and
// BuildKit's named contexts (--build-context NAME=DIR, =docker-image://REF, =GIT-URL) used by FROM
// and COPY --from. Every repository is made here with Debian's git: no network.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"
#include "tests/testing/certs.h"
#include "tests/testing/git_repo.h"
#include "tests/testing/registry_server.h"

namespace kiln {
namespace {

using testing::FileInfo;
using testing::ListTree;
using testing::RunShell;
using testing::ShellQuote;
using testing::Stat;
using Paths = std::vector<std::string>;
using testing::GitRepo;

bool Has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ADD of a file:// repository reads the build machine's files: kiln wants it allowed explicitly.
const std::string kAllowFile = "KILN_ALLOW_FILE_GIT=1";

// git's smart HTTP (git http-backend) behind python3's CGI server on 127.0.0.1: repositories under
// `root` at http://host()/cgi-bin/git/NAME.git.
class GitHttpServer {
 public:
  explicit GitHttpServer(const std::string& root, const std::string& serve_dir) : port_(testing::UnusedLoopbackPort()) {
    testing::WriteFile(serve_dir + "/cgi-bin/git",
                       "#!/bin/sh\n"
                       "export GIT_PROJECT_ROOT=" + ShellQuote(root) + " GIT_HTTP_EXPORT_ALL=1 HOME=/tmp\n"
                       // The CGI server runs scripts as nobody: the repositories belong to root.
                       "export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'\n"
                       "exec /usr/lib/git-core/git-http-backend\n",
                       0755);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::chdir(serve_dir.c_str()) != 0) ::_exit(127);
      std::string port = std::to_string(port_);
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 2);
      ::execlp("python3", "python3", "-m", "http.server", "--cgi", port.c_str(), "--bind", "127.0.0.1",
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (RunShell("curl -s -o /dev/null http://" + host() + "/") == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the git HTTP server did not start";
  }
  ~GitHttpServer() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

class BuildGitTest : public testing::BuildEnvSuite {
 protected:
  void SetUp() override {
    BuildEnvSuite::SetUp();
    if (IsSkipped()) return;
    if (RunShell("git --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "needs Debian's git";
  }
  // The files of the busybox base, so tests can look at only what the build added.
  static std::string Base() { return "FROM @REG@/busybox:latest\n"; }
};

TEST_F(BuildGitTest, AddFromGitAtABranchATagACommitWithSubdirKeepGitDirAndChecksum) {
  GitRepo repo(env_->NewDir("repos"), "app");
  std::string first = repo.Commit({{"README", "readme\n"}, {"app/web/index.html", "one\n"}, {"app/web/style.css", "c\n"}});
  repo.Shell("chmod 0755 README && ln -s README link && git add -A && git commit -qm exec && git push -q origin main");
  first = repo.Head();
  repo.Tag("v1", /*annotated=*/true);
  std::string second = repo.Commit({{"app/web/index.html", "two\n"}, {"app/web/new.txt", "new\n"}});
  ASSERT_NE(first, second);

  std::string ctx = env_->Context({{"Dockerfile",
                                    Base() +
                                        "ARG REPO=" + repo.url() + "\n"
                                        "ADD ${REPO}#main:app/web /web\n"
                                        "ADD ${REPO}#v1 /v1/\n"
                                        "ADD ${REPO}#" + first + " /bycommit\n"
                                        "ADD --keep-git-dir=true ${REPO}#main /kept\n"
                                        "ADD --checksum=" + second.substr(0, 12) + " ${REPO}#main /checked\n"
                                        "ADD --chown=1234:5678 ${REPO}#v1:app /owned\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("git/add:1"), kAllowFile);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(Has(r.err, "commit " + second)) << r.err;
  auto img = env_->Read("git/add:1");
  const std::string& fs = img.rootfs;

  // A branch with a subdirectory: that directory's files, at the branch's head, owned by root.
  EXPECT_EQ(ListTree(fs, "web"), (Paths{"web/index.html", "web/new.txt", "web/style.css"}));
  FileInfo index = Stat(fs, "web/index.html");
  EXPECT_EQ(index.content, "two\n");
  EXPECT_EQ(index.mode, 0644u);
  EXPECT_EQ(index.uid, 0u);
  EXPECT_EQ(index.gid, 0u);
  // An annotated tag: the whole tree at the tagged commit, modes and symlinks as git has them, no .git.
  EXPECT_EQ(ListTree(fs, "v1"), (Paths{"v1/README", "v1/app/", "v1/app/web/", "v1/app/web/index.html",
                                       "v1/app/web/style.css", "v1/link"}));
  EXPECT_EQ(Stat(fs, "v1/app/web/index.html").content, "one\n");
  EXPECT_EQ(Stat(fs, "v1/README").mode, 0755u);
  EXPECT_EQ(Stat(fs, "v1/link").type, 'l');
  EXPECT_EQ(Stat(fs, "v1/link").link, "README");
  // A commit sha: the same tree.
  EXPECT_EQ(ListTree(fs, "bycommit"), (Paths{"bycommit/README", "bycommit/app/", "bycommit/app/web/",
                                             "bycommit/app/web/index.html", "bycommit/app/web/style.css",
                                             "bycommit/link"}));
  // --keep-git-dir: a working repository at the commit.
  EXPECT_EQ(Stat(fs, "kept/.git").type, 'd');
  EXPECT_EQ(Stat(fs, "kept/.git/HEAD").type, 'f');
  std::string head;
  ASSERT_EQ(RunShell("git -c safe.directory='*' -C " + ShellQuote(fs + "/kept") + " rev-parse HEAD", &head), 0);
  EXPECT_EQ(head.substr(0, 40), second);
  EXPECT_EQ(Stat(fs, "checked/app/web/new.txt").content, "new\n");
  EXPECT_EQ(Stat(fs, "checked/.git").type, '-');
  // --chown applies to every file.
  EXPECT_EQ(Stat(fs, "owned/web/index.html").uid, 1234u);
  EXPECT_EQ(Stat(fs, "owned/web/index.html").gid, 5678u);
  EXPECT_EQ(Stat(fs, "owned/web").uid, 1234u);
  // One layer per ADD on top of busybox's one.
  EXPECT_EQ(img.manifest["layers"].size(), 7u);
}

// `git daemon` serving `root` on 127.0.0.1: git's own protocol, git://host()/NAME.git.
class GitDaemon {
 public:
  explicit GitDaemon(const std::string& root) : port_(testing::UnusedLoopbackPort()) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::string port = "--port=" + std::to_string(port_), base = "--base-path=" + root;
      ::execlp("git", "git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", port.c_str(),
               base.c_str(), root.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (RunShell("bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port_) + "' 2>/dev/null") == 0) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "git daemon did not start";
  }
  ~GitDaemon() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

TEST_F(BuildGitTest, AddOverGitsOwnProtocolAndANamedGitContext) {
  std::string root = env_->NewDir("daemon-repos");
  GitRepo repo(root, "lib");
  std::string commit = repo.Commit({{"src/lib.c", "int x;\n"}, {"docs/a.md", "a\n"}});
  GitDaemon daemon(root);
  std::string url = "git://" + daemon.host() + "/lib.git";
  std::string ctx = env_->Context({{"Dockerfile", Base() + "ADD " + url + "#main:src /usr/src/lib\n"
                                                            "COPY --from=docs / /docs/\n"}});
  auto r = env_->Build(ctx, "--build-context docs=" + url + "#" + commit + ":docs --destination " +
                                env_->Ref("git/daemon:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("git/daemon:1");
  EXPECT_EQ(ListTree(img.rootfs, "usr/src/lib"), (Paths{"usr/src/lib/lib.c"}));
  EXPECT_EQ(Stat(img.rootfs, "usr/src/lib/lib.c").content, "int x;\n");
  EXPECT_EQ(ListTree(img.rootfs, "docs"), (Paths{"docs/a.md"}));
}

TEST_F(BuildGitTest, AsAnUnprivilegedUser) {
  // kiln as nobody: git runs inside kiln's user namespace (rootless) or as nobody itself (ptrace);
  // the files still land owned by root, and a named git context and a git --context work too.
  std::string root = env_->NewDir("nobody-repos");
  GitRepo repo(root, "app");
  repo.Commit({{"Dockerfile", "FROM " + env_->reg().host() + "/busybox:latest\n"
                              "ADD " + std::string("git://REPLACED") + "#main:lib /lib-src\n"
                              "COPY --from=docs a.md /docs/\n"},
               {"lib/x.c", "x\n"},
               {"a.md", "a\n"}});
  GitDaemon daemon(root);
  std::string url = "git://" + daemon.host() + "/app.git";
  repo.Shell("sed -i 's|git://REPLACED|" + url + "|' Dockerfile && git commit -qam url && git push -q origin main");
  GitHttpServer http(root, env_->NewDir("nobody-cgi"));
  for (const char* sandbox : {"rootless", "ptrace"}) {
    SCOPED_TRACE(sandbox);
    std::string state = env_->NewDir(std::string("nobody-git-") + sandbox);
    ASSERT_EQ(::chown(state.c_str(), 65534, 65534), 0);
    std::string tag = std::string("git/nobody:") + sandbox;
    auto r = testing::RunKiln(env_->kiln(),
                              "build --context git://" + http.host() + "/cgi-bin/git/app.git#main --build-context docs=" +
                                  url + " --state-dir " + state + " --insecure --insecure-pull --sandbox " + sandbox +
                                  " --destination " + env_->Ref(tag),
                              "GIT_PULL_METHOD=http", "setpriv --reuid=65534 --regid=65534 --clear-groups");
    ASSERT_EQ(r.rc, 0) << r.err;
    auto img = env_->Read(tag);
    FileInfo x = Stat(img.rootfs, "lib-src/x.c");
    EXPECT_EQ(x.content, "x\n");
    EXPECT_EQ(x.uid, 0u);
    EXPECT_EQ(x.gid, 0u);
    EXPECT_EQ(Stat(img.rootfs, "docs/a.md").content, "a\n");
  }
}

TEST_F(BuildGitTest, ChecksumMismatchAndUnreachableRemotesFailAtTheirLine) {
  GitRepo repo(env_->NewDir("repos"), "sums");
  std::string first = repo.Commit({{"a.txt", "a\n"}});
  std::string second = repo.Commit({{"a.txt", "b\n"}});
  std::string ctx = env_->Context({{"Dockerfile", Base() + "ADD --checksum=" + first + " " + repo.url() + "#main /x\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("git/fail:1"), kAllowFile);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:2:1")) << r.err;
  EXPECT_TRUE(Has(r.err, "checksum mismatch")) << r.err;
  EXPECT_TRUE(Has(r.err, first)) << r.err;
  EXPECT_TRUE(Has(r.err, second)) << r.err;
  EXPECT_FALSE(env_->TagExists("git/fail:1"));

  // Nothing listens on the port: git's own protocol cannot connect.
  int port = testing::UnusedLoopbackPort();
  std::string remote = "git://127.0.0.1:" + std::to_string(port) + "/nothing.git";
  ctx = env_->Context({{"Dockerfile", Base() + "RUN true\nADD " + remote + "#main /x\n"}});
  r = env_->Build(ctx, "--destination " + env_->Ref("git/fail:2"));
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:3:1")) << r.err;
  EXPECT_TRUE(Has(r.err, remote)) << r.err;
  EXPECT_TRUE(Has(r.err, "fetching \"main\"")) << r.err;
  // A ref the repository does not have.
  ctx = env_->Context({{"Dockerfile", Base() + "ADD " + repo.url() + "#no-such-branch /x\n"}});
  r = env_->Build(ctx, "--destination " + env_->Ref("git/fail:3"), kAllowFile);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:2:1")) << r.err;
  EXPECT_TRUE(Has(r.err, "no-such-branch")) << r.err;
  // A file:// repository in a Dockerfile is refused unless allowed.
  ctx = env_->Context({{"Dockerfile", Base() + "ADD " + repo.url() + "#main /x\n"}});
  r = env_->Build(ctx, "--destination " + env_->Ref("git/fail:5"));
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:2:1")) << r.err;
  EXPECT_TRUE(Has(r.err, "KILN_ALLOW_FILE_GIT=1")) << r.err;
  // COPY does not take git sources.
  ctx = env_->Context({{"Dockerfile", Base() + "COPY " + repo.url() + " /x\n"}});
  r = env_->Build(ctx, "--destination " + env_->Ref("git/fail:4"));
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "use ADD")) << r.err;
}

TEST_F(BuildGitTest, FilesGetTheCommitTimeWhenSourceDateEpochIsSet) {
  GitRepo repo(env_->NewDir("repos"), "dated");
  repo.Commit({{"a.txt", "a\n"}});
  repo.Shell("echo b > d/b.txt 2>/dev/null || (mkdir d && echo b > d/b.txt); git add -A; "
             "GIT_COMMITTER_DATE='@1600000000 +0000' git commit -qm dated; git push -q origin main");
  std::string ctx = env_->Context({{"Dockerfile", Base() + "ADD " + repo.url() + "#main /src\n"}});
  // BuildKit: with SOURCE_DATE_EPOCH, the commit's time (here earlier than the epoch, so the layer's
  // clamp to the epoch leaves it alone); without it, the time of the checkout.
  auto r = env_->Build(ctx, "--destination " + env_->Ref("git/dated:1"), kAllowFile + " SOURCE_DATE_EPOCH=1700000000");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("git/dated:1");
  std::string times;
  ASSERT_EQ(RunShell("stat -c %Y " + ShellQuote(img.rootfs + "/src/a.txt") + " " + ShellQuote(img.rootfs + "/src/d/b.txt") +
                         " " + ShellQuote(img.rootfs + "/src/d"),
                     &times),
            0);
  EXPECT_EQ(times, "1600000000\n1600000000\n1600000000\n");
  r = env_->Build(ctx, "--destination " + env_->Ref("git/dated:2"), kAllowFile);
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_EQ(RunShell("stat -c %Y " + ShellQuote(env_->Read("git/dated:2").rootfs + "/src/a.txt"), &times), 0);
  EXPECT_GT(std::stoll(times), 1600000000);
}

TEST_F(BuildGitTest, TheLayerCacheFollowsTheBranchsCommit) {
  GitRepo repo(env_->NewDir("repos"), "cached");
  repo.Commit({{"v.txt", "1\n"}});
  std::string ctx = env_->Context({{"Dockerfile", Base() + "ADD " + repo.url() + "#main /src\nRUN cat /src/v.txt > /copy\n"}});
  std::string cache = env_->NewDir("cache");
  std::string flags = "--cache --cache-dir " + cache + " --destination " + env_->Ref("git/cache:1");
  auto first = env_->Build(ctx, flags, kAllowFile);
  ASSERT_EQ(first.rc, 0) << first.err;
  nlohmann::json layers = env_->Read("git/cache:1", false).manifest["layers"];
  auto again = env_->Build(ctx, flags, kAllowFile);
  ASSERT_EQ(again.rc, 0) << again.err;
  std::regex hit(R"(STEP 2/3: done in [^(]*\(cache hit)");
  EXPECT_TRUE(std::regex_search(again.err, hit)) << again.err;
  // The same commit: the ADD layer is the cached one (a fresh checkout would have other mtimes).
  EXPECT_EQ(env_->Read("git/cache:1", false).manifest["layers"], layers);

  repo.Commit({{"v.txt", "2\n"}});
  auto changed = env_->Build(ctx, flags, kAllowFile);
  ASSERT_EQ(changed.rc, 0) << changed.err;
  EXPECT_FALSE(std::regex_search(changed.err, hit)) << changed.err;
  EXPECT_TRUE(Has(changed.err, "cache miss")) << changed.err;
  auto img = env_->Read("git/cache:1");
  EXPECT_EQ(Stat(img.rootfs, "src/v.txt").content, "2\n");
  EXPECT_EQ(Stat(img.rootfs, "copy").content, "2\n");
}

TEST_F(BuildGitTest, KanikoGitContextsOverHttp) {
  std::string root = env_->NewDir("served-repos");
  GitRepo repo(root, "site");
  // The repository's Dockerfiles name the harness registry itself.
  std::string from = "FROM " + env_->reg().host() + "/busybox:latest\n";
  repo.Commit({{"Dockerfile", "FROM scratch\nCOPY . /root-ctx/\n"},
               {"app/Dockerfile", from + "COPY . /ctx/\n"},
               {"app/main.txt", "main\n"},
               {"app/sub/Dockerfile", from + "COPY . /subctx/\n"},
               {"app/sub/s.txt", "sub\n"}});
  repo.Tag("v2", /*annotated=*/false);
  std::string head = repo.Commit({{"app/main.txt", "main2\n"}});
  repo.Commit({{"app/main.txt", "release\n"}}, "release");

  GitHttpServer http(root, env_->NewDir("cgi"));
  std::string base = "git://" + http.host() + "/cgi-bin/git/site.git";
  const std::string env = "GIT_PULL_METHOD=http";

  // A branch as a full ref name, with BuildKit's ":subdir".
  auto r = testing::RunKiln(env_->kiln(),
                            "build --context " + base + "#refs/heads/main:app --state-dir " + env_->state_dir() +
                                " --insecure --insecure-pull --destination " + env_->Ref("git/ctx:1"),
                            env);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(Has(r.err, "at commit " + head)) << r.err;
  auto img = env_->Read("git/ctx:1");
  EXPECT_EQ(ListTree(img.rootfs, "ctx"), (Paths{"ctx/Dockerfile", "ctx/main.txt", "ctx/sub/", "ctx/sub/Dockerfile",
                                                "ctx/sub/s.txt"}));
  EXPECT_EQ(Stat(img.rootfs, "ctx/main.txt").content, "main2\n");

  // --git branch= when the URL names no ref, and --context-sub-path below the checkout.
  r = testing::RunKiln(env_->kiln(),
                       "build --context " + base + " --git branch=release,single-branch=true,recurse-submodules=false"
                       " --context-sub-path app --state-dir " + env_->state_dir() +
                           " --insecure --insecure-pull --destination " + env_->Ref("git/ctx:2"),
                       env);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Stat(env_->Read("git/ctx:2").rootfs, "ctx/main.txt").content, "release\n");

  // A tag with a subdir and --context-sub-path; then Kaniko's "#REF#COMMIT" with the right commit.
  r = testing::RunKiln(env_->kiln(),
                       "build --context " + base + "#v2:app --context-sub-path sub --state-dir " + env_->state_dir() +
                           " --insecure --insecure-pull --destination " + env_->Ref("git/ctx:3"),
                       env);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(ListTree(env_->Read("git/ctx:3").rootfs, "subctx"), (Paths{"subctx/Dockerfile", "subctx/s.txt"}));

  // A commit that is not what the ref resolves to is refused; the right one builds.
  r = testing::RunKiln(env_->kiln(),
                       "build --context " + base + "#refs/heads/main:app#" + std::string(40, 'a') +
                           " --state-dir " + env_->state_dir() + " --insecure --insecure-pull --destination " +
                           env_->Ref("git/ctx:4"),
                       env);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_TRUE(Has(r.err, head)) << r.err;
  EXPECT_FALSE(env_->TagExists("git/ctx:4"));
  r = testing::RunKiln(env_->kiln(),
                       "build --context " + base + "#refs/heads/main:app#" + head + " --state-dir " +
                           env_->state_dir() + " --insecure --insecure-pull --destination " + env_->Ref("git/ctx:4"),
                       env);
  EXPECT_EQ(r.rc, 0) << r.err;

  // --git with a directory context is a mistake, said so.
  r = env_->Build(env_->Context({{"Dockerfile", Base()}}), "--git branch=main --destination " + env_->Ref("git/ctx:5"));
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "--git applies to a git build context")) << r.err;
  // Nothing serves this repository: the error names it.
  r = testing::RunKiln(env_->kiln(),
                       "build --context git://" + http.host() + "/cgi-bin/git/missing.git --state-dir " +
                           env_->state_dir() + " --insecure --insecure-pull --destination " + env_->Ref("git/ctx:6"),
                       env);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "http://" + http.host() + "/cgi-bin/git/missing.git")) << r.err;
}

TEST_F(BuildGitTest, TarContextOnStdin) {
  std::string ctx = env_->Context({{"Dockerfile", Base() + "COPY . /ctx/\n"}, {"d/f.txt", "from stdin\n"}});
  std::string tgz = env_->NewDir("stdin") + "/ctx.tar.gz";
  ASSERT_EQ(RunShell("tar -C " + ShellQuote(ctx) + " -czf " + ShellQuote(tgz) + " ."), 0);
  auto r = testing::RunKiln(env_->kiln(), "build --context tar://stdin --state-dir " + env_->state_dir() +
                                              " --insecure --insecure-pull --destination " + env_->Ref("git/stdin:1") +
                                              " < " + ShellQuote(tgz));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("git/stdin:1");
  EXPECT_EQ(ListTree(img.rootfs, "ctx"), (Paths{"ctx/Dockerfile", "ctx/d/", "ctx/d/f.txt"}));
  EXPECT_EQ(Stat(img.rootfs, "ctx/d/f.txt").content, "from stdin\n");
  // A plain tar works too.
  std::string tar = env_->NewDir("stdin-plain") + "/ctx.tar";
  ASSERT_EQ(RunShell("tar -C " + ShellQuote(ctx) + " -cf " + ShellQuote(tar) + " ."), 0);
  r = testing::RunKiln(env_->kiln(), "build --context tar://stdin --state-dir " + env_->state_dir() +
                                         " --insecure --insecure-pull --destination " + env_->Ref("git/stdin:2") +
                                         " < " + ShellQuote(tar));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Stat(env_->Read("git/stdin:2").rootfs, "ctx/d/f.txt").content, "from stdin\n");
}

TEST_F(BuildGitTest, NamedBuildContextsForFromAndCopyFrom) {
  std::string files = env_->Context({{"a.txt", "from a directory\n"}, {"nested/b.txt", "b\n"}});
  GitRepo repo(env_->NewDir("repos"), "named");
  repo.Commit({{"lib/README", "from git\n"}});
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM files AS f\n"
                                    "FROM base\n"
                                    "COPY --from=files a.txt /from-dir/\n"
                                    "COPY --from=src lib /from-git/\n"
                                    "COPY --from=f /nested /from-stage/\n"
                                    "COPY --from=BASE /bin/busybox /from-image/busybox\n"
                                    "RUN cat /from-dir/a.txt > /ran\n"
                                    "RUN --mount=type=bind,from=files,target=/m cat /m/nested/b.txt > /bound\n"}});
  auto r = env_->Build(ctx, "--build-context base=docker-image://" + env_->Ref("busybox:latest") +
                                " --build-context files=" + files + " --build-context src=" + repo.url() + "#main" +
                                " --destination " + env_->Ref("git/named:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("git/named:1");
  const std::string& fs = img.rootfs;
  FileInfo a = Stat(fs, "from-dir/a.txt");
  EXPECT_EQ(a.content, "from a directory\n");
  EXPECT_EQ(a.uid, 0u);
  EXPECT_EQ(Stat(fs, "from-git/README").content, "from git\n");
  EXPECT_EQ(Stat(fs, "from-stage/b.txt").content, "b\n");
  EXPECT_EQ(Stat(fs, "from-image/busybox").type, 'f');
  EXPECT_EQ(Stat(fs, "ran").content, "from a directory\n");  // FROM base: busybox's shell ran it
  EXPECT_EQ(Stat(fs, "bin/busybox").type, 'f');
  EXPECT_EQ(Stat(fs, "bound").content, "b\n");  // RUN --mount from= a named context

  // A name with no context and no stage is an image name, as before; a directory that does not
  // exist is an error naming it.
  r = env_->Build(ctx, "--build-context files=/no/such/dir --destination " + env_->Ref("git/named:2"));
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "/no/such/dir")) << r.err;
  r = env_->Build(ctx, "--build-context files=oci-layout:///x --destination " + env_->Ref("git/named:2"));
  EXPECT_NE(r.rc, 0) << r.err;
  EXPECT_TRUE(Has(r.err, "--build-context files=")) << r.err;
}

TEST_F(BuildGitTest, AChangedNamedContextMissesTheLayerCache) {
  std::string files = env_->Context({{"a.txt", "1\n"}});
  // The RUN first: its key must move with the context's content by itself, not through a COPY's.
  std::string ctx = env_->Context({{"Dockerfile", Base() + "RUN --mount=type=bind,from=files,target=/m cat /m/a.txt > /b.txt\n"
                                                            "COPY --from=files a.txt /a.txt\n"}});
  std::string flags = "--cache --cache-dir " + env_->NewDir("named-cache") + " --build-context files=" + files +
                      " --destination " + env_->Ref("git/named-cache:1");
  auto first = env_->Build(ctx, flags);
  ASSERT_EQ(first.rc, 0) << first.err;
  auto again = env_->Build(ctx, flags);
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_TRUE(std::regex_search(again.err, std::regex(R"(STEP 3/3: done in [^(]*\(cache hit)"))) << again.err;
  testing::WriteFile(files + "/a.txt", "2\n");
  auto changed = env_->Build(ctx, flags);
  ASSERT_EQ(changed.rc, 0) << changed.err;
  EXPECT_FALSE(std::regex_search(changed.err, std::regex(R"(STEP [23]/3: done in [^(]*\(cache hit)"))) << changed.err;
  auto img = env_->Read("git/named-cache:1");
  EXPECT_EQ(Stat(img.rootfs, "a.txt").content, "2\n");
  EXPECT_EQ(Stat(img.rootfs, "b.txt").content, "2\n");
}

}  // namespace
}  // namespace kiln
