// Rootless builds that are right (issue 17): an unprivileged user with a subordinate id range runs
// the whole build as root in one user namespace, so ownership, modes and hardlinks a RUN step sets on
// files COPY made, and files no one but their owner may read, all reach the layers exactly as a root
// build writes them: the same reproducible Dockerfile gives the same digest. Nothing is left in the
// user's state directory, and `kiln clean` removes what a killed build left.
//
// The test makes its own user (useradd) with /etc/subuid and /etc/subgid ranges and removes both
// afterwards; newuidmap/newgidmap come from Debian's uidmap package.
#include <pwd.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testing/base_images.h"

namespace kiln {
namespace {

using testing::BuildEnv;
using testing::FileInfo;
using testing::Stat;

constexpr uint32_t kSubStart = 462144;

std::string ReadLine(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

int Sh(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// useradd, usermod and userdel fail while another process holds /etc/passwd's lock.
int ShadowTool(const std::string& cmd) {
  int rc = -1;
  for (int i = 0; i < 20 && rc != 0; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    rc = Sh(cmd);
  }
  return rc;
}

// Whether a process whose command line is exactly `argv` (spaces between arguments) exists.
bool ProcessRunning(const std::string& argv) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::ifstream f(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd == argv) return true;
  }
  return false;
}

class BuildRootlessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::HaveRoot() || !testing::HaveBusyboxStatic()) return;
    if (::access("/usr/bin/newuidmap", X_OK) != 0 || ::access("/usr/bin/newgidmap", X_OK) != 0) return;
    if (ReadLine("/proc/sys/user/max_user_namespaces") == "0") return;
    // A system user (-r) gets no subordinate ids from useradd: only the range below, which userdel
    // removes again. The name is per process, since ctest runs test cases in parallel processes.
    user_ = "kiln-rl-" + std::to_string(::getpid());
    if (ShadowTool("useradd -r --no-create-home --shell /bin/sh " + user_) != 0) return;
    std::string range = std::to_string(kSubStart) + "-" + std::to_string(kSubStart + 65535);
    if (ShadowTool("usermod --add-subuids " + range + " --add-subgids " + range + " " + user_) != 0) {
      ShadowTool("userdel " + user_);
      return;
    }
    struct passwd* pw = ::getpwnam(user_.c_str());
    if (pw == nullptr) return;
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    env_ = new BuildEnv(KILN_BINARY);
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
    if (!user_.empty()) ShadowTool("userdel " + user_);
  }
  void SetUp() override {
    if (env_ == nullptr) GTEST_SKIP() << "needs root, busybox-static, uidmap and user namespaces";
  }

  static std::string Wrapper() {
    return "setpriv --reuid=" + std::to_string(uid_) + " --regid=" + std::to_string(gid_) + " --clear-groups";
  }

  // A state directory the test user owns.
  static std::string UserStateDir() {
    std::string state = env_->NewDir("user-state");
    EXPECT_EQ(::chown(state.c_str(), uid_, gid_), 0);
    return state;
  }

  static testing::KilnRun BuildAsUser(const std::string& ctx, const std::string& state, const std::string& tag) {
    return testing::RunKiln(KILN_BINARY,
                            "build --context " + ctx + " --state-dir " + state + " --insecure --insecure-pull " +
                                "--reproducible --destination " + env_->Ref(tag),
                            "", Wrapper());
  }

  // Names left under STATE/work other than the lock file.
  static std::vector<std::string> WorkDirs(const std::string& state) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(state + "/work", ec)) {
      std::string name = e.path().filename();
      if (name != ".lock") out.push_back(name);
    }
    return out;
  }

  static BuildEnv* env_;
  static std::string user_;
  static uid_t uid_;
  static gid_t gid_;
};
BuildEnv* BuildRootlessTest::env_ = nullptr;
std::string BuildRootlessTest::user_;
uid_t BuildRootlessTest::uid_ = 0;
gid_t BuildRootlessTest::gid_ = 0;

