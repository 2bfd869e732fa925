// What a person sees at a terminal, read back from a real one (tmux): each step is one line that is
// rewritten in place with its result, a RUN step's output stands on lines of its own, and what the
// terminal shows holds no stray escape sequences. Without a terminal (every other test) the log is
// the plain line log.
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testing/base_images.h"
#include "tests/testing/certs.h"
#include "tests/testing/temp_dir.h"

namespace kiln {
namespace {

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

class BuildTtyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveRoot() || !testing::HaveBusyboxStatic()) GTEST_SKIP() << "needs root and busybox-static";
    if (testing::RunShell("command -v tmux >/dev/null") != 0) GTEST_SKIP() << "needs tmux";
    socket_ = "kiln-tty-" + std::to_string(::getpid());
  }
  void TearDown() override {
    for (int i = 1; i <= screens_; ++i) {
      testing::RunShell("tmux -L " + socket_ + "-" + std::to_string(i) + " kill-server 2>/dev/null");
    }
  }

  // Runs `command` in a 160x50 tmux pane (a tmux server of its own) and returns the screen once
  // `until` shows up (or after 60 s).
  std::string Screen(const std::string& command, const std::string& until) {
    std::string server = "tmux -L " + socket_ + "-" + std::to_string(++screens_);
    EXPECT_EQ(testing::RunShell(server + " new-session -d -x 160 -y 50 " +
                                testing::ShellQuote(command + "; echo kiln-exit=$?; sleep 120")),
              0);
    std::string screen;
    for (int i = 0; i < 600; ++i) {
      testing::RunShell(server + " capture-pane -p -J", &screen);
      if (Has(screen, until)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return screen;
  }

  std::string socket_;
  int screens_ = 0;
};

TEST_F(BuildTtyTest, StepsAreRewrittenInPlaceAndOutputKeepsItsOwnLines) {
  testing::BuildEnv env(KILN_BINARY);
  std::string ctx = env.Context({{"Dockerfile", "FROM @REG@/busybox:latest\nCOPY f /f\nRUN echo hello-from-the-step\n"},
                                 {"f", "f\n"}});
  std::string screen = Screen("TERM=xterm " + std::string(KILN_BINARY) + " build --context " + ctx + " --state-dir " +
                                  env.state_dir() + " --insecure-pull --no-push",
                              "kiln-exit=");
  EXPECT_TRUE(Has(screen, "kiln-exit=0")) << screen;
  // The COPY step is one line: its instruction and its result.
  EXPECT_TRUE(Has(screen, "STEP 2/3: COPY f /f  done in")) << screen;
  EXPECT_FALSE(Has(screen, "STEP 2/3: done in")) << screen;
  // The RUN step's output is on a line of its own, then the step's result.
  EXPECT_TRUE(Has(screen, "STEP 3/3: RUN echo hello-from-the-step\nhello-from-the-step\n")) << screen;
  EXPECT_TRUE(Has(screen, "STEP 3/3: done in")) << screen;
  // tmux interpreted every escape sequence: none shows as text.
  for (const char* garbage : {"\x1b", "[K", "[0m", "[1m", "^["}) EXPECT_FALSE(Has(screen, garbage)) << garbage << "\n" << screen;

  // --log-format plain at a terminal: the line log, nothing rewritten.
  std::string plain = Screen("TERM=xterm " + std::string(KILN_BINARY) + " build --context " + ctx + " --state-dir " +
                                 env.state_dir() + " --insecure-pull --no-push --log-format plain",
                             "kiln-exit=");
  EXPECT_TRUE(Has(plain, "kiln-exit=0")) << plain;
  EXPECT_TRUE(Has(plain, "STEP 2/3: COPY f /f\n")) << plain;
  EXPECT_TRUE(Has(plain, "STEP 2/3: done in")) << plain;
}

}  // namespace
}  // namespace kiln
