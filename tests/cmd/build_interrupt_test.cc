// A build stopped by SIGTERM (a cancelled CI job) or SIGINT, in every sandbox tier: kiln ends the
// running step's whole process tree, removes its work directory (staged secrets included) and exits
// with 128 + the signal, within seconds.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;

class BuildInterruptTest : public testing::BuildEnvSuite {
 protected:
  struct Stopped {
    bool started = false;
    int status = -1;
    double seconds = 0;
    std::string log;
  };

  // Starts kiln, waits for the RUN step to be running (its marker in the rootfs), sends `sig`.
  Stopped BuildThenSignal(const std::string& ctx, const std::string& state, const std::string& args,
                          const std::string& wrapper, int sig) {
    Stopped out;
    std::string log = env_->NewDir("interrupt-log") + "/err";
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string cmd = "exec " + wrapper + " " + std::string(KILN_BINARY) + " build --context " + ctx +
                        " --state-dir " + state + " --insecure-pull --no-push " + args + " >/dev/null 2>" + log;
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 600 && !out.started; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::error_code ec;
      for (const auto& e : std::filesystem::recursive_directory_iterator(
               state + "/work", std::filesystem::directory_options::skip_permission_denied, ec)) {
        if (e.path().filename() == "started") out.started = true;
      }
      if (::waitpid(pid, &out.status, WNOHANG) == pid) {
        out.log = testing::ReadFile(log);
        return out;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the step's sleeps are running
    auto t0 = Clock::now();
    ::kill(pid, out.started ? sig : SIGKILL);
    for (int i = 0; i < 300; ++i) {  // 30 s at most, then give up
      if (::waitpid(pid, &out.status, WNOHANG) == pid) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (i == 299) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &out.status, 0);
      }
    }
    out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    out.log = testing::ReadFile(log);
    return out;
  }

  static bool Running(const std::string& pattern) {
    // "[s]leep" matches the step's "sleep" but not this shell's own command line.
    return testing::RunShell("pgrep -f '[" + pattern.substr(0, 1) + "]" + pattern.substr(1) + "' > /dev/null") == 0;
  }
  static std::vector<std::string> WorkDirs(const std::string& state) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(state + "/work", ec)) {
      if (e.path().filename().string().rfind("build-", 0) == 0) out.push_back(e.path().filename());
    }
    return out;
  }
};

TEST_F(BuildInterruptTest, SigtermEndsTheStepTreeAndRemovesTheWorkDirInEveryTier) {
  const std::string value = "kiln-interrupted-secret-81c3";
  std::string secret = env_->NewDir("interrupt-secret") + "/s";
  testing::WriteFile(secret, value, 0600);
  struct Tier {
    const char* name;
    const char* flags;
    const char* wrapper;
    int sig;
  };
  const Tier tiers[] = {
      {"rootless", "--sandbox rootless", "", SIGTERM},
      {"chroot", "--sandbox chroot", "setpriv --bounding-set -sys_admin --inh-caps -sys_admin", SIGTERM},
      {"ptrace", "--sandbox ptrace", "", SIGINT},
  };
  for (const Tier& t : tiers) {
    SCOPED_TRACE(t.name);
    std::string marker = std::string("sleep 61") + std::to_string(&t - tiers);  // this tier's own processes
    std::string ctx = env_->Context({{"Dockerfile",
                                      "FROM @REG@/busybox:latest\n"
                                      "RUN --mount=type=secret,id=s --mount=type=cache,target=/c "
                                      "touch /started && (" + marker + "1 &) && " + marker + "2\n"}});
    std::string state = env_->NewDir(std::string("interrupt-state-") + t.name);
    Stopped s = BuildThenSignal(ctx, state, std::string(t.flags) + " --secret id=s,src=" + secret, t.wrapper, t.sig);
    ASSERT_TRUE(s.started) << s.log;
    ASSERT_TRUE(WIFEXITED(s.status)) << s.log;
    EXPECT_EQ(WEXITSTATUS(s.status), 128 + t.sig) << s.log;
    EXPECT_LT(s.seconds, 10.0) << s.log;
    EXPECT_NE(s.log.find("stopping the build"), std::string::npos) << s.log;
    EXPECT_FALSE(Running(marker + "1")) << "a background process of the step outlived kiln";
    EXPECT_FALSE(Running(marker + "2")) << "the step outlived kiln";
    EXPECT_TRUE(WorkDirs(state).empty());
    std::string hits;
    testing::RunShell("grep -rla -- '" + value + "' " + state + " ; true", &hits);
    EXPECT_EQ(hits, "");
    testing::RunShell("pkill -f '[s]" + marker.substr(1) + "' ; true");
  }
}

