// `kiln build` end to end: builds that must fail, each with a clear message, a non-zero exit code and
// nothing pushed. A RUN exiting 3, COPY of a missing file, bad base references, registries that do
// not answer, wrong credentials (never echoed back), and a Kaniko flag kiln does not implement.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"
#include "tests/testing/certs.h"

namespace kiln {
namespace {

using testing::BuildEnv;
using testing::KilnRun;

constexpr int kExitFailure = 1, kExitUsage = 2;

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

class BuildFailuresTest : public testing::BuildEnvSuite {
 protected:

  // Builds `dockerfile` towards `repo_tag`, expecting failure; checks the tag was not pushed.
  static KilnRun Fail(const std::string& dockerfile, const std::string& repo_tag, const std::string& args = "") {
    std::string ctx = env_->Context({{"Dockerfile", dockerfile}, {"present.txt", "here\n"}});
    KilnRun r = env_->Build(ctx, "--destination " + env_->Ref(repo_tag) + " " + args);
    EXPECT_FALSE(env_->TagExists(repo_tag)) << repo_tag << " was pushed";
    return r;
  }

};

TEST_F(BuildFailuresTest, RunExitingThreeStopsTheBuild) {
  auto r = Fail(
      "FROM @REG@/busybox:latest\n"
      "RUN echo before > /before\n"
      "RUN echo \"about to fail\"; exit 3\n"
      "RUN echo never-runs\n",
      "fail/run:1");
  EXPECT_EQ(r.rc, 3) << r.err;  // the step's own exit code, as Kaniko exits
  EXPECT_TRUE(Has(r.err, "Dockerfile:3")) << r.err;
  EXPECT_TRUE(Has(r.err, "RUN")) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex("exit(ed)?( with)?( code| status)?:? 3\\b"))) << r.err;
  EXPECT_TRUE(Has(r.err, "about to fail")) << r.err;  // the step's output is shown
  EXPECT_FALSE(Has(r.err, "never-runs\n")) << r.err;
  EXPECT_FALSE(Has(r.err, "pushed")) << r.err;

  // With --log-format json the failure is one JSON record too, at level error.
  auto j = Fail(
      "FROM @REG@/busybox:latest\n"
      "RUN echo \"about to fail\"; exit 3\n",
      "fail/run:2", "--log-format json");
  EXPECT_EQ(j.rc, 3) << j.err;
  std::istringstream lines(j.err);
  bool error_record = false, output_record = false;
  for (std::string line; std::getline(lines, line);) {
    nlohmann::json rec = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(rec.is_object()) << "not JSON: " << line;
    error_record |= rec.value("level", "") == "error" && Has(rec.value("msg", ""), "Dockerfile:2") &&
                    std::regex_search(rec.value("msg", ""), std::regex("exit(ed)?( with)?( code| status)?:? 3\\b"));
    output_record |= rec.value("output", "") == "about to fail";
  }
  EXPECT_TRUE(error_record) << j.err;
  EXPECT_TRUE(output_record) << j.err;
}

TEST_F(BuildFailuresTest, CopyOfAMissingFile) {
  auto r = Fail("FROM @REG@/busybox:latest\nCOPY present.txt /\nCOPY missing.txt /dst/\n", "fail/copy:1");
  EXPECT_EQ(r.rc, kExitFailure) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:3")) << r.err;
  EXPECT_TRUE(Has(r.err, "missing.txt")) << r.err;
}

TEST_F(BuildFailuresTest, UnknownUserOrGroupName) {
  auto chown = Fail("FROM @REG@/busybox:latest\nCOPY --chown=nosuchuser:staff present.txt /\n", "fail/user:1");
  EXPECT_EQ(chown.rc, kExitFailure) << chown.err;
  EXPECT_TRUE(Has(chown.err, "Dockerfile:2")) << chown.err;
  EXPECT_TRUE(Has(chown.err, "nosuchuser")) << chown.err;
  auto group = Fail("FROM @REG@/busybox:latest\nCOPY --chown=app:nosuchgroup present.txt /\n", "fail/user:2");
  EXPECT_EQ(group.rc, kExitFailure) << group.err;
  EXPECT_TRUE(Has(group.err, "nosuchgroup")) << group.err;
  // USER is only checked when something runs as that user.
  auto user = Fail("FROM @REG@/busybox:latest\nUSER ghost\nRUN true\n", "fail/user:3");
  EXPECT_EQ(user.rc, kExitFailure) << user.err;
  EXPECT_TRUE(Has(user.err, "Dockerfile:3")) << user.err;
  EXPECT_TRUE(Has(user.err, "ghost")) << user.err;
}