// The four cases of the issue and friends, in one Dockerfile.
std::string OwnershipContext(BuildEnv& env) {
  return env.Context({{"Dockerfile",
                       "FROM @REG@/busybox:latest\n"
                       // 1: an app user owns a directory, then COPY writes into it.
                       "RUN echo 'svc:x:1234:1234::/srv/app:/bin/sh' >> /etc/passwd && echo 'svc:x:1234:' >> /etc/group && "
                       "mkdir -p /srv/app && chown svc:svc /srv/app && chmod 0700 /srv/app\n"
                       "COPY run.sh /srv/app/\n"
                       // 2: chown of a file COPY made, and chown -R over a copied tree.
                       "COPY f /f\n"
                       "RUN chown 1234:1234 /f\n"
                       "COPY tree/ /tree/\n"
                       "RUN chown -R 1234:2000 /tree\n"
                       // 3: a file only its (non-root) owner may read.
                       "RUN chown 33:33 /etc/group && chmod 600 /etc/group\n"
                       // setuid, mode 000 owned by another uid, hardlinks across owners.
                       "RUN mkdir -p /usr/local/bin && cp /bin/busybox /usr/local/bin/suidbox && chmod 4755 /usr/local/bin/suidbox\n"
                       "RUN echo secret > /secret && chown 1000:1000 /secret && chmod 000 /secret\n"
                       "RUN echo a > /hl-a && chown 1000:50 /hl-a && ln /hl-a /hl-b && "
                       "echo o > /other && chown 2000:2000 /other && ln /other /dir-other\n"
                       "USER svc\n"
                       "RUN id -u > /srv/app/who && touch /srv/app/by-svc\n"},
                      {"run.sh", "#!/bin/sh\necho run\n"},
                      {"f", "f\n"},
                      {"tree/a", "a\n"},
                      {"tree/sub/b", "b\n"}});
}

void CheckOwnership(const testing::ReadBack& img) {
  const std::string& fs = img.rootfs;
  FileInfo app = Stat(fs, "srv/app");
  EXPECT_EQ(app.uid, 1234u);
  EXPECT_EQ(app.mode, 0700u);
  FileInfo run = Stat(fs, "srv/app/run.sh");
  EXPECT_EQ(run.content, "#!/bin/sh\necho run\n");
  EXPECT_EQ(run.uid, 0u);
  FileInfo f = Stat(fs, "f");
  EXPECT_EQ(f.uid, 1234u);
  EXPECT_EQ(f.gid, 1234u);
  for (const char* p : {"tree", "tree/a", "tree/sub", "tree/sub/b"}) {
    EXPECT_EQ(Stat(fs, p).uid, 1234u) << p;
    EXPECT_EQ(Stat(fs, p).gid, 2000u) << p;
  }
  FileInfo group = Stat(fs, "etc/group");
  EXPECT_EQ(group.uid, 33u);
  EXPECT_EQ(group.gid, 33u);
  EXPECT_EQ(group.mode, 0600u);
  EXPECT_NE(group.content.find("svc:x:1234:"), std::string::npos);
  FileInfo suid = Stat(fs, "usr/local/bin/suidbox");
  EXPECT_EQ(suid.mode, 04755u);
  EXPECT_EQ(suid.uid, 0u);
  FileInfo secret = Stat(fs, "secret");
  EXPECT_EQ(secret.mode, 0u);
  EXPECT_EQ(secret.uid, 1000u);
  EXPECT_EQ(secret.content, "secret\n");
  EXPECT_EQ(Stat(fs, "hl-b").uid, 1000u);
  EXPECT_EQ(Stat(fs, "hl-b").gid, 50u);
  EXPECT_EQ(Stat(fs, "hl-b").content, "a\n");
  EXPECT_EQ(Stat(fs, "dir-other").uid, 2000u);
  FileInfo who = Stat(fs, "srv/app/who");
  EXPECT_EQ(who.content, "1234\n");
  EXPECT_EQ(who.uid, 1234u);
  EXPECT_EQ(Stat(fs, "srv/app/by-svc").uid, 1234u);
}

