// Stage plan: ARG scoping, --target pruning, COPY --from resolution, ONBUILD, errors. Checked against
// the Dockerfile reference ("ARG", "Understand how ARG and FROM interact", "Multi-stage builds").
#include "executor/dockerfile/plan.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln::dockerfile {
namespace {

Result<Plan> PlanOf(const std::string& text, PlanOptions opts = {}) {
  KILN_ASSIGN_OR_RETURN(Dockerfile df, Parse(text));
  return BuildPlan(df, opts);
}

std::vector<int> Indexes(const Plan& p) {
  std::vector<int> out;
  for (const auto& s : p.stages) out.push_back(s.index);
  return out;
}

TEST(PlanTest, GlobalArgsInFrom) {
  PlanOptions o;
  Result<Plan> p = PlanOf("ARG CODE_VERSION=latest\nFROM base:${CODE_VERSION}\nCMD x\n", o);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->stages[0].base.image, "base:latest");
  o.build_args.Set("CODE_VERSION", "1.2");
  p = PlanOf("ARG CODE_VERSION=latest\nFROM base:${CODE_VERSION}\n", o);
  EXPECT_EQ(p->stages[0].base.image, "base:1.2");
  EXPECT_TRUE(p->unused_build_args.empty());
}

TEST(PlanTest, ArgScopeRules) {
  Result<Dockerfile> df = Parse("ARG V=global\nARG ONLY_GLOBAL=g\nFROM a\nARG V\nARG LOCAL=l-$V\nENV E=$V\nARG E=arg\n");
  ASSERT_TRUE(df.ok());
  BuildArgs ba;
  ba.Set("LOCAL", "from-cli");
  Result<GlobalArgs> g = ResolveGlobalArgs(df->meta_args, ba, Platform::Host(), Platform::Host(), '\\');
  ASSERT_TRUE(g.ok());
  StageScope scope(&*g, &ba);
  const auto& cmds = df->stages[0].commands;
  ASSERT_TRUE(scope.ApplyArg(std::get<ArgInst>(cmds[0].cmd), '\\').ok());
  ASSERT_TRUE(scope.ApplyArg(std::get<ArgInst>(cmds[1].cmd), '\\').ok());
  ASSERT_TRUE(scope.ApplyEnv(std::get<EnvInst>(cmds[2].cmd), '\\').ok());
  ASSERT_TRUE(scope.ApplyArg(std::get<ArgInst>(cmds[3].cmd), '\\').ok());
  Vars v = scope.ExpansionVars();
  EXPECT_EQ(v["V"], "global");          // ARG V inherits the global default
  EXPECT_EQ(v.count("ONLY_GLOBAL"), 0u);  // not redeclared: not visible in the stage
  EXPECT_EQ(v["LOCAL"], "from-cli");    // --build-arg beats the default
  EXPECT_EQ(v["E"], "global");          // ENV beats ARG of the same name
  EXPECT_EQ(scope.env().size(), 1u);    // ARGs are not image ENV
  EXPECT_EQ(ba.Unused(), std::vector<std::string>{});
}

TEST(PlanTest, EnvSeesValuesBeforeTheInstruction) {
  Result<Dockerfile> df = Parse("FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n");
  ASSERT_TRUE(df.ok());
  StageScope scope(nullptr, nullptr);
  for (const auto& inst : df->stages[0].commands) ASSERT_TRUE(scope.ApplyEnv(std::get<EnvInst>(inst.cmd), '\\').ok());
  EXPECT_EQ(scope.env(), (Vars{{"abc", "bye"}, {"def", "hello"}, {"ghi", "bye"}}));
}

TEST(PlanTest, RunEnvironmentHasProxyArgsWithoutDeclaration) {
  BuildArgs ba;
  ba.Set("HTTP_PROXY", "http://proxy:3128");
  ba.Set("OTHER", "x");
  StageScope scope(nullptr, &ba);
  scope.SeedEnv(std::vector<std::string>{"PATH=/bin", "EMPTY"});
  Vars env = scope.RunEnvironment();
  EXPECT_EQ(env["HTTP_PROXY"], "http://proxy:3128");
  EXPECT_EQ(env.count("OTHER"), 0u);
  EXPECT_EQ(env["PATH"], "/bin");
  EXPECT_EQ(env["EMPTY"], "");
  EXPECT_EQ(ba.Unused(), std::vector<std::string>{"OTHER"});
}

