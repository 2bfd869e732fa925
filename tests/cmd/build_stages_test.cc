// `kiln build` end to end: multi-stage builds. FROM scratch / an image / an earlier stage /
// --platform from a two-platform index, COPY --from a stage name, a stage index and an image,
// --target, and stages nobody needs not being built at all.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::BuildEnv;
using testing::FileInfo;
using testing::ListTree;
using testing::Stat;
using Paths = std::vector<std::string>;

class BuildStagesTest : public testing::BuildEnvSuite {
 protected:
  static void SetUpTestSuite() {
    BuildEnvSuite::SetUpTestSuite();
    if (env_ == nullptr) return;
    testing::PushToRegistry("oci:" + testing::MultiPlatformLayout(KILN_BINARY) + ":multi", env_->reg(), "multi:1");
    testing::PushToRegistry("oci:" + testing::MultiPlatformLayout(KILN_BINARY) + ":multi-reversed", env_->reg(),
                            "multi:reversed");
  }

  static std::string Dockerfile() {
    return "ARG BASE=@REG@/busybox:latest\n"
           "FROM ${BASE} AS builder\n"
           "RUN mkdir /out && echo built > /out/artifact && echo other > /out/other && chown 1000:50 /out/other\n"
           "ENV BUILDER_ENV=b\n"
           "\n"
           "FROM scratch AS tiny\n"
           "COPY --from=builder /out/artifact /artifact\n"
           "\n"
           "FROM @REG@/busybox:latest AS broken\n"
           "RUN echo this stage is not needed; exit 7\n"
           "\n"
           "FROM builder AS child\n"
           "RUN echo child >> /out/artifact\n"
           "\n"
           "FROM --platform=" + testing::ForeignPlatform() + " @REG@/multi:1 AS foreign\n"
           "COPY --from=tiny /artifact /artifact\n"
           "\n"
           "FROM @REG@/busybox:latest\n"
           "COPY --from=builder /out /fromname\n"
           "COPY --from=0 /out/other /fromindex\n"
           "COPY --from=@REG@/multi:1 /etc/platform /fromimage\n"
           "COPY --from=tiny /artifact /fromtiny\n"
           "COPY --from=child /out/artifact /fromchild\n"
           "COPY --from=builder --chown=app:staff --chmod=0600 /out/artifact /chowned\n";
  }

};