TEST_F(BuildRootlessTest, OwnershipMatchesTheRootBuildDigestForDigest) {
  std::string ctx = OwnershipContext(*env_);
  auto root = env_->Build(ctx, "--reproducible --destination " + env_->Ref("rootless:root"));
  ASSERT_EQ(root.rc, 0) << root.err;
  auto reference = env_->Read("rootless:root");
  CheckOwnership(reference);

  std::string state = UserStateDir();
  auto user = BuildAsUser(ctx, state, "rootless:user");
  ASSERT_EQ(user.rc, 0) << user.err;
  EXPECT_NE(user.err.find("RUN sandbox: rootless (user namespace), the whole build in one user namespace, "
                          "subordinate ids"),
            std::string::npos)
      << user.err;
  EXPECT_EQ(user.err.find("symlinks"), std::string::npos) << user.err;  // no ownership noise
  auto built = env_->Read("rootless:user");
  CheckOwnership(built);
  EXPECT_EQ(built.digest, reference.digest);
  // Hardlinks stay hardlinks across owners: the same layer entries as root's.
  for (size_t i = 0; i < reference.config["rootfs"]["diff_ids"].size(); ++i) {
    EXPECT_EQ(built.LayerEntries(i), reference.LayerEntries(i)) << "layer " << i;
  }
  EXPECT_TRUE(WorkDirs(state).empty());
  EXPECT_TRUE(WorkDirs(env_->state_dir()).empty());
  // The store is the user's: every file in it belongs to the user outside the namespace.
  for (const auto& e : std::filesystem::recursive_directory_iterator(state)) {
    struct stat st;
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, uid_) << e.path();
  }
}

// --jobs as a user: the RUNs of two independent stages run at once inside the build's one user
// namespace; the image is the root build's made one stage after the other, digest for digest.
TEST_F(BuildRootlessTest, ParallelStagesMatchTheSerialRootBuild) {
  std::string ctx = env_->Context({{"Dockerfile",
      "FROM @REG@/busybox:latest AS left\nRUN sleep 1 && echo left > /left.txt && chown 1000:1000 /left.txt\n"
      "FROM @REG@/busybox:latest AS right\nRUN sleep 1 && echo right > /right.txt\n"
      "FROM @REG@/busybox:latest\nCOPY --from=left /left.txt /\nCOPY --from=right /right.txt /\n"}});
  auto root = env_->Build(ctx, "--reproducible --jobs 1 --destination " + env_->Ref("rootless:jobs-root"));
  ASSERT_EQ(root.rc, 0) << root.err;
  std::string state = UserStateDir();
  auto user = testing::RunKiln(KILN_BINARY,
                               "build --context " + ctx + " --state-dir " + state + " --insecure --insecure-pull " +
                                   "--reproducible --jobs 2 --destination " + env_->Ref("rootless:jobs-user"),
                               "", "timeout 120 " + Wrapper());
  ASSERT_EQ(user.rc, 0) << user.err;
  EXPECT_NE(user.err.find("[#1 left] "), std::string::npos) << user.err;
  EXPECT_NE(user.err.find("[#2 right] "), std::string::npos) << user.err;
  EXPECT_EQ(env_->Read("rootless:jobs-user", false).digest, env_->Read("rootless:jobs-root", false).digest);
}

