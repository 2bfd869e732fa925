// Metadata instructions against Docker's (BuildKit's) documented meaning, one rule per case.
#include "executor/steps/metadata.h"

#include <gtest/gtest.h>

#include "executor/log/build_log.h"
#include "executor/dockerfile/parser.h"
#include "executor/dockerfile/plan.h"

namespace kiln::executor {
namespace {

using dockerfile::Instruction;

// Runs the instructions of a one-stage Dockerfile (after FROM) over `base`.
struct Applied {
  ImageConfig image;
  StageMetadata meta;
  std::string error;
  std::unique_ptr<dockerfile::GlobalArgs> global = std::make_unique<dockerfile::GlobalArgs>();
  std::unique_ptr<dockerfile::BuildArgs> build_args = std::make_unique<dockerfile::BuildArgs>();
  std::unique_ptr<dockerfile::StageScope> scope;
};

Applied Apply(const std::string& body, ImageConfig base = {}, std::vector<std::string> build_args = {}) {
  Applied out;
  out.image = std::move(base);
  auto df = dockerfile::Parse("FROM scratch\n" + body);
  EXPECT_TRUE(df.ok()) << df.status().message();
  if (!df.ok()) return out;
  auto args = dockerfile::BuildArgs::FromFlags(build_args, {});
  EXPECT_TRUE(args.ok());
  *out.build_args = *args;
  out.scope = std::make_unique<dockerfile::StageScope>(out.global.get(), out.build_args.get());
  out.scope->SeedEnv(out.image.config.env);
  out.meta.image = &out.image;
  out.meta.scope = out.scope.get();
  for (const Instruction& inst : df->stages[0].commands) {
    Result<bool> r = ApplyMetadata(inst, '\\', out.meta);
    if (!r.ok()) {
      out.error = r.status().message();
      break;
    }
    EXPECT_TRUE(*r) << inst.original;
  }
  return out;
}

TEST(MetadataTest, EnvSetsInPlaceAndAppendsKeepingOrder) {
  ImageConfig base;
  base.config.env = {"PATH=/bin", "A=old"};
  Applied a = Apply("ENV B=2 A=new\nENV C $B-x\n", base);
  EXPECT_EQ(a.image.config.env, (std::vector<std::string>{"PATH=/bin", "A=new", "B=2", "C=2-x"}));
}

TEST(MetadataTest, EnvValuesSeeTheVariablesBeforeTheInstruction) {
  Applied a = Apply("ENV X=1\nENV X=2 Y=$X\n");
  EXPECT_EQ(a.image.config.env, (std::vector<std::string>{"X=2", "Y=1"}));
}

TEST(MetadataTest, ArgIsNotPartOfTheImageButExpandsLaterWords) {
  Applied a = Apply("ARG V=1.2\nLABEL version=$V\n", {}, {"V=9"});
  EXPECT_TRUE(a.image.config.env.empty());
  EXPECT_EQ(a.image.config.labels.at("version"), "9");
}

TEST(MetadataTest, EntrypointClearsAnInheritedCmd) {
  ImageConfig base;
  base.config.cmd = std::vector<std::string>{"bash"};
  Applied a = Apply("ENTRYPOINT [\"/app\"]\n", base);
  ASSERT_TRUE(a.image.config.entrypoint.has_value());
  EXPECT_EQ(*a.image.config.entrypoint, std::vector<std::string>{"/app"});
  EXPECT_FALSE(a.image.config.cmd.has_value());
}

TEST(MetadataTest, EntrypointKeepsACmdSetInTheSameStage) {
  Applied a = Apply("CMD [\"--help\"]\nENTRYPOINT [\"/app\"]\n");
  ASSERT_TRUE(a.image.config.cmd.has_value());
  EXPECT_EQ(*a.image.config.cmd, std::vector<std::string>{"--help"});
}

TEST(MetadataTest, ShellFormsRunThroughTheCurrentShell) {
  Applied a = Apply("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nCMD echo $HOME\n");
  EXPECT_EQ(*a.image.config.cmd, (std::vector<std::string>{"/bin/bash", "-o", "pipefail", "-c", "echo $HOME"}));
  EXPECT_EQ(a.image.config.shell, (std::vector<std::string>{"/bin/bash", "-o", "pipefail", "-c"}));
}

TEST(MetadataTest, EmptyShellFormEntrypointIsAnEmptyList) {
  Applied a = Apply("ENTRYPOINT []\n");
  ASSERT_TRUE(a.image.config.entrypoint.has_value());
  EXPECT_TRUE(a.image.config.entrypoint->empty());
}

TEST(MetadataTest, ExposeDefaultsToTcpAndExpands) {
  Applied a = Apply("ARG P=8080\nEXPOSE 80 $P/udp 9000-9002/TCP 0443 127.0.0.1:81:8081/udp\n");
  // As BuildKit: a range is every port in it, numbers normalised, the container side of a mapping.
  EXPECT_EQ(a.image.config.exposed_ports, (std::set<std::string>{"80/tcp", "8080/udp", "9000/tcp", "9001/tcp",
                                                                 "9002/tcp", "443/tcp", "8081/udp"}));
  EXPECT_NE(Apply("EXPOSE 9002-9000\n").error.find("invalid port range"), std::string::npos);
  EXPECT_NE(Apply("EXPOSE 70000\n").error.find("out of range"), std::string::npos);
}

TEST(MetadataTest, StopsignalIsValidatedAsBuildKitDoes) {
  for (const char* ok : {"SIGTERM", "term", "SIGRTMIN+3", "9", "sigkill"}) {
    EXPECT_EQ(Apply(std::string("STOPSIGNAL ") + ok + "\n").error, "") << ok;
  }
  EXPECT_EQ(Apply("STOPSIGNAL sigquit\n").image.config.stop_signal, "sigquit");  // stored as written
  for (const char* bad : {"SIGNOPE", "0", "RTMIN+16"}) {
    EXPECT_NE(Apply(std::string("STOPSIGNAL ") + bad + "\n").error.find("Invalid signal"), std::string::npos) << bad;
  }
}

TEST(MetadataTest, ExposeRejectsABadProtocolOrPort) {
  EXPECT_NE(Apply("EXPOSE 80/icmp\n").error.find("invalid protocol"), std::string::npos);
  EXPECT_NE(Apply("EXPOSE http\n").error.find("invalid port"), std::string::npos);
}

TEST(MetadataTest, VolumeUserStopsignalLabelMaintainer) {
  Applied a = Apply("ENV D=/data U=app\nVOLUME [\"$D\", \"/logs\"]\nUSER $U:staff\nSTOPSIGNAL SIGINT\n"
                    "LABEL \"a b\"=\"c d\" e=f\nMAINTAINER someone@example.com\n");
  EXPECT_EQ(a.image.config.volumes, (std::set<std::string>{"/data", "/logs"}));
  EXPECT_EQ(a.image.config.user, "app:staff");
  EXPECT_EQ(a.image.config.stop_signal, "SIGINT");
  EXPECT_EQ(a.image.config.labels.at("a b"), "c d");
  EXPECT_EQ(a.image.config.labels.at("e"), "f");
  EXPECT_EQ(a.image.author, "someone@example.com");
}

TEST(MetadataTest, HealthcheckKeepsDurationsAndNone) {
  Applied a = Apply("HEALTHCHECK --interval=5s --retries=2 CMD curl -f http://localhost/\n");
  ASSERT_TRUE(a.image.config.healthcheck.has_value());
  EXPECT_EQ(a.image.config.healthcheck->test, (std::vector<std::string>{"CMD-SHELL", "curl -f http://localhost/"}));
  EXPECT_EQ(a.image.config.healthcheck->interval, 5'000'000'000);
  EXPECT_EQ(a.image.config.healthcheck->retries, 2);
  Applied none = Apply("HEALTHCHECK NONE\n");
  EXPECT_EQ(none.image.config.healthcheck->test, std::vector<std::string>{"NONE"});
}

TEST(MetadataTest, OnbuildIsStoredAsWritten) {
  Applied a = Apply("ONBUILD RUN make\nONBUILD COPY . /src\n");
  EXPECT_EQ(a.image.config.on_build, (std::vector<std::string>{"RUN make", "COPY . /src"}));
}

TEST(MetadataTest, RunCopyAndWorkdirAreNotMetadata) {
  auto df = dockerfile::Parse("FROM scratch\nRUN x\nCOPY a b\nWORKDIR /w\n");
  ASSERT_TRUE(df.ok());
  ImageConfig image;
  dockerfile::GlobalArgs g;
  dockerfile::BuildArgs b;
  dockerfile::StageScope scope(&g, &b);
  StageMetadata m;
  m.image = &image;
  m.scope = &scope;
  for (const Instruction& inst : df->stages[0].commands) {
    Result<bool> r = ApplyMetadata(inst, '\\', m);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(*r) << inst.original;
  }
}

TEST(MetadataTest, WorkdirResolvesAgainstTheCurrentOne) {
  EXPECT_EQ(ResolveWorkdir("", "app"), "/app");
  EXPECT_EQ(ResolveWorkdir("/a", "b/../c"), "/a/c");
  EXPECT_EQ(ResolveWorkdir("/a", "/x/"), "/x");
  EXPECT_EQ(ResolveWorkdir("/a", ".."), "/");
  EXPECT_EQ(ResolveWorkdir("/", "../../x"), "/x");
}

TEST(MetadataTest, SetEnvMatchesWholeKeys) {
  std::vector<std::string> env = {"AB=1", "A=2"};
  SetEnv(env, "A", "3");
  EXPECT_EQ(env, (std::vector<std::string>{"AB=1", "A=3"}));
  ASSERT_TRUE(FindEnv(env, "AB").has_value());
  EXPECT_EQ(*FindEnv(env, "AB"), "1");
  EXPECT_FALSE(FindEnv(env, "B").has_value());
}

TEST(BuildLogTest, FormatsDurationsAndSizes) {
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(450)), "450ms");
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(1234)), "1.23s");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(123)), "2m03s");
  EXPECT_EQ(FormatBytes(12), "12 B");
  EXPECT_EQ(FormatBytes(4'100'000), "4.1 MB");
}

}  // namespace
}  // namespace kiln::executor
