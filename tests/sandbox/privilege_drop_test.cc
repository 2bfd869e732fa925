// The sandbox where kiln's users run it: as an unprivileged user (tier 1 with a single id mapping)
// and as root without CAP_SYS_ADMIN, like an ordinary Kubernetes pod (tier 2). The outer tests run
// this same binary again under setpriv with KILN_SANDBOX_INNER set; the Inner* tests do the work and
// skip themselves when run directly.
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "executor/sandbox/linux_caps.h"
#include "executor/sandbox/linux_command_runner.h"
#include "tests/sandbox/sandbox_testing.h"
#include "tests/testing/temp_dir.h"

namespace kiln::sandbox {
namespace {

using kiln::testing::ReadFile;
using kiln::testing::RunShell;
using kiln::testing::TempDir;
using testing::ListTree;
using testing::RecordingWriter;

std::string InnerMode() {
  const char* v = ::getenv("KILN_SANDBOX_INNER");
  return v ? v : "";
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::string ReadLine(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// Runs the Inner<suite> tests of this binary under `wrapper` and checks they all ran and passed.
void RunInner(const std::string& wrapper, const std::string& mode, const std::string& suite) {
  std::string out;
  int rc = RunShell(wrapper + " env KILN_SANDBOX_INNER=" + mode + " TMPDIR=/tmp " + SelfExe() +
                        " --gtest_filter='" + suite + ".*' --gtest_color=no",
                    &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("[  PASSED  ]"), std::string::npos) << out;
  EXPECT_EQ(out.find("SKIPPED"), std::string::npos) << out;
  EXPECT_EQ(out.find("FAILED"), std::string::npos) << out;
}

TEST(PrivilegeDropTest, RootlessAsNobody) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  if (!testing::HaveBusybox()) GTEST_SKIP() << "needs Debian's busybox-static";
  if (ReadLine("/proc/sys/user/max_user_namespaces") == "0" ||
      ReadLine("/proc/sys/kernel/unprivileged_userns_clone") == "0") {
    GTEST_SKIP() << "the kernel forbids unprivileged user namespaces here";
  }
  RunInner("setpriv --reuid=65534 --regid=65534 --clear-groups", "nobody", "InnerNobody");
}

TEST(PrivilegeDropTest, ChrootWithoutCapSysAdmin) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (!testing::HaveBusybox()) GTEST_SKIP() << "needs Debian's busybox-static";
  RunInner("setpriv --bounding-set -sys_admin --inh-caps -sys_admin", "nosysadmin", "InnerNoSysAdmin");
}

TEST(PrivilegeDropTest, KubernetesLikePodFallsBackToChroot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (!testing::HaveBusybox()) GTEST_SKIP() << "needs Debian's busybox-static";
  RunInner("setpriv --bounding-set -sys_admin --inh-caps -sys_admin", "pod", "InnerPod");
}

class InnerTest : public ::testing::Test {
 protected:
  // Called from SetUp: a skip there keeps the test body from running.
  void Prepare(const char* mode) {
    if (InnerMode() != mode) GTEST_SKIP() << "runs only under PrivilegeDropTest";
    rootfs_ = dir_.Sub("rootfs");
    testing::MakeBusyboxRootfs(rootfs_);
  }
  Result<RunResult> Run(CommandRunner& runner, const std::string& script, RecordingWriter* w,
                        uid_t uid = 0, gid_t gid = 0, std::vector<gid_t> groups = {}) {
    RunSpec s;
    s.rootfs = rootfs_;
    s.argv = {"/bin/sh", "-c", script};
    s.env = {"PATH=/bin"};
    s.uid = uid;
    s.gid = gid;
    s.supplementary_groups = std::move(groups);
    s.output = w;
    return runner.Run(s);
  }
  TempDir dir_;
  std::string rootfs_;
};

class InnerNobody : public InnerTest {
 protected:
  void SetUp() override { Prepare("nobody"); }
};

TEST_F(InnerNobody, PicksRootlessWithASingleMapping) {
  ASSERT_EQ(::geteuid(), 65534u);
  auto runner = LinuxCommandRunner::Create();
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  EXPECT_EQ((*runner)->tier(), SandboxTier::kUserNamespace);
  EXPECT_EQ((*runner)->detection().id_mapping.kind, IdMapPlan::Kind::kSingle);
  EXPECT_FALSE((*runner)->detection().chroot);
  EXPECT_NE((*runner)->DescribeTier().find("single mapping: uid 0→65534"), std::string::npos)
      << (*runner)->DescribeTier();

  auto before = ListTree(rootfs_);
  RecordingWriter w;
  auto r = Run(**runner, "id -u; id -g; echo x > /dev/null; echo $$; cat /etc/resolv.conf; exit 3", &w);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(w.data(), "0\n0\n2\n" + ReadFile("/etc/resolv.conf"));
  EXPECT_EQ(before, ListTree(rootfs_));
}

TEST_F(InnerNobody, OtherUsersNeedSubordinateIds) {
  auto runner = LinuxCommandRunner::Create();
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  auto r = Run(**runner, "true", nullptr, 1000, 1000);
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("RUN as uid 1000: not mapped"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("/etc/subuid"), std::string::npos) << r.status().message();
}

TEST_F(InnerNobody, ChrootTierIsRefusedWithTheReason) {
  LinuxCommandRunnerOptions o;
  o.tier = LinuxCommandRunnerOptions::Tier::kChroot;
  auto runner = LinuxCommandRunner::Create(o);
  EXPECT_EQ(runner.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(runner.status().message().find("kiln runs as uid 65534, not root"), std::string::npos)
      << runner.status().message();
}

class InnerNoSysAdmin : public InnerTest {
 protected:
  void SetUp() override { Prepare("nosysadmin"); }
};

TEST_F(InnerNoSysAdmin, ChrootTierWorksWithoutCapSysAdmin) {
  ASSERT_FALSE(HasEffectiveCap(CAP_SYS_ADMIN)) << "setpriv did not drop CAP_SYS_ADMIN";
  ASSERT_EQ(::geteuid(), 0u);
  LinuxCommandRunnerOptions o;
  o.tier = LinuxCommandRunnerOptions::Tier::kChroot;
  auto runner = LinuxCommandRunner::Create(o);
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  EXPECT_TRUE((*runner)->detection().chroot);

  ::mkdir((rootfs_ + "/tmp").c_str(), 0755);
  auto before = ListTree(rootfs_);
  RecordingWriter w;
  auto r = Run(**runner,
               "id -u; id -G; echo x > /dev/null && echo devnull-ok; cat /etc/resolv.conf; "
               "chroot /tmp /bin/true 2>/dev/null || echo no-chroot",
               &w, 1234, 2345, {2345, 27});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success()) << w.data();
  EXPECT_EQ(w.data(), "1234\n2345 27\ndevnull-ok\n" + ReadFile("/etc/resolv.conf") + "no-chroot\n");

  RecordingWriter w2;
  auto root = Run(**runner, "id -u; chroot /tmp /bin/true 2>/dev/null || echo no-chroot; exit 3", &w2);
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(root->exit_code, 3);
  EXPECT_EQ(w2.data(), "0\nno-chroot\n");

  // /dev/null and friends (mknod), /etc, resolv.conf and hosts were all created for the steps and
  // are gone again; the root directory even has its old mtime back.
  EXPECT_EQ(before, ListTree(rootfs_));
}

// What Docker's and Kubernetes' default seccomp profile does to a container without CAP_SYS_ADMIN:
// clone and unshare with CLONE_NEWUSER fail with EPERM, and clone3 with ENOSYS (so that callers fall
// back to clone, whose flags a filter can inspect).
bool InstallPodSeccompFilter() {
#if defined(__x86_64__)
  constexpr unsigned kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr unsigned kArch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) == 0;
}

class InnerPod : public InnerTest {
 protected:
  void SetUp() override { Prepare("pod"); }
};

TEST_F(InnerPod, AutoDetectionPicksChrootAndSaysWhy) {
  ASSERT_FALSE(HasEffectiveCap(CAP_SYS_ADMIN));
  ASSERT_TRUE(InstallPodSeccompFilter()) << "cannot install the seccomp filter on this architecture";
  auto runner = LinuxCommandRunner::Create();
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  EXPECT_EQ((*runner)->tier(), SandboxTier::kChroot);
  EXPECT_FALSE((*runner)->detection().user_namespace);
  std::string why = (*runner)->DescribeTier();
  EXPECT_NE(why.find("chroot (user namespaces unavailable: creating user, mount and pid namespaces (clone)"),
            std::string::npos) << why;
  EXPECT_NE(why.find("seccomp"), std::string::npos) << why;

  auto before = ListTree(rootfs_);
  RecordingWriter w;
  auto r = Run(**runner, "id -u; echo x > /dev/null && cat /etc/hosts > /dev/null && echo ok", &w);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(w.data(), "0\nok\n");
  EXPECT_EQ(before, ListTree(rootfs_));
}

}  // namespace
}  // namespace kiln::sandbox
