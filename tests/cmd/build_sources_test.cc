// `kiln build` with ADD's newer source forms, end to end against the harness registry and read back
// with skopeo and umoci: ADD --unpack for local archives and downloads, a download's Last-Modified as
// its mtime, BuildKit's git URL query form (?ref= ?branch= ?tag= ?subdir= ?checksum= ?keep-git-dir)
// in ADD and in --build-context, and a named context that replaces a stage. Git repositories are
// made here with Debian's git; HTTP sources come from a python3 server on 127.0.0.1: no network.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"
#include "tests/testing/certs.h"
#include "tests/testing/git_repo.h"
#include "tests/testing/registry_server.h"

namespace kiln {
namespace {

using testing::GitRepo;
using testing::ListTree;
using testing::RunShell;
using testing::ShellQuote;
using testing::Stat;
using Paths = std::vector<std::string>;

bool Has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const std::string kAllowFile = "KILN_ALLOW_FILE_GIT=1";

// Serves `root` over HTTP on 127.0.0.1 (python's server, which sends Last-Modified from the file's
// mtime), except below /nolm/, whose answers carry no Last-Modified.
class FileServer {
 public:
  explicit FileServer(const std::string& root) : port_(testing::UnusedLoopbackPort()) {
    std::string script = root + "/../serve-" + std::to_string(port_) + ".py";
    testing::WriteFile(script,
                       "import http.server, os, sys\n"
                       "class H(http.server.SimpleHTTPRequestHandler):\n"
                       "    def send_header(self, k, v):\n"
                       "        if k.lower() == 'last-modified' and self.path.startswith('/nolm/'):\n"
                       "            return\n"
                       "        super().send_header(k, v)\n"
                       "    def log_message(self, *a):\n"
                       "        pass\n"
                       "os.chdir(sys.argv[1])\n"
                       "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[2])), H).serve_forever()\n");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::string port = std::to_string(port_);
      ::execlp("python3", "python3", script.c_str(), root.c_str(), port.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (RunShell("curl -s -o /dev/null http://" + host() + "/") == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the HTTP server did not start";
  }
  ~FileServer() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::string url(const std::string& path) const { return "http://" + host() + "/" + path; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

long MtimeOf(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_mtime) : -1;
}

class BuildSourcesTest : public testing::BuildEnvSuite {
 protected:
  static std::string Base() { return "FROM @REG@/busybox:latest\n"; }
  // pkg.tar.gz (pkg/a.txt, pkg/bin/run) in `dir`.
  static void MakeArchive(const std::string& dir) {
    ASSERT_EQ(RunShell("set -e; cd " + ShellQuote(dir) + "; mkdir -p src/pkg/bin; printf 'a\\n' > src/pkg/a.txt; "
                       "printf 'run\\n' > src/pkg/bin/run; chmod 0755 src/pkg/bin/run; "
                       "tar -C src -czf pkg.tar.gz --owner=0 --group=0 pkg; rm -rf src"),
              0);
  }
};

TEST_F(BuildSourcesTest, AddUnpackForLocalArchivesAndDownloads) {
  std::string served = env_->NewDir("served");
  MakeArchive(served);
  testing::WriteFile(served + "/plain.txt", "plain\n");
  FileServer http(served);
  std::string ctx = env_->Context({{"Dockerfile",
                                    Base() +
                                        "ADD pkg.tar.gz /default/\n"
                                        "ADD --unpack=false pkg.tar.gz /kept/\n"
                                        "ADD --unpack=true pkg.tar.gz /forced\n"
                                        "ADD " + http.url("pkg.tar.gz") + " /remote-default/\n"
                                        "ADD --unpack=true " + http.url("pkg.tar.gz") + " /remote-unpacked/\n"
                                        "ADD --unpack " + http.url("plain.txt") + " /remote-plain/\n"}});
  ASSERT_EQ(RunShell("cp " + ShellQuote(served + "/pkg.tar.gz") + " " + ShellQuote(ctx + "/pkg.tar.gz")), 0);
  auto r = env_->Build(ctx, "--destination " + env_->Ref("sources/unpack:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("sources/unpack:1");
  const std::string& fs = img.rootfs;
  std::string archive = testing::ReadFile(ctx + "/pkg.tar.gz");

  // No flag: a local archive is extracted, a download is not (BuildKit's default).
  EXPECT_EQ(ListTree(fs, "default"), (Paths{"default/pkg/", "default/pkg/a.txt", "default/pkg/bin/", "default/pkg/bin/run"}));
  EXPECT_EQ(Stat(fs, "default/pkg/bin/run").mode, 0755u);
  EXPECT_EQ(ListTree(fs, "remote-default"), (Paths{"remote-default/pkg.tar.gz"}));
  EXPECT_EQ(Stat(fs, "remote-default/pkg.tar.gz").content, archive);
  // --unpack=false: the local archive is copied as the file it is.
  EXPECT_EQ(ListTree(fs, "kept"), (Paths{"kept/pkg.tar.gz"}));
  EXPECT_EQ(Stat(fs, "kept/pkg.tar.gz").content, archive);
  EXPECT_EQ(Stat(fs, "kept/pkg.tar.gz").mode, 0644u);
  // --unpack=true: extracted, locally (into a new directory) and from the server.
  EXPECT_EQ(Stat(fs, "forced/pkg/a.txt").content, "a\n");
  EXPECT_EQ(ListTree(fs, "remote-unpacked"),
            (Paths{"remote-unpacked/pkg/", "remote-unpacked/pkg/a.txt", "remote-unpacked/pkg/bin/", "remote-unpacked/pkg/bin/run"}));
  EXPECT_EQ(Stat(fs, "remote-unpacked/pkg/a.txt").uid, 0u);
  EXPECT_EQ(Stat(fs, "remote-unpacked/pkg/bin/run").mode, 0755u);
  // A download that is not an archive stays a file (mode 0600, as any download).
  EXPECT_EQ(ListTree(fs, "remote-plain"), (Paths{"remote-plain/plain.txt"}));
  EXPECT_EQ(Stat(fs, "remote-plain/plain.txt").mode, 0600u);

  // A bad value is an error at the flag.
  std::string bad = env_->Context({{"Dockerfile", Base() + "ADD --unpack=yes pkg.tar.gz /x/\n"}});
  r = env_->Build(bad, "--destination " + env_->Ref("sources/unpack:2"));
  EXPECT_NE(r.rc, 0);
  EXPECT_TRUE(Has(r.err, "Dockerfile:2:5: expecting boolean value for flag --unpack, not: yes")) << r.err;
}

TEST_F(BuildSourcesTest, AddUrlTakesLastModifiedAsTheFilesMtime) {
  std::string served = env_->NewDir("served-lm");
  testing::WriteFile(served + "/stamped.txt", "stamped\n");
  testing::WriteFile(served + "/nolm/stamped.txt", "stamped\n");
  ASSERT_EQ(RunShell("touch -d @1600000000 " + ShellQuote(served + "/stamped.txt") + " " +
                     ShellQuote(served + "/nolm/stamped.txt")),
            0);
  FileServer http(served);
  std::string sum;
  ASSERT_EQ(RunShell("sha256sum " + ShellQuote(served + "/stamped.txt") + " | cut -c1-64", &sum), 0);
  sum = "sha256:" + sum.substr(0, 64);
  std::string ctx = env_->Context({{"Dockerfile", Base() + "ADD " + http.url("stamped.txt") + " /lm/\n"
                                                            "ADD " + http.url("nolm/stamped.txt") + " /nolm/\n"
                                                            "ADD --checksum=" + sum + " " + http.url("stamped.txt") +
                                                            " /checked/\n"}});
  long before = static_cast<long>(::time(nullptr));
  std::string flags = "--cache --cache-dir " + env_->NewDir("lm-cache") + " --destination " + env_->Ref("sources/lm:1");
  auto r = env_->Build(ctx, flags);
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("sources/lm:1");
  EXPECT_EQ(MtimeOf(img.rootfs + "/lm/stamped.txt"), 1600000000L);
  EXPECT_EQ(MtimeOf(img.rootfs + "/checked/stamped.txt"), 1600000000L);
  // Without the header, the time of the download.
  EXPECT_GE(MtimeOf(img.rootfs + "/nolm/stamped.txt"), before - 1);
  EXPECT_EQ(Stat(img.rootfs, "nolm/stamped.txt").content, "stamped\n");

  // The layer of the --checksum ADD is cached (its key is the checksum, as BuildKit's), and the
  // cached layer keeps the time the server gave; the ones without --checksum are downloaded again.
  auto again = env_->Build(ctx, flags);
  ASSERT_EQ(again.rc, 0) << again.err;
  auto img2 = env_->Read("sources/lm:1");
  EXPECT_EQ(MtimeOf(img2.rootfs + "/checked/stamped.txt"), 1600000000L);
  EXPECT_EQ(MtimeOf(img2.rootfs + "/lm/stamped.txt"), 1600000000L);
}

TEST_F(BuildSourcesTest, GitUrlQueryFormInAddAndBuildContexts) {
  if (RunShell("git --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "needs Debian's git";
  GitRepo repo(env_->NewDir("repos"), "q");
  std::string v1 = repo.Commit({{"app/web/index.html", "one\n"}, {"docs/a.md", "a\n"}});
  repo.Tag("v1", /*annotated=*/true);
  std::string dev = repo.Commit({{"app/web/index.html", "dev\n"}}, "dev");
  std::string main = repo.Commit({{"app/web/index.html", "two\n"}, {"docs/a.md", "a2\n"}}, "main");
  ASSERT_NE(v1, main);
  std::string ctx = env_->Context({{"Dockerfile",
                                    Base() +
                                        "ARG REPO=" + repo.url() + "\n"
                                        "ADD ${REPO}?tag=v1&subdir=app/web /tag/\n"
                                        "ADD ${REPO}?branch=dev&subdir=app /dev/\n"
                                        "ADD ${REPO}?ref=main&keep-git-dir=true /kept/\n"
                                        "ADD ${REPO}?checksum=" + main.substr(0, 10) + "#main:docs /checked/\n"
                                        "ADD ${REPO}?subdir=docs#v1 /mixed/\n"
                                        "COPY --from=docs / /ctx-docs/\n"}});
  auto r = env_->Build(ctx, "--build-context 'docs=" + repo.url() + "?tag=v1&subdir=docs' --destination " +
                                env_->Ref("sources/git-query:1"),
                       kAllowFile);
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("sources/git-query:1");
  const std::string& fs = img.rootfs;
  EXPECT_EQ(ListTree(fs, "tag"), (Paths{"tag/index.html"}));
  EXPECT_EQ(Stat(fs, "tag/index.html").content, "one\n");
  EXPECT_EQ(Stat(fs, "dev/web/index.html").content, "dev\n");
  EXPECT_EQ(Stat(fs, "kept/.git").type, 'd');
  std::string head;
  ASSERT_EQ(RunShell("git -c safe.directory='*' -C " + ShellQuote(fs + "/kept") + " rev-parse HEAD", &head), 0);
  EXPECT_EQ(head.substr(0, 40), main);
  EXPECT_EQ(ListTree(fs, "checked"), (Paths{"checked/a.md"}));
  EXPECT_EQ(Stat(fs, "checked/a.md").content, "a2\n");
  EXPECT_EQ(Stat(fs, "mixed/a.md").content, "a\n");
  EXPECT_EQ(Stat(fs, "ctx-docs/a.md").content, "a\n");
  EXPECT_EQ(Stat(fs, "tag/.git").type, '-');

  // Disagreements and mismatches fail at their line.
  struct Bad {
    std::string line, says;
  };
  for (const Bad& b : std::vector<Bad>{{"ADD " + repo.url() + "?ref=v1#main /x/", "ref conflicts"},
                                       {"ADD " + repo.url() + "?tag=v1&branch=main /x/", "branch conflicts with tag"},
                                       {"ADD " + repo.url() + "?depth=1 /x/", "unexpected query \"depth\""},
                                       {"ADD " + repo.url() + "?branch=main&checksum=" + v1.substr(0, 12) + " /x/",
                                        v1.substr(0, 12)},
                                       {"ADD --keep-git-dir=true " + repo.url() + "?keep-git-dir=false /x/",
                                        "conflicts with the URL's keep-git-dir=false"}}) {
    std::string c = env_->Context({{"Dockerfile", Base() + "\n" + b.line + "\n"}});
    auto f = env_->Build(c, "--destination " + env_->Ref("sources/git-query:2"), kAllowFile);
    EXPECT_NE(f.rc, 0) << b.line;
    EXPECT_TRUE(Has(f.err, "Dockerfile:3:1")) << b.line << "\n" << f.err;
    EXPECT_TRUE(Has(f.err, b.says)) << b.line << "\n" << f.err;
  }
  // A bad query in a build context names the flag.
  auto f = env_->Build(ctx, "--build-context 'docs=" + repo.url() + "?tag=v1&ref=main' --destination " +
                                env_->Ref("sources/git-query:3"),
                       kAllowFile);
  EXPECT_NE(f.rc, 0);
  EXPECT_TRUE(Has(f.err, "ref conflicts")) << f.err;
}

TEST_F(BuildSourcesTest, ANamedContextReplacesAStage) {
  // An image to stand in for the builder stage.
  std::string tools = env_->Context({{"Dockerfile", Base() + "RUN echo from-image > /out.txt\n"}});
  auto r = env_->Build(tools, "--destination " + env_->Ref("sources/tools:1"));
  ASSERT_EQ(r.rc, 0) << r.err;

  std::string dir = env_->Context({{"out.txt", "from-dir\n"}});
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest AS builder\n"
                                                            "RUN echo from-stage > /out.txt\n"
                                                            "FROM builder AS child\n"
                                                            "RUN cat /out.txt > /child.txt\n"
                                                            + Base() +
                                                            "COPY --from=builder /out.txt /out.txt\n"
                                                            "COPY --from=child /child.txt /child.txt\n"}});
  // Without a context: the stage runs.
  r = env_->Build(ctx, "--destination " + env_->Ref("sources/replaced:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("sources/replaced:1");
  EXPECT_EQ(Stat(img.rootfs, "out.txt").content, "from-stage\n");
  EXPECT_EQ(Stat(img.rootfs, "child.txt").content, "from-stage\n");

  // A directory named as the stage: its files are the stage; FROM builder starts from them (as
  // scratch with those files: no shell, so the child stage's RUN would fail — use the image form
  // for it below); here only COPY --from reads it.
  std::string copy_only = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest AS builder\n"
                                                                  "RUN echo from-stage > /out.txt\n"
                                                                  + Base() +
                                                                  "COPY --from=builder /out.txt /out.txt\n"}});
  r = env_->Build(copy_only, "--build-context builder=" + dir + " --destination " + env_->Ref("sources/replaced:2"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(Has(r.err, "--build-context builder replaces the stage")) << r.err;
  EXPECT_FALSE(Has(r.err, "echo from-stage")) << r.err;  // the stage's RUN never ran
  img = env_->Read("sources/replaced:2");
  EXPECT_EQ(Stat(img.rootfs, "out.txt").content, "from-dir\n");
  EXPECT_EQ(Stat(img.rootfs, "out.txt").uid, 0u);

  // An image named as the stage: FROM builder and COPY --from=builder read that image.
  r = env_->Build(ctx, "--build-context builder=docker-image://" + env_->Ref("sources/tools:1") +
                           " --destination " + env_->Ref("sources/replaced:3"));
  ASSERT_EQ(r.rc, 0) << r.err;
  img = env_->Read("sources/replaced:3");
  EXPECT_EQ(Stat(img.rootfs, "out.txt").content, "from-image\n");
  EXPECT_EQ(Stat(img.rootfs, "child.txt").content, "from-image\n");
}

TEST_F(BuildSourcesTest, OciLayoutNamedContextsForFromAndCopyFrom) {
  std::string tools = env_->Context({{"Dockerfile", Base() + "RUN echo from-layout > /out.txt\n"}});
  auto r = env_->Build(tools, "--destination " + env_->Ref("sources/layout-src:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  std::string layout = env_->NewDir("layout");
  ASSERT_EQ(RunShell("skopeo --insecure-policy copy -q --src-tls-verify=false docker://" + env_->Ref("sources/layout-src:1") +
                     " oci:" + layout + ":tools"),
            0);
  std::string digest;
  ASSERT_EQ(RunShell("skopeo inspect --raw oci:" + layout + ":tools | sha256sum | cut -c1-64", &digest), 0);
  digest = "sha256:" + digest.substr(0, 64);

  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM lay AS base\n"
                                    "RUN cat /out.txt > /ran.txt\n" +
                                        Base() +
                                        "COPY --from=base /ran.txt /ran.txt\n"
                                        "COPY --from=pinned /out.txt /pinned.txt\n"}});
  r = env_->Build(ctx, "--build-context lay=oci-layout://" + layout + ":tools --build-context pinned=oci-layout://" +
                           layout + "@" + digest + " --destination " + env_->Ref("sources/layout:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("sources/layout:1");
  EXPECT_EQ(Stat(img.rootfs, "ran.txt").content, "from-layout\n");  // FROM lay: the layout's image ran the RUN
  EXPECT_EQ(Stat(img.rootfs, "pinned.txt").content, "from-layout\n");

  // A digest the layout does not have, a tag it does not have, a directory that is not there.
  const std::string other = "sha256:" + std::string(64, 'a');
  for (const std::string& bad : {"oci-layout://" + layout + "@" + other, "oci-layout://" + layout + ":nope",
                                 std::string("oci-layout:///no/such/layout")}) {
    r = env_->Build(ctx, "--build-context lay=" + bad + " --build-context pinned=oci-layout://" + layout +
                             " --destination " + env_->Ref("sources/layout:2"));
    EXPECT_NE(r.rc, 0) << bad;
    EXPECT_TRUE(Has(r.err, bad.substr(0, 30)) || Has(r.err, "/no/such/layout")) << bad << "\n" << r.err;
  }
}

}  // namespace
}  // namespace kiln