TEST(PlanTest, PlatformArgs) {
  PlanOptions o;
  o.target_platform = *ParsePlatform("linux/arm/v7");
  o.build_platform = *ParsePlatform("linux/x86_64");
  Result<Plan> p = PlanOf("FROM --platform=$BUILDPLATFORM golang:1-$TARGETARCH AS b\nFROM scratch\nCOPY --from=b /x /x\n", o);
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->stages.size(), 2u);
  EXPECT_EQ(p->stages[0].base.image, "golang:1-arm");
  EXPECT_EQ(p->stages[0].platform.ToString(), "linux/amd64");
  EXPECT_TRUE(p->stages[0].platform_set);
  EXPECT_EQ(p->stages[1].base.kind, SourceRef::Kind::kScratch);
  EXPECT_EQ(p->stages[1].platform.ToString(), "linux/arm/v7");
  EXPECT_EQ(p->global_args.values.at("TARGETVARIANT"), "v7");
  EXPECT_EQ(p->global_args.values.at("BUILDOS"), "linux");
  EXPECT_EQ(ParsePlatform("linux/arm64/v8")->ToString(), "linux/arm64");
  EXPECT_EQ(ParsePlatform("linux/aarch64")->ToString(), "linux/arm64");
  EXPECT_FALSE(ParsePlatform("linux").ok());
  EXPECT_FALSE(ParsePlatform("linux/amd64!").ok());
}

TEST(PlanTest, BuildArgFlags) {
  Result<BuildArgs> b = BuildArgs::FromFlags({"A=1", "B=", "FROM_ENV", "MISSING"}, {{"FROM_ENV", "e"}});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->Get("A"), "1");
  EXPECT_EQ(b->Get("B"), "");
  EXPECT_EQ(b->Get("FROM_ENV"), "e");
  EXPECT_EQ(b->Get("MISSING"), std::nullopt);
  EXPECT_EQ(BuildArgs::FromFlags({"=x"}, {}).status().message(), "invalid --build-arg \"=x\": the name is empty");
}

const char* kMulti =
    "FROM alpine AS base\n"
    "RUN apk add gcc\n"
    "FROM base AS build\n"
    "COPY --from=tools /bin/t /t\n"
    "FROM golang AS tools\n"
    "FROM base AS test\n"
    "RUN --mount=type=bind,from=build,target=/b true\n"
    "FROM scratch AS release\n"
    "COPY --from=1 /app /app\n"
    "COPY --from=busybox:1.36 /bin/sh /sh\n";

TEST(PlanTest, TargetPrunesUnneededStages) {
  struct {
    const char* target;
    std::vector<int> stages;
  } cases[] = {
      {"", {0, 2, 1, 4}},
      {"release", {0, 2, 1, 4}},
      {"RELEASE", {0, 2, 1, 4}},
      {"base", {0}},
      {"tools", {2}},
      {"test", {0, 2, 1, 3}},
      {"build", {0, 2, 1}},
  };
  for (const auto& c : cases) {
    PlanOptions o;
    o.target = c.target;
    Result<Plan> p = PlanOf(kMulti, o);
    ASSERT_TRUE(p.ok()) << p.status().message();
    EXPECT_EQ(Indexes(*p), c.stages) << c.target;
  }
  Result<Plan> p = PlanOf(kMulti);
  const PlannedStage& release = p->stages.back();
  EXPECT_EQ(release.depends_on, std::vector<int>{1});
  ASSERT_EQ(release.from_refs.size(), 2u);
  EXPECT_EQ(release.from_refs[0].ref.kind, SourceRef::Kind::kStage);
  EXPECT_EQ(release.from_refs[0].ref.stage, 1);
  EXPECT_EQ(release.from_refs[1].ref.kind, SourceRef::Kind::kImage);
  EXPECT_EQ(release.from_refs[1].ref.image, "busybox:1.36");
  EXPECT_EQ(p->stages[2].base.kind, SourceRef::Kind::kStage);
}

