// Build policy (executor/policy/policy.h): the parser (YAML and JSON, errors naming the key and its
// position), every rule passing and failing on real plans, positions and rule names in the messages,
// the resolved-digest and image-size checks, and how several policies combine.
#include "executor/policy/policy.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/testing/temp_dir.h"

namespace kiln::policy {
namespace {

Policy MustParse(const std::string& yaml) {
  Result<Policy> p = ParsePolicy(yaml, "policy.yaml");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? std::move(p).value() : Policy{};
}

dockerfile::Plan MustPlan(const std::string& text, const std::string& target = "") {
  auto df = dockerfile::Parse(text);
  EXPECT_TRUE(df.ok()) << df.status().ToString();
  dockerfile::PlanOptions opts;
  opts.target = target;
  auto plan = dockerfile::BuildPlan(*df, opts);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  return std::move(plan).value();
}

// "rule@line:column" for each violation, in order.
std::vector<std::string> Rules(const std::vector<Violation>& vs) {
  std::vector<std::string> out;
  for (const Violation& v : vs) out.push_back(v.rule + "@" + std::to_string(v.loc.line) + ":" + std::to_string(v.loc.column));
  return out;
}

std::vector<std::string> Check(const std::string& yaml, const std::string& dockerfile,
                               const std::vector<std::string>& labels = {}) {
  std::vector<Policy> ps = {MustParse(yaml)};
  return Rules(EvaluatePlan(ps, MustPlan(dockerfile), labels).violations);
}

std::string ParseError(const std::string& yaml) {
  Result<Policy> p = ParsePolicy(yaml, "policy.yaml");
  EXPECT_FALSE(p.ok()) << yaml;
  EXPECT_EQ(p.status().code(), ErrorCode::kInvalidArgument);
  return p.status().message();
}

TEST(PolicyParseTest, TheDocumentedShapeInYamlAndJson) {
  const char* yaml = R"(
bases:
  allow: ["registry.example.org/**", "docker.io/library/*"]
  forbid_tags: ["latest", "*-rc*"]
  require_digest: true
user:
  require_non_root: true
  allow: ["1000", "app"]
labels:
  required: ["org.opencontainers.image.source"]
add:
  require_checksum: true
mounts:
  allow: [cache, secret]
image:
  max_size: 500m
)";
  Policy p = MustParse(yaml);
  ASSERT_EQ(p.bases.allow.size(), 2u);
  EXPECT_EQ(p.bases.allow[1].text, "docker.io/library/*");
  EXPECT_TRUE(p.bases.require_digest);
  EXPECT_TRUE(p.user.require_non_root);
  EXPECT_EQ(p.user.allow, (std::vector<std::string>{"1000", "app"}));
  EXPECT_EQ(p.required_labels, (std::vector<std::string>{"org.opencontainers.image.source"}));
  EXPECT_TRUE(p.add_require_checksum);
  EXPECT_EQ(*p.mounts_allow, (std::vector<std::string>{"cache", "secret"}));
  EXPECT_EQ(*p.max_image_bytes, 500u << 20);

  Policy j = MustParse(R"({"bases": {"forbid_tags": ["latest"]}, "user": {"require_non_root": true},
                           "image": {"max_size": 1048576}})");
  ASSERT_EQ(j.bases.forbid_tags.size(), 1u);
  EXPECT_TRUE(j.user.require_non_root);
  EXPECT_EQ(*j.max_image_bytes, 1048576u);
  EXPECT_FALSE(j.mounts_allow.has_value());

  // An empty file is a policy with no rules.
  EXPECT_FALSE(MustParse("").user.require_non_root);
}

