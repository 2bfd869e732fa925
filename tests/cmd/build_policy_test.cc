// `kiln build --policy` / `kiln plan --policy` / $KILN_POLICY end to end, against the local registry:
// a Dockerfile breaking several rules exits 77 listing every violation at its file:line:column with
// the rule's name and pushes nothing; a compliant build pushes; `kiln plan` checks without building;
// the environment's policy applies together with --policy; image.max_size stops the push.
#include <gtest/gtest.h>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"
#include "tests/testing/temp_dir.h"

namespace kiln {
namespace {

using testing::KilnRun;

constexpr int kExitPolicy = 77, kExitUsage = 2;

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

class BuildPolicyTest : public testing::BuildEnvSuite {
 protected:
  // A policy file (in a fresh directory) with "@REG@" replaced by the registry's host:port.
  static std::string PolicyFile(std::string text, const std::string& name = "policy.yaml") {
    for (size_t at; (at = text.find("@REG@")) != std::string::npos;) text.replace(at, 5, env_->reg().host());
    std::string path = env_->NewDir("policy") + "/" + name;
    testing::WriteFile(path, text);
    return path;
  }

  static constexpr const char* kStrict =
      "bases:\n"
      "  allow: [\"@REG@/*\"]\n"
      "  forbid_tags: [latest]\n"
      "user:\n"
      "  require_non_root: true\n"
      "labels:\n"
      "  required: [org.opencontainers.image.source]\n"
      "add:\n"
      "  require_checksum: true\n"
      "mounts:\n"
      "  allow: [cache]\n";

  // Breaks every rule of kStrict, each on a line of its own.
  static constexpr const char* kBreaksAll =
      "FROM @REG@/busybox:latest AS build\n"                     // 1 forbid_tags
      "RUN --mount=type=tmpfs,target=/t true\n"                   // 2 mounts.allow
      "FROM ghcr.io/example/base:1.0 AS unused\n"                 // not needed: not checked
      "FROM @REG@/busybox:docker\n"                               // 4 labels.required: decided on its config
      "COPY --from=build /bin/busybox /bin/busybox2\n"
      "    ADD http://127.0.0.1:1/never.tgz /x\n"                 // 6 add.require_checksum, column 5
      "USER root\n";                                              // 7 user.require_non_root
};

TEST_F(BuildPolicyTest, EveryViolationListedAndNothingPushed) {
  std::string ctx = env_->Context({{"Dockerfile", kBreaksAll}});
  KilnRun r = env_->Build(ctx, "--policy " + PolicyFile(kStrict) + " --destination " + env_->Ref("policy/bad:1"));
  EXPECT_EQ(r.rc, kExitPolicy) << r.err;
  // Four on the plan; the label the image might inherit from busybox:docker is decided on that
  // image's config, which the plan's violations stop the build before fetching.
  EXPECT_TRUE(Has(r.err, "4 violations")) << r.err;
  std::string reg = env_->reg().host();
  EXPECT_TRUE(Has(r.err, "Dockerfile:1:1: policy bases.forbid_tags: FROM " + reg + "/busybox:latest uses the forbidden tag "
                         "latest")) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:2:1: policy mounts.allow: RUN --mount=type=tmpfs,target=/t: mount type tmpfs is "
                         "not allowed")) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:6:5: policy add.require_checksum: ADD of the URL http://127.0.0.1:1/never.tgz has "
                         "no --checksum")) << r.err;
  EXPECT_TRUE(Has(r.err, "    ADD http://127.0.0.1:1/never.tgz /x\n    ^")) << r.err;  // the line and its caret
  EXPECT_TRUE(Has(r.err, "Dockerfile:7:1: policy user.require_non_root: USER root runs the image as root")) << r.err;
  EXPECT_FALSE(Has(r.err, "ghcr.io")) << r.err;  // the unused stage is not built, so not checked
  EXPECT_FALSE(Has(r.err, "built image")) << r.err;
  EXPECT_FALSE(env_->TagExists("policy/bad:1"));

  // `kiln plan --policy`: the same verdict, without building (and without a registry).
  KilnRun plan = testing::RunKiln(env_->kiln(), "plan --context " + ctx + " --policy " + PolicyFile(kStrict));
  EXPECT_EQ(plan.rc, kExitPolicy) << plan.err;
  EXPECT_TRUE(Has(plan.out, "\"stages\"")) << plan.out;  // the plan is still printed
  EXPECT_TRUE(Has(plan.err, "4 violations")) << plan.err;
  EXPECT_TRUE(Has(plan.err, "Dockerfile:6:5: policy add.require_checksum")) << plan.err;
}

