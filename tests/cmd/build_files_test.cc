// `kiln build` end to end: COPY and ADD with Docker's rules (globs, directory contents, trailing
// slashes, --chown by name from the image's /etc/passwd and /etc/group, --chmod, local tar archives
// extracted by ADD, ADD of a URL served by python's http.server, .dockerignore, heredocs), checked
// file by file in the pushed image as umoci unpacks it.
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"
#include "tests/testing/certs.h"

namespace kiln {
namespace {

using testing::BuildEnv;
using testing::FileInfo;
using testing::ListTree;
using testing::ReadFile;
using testing::RunShell;
using testing::ShellQuote;
using testing::Stat;
using Paths = std::vector<std::string>;

// python3 -m http.server serving `dir` on 127.0.0.1 (ADD's URL source).
class HttpServer {
 public:
  explicit HttpServer(const std::string& dir) : port_(testing::UnusedLoopbackPort()) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::string port = std::to_string(port_);
      ::execlp("python3", "python3", "-m", "http.server", port.c_str(), "--bind", "127.0.0.1", "--directory",
               dir.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (RunShell("curl -sf -o /dev/null http://" + host() + "/") == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "http.server did not start";
  }
  ~HttpServer() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

class BuildFilesTest : public testing::BuildEnvSuite {
 protected:
};

TEST_F(BuildFilesTest, CopyAndAddFollowDockersRules) {
  std::string served = env_->NewDir("served");
  testing::WriteFile(served + "/remote.txt", "remote\n");
  HttpServer http(served);

  std::string ctx = env_->Context({
      {"Dockerfile",
       "FROM @REG@/busybox:latest\n"
       "ENV NAME=world\n"
       "COPY a.txt /dest/\n"
       "COPY a.txt /asfile\n"
       "COPY *.txt /globbed/\n"
       "COPY d?r/*.txt /g2/\n"
       "COPY dir /dircontents\n"
       "COPY a.txt b.txt /multi/\n"
       "COPY --chown=app:staff a.txt /owned/a.txt\n"
       "COPY --chown=1234:5678 dir /owned/dir\n"
       "COPY --chown=app b.txt /owned/b.txt\n"
       "COPY --chmod=0640 a.txt /modes/a.txt\n"
       "COPY --chmod=755 dir/sub /modes/sub\n"
       "ADD archive.tar.gz /extracted/\n"
       "ADD single.txt.gz /gz/\n"
       "ADD http://" + http.host() + "/remote.txt /remote/\n"
       "COPY . /ctx/\n"
       "COPY <<EOF /heredoc.txt\n"
       "hello $NAME\n"
       "EOF\n"
       "COPY <<'EOF' /heredoc-raw.txt\n"
       "hello $NAME\n"
       "EOF\n"},
      {".dockerignore", "*.log\n!keep.log\nsecret/\n"},
      {"a.txt", "A\n"},
      {"b.txt", "B\n"},
      {"c.md", "C\n"},
      {"app.log", "ignored\n"},
      {"keep.log", "kept\n"},
      {"secret/key", "never in the image\n"},
      {"dir/sub/x.txt", "X\n"},
      {"dir/y.txt", "Y\n"},
  });
  testing::WriteFile(ctx + "/dir/exec.sh", "#!/bin/sh\necho hi\n", 0755);
  ASSERT_EQ(::symlink("y.txt", (ctx + "/dir/link").c_str()), 0);
  // A tar made by the system's tar (owner 123:456, mode 0600), and a gzip file that is no tar.
  std::string tree = env_->NewDir("tartree");
  testing::WriteFile(tree + "/top/inner.txt", "inner\n", 0600);
  ASSERT_EQ(RunShell("tar --owner=123 --group=456 --numeric-owner -C " + tree + " -czf " + ctx +
                     "/archive.tar.gz top && printf 'not a tar\\n' | gzip -n > " + ctx + "/single.txt.gz"),
            0);

  auto r = env_->Build(ctx, "--destination " + env_->Ref("files:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("files:1");
  const std::string& fs = img.rootfs;

  FileInfo f = Stat(fs, "dest/a.txt");
  EXPECT_EQ(f.type, 'f');
  EXPECT_EQ(f.content, "A\n");
  EXPECT_EQ(f.mode, 0644u);
  EXPECT_EQ(f.uid, 0u);
  EXPECT_EQ(f.gid, 0u);
  // No trailing slash and no existing directory: the destination is the file's new name.
  EXPECT_EQ(Stat(fs, "asfile").type, 'f');
  EXPECT_EQ(Stat(fs, "asfile").content, "A\n");
  EXPECT_EQ(ListTree(fs, "globbed"), (Paths{"globbed/a.txt", "globbed/b.txt"}));
  EXPECT_EQ(ListTree(fs, "g2"), (Paths{"g2/y.txt"}));
  // A directory source copies its contents, links as links, modes kept.
  EXPECT_EQ(ListTree(fs, "dircontents"), (Paths{"dircontents/exec.sh", "dircontents/link", "dircontents/sub/",
                                                "dircontents/sub/x.txt", "dircontents/y.txt"}));
  EXPECT_EQ(Stat(fs, "dircontents/link").type, 'l');
  EXPECT_EQ(Stat(fs, "dircontents/link").link, "y.txt");
  EXPECT_EQ(Stat(fs, "dircontents/exec.sh").mode, 0755u);
  EXPECT_EQ(Stat(fs, "dircontents/sub").type, 'd');
  EXPECT_EQ(Stat(fs, "dircontents/sub/x.txt").content, "X\n");
  EXPECT_EQ(ListTree(fs, "multi"), (Paths{"multi/a.txt", "multi/b.txt"}));

  // --chown: names from the image's /etc/passwd and /etc/group; a user alone means its uid as gid.
  EXPECT_EQ(Stat(fs, "owned/a.txt").uid, 1000u);
  EXPECT_EQ(Stat(fs, "owned/a.txt").gid, 50u);
  for (const char* p : {"owned/dir", "owned/dir/y.txt", "owned/dir/sub", "owned/dir/sub/x.txt", "owned/dir/link"}) {
    EXPECT_EQ(Stat(fs, p).uid, 1234u) << p;
    EXPECT_EQ(Stat(fs, p).gid, 5678u) << p;
  }
  EXPECT_EQ(Stat(fs, "owned/b.txt").uid, 1000u);
  EXPECT_EQ(Stat(fs, "owned/b.txt").gid, 1000u);
  EXPECT_EQ(Stat(fs, "modes/a.txt").mode, 0640u);
  EXPECT_EQ(Stat(fs, "modes/sub/x.txt").mode, 0755u);

  // ADD extracts a local tar (keeping its modes and owners) but copies a gzip file that is no tar.
  FileInfo inner = Stat(fs, "extracted/top/inner.txt");
  EXPECT_EQ(inner.content, "inner\n");
  EXPECT_EQ(inner.mode, 0600u);
  EXPECT_EQ(inner.uid, 123u);
  EXPECT_EQ(inner.gid, 456u);
  EXPECT_EQ(ListTree(fs, "gz"), (Paths{"gz/single.txt.gz"}));
  EXPECT_EQ(Stat(fs, "gz/single.txt.gz").content, ReadFile(ctx + "/single.txt.gz"));
  // ADD of a URL: named after the URL's last segment, mode 0600.
  FileInfo remote = Stat(fs, "remote/remote.txt");
  EXPECT_EQ(remote.content, "remote\n");
  EXPECT_EQ(remote.mode, 0600u);
  EXPECT_EQ(remote.uid, 0u);

  // .dockerignore: *.log except keep.log, and secret/, are not in the context.
  EXPECT_EQ(ListTree(fs, "ctx"),
            (Paths{"ctx/.dockerignore", "ctx/Dockerfile", "ctx/a.txt", "ctx/archive.tar.gz", "ctx/b.txt", "ctx/c.md",
                   "ctx/dir/", "ctx/dir/exec.sh", "ctx/dir/link", "ctx/dir/sub/", "ctx/dir/sub/x.txt",
                   "ctx/dir/y.txt", "ctx/keep.log", "ctx/single.txt.gz"}));
  // Heredocs: expanded unless the delimiter is quoted.
  EXPECT_EQ(Stat(fs, "heredoc.txt").content, "hello world\n");
  EXPECT_EQ(Stat(fs, "heredoc-raw.txt").content, "hello $NAME\n");

  // One layer per COPY/ADD, holding only what it copied.
  EXPECT_EQ(img.config["rootfs"]["diff_ids"].size(), 18u);
  EXPECT_EQ(img.NonEmptyHistory(), 18u);
  EXPECT_EQ(img.manifest["layers"].size(), 18u);
  Paths first = img.LayerEntries(1);
  for (std::string& e : first) {
    if (e.rfind("./", 0) == 0) e = e.substr(2);
  }
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first, (Paths{"dest/", "dest/a.txt"}));
}

TEST_F(BuildFilesTest, DockerfileElsewhereAndContextAsTarball) {
  // --dockerfile relative to the context, and a .tar.gz context (Kaniko's tar://).
  std::string ctx = env_->Context({{"build/Custom.dockerfile", "FROM @REG@/busybox:latest\nCOPY data.txt /data.txt\n"},
                                   {"data.txt", "from a tarball\n"}});
  std::string tgz = env_->NewDir("tgz") + "/context.tar.gz";
  ASSERT_EQ(RunShell("tar -C " + ShellQuote(ctx) + " -czf " + ShellQuote(tgz) + " ."), 0);
  auto r = testing::RunKiln(env_->kiln(), "build --context tar://" + tgz + " --dockerfile build/Custom.dockerfile " +
                                              "--state-dir " + env_->state_dir() + " --insecure --insecure-pull " +
                                              "--destination " + env_->Ref("files:tgz"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("files:tgz");
  EXPECT_EQ(Stat(img.rootfs, "data.txt").content, "from a tarball\n");

  // A plain .tar.gz path is a tarball context too.
  auto plain = testing::RunKiln(env_->kiln(), "build --context " + tgz + " --dockerfile build/Custom.dockerfile " +
                                                  "--state-dir " + env_->state_dir() + " --insecure --insecure-pull " +
                                                  "--destination " + env_->Ref("files:tgz2"));
  ASSERT_EQ(plain.rc, 0) << plain.err;
  EXPECT_EQ(Stat(env_->Read("files:tgz2").rootfs, "data.txt").content, "from a tarball\n");

  auto r2 = env_->Build("dir://" + ctx, "--dockerfile build/Custom.dockerfile --destination " + env_->Ref("files:dir"));
  ASSERT_EQ(r2.rc, 0) << r2.err;
  EXPECT_EQ(Stat(env_->Read("files:dir").rootfs, "data.txt").content, "from a tarball\n");
}

}  // namespace
}  // namespace kiln