TEST(PolicyParseTest, ErrorsNameTheKeyAndItsPosition) {
  EXPECT_EQ(ParseError("bases:\n  alow: [x]\n"),
            "policy.yaml:2:3: unknown key bases.alow (did you mean allow?) (keys of bases: allow, forbid_tags, "
            "allow_tags, require_digest)");
  EXPECT_NE(ParseError("base:\n  allow: [x]\n").find("policy.yaml:1:1: unknown key base (did you mean bases?)"),
            std::string::npos);
  EXPECT_EQ(ParseError("user:\n  require_non_root: yes please\n"),
            "policy.yaml:2:21: user.require_non_root must be true or false");
  EXPECT_EQ(ParseError("labels:\n  required: org.opencontainers.image.source\n"),
            "policy.yaml:2:13: labels.required must be a list of strings");
  EXPECT_EQ(ParseError("mounts:\n  allow: [cache, sekret]\n"),
            "policy.yaml:2:18: mounts.allow: unknown mount type \"sekret\" (did you mean secret?) (bind, cache, tmpfs, "
            "secret, ssh)");
  EXPECT_NE(ParseError("image:\n  max_size: lots\n").find("policy.yaml:2:13: image.max_size: must be a size"),
            std::string::npos);
  EXPECT_NE(ParseError("bases:\n  allow: [\"[unterminated\"]\n").find("policy.yaml:2:11: bases.allow: syntax error"),
            std::string::npos);
  EXPECT_EQ(ParseError("- a list\n"), "policy.yaml:1:1: the policy must be a mapping of keys");
  EXPECT_EQ(ParseError("version: 2\n"), "policy.yaml:1:10: version must be 1 (the only schema so far)");
  // Malformed YAML and JSON: yaml-cpp's message at its position.
  EXPECT_EQ(ParseError("bases: [unclosed\n").rfind("policy.yaml:", 0), 0u);
  EXPECT_EQ(ParseError("{\"bases\": {\"allow\": [\"x\"]}\n").rfind("policy.yaml:", 0), 0u);
}

TEST(PolicyParseTest, Sizes) {
  EXPECT_EQ(*ParseSize("123"), 123u);
  EXPECT_EQ(*ParseSize("2k"), 2048u);
  EXPECT_EQ(*ParseSize("500M"), 500u << 20);
  EXPECT_EQ(*ParseSize("1GB"), 1u << 30);
  EXPECT_EQ(*ParseSize("1t"), uint64_t{1} << 40);
  for (const char* bad : {"", "m", "1x", "-1", "1.5g", "99999999999999999999"}) EXPECT_FALSE(ParseSize(bad).ok()) << bad;
}

