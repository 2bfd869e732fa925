// RunSubprocess against real programs (sh): output capture on both streams, input, exit statuses,
// the environment, the output cap, a missing program and the timeout.
#include "core/subprocess.h"

#include <signal.h>

#include <chrono>

#include <gtest/gtest.h>

namespace kiln {
namespace {

SubprocessSpec Sh(const std::string& script) {
  SubprocessSpec s;
  s.argv = {"sh", "-c", script};
  return s;
}

TEST(SubprocessTest, CapturesBothStreamsApartAndTheExitStatus) {
  auto r = RunSubprocess(Sh("echo out; echo err >&2; exit 3"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_FALSE(r->Succeeded());
  EXPECT_EQ(r->Why(), "exit status 3");
  auto ok = RunSubprocess(Sh("true"));
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->Succeeded());
}

TEST(SubprocessTest, MergedStreamsKeepTheirOrder) {
  SubprocessSpec s = Sh("echo one; echo two >&2; echo three");
  s.merge_stderr = true;
  auto r = RunSubprocess(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "one\ntwo\nthree\n");
  EXPECT_EQ(r->err, "");
}

TEST(SubprocessTest, InputIsGivenThenClosed) {
  SubprocessSpec s = Sh("cat; echo end");
  s.input = "https://registry.example\n";
  auto r = RunSubprocess(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "https://registry.example\nend\n");
  // Without input, standard input is empty (/dev/null), not kiln's own.
  auto none = RunSubprocess(Sh("wc -c"));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->out, "0\n");
}

TEST(SubprocessTest, AChildThatIgnoresItsInputNeitherBlocksNorKillsKiln) {
  // More than a pipe holds, to a child that exits without reading: the write fails with EPIPE
  // (SIGPIPE is taken, not delivered) or EAGAIN, and the result is the child's.
  SubprocessSpec s = Sh("exit 0");
  s.input.assign(4 << 20, 'x');
  auto r = RunSubprocess(s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->Succeeded());
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST(SubprocessTest, EnvironmentIsExactlyTheOneGiven) {
  SubprocessSpec s;
  s.argv = {"/bin/sh", "-c", "echo \"[$KILN_SUB_A][$HOME]\""};
  s.env = std::vector<std::string>{"KILN_SUB_A=a b"};
  auto r = RunSubprocess(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "[a b][]\n");
}

TEST(SubprocessTest, OutputBeyondTheCapIsReadButNotKept) {
  SubprocessSpec s = Sh("head -c 300000 /dev/zero; echo done >&2");
  s.max_output = 1000;
  auto r = RunSubprocess(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.size(), 1000u);
  EXPECT_EQ(r->err, "done\n");
  EXPECT_TRUE(r->Succeeded());
}

TEST(SubprocessTest, AMissingProgramIsNotFoundByName) {
  SubprocessSpec s;
  s.argv = {"kiln-no-such-helper"};
  auto r = RunSubprocess(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("kiln-no-such-helper"), std::string::npos);
}

TEST(SubprocessTest, TimeoutKillsTheChild) {
  SubprocessSpec s = Sh("echo started; exec sleep 30");
  s.timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto r = RunSubprocess(s);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("did not finish within 300 ms"), std::string::npos) << r.status().message();
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST(SubprocessTest, KilledBySignalIsSaid) {
  auto r = RunSubprocess(Sh("kill -TERM $$"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->Succeeded());
  EXPECT_EQ(r->Why(), "killed by signal 15");
}

}  // namespace
}  // namespace kiln