TEST_F(BuildFailuresTest, BaseImageThatDoesNotExist) {
  auto r = Fail("FROM @REG@/no-such-image:1\nRUN true\n", "fail/base:1");
  EXPECT_EQ(r.rc, kExitFailure) << r.err;
  EXPECT_TRUE(Has(r.err, env_->Ref("no-such-image:1"))) << r.err;
  EXPECT_TRUE(Has(r.err, "404")) << r.err;
  EXPECT_TRUE(Has(r.err, "MANIFEST_UNKNOWN")) << r.err;
}

TEST_F(BuildFailuresTest, BaseImageErrorPointsAtTheFromLine) {
  auto r = Fail("ARG X=1\n\nFROM @REG@/no-such-image:1\nRUN true\n", "fail/base:2");
  EXPECT_EQ(r.rc, kExitFailure) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:3")) << r.err;
  EXPECT_FALSE(Has(r.err, "ONBUILD")) << r.err;  // the Dockerfile has none
}

TEST_F(BuildFailuresTest, BaseReferenceThatIsNotAReference) {
  auto r = Fail("FROM @REG@/UPPER/Case:tag!\n", "fail/badref:1");
  EXPECT_EQ(r.rc, kExitFailure) << r.err;
  EXPECT_TRUE(Has(r.err, "UPPER/Case:tag!")) << r.err;
}

TEST_F(BuildFailuresTest, BaseRegistryThatDoesNotAnswer) {
  std::string closed = "127.0.0.1:" + std::to_string(testing::UnusedLoopbackPort());
  std::string ctx = env_->Context({{"Dockerfile", "FROM " + closed + "/busybox:latest\nRUN true\n"}});
  auto pull = env_->Build(ctx, "--destination " + env_->Ref("fail/unreachable:1"));
  EXPECT_EQ(pull.rc, kExitFailure) << pull.err;
  EXPECT_TRUE(Has(pull.err, closed)) << pull.err;
  EXPECT_TRUE(Has(pull.err, "connect")) << pull.err;
  EXPECT_FALSE(env_->TagExists("fail/unreachable:1"));
}

TEST_F(BuildFailuresTest, DestinationRegistryThatDoesNotAnswer) {
  std::string closed = "127.0.0.1:" + std::to_string(testing::UnusedLoopbackPort());
  // The build works, the push cannot: still a failure that names the registry.
  std::string ok = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN echo x > /x\n"}});
  auto push = env_->Build(ok, "--destination " + closed + "/out:1");
  EXPECT_EQ(push.rc, kExitFailure) << push.err;
  EXPECT_TRUE(Has(push.err, closed)) << push.err;
}