TEST_F(BuildStagesTest, CopyFromStageNameIndexImageAndChildStage) {
  std::string ctx = env_->Context({{"Dockerfile", Dockerfile()}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("stages:last"));
  ASSERT_EQ(r.rc, 0) << r.err;
  // The stage that fails was not needed, so it never ran.
  EXPECT_EQ(r.err.find("this stage is not needed"), std::string::npos) << r.err;
  auto img = env_->Read("stages:last");
  const std::string& fs = img.rootfs;
  EXPECT_EQ(ListTree(fs, "fromname"), (Paths{"fromname/artifact", "fromname/other"}));
  EXPECT_EQ(Stat(fs, "fromname/artifact").content, "built\n");
  // COPY --from keeps the source's owner unless --chown is given.
  FileInfo other = Stat(fs, "fromindex");
  EXPECT_EQ(other.content, "other\n");
  EXPECT_EQ(other.uid, 1000u);
  EXPECT_EQ(other.gid, 50u);
  // An image reference in --from picks the build platform's image of the index.
  EXPECT_EQ(Stat(fs, "fromimage").content, testing::NativePlatform() + "\n");
  EXPECT_EQ(Stat(fs, "fromtiny").content, "built\n");
  EXPECT_EQ(Stat(fs, "fromchild").content, "built\nchild\n");
  // --chown names come from the destination stage's /etc/passwd and /etc/group.
  FileInfo chowned = Stat(fs, "chowned");
  EXPECT_EQ(chowned.uid, 1000u);
  EXPECT_EQ(chowned.gid, 50u);
  EXPECT_EQ(chowned.mode, 0600u);
  // The last stage starts from busybox, not from what the other stages did.
  EXPECT_EQ(Stat(fs, "out").type, '-');
  const json& c = img.config["config"];
  EXPECT_EQ(c["Env"], json({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}));
  EXPECT_EQ(img.config["history"].size(), 7u);
  EXPECT_EQ(img.NonEmptyHistory(), img.config["rootfs"]["diff_ids"].size());
}

TEST_F(BuildStagesTest, TargetStopsAtAStage) {
  std::string ctx = env_->Context({{"Dockerfile", Dockerfile()}});
  // A scratch stage: one layer with just the artifact, the default PATH.
  auto r = env_->Build(ctx, "--destination " + env_->Ref("stages:tiny") + " --target tiny");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto tiny = env_->Read("stages:tiny");
  EXPECT_EQ(ListTree(tiny.rootfs, ""), Paths{"artifact"});
  EXPECT_EQ(tiny.config["rootfs"]["diff_ids"].size(), 1u);
  EXPECT_EQ(tiny.config["config"]["Env"], json({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}));

  // A stage built FROM another stage keeps its files, layers and ENV.
  auto c = env_->Build(ctx, "--destination " + env_->Ref("stages:child") + " --target child");
  ASSERT_EQ(c.rc, 0) << c.err;
  auto child = env_->Read("stages:child");
  EXPECT_EQ(Stat(child.rootfs, "out/artifact").content, "built\nchild\n");
  EXPECT_EQ(Stat(child.rootfs, "out/other").uid, 1000u);
  EXPECT_EQ(child.config["rootfs"]["diff_ids"].size(), 3u);
  EXPECT_EQ(child.config["config"]["Env"],
            json({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "BUILDER_ENV=b"}));
  EXPECT_EQ(child.NonEmptyHistory(), 3u);
}

TEST_F(BuildStagesTest, FromPlatformPicksThatImageOfTheIndex) {
  std::string ctx = env_->Context({{"Dockerfile", Dockerfile()}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("stages:foreign") + " --target foreign");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("stages:foreign");
  EXPECT_EQ(Stat(img.rootfs, "etc/platform").content, testing::ForeignPlatform() + "\n");
  EXPECT_EQ(Stat(img.rootfs, "etc/foreign").type, 'f');
  EXPECT_EQ(Stat(img.rootfs, "artifact").content, "built\n");
  std::string platform = img.config["os"].get<std::string>() + "/" + img.config["architecture"].get<std::string>();
  if (img.config.contains("variant")) platform += "/" + img.config["variant"].get<std::string>();
  EXPECT_EQ(platform, testing::ForeignPlatform());

  // Without --platform the index resolves to this machine's image.
  std::string native = env_->Context({{"Dockerfile", "FROM @REG@/multi:1\nRUN cat /etc/platform > /seen\n"}});
  auto n = env_->Build(native, "--destination " + env_->Ref("stages:native"));
  ASSERT_EQ(n.rc, 0) << n.err;
  auto nimg = env_->Read("stages:native");
  EXPECT_EQ(Stat(nimg.rootfs, "seen").content, testing::NativePlatform() + "\n");
  EXPECT_EQ(Stat(nimg.rootfs, "etc/foreign").type, '-');

  // The same when the index lists the foreign image first: chosen by platform, not by position.
  std::string reversed = env_->Context({{"Dockerfile", "FROM @REG@/multi:reversed\nRUN cat /etc/platform > /seen\n"}});
  auto rv = env_->Build(reversed, "--destination " + env_->Ref("stages:reversed"));
  ASSERT_EQ(rv.rc, 0) << rv.err;
  EXPECT_EQ(Stat(env_->Read("stages:reversed").rootfs, "seen").content, testing::NativePlatform() + "\n");
}

TEST_F(BuildStagesTest, BuildArgChoosesTheBase) {
  std::string ctx = env_->Context({{"Dockerfile", "ARG BASE=@REG@/busybox:latest\nFROM $BASE\nRUN cat /etc/platform > /seen\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("stages:arg") + " --build-arg BASE=" + env_->Ref("multi:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Stat(env_->Read("stages:arg").rootfs, "seen").content, testing::NativePlatform() + "\n");
}

// --jobs: two stages that need nothing of each other (left, right) are built at once, each RUN
// sleeping a second; the image is the one a serial build makes, byte for byte, and the log of the
// parallel build says which stage each line is from.
std::string TwoBranchesDockerfile(const std::string& left_run, const std::string& right_run) {
  return "FROM @REG@/busybox:latest AS base\n"
         "RUN echo common > /common\n"
         "FROM base AS left\n"
         "RUN " + left_run + "\n"
         "FROM base AS right\n"
         "RUN " + right_run + "\n"
         "RUN echo right-second-$((1+1)) | tee /right2.txt\n"
         "FROM base\n"
         "COPY --from=left /left.txt /left.txt\n"
         "COPY --from=right /right.txt /right2.txt /\n";
}

TEST_F(BuildStagesTest, JobsBuildIndependentStagesAtOnceWithTheSameResult) {
  std::string ctx = env_->Context({{"Dockerfile", TwoBranchesDockerfile(
      "sleep 1 && echo from-left && echo left > /left.txt", "sleep 1 && echo from-right && echo right > /right.txt")}});
  auto timed = [&](const std::string& tag, const std::string& jobs) {
    auto start = std::chrono::steady_clock::now();
    auto r = env_->Build(ctx, "--reproducible --jobs " + jobs + " --destination " + env_->Ref(tag));
    return std::make_pair(r, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  };
  auto [serial, serial_s] = timed("jobs:serial", "1");
  ASSERT_EQ(serial.rc, 0) << serial.err;
  auto [parallel, parallel_s] = timed("jobs:parallel", "2");
  ASSERT_EQ(parallel.rc, 0) << parallel.err;
  std::printf("kiln build --jobs 1: %.2fs, --jobs 2: %.2fs\n", serial_s, parallel_s);
  RecordProperty("serial_seconds", std::to_string(serial_s));
  RecordProperty("parallel_seconds", std::to_string(parallel_s));

  auto a = env_->Read("jobs:serial");
  auto b = env_->Read("jobs:parallel");
  EXPECT_EQ(a.digest, b.digest) << "--jobs 2 built another image than --jobs 1";
  EXPECT_EQ(Stat(b.rootfs, "left.txt").content, "left\n");
  EXPECT_EQ(Stat(b.rootfs, "right2.txt").content, "right-second-2\n");
  EXPECT_EQ(Stat(b.rootfs, "common").content, "common\n");

  // Serial: the log as it always was. Parallel: every line of a stage, its RUN output included,
  // starts with the stage's tag; the stages before and after the branches too.
  EXPECT_EQ(serial.err.find("[#2 left]"), std::string::npos) << serial.err;
  EXPECT_NE(serial.err.find("\nfrom-left\n"), std::string::npos) << serial.err;
  EXPECT_NE(parallel.err.find("[#2 left] from-left\n"), std::string::npos) << parallel.err;
  EXPECT_NE(parallel.err.find("[#3 right] from-right\n"), std::string::npos) << parallel.err;
  EXPECT_NE(parallel.err.find("[#3 right] [stage 3/4] STEP 3/3: RUN echo right-second"), std::string::npos)
      << parallel.err;
  EXPECT_NE(parallel.err.find("[#1 base] [stage 1/4] STEP 1/2: FROM"), std::string::npos) << parallel.err;
  EXPECT_NE(parallel.err.find("[#4] [stage 4/4] STEP 2/3: COPY --from=left"), std::string::npos) << parallel.err;
  EXPECT_EQ(parallel.err.find("\nfrom-left\n"), std::string::npos) << parallel.err;
}

// A stage that fails while another runs: the build fails with its message, the other stage's
// running RUN (a 30 s sleep) is ended at once rather than awaited, nothing is pushed.
TEST_F(BuildStagesTest, JobsFirstFailingStageFailsTheBuild) {
  std::string ctx = env_->Context({{"Dockerfile", TwoBranchesDockerfile(
      "sleep 1; echo left-is-broken; exit 3", "sleep 30 && echo right > /right.txt")}});
  auto start = std::chrono::steady_clock::now();
  auto r = env_->Build(ctx, "--jobs 2 --destination " + env_->Ref("jobs:failed"), "", "timeout 120");
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.rc, 0) << r.err;
  EXPECT_NE(r.rc, 124) << "kiln hung: " << r.err;
  EXPECT_LT(took, 20.0) << "the other stage's RUN was awaited, not ended: " << r.err;
  EXPECT_NE(r.err.find("[#2 left] left-is-broken"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("exit code 3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Dockerfile:4"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("stopped: another stage failed"), std::string::npos) << "the first failure is the one shown: " << r.err;
  EXPECT_EQ(r.err.find("right-second-2"), std::string::npos) << "right's next step should not have run: " << r.err;
  EXPECT_FALSE(env_->TagExists("jobs:failed"));
}

}  // namespace
}  // namespace kiln
