// `kiln build` end to end in the sandbox tiers kiln's users run it in: as an unprivileged user
// (tier 1, rootless: a user namespace with a single mapping) and as root without CAP_SYS_ADMIN, as in
// an ordinary Kubernetes pod (tier 2, chroot). The same reproducible build must give the same image
// as a plain root build, file for file and digest for digest, and the log must say which tier ran.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using testing::BuildEnv;
using testing::FileInfo;
using testing::Stat;

std::string ReadLine(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

class BuildTiersTest : public testing::BuildEnvSuite {
 protected:

  static std::string Context() {
    std::string ctx = env_->Context({{"Dockerfile",
                                      "FROM @REG@/busybox:latest\n"
                                      "COPY --chown=app:staff hello.txt /srv/hello.txt\n"
                                      "COPY --chmod=0751 tool.sh /usr/local/bin/tool\n"
                                      "WORKDIR /srv/work\n"
                                      "RUN echo \"run as $(id -u):$(id -g)\" > ran && mkdir -p dir && chmod 0700 dir && "
                                      "ln -s ran link && rm /bin/vi && tool > tool.out && test -w /etc/passwd\n"
                                      "RUN echo nothing changes > /dev/null\n"
                                      "ENV A=1\n"
                                      "CMD [\"/bin/sh\"]\n"},
                                     {"hello.txt", "hello\n"},
                                     {"tool.sh", "#!/bin/sh\necho tool ran\n"}});
    return ctx;
  }

  // The same image whatever the tier.
  static void CheckImage(const testing::ReadBack& img) {
    const std::string& fs = img.rootfs;
    FileInfo hello = Stat(fs, "srv/hello.txt");
    EXPECT_EQ(hello.content, "hello\n");
    EXPECT_EQ(hello.uid, 1000u);
    EXPECT_EQ(hello.gid, 50u);
    FileInfo tool = Stat(fs, "usr/local/bin/tool");
    EXPECT_EQ(tool.mode, 0751u);
    EXPECT_EQ(tool.uid, 0u);
    FileInfo ran = Stat(fs, "srv/work/ran");
    EXPECT_EQ(ran.content, "run as 0:0\n");
    EXPECT_EQ(ran.mode, 0644u);
    FileInfo dir = Stat(fs, "srv/work/dir");
    EXPECT_EQ(dir.type, 'd');
    EXPECT_EQ(dir.mode, 0700u);
    EXPECT_EQ(ran.uid, 0u);
    EXPECT_EQ(ran.gid, 0u);
    EXPECT_EQ(dir.uid, 0u);
    EXPECT_EQ(Stat(fs, "srv/work/tool.out").uid, 0u);
    EXPECT_EQ(Stat(fs, "srv/work/link").link, "ran");
    EXPECT_EQ(Stat(fs, "srv/work/tool.out").content, "tool ran\n");
    EXPECT_EQ(Stat(fs, "bin/vi").type, '-');
    EXPECT_EQ(Stat(fs, "etc/passwd").uid, 0u);
    // No trace of the sandbox: /dev, /proc, resolv.conf were not in the base and are not here.
    EXPECT_EQ(Stat(fs, "proc").type, '-');
    EXPECT_EQ(Stat(fs, "dev").type, '-');
    EXPECT_EQ(Stat(fs, "etc/resolv.conf").type, '-');
    EXPECT_EQ(Stat(fs, "etc/hosts").type, '-');
    // Layers: base, two COPYs, WORKDIR, the first RUN; the second RUN changed nothing.
    EXPECT_EQ(img.config["rootfs"]["diff_ids"].size(), 5u);
    EXPECT_EQ(img.NonEmptyHistory(), 5u);
  }

};

TEST_F(BuildTiersTest, ChrootWithoutCapSysAdminMatchesTheRootBuild) {
  std::string ctx = Context();
  // As root: the reference.
  auto root = env_->Build(ctx, "--reproducible --destination " + env_->Ref("tiers:root"));
  ASSERT_EQ(root.rc, 0) << root.err;
  auto reference = env_->Read("tiers:root");
  CheckImage(reference);

  // Tier 2: root without CAP_SYS_ADMIN.
  auto chroot = env_->Build(ctx, "--reproducible --destination " + env_->Ref("tiers:chroot") + " --sandbox chroot", "",
                            "setpriv --bounding-set -sys_admin --inh-caps -sys_admin");
  ASSERT_EQ(chroot.rc, 0) << chroot.err;
  EXPECT_NE(chroot.err.find("RUN sandbox: chroot"), std::string::npos) << chroot.err;
  auto c = env_->Read("tiers:chroot");
  CheckImage(c);
  EXPECT_EQ(c.digest, reference.digest);

  // capsh's spelling, with the tier left to kiln: without the seccomp profile of a real pod, root
  // may still create user namespaces, so either tier is right; the log must say which, and the image
  // must be the same.
  auto capsh = env_->Build(ctx, "--reproducible --destination " + env_->Ref("tiers:capsh"), "",
                           "capsh --drop=cap_sys_admin -- -c 'exec \"$0\" \"$@\"'");
  ASSERT_EQ(capsh.rc, 0) << capsh.err;
  EXPECT_NE(capsh.err.find("RUN sandbox: "), std::string::npos) << capsh.err;
  EXPECT_EQ(env_->Read("tiers:capsh", false).digest, reference.digest);
}

// Tier 1: nobody, with its own state directory and nothing but a single id mapping.
testing::KilnRun BuildAsNobody(BuildEnv& env, const std::string& ctx, const std::string& repo_tag) {
  std::string state = env.NewDir("nobody-state");
  EXPECT_EQ(::chown(state.c_str(), 65534, 65534), 0);
  return testing::RunKiln(KILN_BINARY,
                          "build --context " + ctx + " --state-dir " + state + " --insecure --insecure-pull " +
                              "--reproducible --destination " + env.Ref(repo_tag),
                          "", "setpriv --reuid=65534 --regid=65534 --clear-groups");
}

TEST_F(BuildTiersTest, RootlessAsNobody) {
  if (ReadLine("/proc/sys/user/max_user_namespaces") == "0") GTEST_SKIP() << "no user namespaces here";
  auto nobody = BuildAsNobody(*env_, Context(), "tiers:nobody");
  ASSERT_EQ(nobody.rc, 0) << nobody.err;
  EXPECT_NE(nobody.err.find("RUN sandbox: rootless"), std::string::npos) << nobody.err;
  EXPECT_NE(nobody.err.find("single mapping"), std::string::npos) << nobody.err;
  CheckImage(env_->Read("tiers:nobody"));
}

TEST_F(BuildTiersTest, RootlessBuildMatchesTheRootBuild) {
  std::string ctx = Context();
  auto root = env_->Build(ctx, "--reproducible --destination " + env_->Ref("tiers:root2"));
  ASSERT_EQ(root.rc, 0) << root.err;
  auto nobody = BuildAsNobody(*env_, ctx, "tiers:nobody2");
  ASSERT_EQ(nobody.rc, 0) << nobody.err;
  auto n = env_->Read("tiers:nobody2");
  CheckImage(n);
  EXPECT_EQ(n.digest, env_->Read("tiers:root2", false).digest);
}

TEST_F(BuildTiersTest, RootlessRootWithSupplementaryGroupsInEtcGroup) {
  // Most images list root in groups of /etc/group (Alpine: bin, daemon, sys, adm, disk, wheel).
  if (ReadLine("/proc/sys/user/max_user_namespaces") == "0") GTEST_SKIP() << "no user namespaces here";
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "RUN echo wheel:x:10:root >> /etc/group\n"
                                    "RUN id -u > /uid\n"}});
  std::string state = env_->NewDir("nobody-state");
  ASSERT_EQ(::chown(state.c_str(), 65534, 65534), 0);
  auto r = testing::RunKiln(KILN_BINARY,
                            "build --context " + ctx + " --state-dir " + state + " --insecure --insecure-pull " +
                                "--destination " + env_->Ref("tiers:groups"),
                            "", "setpriv --reuid=65534 --regid=65534 --clear-groups");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Stat(env_->Read("tiers:groups").rootfs, "uid").content, "0\n");
}

}  // namespace
}  // namespace kiln