// kiln as an unprivileged user runs the whole build in a user namespace of its own: the signal goes
// to the outer kiln, which forwards it to the build inside.
TEST_F(BuildInterruptTest, SigtermReachesTheBuildInsideKilnsUserNamespace) {
  if (testing::ReadFile("/proc/sys/user/max_user_namespaces") == "0\n") GTEST_SKIP() << "no user namespaces";
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "RUN touch /started && sleep 6191\n"}});
  std::string state = env_->NewDir("interrupt-nobody");
  ASSERT_EQ(::chown(state.c_str(), 65534, 65534), 0);
  Stopped s = BuildThenSignal(ctx, state, "", "setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=" + state,
                              SIGTERM);
  ASSERT_TRUE(s.started) << s.log;
  ASSERT_TRUE(WIFEXITED(s.status)) << s.log;
  EXPECT_EQ(WEXITSTATUS(s.status), 128 + SIGTERM) << s.log;
  EXPECT_LT(s.seconds, 10.0) << s.log;
  EXPECT_FALSE(Running("sleep 6191"));
  EXPECT_TRUE(WorkDirs(state).empty());
  testing::RunShell("pkill -f '[s]leep 6191' ; true");
}

// SIGKILL (no clean-up at all) while a layer is being uploaded: the registry holds no tag for the
// image, and the next build on the same state directory succeeds and pushes a complete image.
TEST_F(BuildInterruptTest, SigkillMidPushLeavesNoTagAndAUsableStateDir) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nCOPY big /big\n"}});
  ASSERT_EQ(testing::RunShell("head -c 80000000 /dev/urandom > " + ctx + "/big"), 0);
  std::string state = env_->NewDir("sigkill-push");
  std::string uploads = env_->reg().storage_dir() + "/docker/registry/v2/repositories/interrupt/_uploads";
  std::string log = env_->NewDir("sigkill-log") + "/err";
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string cmd = "exec " + std::string(KILN_BINARY) + " build --context " + ctx + " --state-dir " + state +
                      " --insecure --insecure-pull --destination " + env_->Ref("interrupt:killed") + " 2>" + log;
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    ::_exit(127);
  }
  bool uploading = false;
  int status = 0;
  for (int i = 0; i < 3000 && !uploading; ++i) {
    std::error_code ec;
    uploading = std::filesystem::exists(uploads, ec) && !std::filesystem::is_empty(uploads, ec);
    if (!uploading) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(uploading) << "no upload was seen in progress: " << testing::ReadFile(log);
  EXPECT_FALSE(env_->TagExists("interrupt:killed"));

  auto again = testing::RunKiln(KILN_BINARY, "build --context " + ctx + " --state-dir " + state +
                                                 " --insecure --insecure-pull --destination " +
                                                 env_->Ref("interrupt:killed"));
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_NE(again.err.find("removed 1 work directories left by killed builds"), std::string::npos) << again.err;
  auto img = env_->Read("interrupt:killed", false);  // skopeo copies every blob, verifying each digest
  EXPECT_EQ(img.manifest["layers"].size(), 2u);
}

}  // namespace
}  // namespace kiln