TEST(PlanTest, CopyFromExpandsStageVariables) {
  PlanOptions o;
  o.build_args.Set("SRC", "builder");
  Result<Plan> p = PlanOf("FROM a AS builder\nFROM b\nARG SRC=nothing\nCOPY --from=${SRC} /x /y\n", o);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(Indexes(*p), (std::vector<int>{0, 1}));
  EXPECT_EQ(p->stages[1].from_refs[0].name, "builder");
}

TEST(PlanTest, UnusedBuildArgs) {
  PlanOptions o;
  o.build_args.Set("USED", "1");
  o.build_args.Set("NOT_DECLARED", "1");
  o.build_args.Set("IN_PRUNED_STAGE", "1");
  o.build_args.Set("no_proxy", "localhost");
  Result<Plan> p = PlanOf("FROM a AS other\nARG IN_PRUNED_STAGE\nFROM b\nARG USED\n", o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->unused_build_args, (std::vector<std::string>{"IN_PRUNED_STAGE", "NOT_DECLARED"}));
}

TEST(PlanTest, OnbuildTriggers) {
  PlanOptions o;
  std::vector<std::string> asked;
  o.onbuild_triggers = [&](const std::string& image, const Platform&) -> Result<std::vector<std::string>> {
    asked.push_back(image);
    if (image == "node-onbuild") return std::vector<std::string>{"COPY --from=assets . /app", "RUN npm install"};
    return std::vector<std::string>{};
  };
  Result<Plan> p = PlanOf("FROM alpine AS assets\nFROM node-onbuild\nRUN start\n", o);
  ASSERT_TRUE(p.ok()) << p.status().message();
  const PlannedStage& s = p->stages.back();
  ASSERT_EQ(s.instructions.size(), 3u);
  EXPECT_TRUE(s.instructions[0].from_onbuild);
  EXPECT_EQ(s.instructions[1].original, "RUN npm install");
  EXPECT_FALSE(s.instructions[2].from_onbuild);
  EXPECT_EQ(s.depends_on, std::vector<int>{0});
  EXPECT_EQ(asked, (std::vector<std::string>{"node-onbuild", "alpine"}));

  // Without a lookup the executor has to apply them; a stage base gives its own ONBUILDs.
  p = PlanOf("FROM alpine AS parent\nONBUILD RUN echo child\nFROM parent\n");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->stages[0].onbuild_pending);
  ASSERT_EQ(p->stages[1].instructions.size(), 1u);
  EXPECT_EQ(p->stages[1].instructions[0].original, "RUN echo child");
  EXPECT_FALSE(p->stages[1].onbuild_pending);
}

