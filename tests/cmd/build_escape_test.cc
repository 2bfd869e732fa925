// Sandbox escapes through a whole `kiln build` (issue 21): a RUN step runs escape_probe.cc, which
// tries to reach kiln's state directory, its docker config (in its environment and by path), a host
// file, other processes' environments (kiln's holds a secret), the host's /proc, a mount of something
// outside the rootfs, and ptrace of kiln itself, and writes one line per attempt into the image. In
// every tier this machine has (rootless and ptrace as root and as nobody, chroot as root without
// CAP_SYS_ADMIN) every attempt must be blocked. The suite prints "escape attempts tried / blocked".
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"
#include "tests/testing/temp_dir.h"

namespace kiln {
namespace {

using testing::Stat;

struct EscapeTier {
  const char* name;
  const char* flags;
  const char* wrapper;
  bool as_nobody;
  bool needs_userns;
  /// An attempt this tier does not stop, by design, named here so the figures count it: the ptrace
  /// tier has no pid namespace, so the host's processes are listed (their stat, status and comm;
  /// environ, cmdline, mem, fd and the rest stay refused).
  const char* known_exposure = "";
};
const EscapeTier kTiers[] = {
    {"rootless", "--sandbox rootless", "", false, true},
    {"chroot", "--sandbox chroot", "setpriv --bounding-set -sys_admin --inh-caps -sys_admin", false, false},
    {"ptrace", "--sandbox ptrace", "", false, false, "host-pid-visible"},
    {"nobody-rootless", "--sandbox rootless", "setpriv --reuid=65534 --regid=65534 --clear-groups", true, true},
    {"nobody-ptrace", "--sandbox ptrace", "setpriv --reuid=65534 --regid=65534 --clear-groups", true, false,
     "host-pid-visible"},
};

// Every attempt escape_probe makes, in its order.
const char* const kAttempts[] = {
    "state-dir-list", "state-dir-store",  "docker-config-env", "docker-config-file", "host-file",
    "host-file-dotdot", "own-environ",    "other-environ",     "host-cmdline",       "host-pid-visible",
    "proc-sysrq", "proc-sys-core-pattern",
    "proc-sys-hostname", "host-disk", "mount-bind-state-dir", "mount-bind-root", "ptrace-kiln",
};

std::string ReadLine(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

std::string HostUts() {
  char buf[64] = {0};
  ssize_t n = ::readlink("/proc/self/ns/uts", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
}

int g_tried = 0, g_blocked = 0, g_known = 0;

class BuildEscapeTest : public testing::BuildEnvSuite, public ::testing::WithParamInterface<EscapeTier> {
 protected:
  static void TearDownTestSuite() {
    if (g_tried > 0) {
      std::printf("escape attempts tried / blocked / known exposures: %d / %d / %d\n", g_tried, g_blocked, g_known);
    }
    BuildEnvSuite::TearDownTestSuite();
  }
};

TEST_P(BuildEscapeTest, EveryAttemptIsBlocked) {
  const EscapeTier& tier = GetParam();
  if (tier.needs_userns && ReadLine("/proc/sys/user/max_user_namespaces") == "0") {
    GTEST_SKIP() << "no user namespaces here";
  }
  const std::string secret = "kiln-escape-secret-" + std::to_string(::getpid()) + "-" + tier.name;
  std::string reversed(secret.rbegin(), secret.rend());  // the step gets only this form
  // The state directory and the docker config kiln is given, and a host file outside the rootfs.
  std::string state = env_->state_dir();
  const std::string dir = env_->NewDir(std::string("escape-") + tier.name);
  if (tier.as_nobody) {
    state = dir + "/state";
    ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  }
  const std::string docker_config = dir + "/docker";
  ASSERT_EQ(::mkdir(docker_config.c_str(), 0700), 0);
  testing::WriteFile(docker_config + "/config.json",
                     R"({"auths":{"registry.example.invalid":{"auth":"a2lsbjpzZWNyZXQtcGFzc3dvcmQ="}}})", 0600);
  const std::string marker = dir + "/host-marker";
  testing::WriteFile(marker, "on the host only\n", 0644);
  if (tier.as_nobody) { ASSERT_EQ(testing::RunShell("chown -R 65534:65534 '" + dir + "'"), 0); }

  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "COPY escape-probe /usr/local/bin/escape-probe\n"
                                    "ARG NEEDLE STATE DCONF MARKER TPID TNAME UTS RUNAS=0:0\n"
                                    "USER $RUNAS\n"
                                    "RUN escape-probe \"$NEEDLE\" \"$STATE\" \"$DCONF\" \"$MARKER\" \"$TPID\" "
                                    "\"$TNAME\" \"$UTS\" > /escape-report 2>&1; cat /escape-report\n"}});
  std::filesystem::copy_file(ESCAPE_PROBE, ctx + "/escape-probe");
  ::chmod((ctx + "/escape-probe").c_str(), 0755);
  const std::string tag = std::string("escape:") + tier.name;
  // The ptrace tier runs steps only as kiln's own ids.
  const bool own_ids = tier.as_nobody && std::string(tier.flags).find("ptrace") != std::string::npos;
  const std::string args = std::string(tier.flags) + (own_ids ? " --build-arg RUNAS=65534:65534" : "") + " --build-arg NEEDLE=" + reversed +
                           " --build-arg STATE=" + state + " --build-arg DCONF=" + docker_config +
                           "/config.json --build-arg MARKER=" + marker +
                           " --build-arg TPID=" + std::to_string(::getpid()) +
                           " --build-arg TNAME=cmd_build_escape_test --build-arg UTS=" + HostUts() +
                           " --destination " + env_->Ref(tag);
  // The secret and the docker config exist only in kiln's environment.
  const std::string kiln_env = "KILN_ESCAPE_SECRET=" + secret + " DOCKER_CONFIG=" + docker_config;
  testing::KilnRun run = testing::RunKiln(KILN_BINARY,
                                          "build --context " + ctx + " --state-dir " + state +
                                              " --insecure --insecure-pull " + args,
                                          kiln_env, tier.wrapper);
  ASSERT_EQ(run.rc, 0) << run.err;
  auto img = env_->Read(tag);
  const std::string report = Stat(img.rootfs, "escape-report").content;
  std::istringstream lines(report);
  std::string line;
  std::vector<std::string> seen;
  while (std::getline(lines, line)) {
    std::string name = line.substr(0, line.find(':'));
    seen.push_back(name);
    ++g_tried;
    const bool blocked = line.find(": blocked (") != std::string::npos;
    if (name == tier.known_exposure) {
      EXPECT_FALSE(blocked) << "the known exposure is gone: update kTiers\n" << report;
      ++g_known;
      continue;
    }
    EXPECT_TRUE(blocked) << tier.name << ": " << line << "\nthe whole report:\n" << report;
    if (blocked) ++g_blocked;
  }
  EXPECT_EQ(seen, std::vector<std::string>(std::begin(kAttempts), std::end(kAttempts))) << report;
  // The secret reached neither the image nor the log.
  EXPECT_EQ(report.find(secret), std::string::npos);
  EXPECT_EQ(run.err.find(secret), std::string::npos);
  // Nothing new next to the host file.
  EXPECT_EQ(testing::ReadFile(marker), "on the host only\n");
}

INSTANTIATE_TEST_SUITE_P(Tiers, BuildEscapeTest, ::testing::ValuesIn(kTiers),
                         [](const ::testing::TestParamInfo<EscapeTier>& info) {
                           std::string n = info.param.name;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace kiln