TEST_F(BuildPolicyTest, ACompliantBuildPushes) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:docker\n"
                                    "RUN --mount=type=cache,target=/cache echo hi > /hi\n"
                                    "LABEL org.opencontainers.image.source=https://example.org/repo\n"
                                    "USER 1000:1000\n"}});
  std::string policy = PolicyFile(kStrict);
  KilnRun plan = testing::RunKiln(env_->kiln(), "plan --context " + ctx + " --policy " + policy);
  EXPECT_EQ(plan.rc, 0) << plan.err;
  EXPECT_TRUE(Has(plan.err, "complies")) << plan.err;
  KilnRun r = env_->Build(ctx, "--policy " + policy + " --destination " + env_->Ref("policy/good:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(Has(r.err, "the plan complies")) << r.err;
  EXPECT_TRUE(env_->TagExists("policy/good:1"));
  EXPECT_EQ(env_->Read("policy/good:1", false).config["config"]["User"], "1000:1000");
}

// A Dockerfile without USER (or without a required label) makes an image that inherits them from its
// base: a base that runs as a non-root user and carries the label complies; one that runs as root
// does not, reported at the FROM with the base named.
TEST_F(BuildPolicyTest, TheBaseImagesUserAndLabelsCount) {
  std::string policy = PolicyFile("user: {require_non_root: true}\nlabels: {required: [org.opencontainers.image.source]}\n");
  std::string base_ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:docker\n"
                                                        "LABEL org.opencontainers.image.source=https://example.org/base\n"
                                                        "USER 65534:65534\n"}});
  KilnRun base = env_->Build(base_ctx, "--policy " + policy + " --destination " + env_->Ref("policy/nonroot-base:1"));
  ASSERT_EQ(base.rc, 0) << base.err;

  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/policy/nonroot-base:1\nRUN id -u > /tmp/uid\n"}});
  KilnRun plan = testing::RunKiln(env_->kiln(), "plan --context " + ctx + " --policy " + policy);
  EXPECT_EQ(plan.rc, 0) << plan.err;
  EXPECT_TRUE(Has(plan.err, "are checked by kiln build on its config")) << plan.err;
  KilnRun ok = env_->Build(ctx, "--policy " + policy + " --destination " + env_->Ref("policy/inherits:1"));
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_TRUE(Has(ok.err, "what the image inherits from")) << ok.err;
  EXPECT_TRUE(env_->TagExists("policy/inherits:1"));

  std::string root_ctx = env_->Context({{"Dockerfile", "# runs as busybox's user\nFROM @REG@/busybox:docker\nRUN true\n"}});
  KilnRun bad = env_->Build(root_ctx, "--policy " + policy + " --destination " + env_->Ref("policy/root:1"));
  EXPECT_EQ(bad.rc, kExitPolicy) << bad.err;
  EXPECT_TRUE(Has(bad.err, "2 violations")) << bad.err;
  EXPECT_TRUE(Has(bad.err, "Dockerfile:2:1: policy user.require_non_root: FROM " + env_->reg().host() +
                               "/busybox:docker: the final stage and its base image set no USER, so the image runs as root"))
      << bad.err;
  EXPECT_TRUE(Has(bad.err, "Dockerfile:2:1: policy labels.required: the image has no label org.opencontainers.image.source"))
      << bad.err;
  EXPECT_FALSE(env_->TagExists("policy/root:1"));
}

