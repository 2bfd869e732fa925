// `kiln plan` end to end: the real binary on Dockerfiles in a temporary context.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/testing/temp_dir.h"

namespace kiln {
namespace {

using testing::ReadFile;
using testing::RunShell;
using testing::TempDir;
using testing::WriteFile;

struct Outcome {
  int status;
  std::string out;
  std::string err;
};

Outcome Plan(const TempDir& dir, const std::string& args) {
  // Braces: RunShell adds its own 2>&1 after the command, which must not undo ours.
  std::string cmd = "cd '" + dir.path() + "' && { '" KILN_BINARY "' plan " + args + " >out.txt 2>err.txt; }";
  Outcome r;
  r.status = RunShell(cmd);
  r.out = ReadFile(dir.Sub("out.txt"));
  r.err = ReadFile(dir.Sub("err.txt"));
  return r;
}

TEST(PlanCommandTest, PrintsThePlanOfContextDockerfile) {
  TempDir dir;
  WriteFile(dir.Sub("ctx/Dockerfile"),
            "# syntax=docker/dockerfile:1\n"
            "ARG ALPINE=3.19\n"
            "FROM alpine:${ALPINE} AS build\n"
            "ARG VERSION\n"
            "RUN echo $VERSION > /v\n"
            "FROM scratch AS unused\n"
            "FROM busybox AS release\n"
            "COPY --from=build /v /v\n");
  Outcome r = Plan(dir, "--context ctx --build-arg VERSION=1.2 --build-arg ALPINE=3.20 --custom-platform linux/arm64/v8");
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["syntax"], "docker/dockerfile:1");
  EXPECT_EQ(j["target"], 2);
  ASSERT_EQ(j["stages"].size(), 2u);  // "unused" is pruned
  EXPECT_EQ(j["stages"][0]["base"]["image"], "alpine:3.20");
  EXPECT_EQ(j["stages"][0]["platform"], "linux/arm64");
  EXPECT_EQ(j["global_args"]["TARGETARCH"], "arm64");
  EXPECT_EQ(j["global_args"]["TARGETVARIANT"], "");
  EXPECT_EQ(j["stages"][1]["name"], "release");
  EXPECT_EQ(j["stages"][1]["depends_on"], nlohmann::json::array({0}));
  EXPECT_EQ(j["stages"][1]["instructions"][0]["from_ref"]["stage"], 0);
  EXPECT_TRUE(j["unused_build_args"].empty());
  EXPECT_EQ(r.err, "");
}

TEST(PlanCommandTest, NamedBuildContextsShowWhereEachComesFrom) {
  TempDir dir;
  WriteFile(dir.Sub("Dockerfile"),
            "FROM golang AS builder\n"
            "RUN make\n"
            "FROM base\n"
            "COPY --from=builder /out /out\n"
            "COPY --from=src /x /x\n");
  Outcome r = Plan(dir, "--build-context builder=./vendor --build-context BASE=docker-image://reg.test/team/base:1 "
                        "--build-context 'src=https://user:s3cret@git.test/r.git?branch=dev&subdir=x'");
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["named_contexts"]["builder"], (nlohmann::json{{"kind", "directory"}, {"source", "./vendor"}}));
  EXPECT_EQ(j["named_contexts"]["base"], (nlohmann::json{{"kind", "image"}, {"source", "reg.test/team/base:1"}}));
  EXPECT_EQ(j["named_contexts"]["src"]["kind"], "git");
  EXPECT_EQ(j["named_contexts"]["src"]["source"], "https://user:xxxxx@git.test/r.git?branch=dev&subdir=x");
  EXPECT_EQ(r.out.find("s3cret"), std::string::npos);
  ASSERT_EQ(j["stages"].size(), 2u);
  // The context named as the stage replaces it: no instructions of its own.
  EXPECT_EQ(j["stages"][0]["replaced_by_context"], true);
  EXPECT_EQ(j["stages"][0]["base"]["context"], "builder");
  EXPECT_TRUE(j["stages"][0]["instructions"].empty());
  EXPECT_EQ(j["stages"][1]["base"]["image"], "reg.test/team/base:1");
  EXPECT_EQ(j["stages"][1]["instructions"][1]["from_ref"]["kind"], "context");

  r = Plan(dir, "--build-context builder");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("NAME=VALUE"), std::string::npos) << r.err;
  r = Plan(dir, "--build-context builder=s3://b/x");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("not s3"), std::string::npos) << r.err;
}

TEST(PlanCommandTest, TargetAndDockerfileFlag) {
  TempDir dir;
  WriteFile(dir.Sub("build/Dockerfile.prod"), "FROM alpine AS a\nRUN a\nFROM busybox AS b\nRUN b\n");
  Outcome r = Plan(dir, "--dockerfile build/Dockerfile.prod --target A");
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["stages"].size(), 1u);
  EXPECT_EQ(j["stages"][0]["name"], "a");
  EXPECT_EQ(j["stages"][0]["instructions"][0]["details"]["args"][0], "a");

  r = Plan(dir, "-f build/Dockerfile.prod --target c");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "build/Dockerfile.prod: failed to reach build target c in Dockerfile\n");
}