// Debian, as a user would: apt-get as root in the namespace drops to _apt (uid 42) for downloads,
// dpkg installs a setuid binary and files of several owners. apt's logs hold wall-clock times, so
// the digests differ between any two builds; the files must match the root build's.
TEST_F(BuildRootlessTest, DebianAptInstallMatchesTheRootBuild) {
  if (Sh("command -v debootstrap >/dev/null") != 0) GTEST_SKIP() << "needs debootstrap";
  if (Sh("curl -sf -o /dev/null -m 10 http://deb.debian.org/debian/dists/bookworm/Release") != 0) {
    GTEST_SKIP() << "deb.debian.org is not reachable";
  }
  testing::PushToRegistry("oci:" + testing::DebianLayout(KILN_BINARY) + ":latest", env_->reg(), "debian:bookworm");
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/debian:bookworm\n"
                                    "ENV DEBIAN_FRONTEND=noninteractive\n"
                                    "RUN apt-get update && apt-get install -y --no-install-recommends sudo && "
                                    "rm -rf /var/lib/apt/lists/*\n"
                                    "RUN useradd -u 1234 app && mkdir -p /srv/app && chown app:app /srv/app\n"
                                    "COPY run.sh /srv/app/\n"
                                    "RUN chown -R app:app /srv/app && chmod 0750 /srv/app\n"},
                                   {"run.sh", "#!/bin/sh\necho run\n"}});
  auto root = env_->Build(ctx, "--reproducible --destination " + env_->Ref("rootless:debian-root"));
  ASSERT_EQ(root.rc, 0) << root.err;
  std::string state = UserStateDir();
  auto user = BuildAsUser(ctx, state, "rootless:debian-user");
  ASSERT_EQ(user.rc, 0) << user.err;
  EXPECT_EQ(user.err.find("symlinks"), std::string::npos) << user.err;  // no ownership noise
  EXPECT_EQ(user.err.find("xattr"), std::string::npos) << user.err;
  auto a = env_->Read("rootless:debian-root");
  auto b = env_->Read("rootless:debian-user");
  for (const testing::ReadBack* img : {&a, &b}) {
    FileInfo sudo = Stat(img->rootfs, "usr/bin/sudo");
    EXPECT_EQ(sudo.mode, 04755u);
    EXPECT_EQ(sudo.uid, 0u);
    FileInfo sudoers = Stat(img->rootfs, "etc/sudoers");
    EXPECT_EQ(sudoers.mode, 0440u);
    FileInfo partial = Stat(img->rootfs, "var/cache/apt/archives/partial");
    EXPECT_EQ(partial.uid, 42u);  // _apt
    FileInfo run = Stat(img->rootfs, "srv/app/run.sh");
    EXPECT_EQ(run.uid, 1234u);
    EXPECT_EQ(run.content, "#!/bin/sh\necho run\n");
    EXPECT_EQ(Stat(img->rootfs, "srv/app").mode, 0750u);
    EXPECT_EQ(Stat(img->rootfs, "etc/shadow").mode, 0640u);
    EXPECT_EQ(Stat(img->rootfs, "etc/shadow").gid, 42u);  // shadow
  }
  // Every path of every layer but apt's: the same entries (names, in order) as root's.
  ASSERT_EQ(a.config["rootfs"]["diff_ids"].size(), b.config["rootfs"]["diff_ids"].size());
  for (size_t i = 2; i < a.config["rootfs"]["diff_ids"].size(); ++i) {
    EXPECT_EQ(a.LayerEntries(i), b.LayerEntries(i)) << "layer " << i;
  }
  EXPECT_TRUE(WorkDirs(state).empty());
}

// Without a subordinate range (nobody: a single mapping) only root exists in the namespace. Owners
// COPY and extraction cannot set are recorded, not lost; a step's own chown fails and says why.
TEST_F(BuildRootlessTest, SingleMappingRecordsOwnersAndExplainsWhatFails) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "COPY --chown=1234:2000 f /f\n"
                                    "RUN test -f /f\n"},
                                   {"f", "f\n"}});
  std::string state = env_->NewDir("nobody-state");
  ASSERT_EQ(::chown(state.c_str(), 65534, 65534), 0);
  std::string wrapper = "setpriv --reuid=65534 --regid=65534 --clear-groups";
  auto ok = testing::RunKiln(KILN_BINARY,
                             "build --context " + ctx + " --state-dir " + state +
                                 " --insecure --insecure-pull --reproducible --destination " + env_->Ref("rootless:single"),
                             "", wrapper);
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_NE(ok.err.find("the whole build in one user namespace, single mapping"), std::string::npos) << ok.err;
  FileInfo f = Stat(env_->Read("rootless:single").rootfs, "f");
  EXPECT_EQ(f.uid, 1234u);
  EXPECT_EQ(f.gid, 2000u);
  EXPECT_TRUE(WorkDirs(state).empty());

  std::string bad = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN touch /g && chown 1234 /g\n"}});
  auto fail = testing::RunKiln(KILN_BINARY,
                               "build --context " + bad + " --state-dir " + state + " --insecure-pull --no-push", "",
                               wrapper);
  EXPECT_EQ(fail.rc, 1);
  EXPECT_NE(fail.err.find("this sandbox maps only root,"), std::string::npos) << fail.err;
  EXPECT_NE(fail.err.find("/etc/subuid"), std::string::npos) << fail.err;
  EXPECT_TRUE(WorkDirs(state).empty());
}