TEST_F(BuildPolicyTest, TheEnvironmentsPolicyAppliesWithTheFlags) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:docker\nUSER 0\n"}});
  std::string central = PolicyFile("user: {require_non_root: true}\n", "central.yaml");
  std::string job = PolicyFile("{\"bases\": {\"allow\": [\"ghcr.io/**\"]}}\n", "job.json");
  // From the environment alone.
  KilnRun env_only = env_->Build(ctx, "--destination " + env_->Ref("policy/env:1"), "KILN_POLICY=" + central);
  EXPECT_EQ(env_only.rc, kExitPolicy) << env_only.err;
  EXPECT_TRUE(Has(env_only.err, "Dockerfile:2:1: policy user.require_non_root: USER 0 runs the image as root"))
      << env_only.err;
  EXPECT_TRUE(Has(env_only.err, "$KILN_POLICY (" + central + ")")) << env_only.err;
  // A job's --policy adds to it; it cannot replace it.
  KilnRun both = env_->Build(ctx, "--policy " + job + " --destination " + env_->Ref("policy/env:1"),
                             "KILN_POLICY=" + central);
  EXPECT_EQ(both.rc, kExitPolicy) << both.err;
  EXPECT_TRUE(Has(both.err, "2 violations")) << both.err;
  EXPECT_TRUE(Has(both.err, "policy bases.allow: FROM " + env_->reg().host() + "/busybox:docker")) << both.err;
  EXPECT_TRUE(Has(both.err, "[" + job + "]")) << both.err;
  EXPECT_TRUE(Has(both.err, "policy user.require_non_root")) << both.err;
  // kiln plan reads it too.
  KilnRun plan = testing::RunKiln(env_->kiln(), "plan --context " + ctx, "KILN_POLICY=" + central);
  EXPECT_EQ(plan.rc, kExitPolicy) << plan.err;
  EXPECT_FALSE(env_->TagExists("policy/env:1"));

  // A policy with a typo is refused before anything happens, naming the key.
  std::string typo = PolicyFile("user:\n  require_nonroot: true\n", "typo.yaml");
  KilnRun bad = env_->Build(ctx, "--policy " + typo + " --destination " + env_->Ref("policy/env:1"));
  EXPECT_EQ(bad.rc, kExitUsage) << bad.err;
  EXPECT_TRUE(Has(bad.err, typo + ":2:3: unknown key user.require_nonroot (did you mean require_non_root?)")) << bad.err;
}

TEST_F(BuildPolicyTest, AnImageOverMaxSizeIsNotPushed) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:docker\nRUN echo hi > /hi\n"}});
  KilnRun r = env_->Build(ctx, "--policy " + PolicyFile("image: {max_size: 64k}\n") + " --destination " +
                                   env_->Ref("policy/big:1"));
  EXPECT_EQ(r.rc, kExitPolicy) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:1:1: policy image.max_size: the image's layers are ")) << r.err;
  EXPECT_TRUE(Has(r.err, "over the 65536 allowed")) << r.err;
  EXPECT_FALSE(env_->TagExists("policy/big:1"));
  // The same build under a generous limit pushes.
  KilnRun ok = env_->Build(ctx, "--policy " + PolicyFile("image: {max_size: 1g}\n") + " --destination " +
                                    env_->Ref("policy/big:1"));
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_TRUE(env_->TagExists("policy/big:1"));
}

TEST_F(BuildPolicyTest, ADigestPatternIsCheckedOnTheResolvedDigest) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:docker\nUSER 1000\n"}});
  std::string wrong = "sha256:" + std::string(64, '0');
  KilnRun r = env_->Build(ctx, "--policy " + PolicyFile("bases: {allow: [\"@REG@/busybox@" + wrong + "\"]}\n") +
                                   " --destination " + env_->Ref("policy/digest:1"));
  EXPECT_EQ(r.rc, kExitPolicy) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:1:1: policy bases.allow: FROM " + env_->reg().host() + "/busybox:docker: ")) << r.err;
  EXPECT_TRUE(Has(r.err, " resolved to sha256:")) << r.err;
  EXPECT_FALSE(env_->TagExists("policy/digest:1"));
  // The digest busybox:docker really has is allowed.
  std::string digest = env_->Read("busybox:docker", false).digest;
  KilnRun ok = env_->Build(ctx, "--policy " + PolicyFile("bases: {allow: [\"@REG@/busybox@" + digest + "\"]}\n") +
                                    " --destination " + env_->Ref("policy/digest:1"));
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_TRUE(env_->TagExists("policy/digest:1"));
}

}  // namespace
}  // namespace kiln