TEST(PolicyParseTest, LoadPoliciesTakesTheEnvironmentFirstAndAddsTheFlags) {
  testing::TempDir dir;
  std::string central = dir.path() + "/central.yaml", job = dir.path() + "/job.json";
  std::ofstream(central) << "user: {require_non_root: true}\n";
  std::ofstream(job) << "{\"add\": {\"require_checksum\": true}}\n";
  auto ps = LoadPolicies({job}, {{"KILN_POLICY", central}});
  ASSERT_TRUE(ps.ok()) << ps.status().ToString();
  ASSERT_EQ(ps->size(), 2u);
  EXPECT_EQ((*ps)[0].origin, "$KILN_POLICY (" + central + ")");
  EXPECT_TRUE((*ps)[0].user.require_non_root);
  EXPECT_EQ((*ps)[1].origin, job);
  EXPECT_TRUE((*ps)[1].add_require_checksum);
  EXPECT_TRUE(LoadPolicies({}, {})->empty());
  auto missing = LoadPolicies({}, {{"KILN_POLICY", dir.path() + "/nope.yaml"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("reading the policy $KILN_POLICY"), std::string::npos);
}

TEST(PolicyEvalTest, BasesAllowMatchesNormalisedNames) {
  const char* allow = "bases: {allow: [\"registry.example.org/*\", \"docker.io/library/alpine:3.*\"]}\n";
  EXPECT_TRUE(Check(allow, "FROM registry.example.org/base:1.2\n").empty());
  EXPECT_TRUE(Check(allow, "FROM alpine:3.19\n").empty());
  // '*' stays within one part of the path; ** crosses them.
  EXPECT_EQ(Check(allow, "FROM registry.example.org/team/base:1\n"), (std::vector<std::string>{"bases.allow@1:1"}));
  EXPECT_TRUE(Check("bases: {allow: [\"registry.example.org/**\"]}\n", "FROM registry.example.org/team/base:1\n").empty());
  EXPECT_EQ(Check(allow, "FROM alpine:edge AS a\nFROM busybox AS b\nFROM scratch\nCOPY --from=a / /\nCOPY --from=b / /\n"),
            (std::vector<std::string>{"bases.allow@1:1", "bases.allow@2:1"}));
  // COPY --from an image is pulled too; a stage that is not needed is not.
  EXPECT_EQ(Check(allow, "FROM evil.example/x AS unused\nFROM alpine:3.19\nCOPY --from=ghcr.io/x/y:1 /a /a\n"),
            (std::vector<std::string>{"bases.allow@3:1"}));
}

TEST(PolicyEvalTest, ForbiddenAndAllowedTags) {
  const char* forbid = "bases: {forbid_tags: [latest, \"*-rc*\"]}\n";
  EXPECT_EQ(Check(forbid, "FROM busybox:latest\n"), (std::vector<std::string>{"bases.forbid_tags@1:1"}));
  EXPECT_EQ(Check(forbid, "FROM busybox\n"), (std::vector<std::string>{"bases.forbid_tags@1:1"}));
  EXPECT_EQ(Check(forbid, "FROM busybox:1.36-rc1\n"), (std::vector<std::string>{"bases.forbid_tags@1:1"}));
  EXPECT_TRUE(Check(forbid, "FROM busybox:1.36\n").empty());
  // Pinned by digest alone: no tag to forbid.
  EXPECT_TRUE(Check(forbid, "FROM busybox@sha256:" + std::string(64, 'a') + "\n").empty());
  const char* allow_tags = "bases: {allow_tags: [\"1.*\"]}\n";
  EXPECT_TRUE(Check(allow_tags, "FROM busybox:1.36\n").empty());
  EXPECT_EQ(Check(allow_tags, "FROM busybox:2 AS a\nFROM busybox\nCOPY --from=a / /\n"),
            (std::vector<std::string>{"bases.allow_tags@1:1", "bases.allow_tags@2:1"}));
}

TEST(PolicyEvalTest, RequireDigest) {
  const char* p = "bases: {require_digest: true}\n";
  std::string pinned = "busybox:1.36@sha256:" + std::string(64, 'b');
  EXPECT_TRUE(Check(p, "FROM " + pinned + "\n").empty());
  EXPECT_EQ(Check(p, "FROM " + pinned + " AS a\nFROM busybox:1.36\nCOPY --from=a / /\n"),
            (std::vector<std::string>{"bases.require_digest@2:1"}));
  // A stage built FROM another stage pulls nothing.
  EXPECT_TRUE(Check(p, "FROM " + pinned + " AS a\nFROM a\n").empty());
}

TEST(PolicyEvalTest, NonRootUser) {
  const char* p = "user: {require_non_root: true}\n";
  EXPECT_TRUE(Check(p, "FROM scratch\nUSER 1000\n").empty());
  EXPECT_TRUE(Check(p, "FROM scratch\nUSER app:app\n").empty());
  EXPECT_EQ(Check(p, "FROM scratch\nRUN x\n"), (std::vector<std::string>{"user.require_non_root@1:1"}));
  EXPECT_EQ(Check(p, "FROM scratch\nUSER 1000\nUSER root\n"), (std::vector<std::string>{"user.require_non_root@3:1"}));
  EXPECT_EQ(Check(p, "FROM scratch\n  USER 0:1000\n"), (std::vector<std::string>{"user.require_non_root@2:3"}));
  EXPECT_EQ(Check(p, "FROM scratch\nARG U=1000\nUSER $U\n"), (std::vector<std::string>{"user.require_non_root@3:1"}));
  // Inherited from the stage the final one is built FROM; another stage's USER does not count.
  EXPECT_TRUE(Check(p, "FROM scratch AS base\nUSER 65534\nFROM base\nRUN x\n").empty());
  EXPECT_EQ(Check(p, "FROM scratch AS other\nUSER 65534\nFROM scratch\nCOPY --from=other / /\n"),
            (std::vector<std::string>{"user.require_non_root@3:1"}));
  const char* allow = "user: {require_non_root: true, allow: [\"1000\", app]}\n";
  EXPECT_TRUE(Check(allow, "FROM scratch\nUSER app\n").empty());
  EXPECT_EQ(Check(allow, "FROM scratch\nUSER 1001\n"), (std::vector<std::string>{"user.allow@2:1"}));
}

TEST(PolicyEvalTest, RequiredLabels) {
  const char* p = "labels: {required: [org.opencontainers.image.source, team]}\n";
  EXPECT_TRUE(Check(p, "FROM scratch\nLABEL org.opencontainers.image.source=x \"team\"=y\n").empty());
  EXPECT_EQ(Check(p, "FROM scratch AS final\nLABEL team=y\n"), (std::vector<std::string>{"labels.required@1:1"}));
  // --label counts.
  EXPECT_TRUE(Check(p, "FROM scratch\nLABEL team=y\n", {"org.opencontainers.image.source"}).empty());
}

// No USER in the Dockerfile, or a required label it does not set: the image inherits them from its
// base image, so the rules are decided on that image's config once it is resolved.
TEST(PolicyEvalTest, UserAndLabelsInheritedFromTheBaseImageAreDecidedOnItsConfig) {
  std::vector<Policy> ps = {MustParse("user: {require_non_root: true}\nlabels: {required: [team, tier]}\n")};
  dockerfile::Plan plan = MustPlan("FROM example.org/base:1 AS b\nRUN x\nFROM b\nLABEL tier=web\n");
  PlanVerdict v = EvaluatePlan(ps, plan, {});
  EXPECT_TRUE(v.violations.empty()) << Rules(v.violations).size();
  ASSERT_TRUE(v.inherited.has_value());
  EXPECT_EQ(v.inherited->image, "example.org/base:1");
  EXPECT_EQ(v.inherited->loc.line, 1);
  ASSERT_EQ(v.inherited->rules.size(), 1u);
  EXPECT_TRUE(v.inherited->rules[0].user);
  EXPECT_EQ(v.inherited->rules[0].labels, (std::vector<std::string>{"team"}));

  ContainerConfig nonroot;
  nonroot.user = "65532:65532";
  nonroot.labels["team"] = "platform";
  EXPECT_TRUE(EvaluateInherited(ps, *v.inherited, nonroot, plan.source).empty());

  ContainerConfig root;  // no USER: root
  std::vector<Violation> bad = EvaluateInherited(ps, *v.inherited, root, plan.source);
  EXPECT_EQ(Rules(bad), (std::vector<std::string>{"user.require_non_root@1:1", "labels.required@1:1"}));
  EXPECT_NE(bad[0].message.find("the final stage and its base image set no USER"), std::string::npos) << bad[0].message;
  root.user = "root";
  EXPECT_EQ(Rules(EvaluateInherited(ps, *v.inherited, root, plan.source))[0], "user.require_non_root@1:1");

  // A USER in the Dockerfile decides on the plan; FROM scratch inherits nothing.
  EXPECT_FALSE(EvaluatePlan(ps, MustPlan("FROM example.org/base:1\nUSER 1000\nLABEL team=a tier=b\n"), {}).inherited);
  PlanVerdict scratch = EvaluatePlan(ps, MustPlan("FROM scratch\n"), {});
  EXPECT_FALSE(scratch.inherited);
  EXPECT_EQ(Rules(scratch.violations),
            (std::vector<std::string>{"user.require_non_root@1:1", "labels.required@1:1", "labels.required@1:1"}));
}

TEST(PolicyEvalTest, AddChecksumsAndMountTypes) {
  const char* p = "add: {require_checksum: true}\nmounts: {allow: [cache, secret]}\n";
  std::string df =
      "FROM scratch\n"
      "ADD https://example.org/a.tgz /a\n"
      "ADD --checksum=sha256:" + std::string(64, 'c') + " https://example.org/b.tgz /b\n"
      "ADD local.tgz /c\n"
      "RUN --mount=type=cache,target=/c --mount=type=secret,id=s true\n"
      "RUN --mount=target=/src true\n"
      "RUN --mount=type=ssh true\n";
  EXPECT_EQ(Check(p, df), (std::vector<std::string>{"add.require_checksum@2:1", "mounts.allow@6:1", "mounts.allow@7:1"}));
  EXPECT_TRUE(Check("mounts: {allow: []}\n", "FROM scratch\nRUN true\n").empty());
  EXPECT_EQ(Check("mounts: {allow: []}\n", "FROM scratch\nRUN --mount=type=tmpfs,target=/t true\n"),
            (std::vector<std::string>{"mounts.allow@2:1"}));
}

TEST(PolicyEvalTest, MessagesCarryFileLineColumnRuleAndCaret) {
  std::vector<Policy> ps = {MustParse("bases: {forbid_tags: [latest]}\nuser: {require_non_root: true}\n")};
  PlanVerdict v = EvaluatePlan(ps, MustPlan("FROM busybox:latest\nUSER root\n"), {});
  ASSERT_EQ(v.violations.size(), 2u);
  EXPECT_EQ(v.violations[0].formatted,
            "Dockerfile:1:1: policy bases.forbid_tags: FROM busybox:latest uses the forbidden tag latest (forbidden: "
            "latest)\nFROM busybox:latest\n^");
  EXPECT_EQ(v.violations[1].formatted, "Dockerfile:2:1: policy user.require_non_root: USER root runs the image as root\nUSER root\n^");
  Status s = Verdict(v.violations, ps);
  EXPECT_EQ(s.code(), ErrorCode::kPolicyViolation);
  EXPECT_EQ(s.message().rfind("the build breaks its policy (policy.yaml): 2 violations\nDockerfile:1:1: policy bases.forbid_tags", 0), 0u);
  EXPECT_TRUE(Verdict({}, ps).ok());
}

TEST(PolicyEvalTest, SeveralPoliciesAllApplyAndAreNamed) {
  std::vector<Policy> ps = {MustParse("bases: {forbid_tags: [latest]}\n"), MustParse("user: {require_non_root: true}\n")};
  ps[0].origin = "$KILN_POLICY (/etc/kiln/policy.yaml)";
  PlanVerdict v = EvaluatePlan(ps, MustPlan("FROM busybox\nUSER root\n"), {});
  EXPECT_EQ(Rules(v.violations), (std::vector<std::string>{"bases.forbid_tags@1:1", "user.require_non_root@2:1"}));
  EXPECT_NE(v.violations[0].formatted.find("[$KILN_POLICY (/etc/kiln/policy.yaml)]"), std::string::npos);
  EXPECT_NE(v.violations[1].formatted.find("[policy.yaml]"), std::string::npos);
}

TEST(PolicyEvalTest, DigestPatternsWaitForTheResolvedDigest) {
  std::string good = "sha256:" + std::string(64, 'd'), bad = "sha256:" + std::string(64, 'e');
  std::vector<Policy> ps = {MustParse("bases: {allow: [\"docker.io/library/busybox@" + good + "\"]}\n")};
  dockerfile::Plan plan = MustPlan("FROM scratch\nCOPY --from=busybox:1.36 /bin/sh /sh\n");
  PlanVerdict v = EvaluatePlan(ps, plan, {});
  EXPECT_TRUE(v.violations.empty());
  ASSERT_EQ(v.pending.size(), 1u);
  EXPECT_EQ(v.pending[0].what, "COPY --from=busybox:1.36");
  EXPECT_TRUE(EvaluateResolved(ps, v.pending[0], good, plan.source).empty());
  std::vector<Violation> r = EvaluateResolved(ps, v.pending[0], bad, plan.source);
  EXPECT_EQ(Rules(r), (std::vector<std::string>{"bases.allow@2:1"}));
  EXPECT_NE(r[0].message.find("resolved to " + bad), std::string::npos);
  // Written with the digest: decided on the plan.
  EXPECT_TRUE(EvaluatePlan(ps, MustPlan("FROM busybox@" + good + "\n"), {}).pending.empty());
  EXPECT_EQ(Rules(EvaluatePlan(ps, MustPlan("FROM busybox@" + bad + "\n"), {}).violations),
            (std::vector<std::string>{"bases.allow@1:1"}));
}

TEST(PolicyEvalTest, ImageSize) {
  std::vector<Policy> ps = {MustParse("image: {max_size: 1k}\n")};
  dockerfile::Plan plan = MustPlan("FROM scratch AS a\nFROM scratch\nCOPY --from=a / /\n");
  EXPECT_TRUE(EvaluateImageSize(ps, 1024, plan).empty());
  std::vector<Violation> v = EvaluateImageSize(ps, 1025, plan);
  EXPECT_EQ(Rules(v), (std::vector<std::string>{"image.max_size@2:1"}));
  EXPECT_NE(v[0].message.find("1025 bytes compressed, over the 1024 allowed"), std::string::npos);
  EXPECT_TRUE(EvaluateImageSize({MustParse("user: {require_non_root: true}\n")}, 1 << 30, plan).empty());
}

}  // namespace
}  // namespace kiln::policy
