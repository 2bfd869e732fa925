// Table-driven plan cases: ENV in both forms as the executor expands them, ARG scope (global ARGs,
// redeclaration, --build-arg, proxy args, TARGET*/BUILD* args), unused build args, --from that names a
// stage, an index, an image or nothing, and ONBUILD triggers. Checked against the Dockerfile
// reference ("ENV", "ARG", "Predefined ARGs", "Automatic platform ARGs in the global scope",
// "ONBUILD", "Multi-stage builds").
#include <gtest/gtest.h>

#include "executor/dockerfile/plan.h"

namespace kiln::dockerfile {
namespace {

// Splits "A=1;B=2" into build args.
BuildArgs Args(const std::string& spec) {
  BuildArgs b;
  size_t start = 0;
  while (start < spec.size()) {
    size_t end = spec.find(';', start);
    if (end == std::string::npos) end = spec.size();
    std::string kv = spec.substr(start, end - start);
    size_t eq = kv.find('=');
    b.Set(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
    start = end + 1;
  }
  return b;
}

PlanOptions Options(const std::string& build_args, const std::string& target = "") {
  PlanOptions o;
  o.build_args = Args(build_args);
  o.target = target;
  o.target_platform = *ParsePlatform("linux/arm/v7");
  o.build_platform = *ParsePlatform("linux/amd64");
  return o;
}

// Replays ARG and ENV of Dockerfile stage `index` as the executor does (a stage based on another
// starts from that stage's ENV) and returns the environment a RUN at the end of it would see.
Result<Vars> RunEnv(const Plan& p, int index, const BuildArgs& ba) {
  const PlannedStage* st = nullptr;
  for (const PlannedStage& s : p.stages) {
    if (s.index == index) st = &s;
  }
  if (st == nullptr) return InvalidArgument("stage not planned");
  StageScope scope(&p.global_args, &ba);
  if (st->base.kind == SourceRef::Kind::kStage) {
    // Only the parent's ENV carries over (one level is enough for these cases).
    for (const PlannedStage& s : p.stages) {
      if (s.index != st->base.stage) continue;
      StageScope parent(&p.global_args, &ba);
      for (const Instruction& inst : s.instructions) {
        if (const auto* a = std::get_if<ArgInst>(&inst.cmd)) KILN_RETURN_IF_ERROR(parent.ApplyArg(*a, p.escape));
        if (const auto* e = std::get_if<EnvInst>(&inst.cmd)) KILN_RETURN_IF_ERROR(parent.ApplyEnv(*e, p.escape));
      }
      scope.SeedEnv(parent.env());
    }
  }
  for (const Instruction& inst : st->instructions) {
    if (const auto* a = std::get_if<ArgInst>(&inst.cmd)) KILN_RETURN_IF_ERROR(scope.ApplyArg(*a, p.escape));
    if (const auto* e = std::get_if<EnvInst>(&inst.cmd)) KILN_RETURN_IF_ERROR(scope.ApplyEnv(*e, p.escape));
  }
  return scope.RunEnvironment();
}

struct ScopeCase {
  const char* text;
  const char* build_args;  // "A=1;B=2"
  const char* present;     // "A=1;B=" — each must be set to exactly this
  const char* absent;      // "X;Y" — none of these may be set
};

const ScopeCase kScopeCases[] = {
    // ENV, both forms, expanded as the executor will.
    {"FROM a\nENV A=1\n", "", "A=1", ""},
    {"FROM a\nENV A 1\n", "", "A=1", ""},
    {"FROM a\nENV A  two  words\n", "", "A=two  words", ""},
    {"FROM a\nENV A=1 B=2\n", "", "A=1;B=2", ""},
    {"FROM a\nENV A=\"x y\" B='z $q'\n", "", "A=x y;B=z $q", ""},
    {"FROM a\nENV A=x\\ y\n", "", "A=x y", ""},
    {"FROM a\nENV A=\n", "", "A=", ""},
    {"FROM a\nENV A=a=b\n", "", "A=a=b", ""},
    {"FROM a\nENV A \"quoted\"\n", "", "A=quoted", ""},
    {"FROM a\nENV P=/x\nENV P=/y:$P\n", "", "P=/y:/x", ""},
    {"FROM a\nENV A=1 \\\n    B=2\n", "", "A=1;B=2", ""},
    {"FROM a\nENV A=${UNSET:-dflt} B=${UNSET:+x}\n", "", "A=dflt;B=", ""},
    {"FROM a\nENV A=$B B=2\n", "", "A=;B=2", ""},  // B is not visible in its own instruction
    {"FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n", "", "abc=bye;def=hello;ghi=bye", ""},
    {"# escape=`\nFROM a\nENV A=x` y B=c:\\dir\n", "", "A=x y;B=c:\\dir", ""},
    // Global ARGs are only visible in a stage that redeclares them.
    {"ARG V=g\nFROM a\nARG V\n", "", "V=g", ""},
    {"ARG V=g\nFROM a\n", "", "", "V"},
    {"ARG V=g\nFROM a\nARG V=local\n", "", "V=local", ""},
    {"ARG V=g\nFROM a\nARG V=local\n", "V=cli", "V=cli", ""},
    {"ARG V\nFROM a\nARG V\n", "V=cli", "V=cli", ""},
    {"ARG V\nFROM a\nARG V\n", "", "", "V"},
    {"ARG V=1\nFROM a\nARG V\nFROM b\n", "", "", "V"},  // each stage redeclares for itself
    {"ARG V=1\nFROM a\nARG V=2\nFROM b\nARG V\n", "", "V=1", ""},
    {"ARG B=base\nFROM a\nARG B\nARG C=$B/x\n", "", "B=base;C=base/x", ""},
    {"ARG A=1 B=${A}2\nFROM a\nARG B\n", "", "B=12", ""},
    // Stage ARGs.
    {"FROM a\nARG X=1\nARG Y=$X-2\n", "", "X=1;Y=1-2", ""},
    {"FROM a\nARG X=1\nARG Y=${X:+set} Z=${U:-none}\n", "", "Y=set;Z=none", ""},
    {"FROM a\nARG A=\"x y\"\n", "", "A=x y", ""},
    {"FROM a\nARG A=x\\ y\n", "", "A=x y", ""},
    {"FROM a\nARG A=1\nARG A\n", "", "A=1", ""},  // a bare redeclaration keeps the value
    {"FROM a\nARG X\n", "", "", "X"},
    {"FROM a\nARG X=1\nENV X=2\n", "", "X=2", ""},  // ENV overrides ARG
    {"FROM a\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\n", "CONT_IMG_VER=v2.0.1", "CONT_IMG_VER=v1.0.0", ""},
    {"FROM a\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\n", "CONT_IMG_VER=v2.0.1", "CONT_IMG_VER=v2.0.1", ""},
    {"FROM a\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\n", "", "CONT_IMG_VER=v1.0.0", ""},
    // ARGs do not cross FROM; ENV is inherited by a stage built on another.
    {"FROM a AS p\nARG X=1\nENV E=e\nFROM p\n", "", "E=e", "X"},
    {"FROM a AS p\nENV E=e\nFROM p\nARG Z=$E\n", "", "E=e;Z=e", ""},
    // Automatic platform ARGs: in the global scope, and in a stage once declared.
    {"FROM a\nARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT\n", "",
     "TARGETPLATFORM=linux/arm/v7;TARGETOS=linux;TARGETARCH=arm;TARGETVARIANT=v7", ""},
    {"FROM a\nARG BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT\n", "",
     "BUILDPLATFORM=linux/amd64;BUILDOS=linux;BUILDARCH=amd64;BUILDVARIANT=", ""},
    {"FROM a\n", "", "", "TARGETARCH;BUILDPLATFORM;TARGETPLATFORM"},
    {"FROM --platform=$BUILDPLATFORM a\nARG TARGETARCH\n", "", "TARGETARCH=arm", ""},  // the target, not the stage's platform
    // Predefined proxy ARGs reach RUN without an ARG instruction.
    {"FROM a\nRUN x\n", "HTTP_PROXY=http://p:3128", "HTTP_PROXY=http://p:3128", ""},
    {"FROM a\nRUN x\n", "https_proxy=s;no_proxy=n;FTP_PROXY=f;ALL_PROXY=all", "https_proxy=s;no_proxy=n;FTP_PROXY=f;ALL_PROXY=all", ""},
    {"FROM a\nARG HTTP_PROXY\n", "HTTP_PROXY=p", "HTTP_PROXY=p", ""},
    {"FROM a\nRUN x\n", "OTHER=1", "", "OTHER"},  // other build args need an ARG
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find(';', start);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

TEST(PlanTableTest, EnvAndArgScope) {
  for (const ScopeCase& c : kScopeCases) {
    PlanOptions o = Options(c.build_args);
    Result<Dockerfile> df = Parse(c.text);
    ASSERT_TRUE(df.ok()) << c.text << "\n" << df.status().message();
    Result<Plan> p = BuildPlan(*df, o);
    ASSERT_TRUE(p.ok()) << c.text << "\n" << p.status().message();
    Result<Vars> env = RunEnv(*p, p->target, o.build_args);
    ASSERT_TRUE(env.ok()) << c.text << "\n" << env.status().message();
    for (const std::string& kv : Split(c.present)) {
      size_t eq = kv.find('=');
      std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
      auto it = env->find(k);
      ASSERT_NE(it, env->end()) << c.text << ": " << k << " is not set";
      EXPECT_EQ(it->second, v) << c.text << ": " << k;
    }
    for (const std::string& k : Split(c.absent)) EXPECT_EQ(env->count(k), 0u) << c.text << ": " << k << " is set";
  }
}

struct FromLineCase {
  const char* text;
  const char* build_args;
  const char* image;     // the last stage's base image as expanded
  const char* platform;  // its platform
};

const FromLineCase kFromLineCases[] = {
    {"ARG V=1\nFROM a:$V\n", "", "a:1", "linux/arm/v7"},
    {"ARG V=1\nFROM a:$V\n", "V=2", "a:2", "linux/arm/v7"},
    {"ARG V\nFROM a:${V:-d}\n", "", "a:d", "linux/arm/v7"},
    {"ARG V\nFROM a:${V:-d}\n", "V=x", "a:x", "linux/arm/v7"},
    {"FROM a$V\n", "V=x", "a", "linux/arm/v7"},  // not declared: the build arg does not apply
    {"FROM a:$TARGETARCH\n", "", "a:arm", "linux/arm/v7"},
    {"FROM --platform=$BUILDPLATFORM a:$BUILDOS-$BUILDARCH\n", "", "a:linux-amd64", "linux/amd64"},
    {"FROM --platform=linux/arm64/v8 a\n", "", "a", "linux/arm64"},
    {"ARG P=linux/s390x\nFROM --platform=$P a\n", "", "a", "linux/s390x"},
    {"ARG REPO=ghcr.io/o\nARG TAG=1\nFROM ${REPO}/app:${TAG}\n", "TAG=2", "ghcr.io/o/app:2", "linux/arm/v7"},
    {"FROM a AS ${NOT_EXPANDED}x\n", "", nullptr, nullptr},  // stage names are never expanded
};

TEST(PlanTableTest, FromLinesUseGlobalArgs) {
  for (const FromLineCase& c : kFromLineCases) {
    Result<Dockerfile> df = Parse(c.text);
    if (c.image == nullptr) {
      EXPECT_FALSE(df.ok()) << c.text;
      continue;
    }
    ASSERT_TRUE(df.ok()) << c.text << "\n" << df.status().message();
    Result<Plan> p = BuildPlan(*df, Options(c.build_args));
    ASSERT_TRUE(p.ok()) << c.text << "\n" << p.status().message();
    EXPECT_EQ(p->stages.back().base.image, c.image) << c.text;
    EXPECT_EQ(p->stages.back().platform.ToString(), c.platform) << c.text;
  }
}

struct UnusedCase {
  const char* text;
  const char* build_args;
  const char* target;
  std::vector<std::string> unused;
};

const UnusedCase kUnusedCases[] = {
    {"ARG V\nFROM a:$V\n", "V=1", "", {}},
    {"ARG V\nFROM a\n", "V=1", "", {}},  // declared globally: consumed
    {"FROM a\n", "X=1", "", {"X"}},
    {"FROM a AS one\nARG X\nFROM b\n", "X=1", "", {"X"}},  // declared only in a stage not built
    {"FROM a AS one\nARG X\nFROM b\n", "X=1", "one", {}},
    {"FROM a\n", "HTTP_PROXY=p;no_proxy=n", "", {}},  // proxy args are never reported
    {"FROM a\nARG A\n", "A=1;B=2;C=3", "", {"B", "C"}},
    {"FROM a AS p\nONBUILD ARG X\nFROM p\n", "X=1", "", {}},  // consumed by a trigger
    {"FROM a AS p\nARG X\nFROM b\nCOPY --from=p / /\n", "X=1", "", {}},  // p is needed by COPY --from
    {"FROM a\nARG x\n", "X=1", "", {"X"}},  // names are case-sensitive
};

TEST(PlanTableTest, UnusedBuildArgs) {
  for (const UnusedCase& c : kUnusedCases) {
    Result<Dockerfile> df = Parse(c.text);
    ASSERT_TRUE(df.ok()) << c.text;
    Result<Plan> p = BuildPlan(*df, Options(c.build_args, c.target));
    ASSERT_TRUE(p.ok()) << c.text << "\n" << p.status().message();
    EXPECT_EQ(p->unused_build_args, c.unused) << c.text;
  }
}

struct FromRefCase {
  const char* text;
  const char* build_args;
  const char* ref;  // "stage N", "image NAME" or the error message
};

const FromRefCase kFromRefCases[] = {
    {"FROM a AS build\nFROM b\nCOPY --from=build / /\n", "", "stage 0"},
    {"FROM a AS build\nFROM b\nCOPY --from=BUILD / /\n", "", "stage 0"},  // stage names are case-insensitive
    {"FROM a\nFROM b\nCOPY --from=0 / /\n", "", "stage 0"},
    {"FROM a\nFROM b\nFROM c\nCOPY --from=1 / /\n", "", "stage 1"},
    {"FROM b AS first\nCOPY --from=later / /\nFROM c AS later\nFROM first\n", "", "stage 1"},  // any other stage, also a later one
    {"FROM b\nCOPY --from=nginx:latest /etc/nginx /n\n", "", "image nginx:latest"},
    {"FROM b\nCOPY --from=ghcr.io/o/tool@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef / /\n", "",
     "image ghcr.io/o/tool@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
    {"FROM a AS src\nFROM b\nARG FROM=src\nCOPY --from=$FROM / /\n", "", "stage 0"},
    {"FROM a AS src\nFROM b\nARG FROM\nCOPY --from=${FROM:-busybox} / /\n", "", "image busybox"},
    {"FROM a AS src\nFROM b\nRUN --mount=from=src,target=/s ls\n", "", "stage 0"},
    {"FROM b\nRUN --mount=type=cache,from=alpine,target=/s ls\n", "", "image alpine"},
    {"FROM b\nCOPY --from=5 / /\n", "", "Dockerfile:2:1: COPY --from=5: there is no stage with index 5 (the Dockerfile has 1 stage)\nCOPY --from=5 / /\n^"},
    {"FROM a\nFROM b\nCOPY --from=1 / /\n", "", "Dockerfile:3:1: COPY --from=1 refers to the stage it is used in\nCOPY --from=1 / /\n^"},
    {"FROM b\nCOPY --from=-1 / /\n", "",
     "Dockerfile:2:1: COPY --from=-1: no stage has this name and it is not a valid image reference (invalid reference format)\nCOPY --from=-1 / /\n^"},
    {"FROM b\nARG E\nCOPY --from=${E} / /\n", "",
     "Dockerfile:3:1: COPY --from names nothing: the value is empty after expansion\nCOPY --from=${E} / /\n^"},
    {"FROM b\nRUN --mount=from=Bad,target=/x ls\n", "",
     "Dockerfile:2:1: RUN --mount from=Bad: no stage has this name and it is not a valid image reference (invalid reference format: repository name must be lowercase)\nRUN --mount=from=Bad,target=/x ls\n^"},
    {"FROM b AS me\nRUN --mount=from=me,target=/x ls\n", "", "Dockerfile:2:1: RUN --mount from=me refers to the stage it is used in\nRUN --mount=from=me,target=/x ls\n^"},
};

TEST(PlanTableTest, FromNamesAStageAnIndexOrAnImage) {
  for (const FromRefCase& c : kFromRefCases) {
    Result<Dockerfile> df = Parse(c.text);
    ASSERT_TRUE(df.ok()) << c.text << "\n" << df.status().message();
    Result<Plan> p = BuildPlan(*df, Options(c.build_args));
    if (!p.ok()) {
      EXPECT_EQ(p.status().message(), c.ref) << c.text;
      continue;
    }
    const PlannedStage* with_ref = nullptr;
    for (const PlannedStage& s : p->stages) {
      if (!s.from_refs.empty()) with_ref = &s;
    }
    ASSERT_NE(with_ref, nullptr) << c.text;
    const SourceRef& r = with_ref->from_refs[0].ref;
    std::string got = r.kind == SourceRef::Kind::kStage ? "stage " + std::to_string(r.stage) : "image " + r.image;
    EXPECT_EQ(got, c.ref) << c.text;
  }
}

TEST(PlanTableTest, ImageNamedLikeAStageIsNoted) {
  Result<Dockerfile> df = Parse("FROM a AS builder\nFROM b\nCOPY --from=bulider /x /y\n");
  ASSERT_TRUE(df.ok());
  Result<Plan> p = BuildPlan(*df, Options(""));
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->stages.back().from_refs[0].ref.kind, SourceRef::Kind::kImage);
  ASSERT_EQ(p->warnings.size(), 1u);
  EXPECT_EQ(p->warnings[0],
            "Dockerfile:3:1: COPY --from=bulider names no stage, so it is read from the image bulider (did you mean the stage "
            "builder?)\nCOPY --from=bulider /x /y\n^");
}

struct OnbuildCase {
  const char* text;
  std::vector<std::string> triggers;  // originals of the from_onbuild instructions of the last stage
};

const OnbuildCase kOnbuildCases[] = {
    {"FROM a AS p\nONBUILD RUN make\nFROM p\n", {"RUN make"}},
    {"FROM a AS p\nONBUILD RUN a\nONBUILD RUN b\nFROM p\nRUN own\n", {"RUN a", "RUN b"}},
    {"FROM a AS p\nONBUILD RUN <<EOF\nx\nEOF\nFROM p\n", {"RUN <<EOF"}},
    // Triggers run in the direct child only; they are not inherited further.
    {"FROM a AS p\nONBUILD RUN p\nFROM p AS c\nFROM c\n", {}},
    {"FROM a AS p\nONBUILD RUN p\nFROM a\n", {}},  // same base image, not the stage
};

TEST(PlanTableTest, OnbuildTriggersOfStages) {
  for (const OnbuildCase& c : kOnbuildCases) {
    Result<Dockerfile> df = Parse(c.text);
    ASSERT_TRUE(df.ok()) << c.text << "\n" << df.status().message();
    Result<Plan> p = BuildPlan(*df, Options(""));
    ASSERT_TRUE(p.ok()) << c.text << "\n" << p.status().message();
    std::vector<std::string> got;
    for (const Instruction& i : p->stages.back().instructions) {
      if (i.from_onbuild) got.push_back(i.original);
    }
    EXPECT_EQ(got, c.triggers) << c.text;
  }
}

TEST(PlanTableTest, OnbuildTriggerErrorsPointAtTheFrom) {
  PlanOptions o = Options("");
  o.onbuild_triggers = [](const std::string&, const Platform&) -> Result<std::vector<std::string>> {
    return std::vector<std::string>{"RUN ok", "CPOY a b"};
  };
  Result<Dockerfile> df = Parse("FROM base-onbuild\nRUN x\n");
  ASSERT_TRUE(df.ok());
  Result<Plan> p = BuildPlan(*df, o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "ONBUILD trigger of base-onbuild:1:1: unknown instruction: CPOY (did you mean COPY?)\nCPOY a b\n^");
}

}  // namespace
}  // namespace kiln::dockerfile