TEST_F(BuildFailuresTest, WrongCredentialsAreRefusedAndNeverPrinted) {
  testing::RegistryOptions o;
  o.tls = true;
  o.user = "builder";
  o.password = "Corr3ct-Horse-91";
  auto secure = testing::RegistryServer::Start(o);
  testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", *secure, "busybox:latest",
                          testing::MediaTypes::kOci, "builder:Corr3ct-Horse-91");
  std::string good = testing::WriteDockerConfig(env_->NewDir("docker-good"), secure->host(), "builder",
                                                "Corr3ct-Horse-91");
  std::string bad = testing::WriteDockerConfig(env_->NewDir("docker-bad"), secure->host(), "builder",
                                               "Wr0ng-Battery-17");
  auto dir_of = [](const std::string& f) { return f.substr(0, f.rfind('/')); };
  // The RUN step looks for what it must never see: the credentials, kiln's state, the kiln binary.
  std::string ctx = env_->Context(
      {{"Dockerfile", "FROM " + secure->host() + "/busybox:latest\n"
                      "RUN echo x > /x && env > /env.txt && for p in " + env_->state_dir() + " " + KILN_BINARY + " " +
                      dir_of(good) + "; do test -e $p && echo $p >> /leaks; done; true\n"}});
  std::string args = "--context " + ctx + " --state-dir " + env_->state_dir() + " --registry-certificate " +
                     secure->host() + "=" + secure->ca_cert_path() + " --destination " + secure->host() + "/out:1";

  auto r = testing::RunKiln(KILN_BINARY, "build " + args, "DOCKER_CONFIG=" + dir_of(bad));
  EXPECT_EQ(r.rc, kExitFailure) << r.err;
  EXPECT_TRUE(Has(r.err, secure->host())) << r.err;
  EXPECT_TRUE(Has(r.err, "401")) << r.err;
  EXPECT_FALSE(Has(r.err + r.out, "Wr0ng-Battery-17")) << r.err;
  std::string out;
  EXPECT_NE(testing::RunShell("skopeo inspect --raw " + testing::SkopeoSourceFlags(*secure, "builder:Corr3ct-Horse-91") +
                                  " docker://" + secure->host() + "/out:1",
                              &out),
            0)
      << "pushed with wrong credentials";

  // The right password: the same build pulls and pushes over TLS, and says nothing of the secret.
  auto ok = testing::RunKiln(KILN_BINARY, "build " + args, "DOCKER_CONFIG=" + dir_of(good));
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_FALSE(Has(ok.err + ok.out, "Corr3ct-Horse-91"));
  auto img = testing::ReadImage("docker://" + secure->host() + "/out:1", env_->NewDir("read"),
                                testing::SkopeoSourceFlags(*secure, "builder:Corr3ct-Horse-91"));
  EXPECT_EQ(testing::Stat(img.rootfs, "x").content, "x\n");
  EXPECT_EQ(testing::Stat(img.rootfs, "leaks").type, '-') << testing::Stat(img.rootfs, "leaks").content;
  std::string run_env = testing::Stat(img.rootfs, "env.txt").content;
  EXPECT_TRUE(Has(run_env, "PATH=")) << run_env;
  EXPECT_FALSE(Has(run_env, "DOCKER_CONFIG")) << run_env;
  EXPECT_FALSE(Has(run_env, "Corr3ct-Horse-91")) << run_env;
  EXPECT_FALSE(Has(run_env, "kiln")) << run_env;
}

TEST_F(BuildFailuresTest, KanikoFlagsKilnDoesNotImplementAreRefused) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\n"}});
  // (--cache itself is implemented since f4731ad.)
  auto r = env_->Build(ctx, "--destination " + env_->Ref("fail/flag:1") + " --materialize");
  EXPECT_EQ(r.rc, kExitUsage) << r.err;
  EXPECT_TRUE(Has(r.err, "--materialize")) << r.err;
  EXPECT_TRUE(Has(r.err, "not implement")) << r.err;
  // --git is implemented (build_git_test.cc), but only means something for a git context.
  auto git = env_->Build(ctx, "--destination " + env_->Ref("fail/flag:1") + " --git=branch=main");
  EXPECT_EQ(git.rc, kExitFailure) << git.err;
  EXPECT_TRUE(Has(git.err, "--git applies to a git build context")) << git.err;
  EXPECT_FALSE(env_->TagExists("fail/flag:1"));
  // A flag Kaniko does not have either.
  auto unknown = env_->Build(ctx, "--destination " + env_->Ref("fail/flag:1") + " --no-such-flag");
  EXPECT_EQ(unknown.rc, kExitUsage) << unknown.err;
  EXPECT_TRUE(Has(unknown.err, "--no-such-flag")) << unknown.err;

  // No destination and no --no-push: a usage error before anything runs.
  auto none = testing::RunKiln(KILN_BINARY, "build --context " + ctx + " --state-dir " + env_->state_dir());
  EXPECT_NE(none.rc, 0) << none.err;
  EXPECT_TRUE(Has(none.err, "--destination")) << none.err;
}

}  // namespace
}  // namespace kiln