TEST(PlanTest, Errors) {
  struct {
    const char* text;
    const char* target;
    const char* message;
  } cases[] = {
      {"FROM a\nCOPY --from=nope!x /a /b\n", "",
       "Dockerfile:2:1: COPY --from=nope!x: no stage has this name and it is not a valid image reference (invalid reference format)\nCOPY --from=nope!x /a /b\n^"},
      {"FROM a AS build\nFROM b\nCOPY --from=Bulid /a /b\n", "",
       "Dockerfile:3:1: COPY --from=Bulid: no stage has this name and it is not a valid image reference (invalid reference format: repository name must be lowercase) (did you mean build?)\nCOPY --from=Bulid /a /b\n^"},
      {"FROM a\nCOPY --from=3 /a /b\n", "",
       "Dockerfile:2:1: COPY --from=3: there is no stage with index 3 (the Dockerfile has 1 stage)\nCOPY --from=3 /a /b\n^"},
      {"FROM a\nCOPY --from=0 /a /b\n", "", "Dockerfile:2:1: COPY --from=0 refers to the stage it is used in\nCOPY --from=0 /a /b\n^"},
      {"FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n", "",
       "Dockerfile:3:1: circular dependency detected on stage: y\nFROM b AS y\n^"},
      {"FROM a\n", "relase", "Dockerfile: failed to reach build target relase in Dockerfile"},
      {"FROM a AS release\n", "relase", "Dockerfile: failed to reach build target relase in Dockerfile (did you mean release?)"},
      {"ARG IMG\nFROM ${IMG}\n", "", "Dockerfile:2:1: base name (${IMG}) should not be blank\nFROM ${IMG}\n^"},
      {"FROM Ubuntu\n", "", "Dockerfile:1:1: base image \"Ubuntu\": invalid reference format: repository name must be lowercase\nFROM Ubuntu\n^"},
      {"FROM --platform=linux a\n", "",
       "Dockerfile:1:1: invalid platform \"linux\": expected OS/ARCH[/VARIANT], e.g. linux/amd64\nFROM --platform=linux a\n^"},
      {"ARG A=${B\nFROM a\n", "", "Dockerfile:1:1: failed to process \"${B\": syntax error: missing '}'\nARG A=${B\n^"},
      {"FROM a\nENV X=\"${Y:?needs Y}\"\n", "", "Dockerfile:2:1: failed to process \"\"${Y:?needs Y}\"\": Y: needs Y\nENV X=\"${Y:?needs Y}\"\n^"},
  };
  for (const auto& c : cases) {
    PlanOptions o;
    o.target = c.target;
    Result<Plan> p = PlanOf(c.text, o);
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_EQ(p.status().message(), c.message) << c.text;
  }
}

TEST(PlanTest, ImageReferences) {
  struct {
    const char* ref;
    bool ok;
  } cases[] = {
      {"alpine", true},
      {"alpine:3.19", true},
      {"library/alpine", true},
      {"ghcr.io/owner/app:v1.2.3", true},
      {"localhost:5000/a/b", true},
      {"[::1]:5000/a", true},
      {"a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
      {"my_app__x.y-z", true},
      {"Alpine", false},
      {"a:", false},
      {"a::b", false},
      {"-a", false},
      {"a/", false},
      {"a@sha256:12", false},
      {"a:-tag", false},
      {"", false},
  };
  for (const auto& c : cases) {
    Result<Plan> p = PlanOf(std::string("FROM ") + (*c.ref ? c.ref : "\"\"") + "\n");
    EXPECT_EQ(p.ok(), c.ok) << c.ref << ": " << p.status().message();
  }
}

TEST(PlanTest, JsonShowsWhatKilnUnderstood) {
  PlanOptions o;
  o.target = "app";
  o.target_platform = *ParsePlatform("linux/amd64");
  Result<Plan> p = PlanOf("FROM alpine AS app\nCOPY --from=busybox /bin/sh /sh\nRUN [\"true\"]\n", o);
  ASSERT_TRUE(p.ok());
  nlohmann::json j = nlohmann::json::parse(PlanToJson(*p));
  EXPECT_EQ(j["target"], 0);
  EXPECT_EQ(j["stages"][0]["name"], "app");
  EXPECT_EQ(j["stages"][0]["base"]["image"], "alpine");
  EXPECT_EQ(j["stages"][0]["platform"], "linux/amd64");
  EXPECT_EQ(j["stages"][0]["instructions"][0]["from_ref"]["image"], "busybox");
  EXPECT_EQ(j["stages"][0]["instructions"][1]["details"]["form"], "exec");
  EXPECT_EQ(PlanToJson(*p).substr(0, 20), "{\n  \"escape\": \"\\\\\",\n");
}

// Fuzzer crash: invalid UTF-8 made nlohmann::json::dump throw.
TEST(PlanTest, JsonSurvivesInvalidUtf8) {
  Result<Plan> p = PlanOf(std::string("FROM a\nRUN --mount=type=cache\x0b\0\0\0,target=/c\xa1x\nCOPY <<-\"X\" /y\n\tz\n\tX\n", 66));
  ASSERT_TRUE(p.ok()) << p.status().message();
  std::string json = PlanToJson(*p);
  EXPECT_NE(json.find("/c\xEF\xBF\xBDx"), std::string::npos);
}

}  // namespace
}  // namespace kiln::dockerfile