TEST_F(BuildRootlessTest, KilledMidRunThenKilnCleanLeavesNothing) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "RUN mkdir -p /d/e && echo x > /d/e/f && chown -R 1234:1234 /d && chmod 500 /d/e && "
                                    "chmod 0 /d && touch /started && sleep 600\n"}});
  std::string state = UserStateDir();
  std::string log = env_->NewDir("killed-log") + "/err";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string cmd = "exec " + Wrapper() + " env HOME=" + state + " " + KILN_BINARY + " build --context " + ctx + " --state-dir " + state +
                      " --insecure-pull --no-push >/dev/null 2>" + log;
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    ::_exit(127);
  }
  // Wait for the step to be running: its marker appears in the rootfs under the work directory.
  bool started = false;
  for (int i = 0; i < 600 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (::waitpid(pid, nullptr, WNOHANG) == pid) {
      pid = -1;
      break;
    }
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(
             state + "/work", std::filesystem::directory_options::skip_permission_denied, ec)) {
      if (e.path().filename() == "started") started = true;
    }
  }
  if (!started && pid > 0) ::kill(pid, SIGKILL);
  ASSERT_TRUE(started) << "the RUN step never started: " << [&] {
    std::ifstream f(log);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_EQ(WorkDirs(state).size(), 1u);
  // What the step made belongs to subordinate ids: the user cannot remove it from outside.
  std::string dir = state + "/work/" + WorkDirs(state)[0];
  EXPECT_NE(Sh(Wrapper() + " rm -rf " + dir + " 2>/dev/null"), 0);

  // The namespace's processes die with kiln (PR_SET_PDEATHSIG); give the kernel a moment.
  testing::KilnRun clean;
  for (int i = 0; i < 50; ++i) {
    clean = testing::RunKiln(KILN_BINARY, "clean --state-dir " + state, "", Wrapper());
    if (clean.rc == 0 && clean.out.find("removed 1 ") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(clean.rc, 0) << clean.err;
  EXPECT_NE(clean.out.find("removed 1 stale work directory"), std::string::npos) << clean.out;
  EXPECT_TRUE(WorkDirs(state).empty());
  EXPECT_FALSE(ProcessRunning("sleep 600")) << "the step outlived kiln";
}

TEST_F(BuildRootlessTest, CleanLeavesRunningBuildsAlone) {
  std::string state = UserStateDir();
  std::filesystem::create_directories(state + "/work/build-stale1/x");
  Sh("chown -R " + std::to_string(uid_) + " " + state);
  // A directory some build holds: this process stands in for it.
  std::filesystem::create_directories(state + "/work/build-live");
  int live = ::open((state + "/work/build-live").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(live, 0);
  ASSERT_EQ(::flock(live, LOCK_EX), 0);
  auto clean = testing::RunKiln(KILN_BINARY, "clean --state-dir " + state, "", Wrapper());
  ::close(live);
  EXPECT_EQ(clean.rc, 0) << clean.err;
  EXPECT_NE(clean.out.find("removed 1 stale work directory"), std::string::npos) << clean.out;
  EXPECT_NE(clean.out.find("1 in use by running builds kept"), std::string::npos) << clean.out;
  EXPECT_EQ(WorkDirs(state), std::vector<std::string>{"build-live"});
}

}  // namespace
}  // namespace kiln