TEST(PlanCommandTest, DockerfileErrorsGoToStderrWithExitCode2) {
  TempDir dir;
  WriteFile(dir.Sub("Dockerfile"), "FROM alpine\nCOPY --form=x a b\n");
  Outcome r = Plan(dir, "");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "Dockerfile:2:6: unknown flag: --form (did you mean --from?)\nCOPY --form=x a b\n     ^\n");

  WriteFile(dir.Sub("Dockerfile"), "FROM a AS x\nFROM b AS x\n");
  r = Plan(dir, "--context .");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "Dockerfile:2:11: duplicate stage name \"x\" (first defined on line 1)\nFROM b AS x\n          ^\n");

  WriteFile(dir.Sub("Dockerfile"), "FROM a\nCOPY --from=7 / /\n");
  r = Plan(dir, "");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "Dockerfile:2:1: COPY --from=7: there is no stage with index 7 (the Dockerfile has 1 stage)\nCOPY --from=7 / /\n^\n");
}

TEST(PlanCommandTest, WarningsForUnusedBuildArgs) {
  TempDir dir;
  WriteFile(dir.Sub("Dockerfile"), "FROM alpine\nARG USED\nMAINTAINER me\n");
  Outcome r = Plan(dir, "--build-arg USED=1 --build-arg ZZZ=2 --build-arg AAA=3 --build-arg HTTP_PROXY=http://p");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err,
            "warning: Dockerfile:3:1: MAINTAINER instruction is deprecated in favor of using LABEL\nMAINTAINER me\n^\n"
            "[Warning] One or more build-args [AAA ZZZ] were not consumed\n");
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["unused_build_args"], nlohmann::json::array({"AAA", "ZZZ"}));
}

TEST(PlanCommandTest, BuildArgFromEnvironment) {
  TempDir dir;
  WriteFile(dir.Sub("Dockerfile"), "ARG TAG\nFROM alpine${TAG:+:$TAG}\n");
  Outcome r = Plan(dir, "--build-arg TAG");  // not in the environment: ignored, as docker build does
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["stages"][0]["base"]["image"], "alpine");
  std::string cmd = "cd '" + dir.path() + "' && { TAG=3.20 '" KILN_BINARY "' plan --build-arg TAG >out.txt 2>err.txt; }";
  ASSERT_EQ(RunShell(cmd), 0) << ReadFile(dir.Sub("err.txt"));
  EXPECT_EQ(nlohmann::json::parse(ReadFile(dir.Sub("out.txt")))["stages"][0]["base"]["image"], "alpine:3.20");
}

TEST(PlanCommandTest, UsageAndIoErrors) {
  TempDir dir;
  Outcome r = Plan(dir, "--context nowhere");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("kiln plan: reading the Dockerfile nowhere/Dockerfile: "), std::string::npos) << r.err;

  WriteFile(dir.Sub("Dockerfile"), "FROM a\n");
  r = Plan(dir, "--custom-platform linux");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--custom-platform: invalid platform \"linux\""), std::string::npos) << r.err;
  r = Plan(dir, "--build-arg =x");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "kiln plan: invalid --build-arg \"=x\": the name is empty\n");
}

// Build checks: `kiln plan` and `kiln build --check` print BuildKit's rule findings with positions;
// the Dockerfile's `# check=error=true` makes them fail, `skip=` silences rules.
TEST(PlanCommandTest, BuildChecksWarnOrFailAsTheDirectiveSays) {
  TempDir dir;
  WriteFile(dir.Sub("Dockerfile"), "FROM scratch\nENV API_TOKEN=abc\nCMD serve --port 80\n");
  Outcome r = Plan(dir, "");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("warning: Dockerfile:2:1: SecretsUsedInArgOrEnv: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("warning: Dockerfile:3:1: JSONArgsRecommended: "), std::string::npos) << r.err;

  WriteFile(dir.Sub("Dockerfile"), "# check=error=true;skip=JSONArgsRecommended\nFROM scratch\nENV API_TOKEN=abc\n"
                                   "CMD serve --port 80\n");
  r = Plan(dir, "");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.find("JSONArgsRecommended"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 build check failed"), std::string::npos) << r.err;

  // kiln build --check: the same verdict, nothing built or pushed (no destination needed).
  std::string out;
  int rc = RunShell("cd '" + dir.path() + "' && KILN_DIR='" + dir.Sub("state") + "' '" KILN_BINARY "' build --check", &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("SecretsUsedInArgOrEnv"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("state"))) << "--check must not touch the state directory";

  WriteFile(dir.Sub("Dockerfile"), "# check=skip=all\nFROM scratch\nENV API_TOKEN=abc\n");
  rc = RunShell("cd '" + dir.path() + "' && KILN_DIR='" + dir.Sub("state") + "' '" KILN_BINARY "' build --check", &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("build checks: 0 warnings (# check=skip=all)"), std::string::npos) << out;
}

}  // namespace
}  // namespace kiln