namespace kiln::dockerfile {
namespace {

TEST(PlanTest, NamedContexts) {
  PlanOptions o;
  o.named_contexts = {{"base", "registry.test/team/base:1"}, {"vendor", ""}, {"build", ""}};
  Result<Plan> p = PlanOf(
      "FROM Base AS build\n"
      "FROM vendor AS v\n"
      "FROM alpine\n"
      "COPY --from=build /a /a\n"
      "COPY --from=VENDOR /b /b\n"
      "COPY --from=v /c /c\n"
      "COPY --from=other /d /d\n",
      o);
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->stages.size(), 3u);
  // BuildKit: a context named as a stage replaces the stage, FROM line, instructions and all.
  EXPECT_EQ(p->stages[0].name, "build");
  EXPECT_TRUE(p->stages[0].replaced_by_context);
  EXPECT_EQ(p->stages[0].base.kind, SourceRef::Kind::kContext);
  EXPECT_EQ(p->stages[0].base.image, "build");
  EXPECT_TRUE(p->stages[0].instructions.empty());
  EXPECT_FALSE(p->stages[1].replaced_by_context);
  // FROM NAME of a directory context: the context itself.
  EXPECT_EQ(p->stages[1].base.kind, SourceRef::Kind::kContext);
  EXPECT_EQ(p->stages[1].base.image, "vendor");
  EXPECT_EQ(p->stages[2].base.kind, SourceRef::Kind::kImage);
  EXPECT_EQ(p->stages[2].base.image, "alpine");
  const auto& refs = p->stages[2].from_refs;
  ASSERT_EQ(refs.size(), 4u);
  // --from= a stage reads the stage, which the context replaced; names are case-insensitive.
  EXPECT_EQ(refs[0].ref.kind, SourceRef::Kind::kStage);
  EXPECT_EQ(refs[0].ref.stage, 0);
  EXPECT_EQ(refs[1].ref.kind, SourceRef::Kind::kContext);
  EXPECT_EQ(refs[1].ref.image, "vendor");
  EXPECT_EQ(refs[2].ref.kind, SourceRef::Kind::kStage);
  EXPECT_EQ(refs[3].ref.kind, SourceRef::Kind::kImage);
  EXPECT_EQ(refs[3].ref.image, "other");
  EXPECT_NE(PlanToJson(*p).find("\"kind\": \"context\""), std::string::npos);

  // An image context named as a stage: the stage is that image; FROM base (an image name) is
  // replaced too, as before.
  o.named_contexts = {{"base", "registry.test/team/base:1"}, {"builder", "registry.test/tools:2"}};
  p = PlanOf(
      "FROM golang AS builder\n"
      "RUN make\n"
      "ONBUILD RUN x\n"
      "FROM base\n"
      "COPY --from=builder /out /out\n",
      o);
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->stages.size(), 2u);
  EXPECT_TRUE(p->stages[0].replaced_by_context);
  EXPECT_EQ(p->stages[0].base.kind, SourceRef::Kind::kImage);
  EXPECT_EQ(p->stages[0].base.image, "registry.test/tools:2");
  EXPECT_TRUE(p->stages[0].instructions.empty());
  EXPECT_EQ(p->stages[1].base.kind, SourceRef::Kind::kImage);
  EXPECT_EQ(p->stages[1].base.image, "registry.test/team/base:1");
  EXPECT_EQ(p->stages[1].depends_on, std::vector<int>{0});
  // A stage FROM a replaced stage starts from the replacement.
  p = PlanOf("FROM scratch AS builder\nRUN x\nFROM builder\nRUN y\n", o);
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->stages.size(), 2u);
  EXPECT_EQ(p->stages[1].base.kind, SourceRef::Kind::kStage);
  EXPECT_EQ(p->stages[1].base.stage, 0);
  EXPECT_EQ(p->stages[0].base.image, "registry.test/tools:2");
}

}  // namespace
}  // namespace kiln::dockerfile
