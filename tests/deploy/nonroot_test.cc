// kiln as an unprivileged user with no user namespace and no capabilities (a Kubernetes pod with
// runAsUser, capabilities drop ALL, allowPrivilegeEscalation false and seccomp RuntimeDefault, made
// here by podrun): Dockerfiles of FROM, COPY, ADD and metadata build, and RUN steps run as kiln's own
// uid in the ptrace sandbox (tier 3); a RUN step that needs another user (root) fails with a message
// that says what is missing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "tests/deploy/deploy_testing.h"
#include "tests/testing/base_images.h"

namespace kiln {
namespace {

using testing::KilnRun;
using testing::RunShell;
using testing::ShellQuote;

// podrun as uid/gid 65534 with no capabilities, no_new_privs and user namespaces refused.
const std::string kUnprivileged = std::string(PODRUN_BINARY) +
                                  " --uid 65534 --gid 65534 --caps none --no-new-privs --no-userns --env PATH=/usr/bin:/bin --";

class NonRootTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::HaveRoot() || !testing::HaveBusyboxStatic()) return;
    env_ = new testing::BuildEnv(KILN_BINARY);
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  void SetUp() override {
    if (!env_) GTEST_SKIP() << "needs root (to become another user) and busybox-static";
  }
  // A state directory the unprivileged user owns.
  std::string UserStateDir() {
    std::string dir = env_->NewDir("nobody-state");
    EXPECT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
    return dir;
  }
  KilnRun BuildAsNobody(const std::string& context, const std::string& args) {
    return testing::RunKiln(KILN_BINARY,
                            "build --context " + ShellQuote(context) + " --state-dir " + ShellQuote(UserStateDir()) +
                                " --insecure --insecure-pull " + args,
                            "", kUnprivileged);
  }
  static testing::BuildEnv* env_;
};
testing::BuildEnv* NonRootTest::env_ = nullptr;

// The premise: under podrun's filter a non-root process cannot make a user namespace (without it, it
// can on this machine), so the builds below really run with no sandbox tier.
TEST_F(NonRootTest, UserNamespacesAreReallyUnavailable) {
  std::string out;
  EXPECT_NE(RunShell(kUnprivileged + " unshare --user true 2>&1", &out), 0) << out;
  EXPECT_NE(RunShell(kUnprivileged + " id -u 2>&1", &out), -1);
  EXPECT_EQ(out, "65534\n");
  if (RunShell(std::string(PODRUN_BINARY) + " --uid 65534 --gid 65534 -- /usr/bin/unshare --user true 2>&1", &out) != 0) {
    GTEST_LOG_(INFO) << "(this machine refuses unprivileged user namespaces anyway: " << out << ")";
  }
}

TEST_F(NonRootTest, CopyAddAndMetadataBuildWithoutPrivileges) {
  std::string ctx = env_->Context({
      {"Dockerfile",
       "FROM @REG@/busybox:latest\n"
       "COPY app.txt /srv/app/\n"
       "ADD bundle.tar /srv/bundle/\n"
       "COPY --chown=1000:1000 owned.txt /home/app/\n"
       "ENV GREETING=hello\n"
       "LABEL org.example.built-by=nobody\n"
       "WORKDIR /srv/app\n"
       "USER 1000\n"
       "CMD [\"cat\", \"app.txt\"]\n"},
      {"app.txt", "copied by an unprivileged kiln\n"},
      {"owned.txt", "mine\n"},
  });
  ASSERT_EQ(RunShell("mkdir -p " + ctx + "/t/inner && echo packed > " + ctx + "/t/inner/file.txt && tar -C " + ctx +
                     "/t -cf " + ctx + "/bundle.tar inner && rm -r " + ctx + "/t && chmod -R a+rX " + ctx),
            0);
  KilnRun r = BuildAsNobody(ctx, "--destination " + env_->Ref("nonroot/copy:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  testing::ReadBack img = env_->Read("nonroot/copy:1");
  EXPECT_EQ(testing::Stat(img.rootfs, "srv/app/app.txt").content, "copied by an unprivileged kiln\n");
  EXPECT_EQ(testing::Stat(img.rootfs, "srv/bundle/inner/file.txt").content, "packed\n");
  // Ownership in the layer is what the Dockerfile says, not the uid kiln ran as.
  testing::FileInfo owned = testing::Stat(img.rootfs, "home/app/owned.txt");
  EXPECT_EQ(owned.uid, 1000u);
  EXPECT_EQ(owned.gid, 1000u);
  EXPECT_EQ(testing::Stat(img.rootfs, "srv/app/app.txt").uid, 0u);
  EXPECT_EQ(testing::Stat(img.rootfs, "bin/busybox").uid, 0u);
  const auto& cfg = img.config["config"];
  EXPECT_EQ(cfg["Labels"]["org.example.built-by"], "nobody");
  EXPECT_EQ(cfg["WorkingDir"], "/srv/app");
  EXPECT_EQ(cfg["User"], "1000");
  bool has_env = false;
  for (const auto& e : cfg["Env"]) has_env |= e == "GREETING=hello";
  EXPECT_TRUE(has_env) << cfg.dump();
}

TEST_F(NonRootTest, RunAsKilnsOwnUidBuildsInThePtraceSandbox) {
  std::string ctx = env_->Context({
      {"Dockerfile",
       "FROM @REG@/busybox:latest\n"
       "COPY app.txt /srv/\n"
       "USER 65534:65534\n"
       "WORKDIR /work\n"
       "RUN id -u > uid.txt && tr a-z A-Z < /srv/app.txt > upper.txt && mkdir made && ln -s upper.txt link && "
       "readlink -f link && ls /etc/passwd && sh -c 'cat /proc/self/status | grep -c Tracer'\n"},
      {"app.txt", "shout this\n"},
  });
  ASSERT_EQ(RunShell("chmod -R a+rX " + ctx), 0);
  KilnRun r = BuildAsNobody(ctx, "--destination " + env_->Ref("nonroot/ptrace:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("RUN sandbox: ptrace"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/work/upper.txt\n"), std::string::npos) << r.err;  // readlink -f: the guest path
  EXPECT_NE(r.err.find("/etc/passwd\n1\n"), std::string::npos) << r.err;  // traced: TracerPid is set
  testing::ReadBack img = env_->Read("nonroot/ptrace:1");
  testing::FileInfo uid = testing::Stat(img.rootfs, "work/uid.txt");
  EXPECT_EQ(uid.content, "65534\n");
  // What the step created is the step's, as under Docker; the image's own files stay root's.
  EXPECT_EQ(uid.uid, 65534u);
  EXPECT_EQ(uid.gid, 65534u);
  EXPECT_EQ(testing::Stat(img.rootfs, "work/upper.txt").content, "SHOUT THIS\n");
  EXPECT_EQ(testing::Stat(img.rootfs, "work/made").uid, 65534u);
  EXPECT_EQ(testing::Stat(img.rootfs, "srv/app.txt").uid, 0u);
  EXPECT_EQ(testing::Stat(img.rootfs, "bin/busybox").uid, 0u);
  EXPECT_EQ(testing::Stat(img.rootfs, "work/link").link, "upper.txt");
  // Exactly what the step made, nothing of the sandbox's machinery.
  EXPECT_EQ(testing::ListTree(img.rootfs, "work"),
            (std::vector<std::string>{"work/link", "work/made/", "work/uid.txt", "work/upper.txt"}));
}

TEST_F(NonRootTest, RunAsRootFailsClearly) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nCOPY app.txt /\nRUN id -u > /uid\n"},
                                   {"app.txt", "x\n"}});
  ASSERT_EQ(RunShell("chmod -R a+rX " + ctx), 0);
  for (std::string sandbox : {"", "--sandbox ptrace", "--sandbox chroot", "--sandbox rootless"}) {
    KilnRun r = BuildAsNobody(ctx, "--destination " + env_->Ref("nonroot/run:1") + " " + sandbox);
    EXPECT_NE(r.rc, 0) << sandbox;
    EXPECT_NE(r.err.find("Dockerfile:3"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("RUN"), std::string::npos) << r.err;
    if (sandbox.empty() || sandbox == "--sandbox ptrace") {
      // Names the step's ids, kiln's, and what to change.
      EXPECT_NE(r.err.find("RUN as uid 0, gid 0"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("only as kiln's own uid 65534"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("USER 65534:65534"), std::string::npos) << r.err;
    } else {
      EXPECT_NE(r.err.find("unavailable"), std::string::npos) << r.err;
    }
    EXPECT_FALSE(env_->TagExists("nonroot/run:1")) << sandbox;
  }
}

// Real programs of a real distribution in the ptrace sandbox: dynamic glibc binaries run by the
// image's own loader, Debian's absolute /etc/alternatives links, perl, dpkg's database, tar | gzip.
TEST_F(NonRootTest, DebianToolsRunInThePtraceSandbox) {
  if (testing::RunShell("command -v debootstrap") != 0) GTEST_SKIP() << "needs debootstrap for the Debian image";
  testing::PushToRegistry("oci:" + testing::DebianLayout(KILN_BINARY) + ":latest", env_->reg(), "debian:bookworm");
  std::string ctx = env_->Context({
      {"Dockerfile",
       "FROM @REG@/debian:bookworm\n"
       "USER nobody\n"
       "WORKDIR /tmp/w\n"
       "RUN awk 'BEGIN { print \"awk ok\" }' > awk.txt && readlink -f /usr/bin/awk > awk-path.txt && "
       "perl -e 'print \"perl ok\\n\"' > perl.txt && dpkg-query -W -f='${Package}\\n' dpkg > dpkg.txt && "
       "tar -czf etc.tgz -C /etc debian_version && tar -tzf etc.tgz > list.txt && sh -c 'cd .. && pwd' > up.txt\n"},
  });
  ASSERT_EQ(RunShell("chmod -R a+rX " + ctx), 0);
  KilnRun r = BuildAsNobody(ctx, "--destination " + env_->Ref("nonroot/debian:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  testing::ReadBack img = env_->Read("nonroot/debian:1");
  EXPECT_EQ(testing::Stat(img.rootfs, "tmp/w/awk.txt").content, "awk ok\n");
  EXPECT_EQ(testing::Stat(img.rootfs, "tmp/w/awk-path.txt").content, "/usr/bin/mawk\n");
  EXPECT_EQ(testing::Stat(img.rootfs, "tmp/w/perl.txt").content, "perl ok\n");
  EXPECT_EQ(testing::Stat(img.rootfs, "tmp/w/dpkg.txt").content, "dpkg\n");
  EXPECT_EQ(testing::Stat(img.rootfs, "tmp/w/list.txt").content, "debian_version\n");
  EXPECT_EQ(testing::Stat(img.rootfs, "tmp/w/up.txt").content, "/tmp\n");
  // WORKDIR made the directory for USER nobody, as BuildKit does, even though kiln could not chown.
  testing::FileInfo w = testing::Stat(img.rootfs, "tmp/w");
  EXPECT_EQ(w.uid, 65534u);
  EXPECT_EQ(w.gid, 65534u);
  EXPECT_EQ(testing::Stat(img.rootfs, "tmp/w/etc.tgz").uid, 65534u);
}

}  // namespace
}  // namespace kiln
