// `kiln build` with a Kaniko job's command line and environment, unchanged: the flags Kaniko accepts
// that mean nothing for kiln (accepted and named once), the deprecated spellings, "-v=trace",
// KANIKO_* variables and BENCHMARK_FILE, --context-sub-path, --registry-map and mirrors with a path
// (Harbor/Nexus proxy projects) against a second real registry, --cache-repo oci:DIR and
// --no-push-cache, and a failing RUN's own exit code.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using testing::BuildEnv;
using testing::KilnRun;

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class BuildKanikoFlagsTest : public testing::BuildEnvSuite {
 protected:
  static void SetUpTestSuite() {
    BuildEnvSuite::SetUpTestSuite();
    if (env_ == nullptr) return;
    mirror_ = testing::RegistryServer::Start({}).release();
    // The mirror holds the base under a project path, as a Harbor proxy project does.
    testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", *mirror_,
                            "proxy/base/busybox:latest");
    testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", *mirror_,
                            "hub/library/busybox:latest");
  }
  static void TearDownTestSuite() {
    delete mirror_;
    mirror_ = nullptr;
    BuildEnvSuite::TearDownTestSuite();
  }

  static testing::RegistryServer* mirror_;
};
testing::RegistryServer* BuildKanikoFlagsTest::mirror_ = nullptr;

TEST_F(BuildKanikoFlagsTest, FailingRunExitsWithTheStepsOwnCode) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN echo failing; exit 7\n"}});
  KilnRun r = env_->Build(ctx, "--destination " + env_->Ref("flags/exit:1"));
  EXPECT_EQ(r.rc, 7) << r.err;
  EXPECT_TRUE(Has(r.err, "Dockerfile:2")) << r.err;
  EXPECT_FALSE(env_->TagExists("flags/exit:1"));

  // Killed by a signal: 128 + the signal, as a shell reports it.
  std::string killed = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN kill -9 $$\n"}});
  KilnRun k = env_->Build(killed, "--no-push");
  EXPECT_EQ(k.rc, 128 + 9) << k.err;

  // Errors that are not a step's stay kiln's own code.
  std::string missing = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nCOPY nothere /x\n"}});
  EXPECT_EQ(env_->Build(missing, "--no-push").rc, 1);
}

// Kaniko shows RUN output whatever --verbosity says; a failing step's output must never be hidden.
TEST_F(BuildKanikoFlagsTest, RunOutputIsShownAtEveryVerbosity) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN echo step-says-hello\n"
                                                  "RUN echo step-says-why >&2; exit 4\n"}});
  for (const char* level : {"warn", "error", "panic"}) {
    KilnRun r = env_->Build(ctx, std::string("--no-push --verbosity=") + level);
    EXPECT_EQ(r.rc, 4) << r.err;
    EXPECT_TRUE(Has(r.err + r.out, "step-says-hello")) << level << ":\n" << r.err;
    EXPECT_TRUE(Has(r.err + r.out, "step-says-why")) << level << ":\n" << r.err;
    EXPECT_FALSE(Has(r.err, "STEP 1/3")) << "info lines at --verbosity=" << level << ":\n" << r.err;
  }
}

TEST_F(BuildKanikoFlagsTest, HarmlessKanikoFlagsAndDeprecatedSpellingsAreAccepted) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN echo ran > /ran\n"}});
  std::string tar = env_->NewDir("out") + "/image.tar";
  KilnRun r = env_->Build(ctx, "--destination " + env_->Ref("flags/accepted:1") +
                                   " --force --use-new-run --push-ignore-immutable-tag-errors -v=debug"
                                   " --snapshotMode=redo --customPlatform=" + testing::NativePlatform() +
                                   " --whitelist-var-run --tarPath " + tar);
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const char* flag : {"--force:", "--use-new-run:", "--push-ignore-immutable-tag-errors:"}) {
    EXPECT_TRUE(Has(r.err, flag)) << flag << " is not named in the log:\n" << r.err;
  }
  EXPECT_TRUE(std::filesystem::exists(tar)) << "--tarPath was not honoured";
  EXPECT_TRUE(env_->TagExists("flags/accepted:1"));
  EXPECT_EQ(testing::Stat(env_->Read("flags/accepted:1").rootfs, "ran").content, "ran\n");

  // "-v=trace" is Go's way of writing a short option's value; a bad value is still refused.
  EXPECT_EQ(env_->Build(ctx, "--no-push -v=trace").rc, 0);
  EXPECT_EQ(env_->Build(ctx, "--no-push -v=loud").rc, 2);
}

TEST_F(BuildKanikoFlagsTest, VersionAnswersAsKilnAndAsKanikosExecutor) {
  KilnRun v = testing::RunKiln(KILN_BINARY, "--version");
  EXPECT_EQ(v.rc, 0) << v.err;
  EXPECT_TRUE(Has(v.out, "kiln ")) << v.out;
  std::string dir = env_->NewDir("kaniko");
  std::string executor = dir + "/executor";
  ASSERT_EQ(::symlink(KILN_BINARY, executor.c_str()), 0);
  KilnRun ev = testing::RunKiln(executor, "version");
  EXPECT_EQ(ev.rc, 0) << ev.err;
  EXPECT_TRUE(Has(ev.out, "kiln ")) << ev.out;
}

TEST_F(BuildKanikoFlagsTest, KanikoEnvironmentVariables) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN echo x > /x\n"}});
  std::string bench = env_->NewDir("bench") + "/timings.json";
  KilnRun r = env_->Build(ctx, "--destination " + env_->Ref("flags/env:1"),
                          "KANIKO_NO_PUSH=true BENCHMARK_FILE=" + bench);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_FALSE(env_->TagExists("flags/env:1")) << "KANIKO_NO_PUSH=true pushed anyway";
  nlohmann::json timings = nlohmann::json::parse(Slurp(bench), nullptr, false);
  ASSERT_TRUE(timings.is_object()) << Slurp(bench);
  EXPECT_GT(timings.value("Total", int64_t{0}), 0) << timings.dump();
  EXPECT_GT(timings.value("RUN", int64_t{0}), 0) << timings.dump();

  KilnRun no = env_->Build(ctx, "--destination " + env_->Ref("flags/env:2"), "KANIKO_NO_PUSH=false");
  ASSERT_EQ(no.rc, 0) << no.err;
  EXPECT_TRUE(env_->TagExists("flags/env:2"));
  EXPECT_EQ(env_->Build(ctx, "--no-push", "KANIKO_NO_PUSH=maybe").rc, 2);
}

TEST_F(BuildKanikoFlagsTest, ContextSubPath) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nCOPY top.txt /top\n"},
                                   {"top.txt", "top\n"},
                                   {"app/Dockerfile", "FROM @REG@/busybox:latest\nCOPY inner.txt /inner\n"},
                                   {"app/inner.txt", "inner\n"}});
  KilnRun r = env_->Build(ctx, "--context-sub-path app --destination " + env_->Ref("flags/sub:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("flags/sub:1");
  EXPECT_EQ(testing::Stat(img.rootfs, "inner").content, "inner\n");
  EXPECT_EQ(testing::Stat(img.rootfs, "top").type, '-');
  KilnRun out = env_->Build(ctx, "--context-sub-path ../.. --no-push");
  EXPECT_EQ(out.rc, 2) << out.err;
  EXPECT_TRUE(Has(out.err, "--context-sub-path")) << out.err;
}

TEST_F(BuildKanikoFlagsTest, RegistryMapWithAPathPullsFromTheMirrorOnly) {
  // The origin is a closed port: the build can only succeed through the map.
  std::string origin = "127.0.0.1:" + std::to_string(testing::UnusedLoopbackPort());
  std::string ctx = env_->Context({{"Dockerfile", "FROM " + origin + "/base/busybox:latest\nRUN echo mapped > /m\n"}});
  KilnRun r = env_->Build(ctx, "--registry-map " + origin + "=" + mirror_->host() + "/proxy --insecure-registry " +
                                   mirror_->host() + " --skip-default-registry-fallback --destination " +
                                   env_->Ref("flags/map:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(testing::Stat(env_->Read("flags/map:1").rootfs, "m").content, "mapped\n");

  // The same from Kaniko's environment variable, with ';' between pairs.
  KilnRun e = env_->Build(ctx, "--insecure-registry " + mirror_->host() +
                                   " --skip-default-registry-fallback --no-push",
                          "KANIKO_REGISTRY_MAP='other.example=nowhere.example;" + origin + "=" + mirror_->host() +
                              "/proxy'");
  EXPECT_EQ(e.rc, 0) << e.err;

  // Without the map the closed origin fails the build, naming it.
  KilnRun none = env_->Build(ctx, "--no-push");
  EXPECT_NE(none.rc, 0);
  EXPECT_TRUE(Has(none.err, origin)) << none.err;

  EXPECT_EQ(env_->Build(ctx, "--no-push --registry-map nonsense").rc, 1);
}

TEST_F(BuildKanikoFlagsTest, DockerHubMirrorWithAPath) {
  // FROM busybox means docker.io/library/busybox; --skip-default-registry-fallback keeps docker.io
  // itself out of reach, so only hub/library/busybox on the mirror can serve it.
  std::string ctx = env_->Context({{"Dockerfile", "FROM busybox\nRUN echo hub > /h\n"}});
  KilnRun r = env_->Build(ctx, "--registry-mirror " + mirror_->host() + "/hub --insecure-registry " +
                                   mirror_->host() + " --skip-default-registry-fallback --destination " +
                                   env_->Ref("flags/hub:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(testing::Stat(env_->Read("flags/hub:1").rootfs, "h").content, "hub\n");
  KilnRun e = env_->Build(ctx, "--insecure-registry " + mirror_->host() + " --skip-default-registry-fallback --no-push",
                          "KANIKO_REGISTRY_MIRROR=" + mirror_->host() + "/hub");
  EXPECT_EQ(e.rc, 0) << e.err;
}

TEST_F(BuildKanikoFlagsTest, CacheRepoAsOciLayoutAndNoPushCache) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN echo cached > /c\n"}});
  std::string cache = env_->NewDir("oci-cache");

  // --no-push-cache: read, store nothing.
  KilnRun ro = env_->Build(ctx, "--cache --cache-repo oci:" + cache + " --no-push-cache --no-push");
  ASSERT_EQ(ro.rc, 0) << ro.err;
  EXPECT_TRUE(Has(ro.err, "read only")) << ro.err;
  std::string entries = cache + "/kiln-cache/layers";
  EXPECT_TRUE(!std::filesystem::exists(entries) || std::filesystem::is_empty(entries)) << "--no-push-cache stored";

  KilnRun first = env_->Build(ctx, "--cache --cache-repo oci:" + cache + " --no-push");
  ASSERT_EQ(first.rc, 0) << first.err;
  EXPECT_TRUE(std::filesystem::exists(cache + "/oci-layout"));
  KilnRun second = env_->Build(ctx, "--cache --cache-repo oci:" + cache + " --destination " + env_->Ref("flags/oci:1"));
  ASSERT_EQ(second.rc, 0) << second.err;
  EXPECT_TRUE(Has(second.err, "cache hit")) << second.err;
  EXPECT_EQ(testing::Stat(env_->Read("flags/oci:1").rootfs, "c").content, "cached\n");
}

// In a GitLab job each stage is a collapsible section of the job log; elsewhere nothing changes.
TEST_F(BuildKanikoFlagsTest, GitlabJobsGetOneCollapsibleSectionPerStage) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest AS one\nRUN echo first\n"
                                                  "FROM @REG@/busybox:latest\nCOPY --from=one /bin/sh /sh\n"}});
  KilnRun r = env_->Build(ctx, "--no-push", "GITLAB_CI=true");
  ASSERT_EQ(r.rc, 0) << r.err;
  size_t start1 = r.err.find("section_start:"), end1 = r.err.find("section_end:");
  ASSERT_NE(start1, std::string::npos) << r.err;
  EXPECT_TRUE(Has(r.err, ":kiln_stage_1\r\x1b[0Kkiln: stage 1/2\n")) << r.err;
  EXPECT_TRUE(Has(r.err, "section_end:")) << r.err;
  EXPECT_LT(start1, r.err.find("first")) << "the step's output is inside its section";
  EXPECT_LT(r.err.find("first"), end1);
  EXPECT_TRUE(Has(r.err, ":kiln_stage_2\r")) << r.err;
  // The closing summary is outside every section.
  EXPECT_LT(r.err.rfind("section_end:"), r.err.find("built image")) << r.err;

  KilnRun plain = env_->Build(ctx, "--no-push");
  EXPECT_FALSE(Has(plain.err, "section_start")) << plain.err;
  KilnRun json = env_->Build(ctx, "--no-push --log-format json", "GITLAB_CI=true");
  EXPECT_FALSE(Has(json.err, "section_start")) << json.err;
}

// A runAsNonRoot runner keeps HOME=/root, which its uid cannot write: kiln picks a private state
// directory under TMPDIR by itself and says so; one that belongs to another uid is refused.
TEST_F(BuildKanikoFlagsTest, NonRootWithUnwritableHomePicksItsOwnStateDir) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nCOPY f /f\n"}, {"f", "x\n"}});
  std::string tmp = env_->NewDir("nonroot-tmp");
  ASSERT_EQ(::chown(tmp.c_str(), testing::kNobodyUid, testing::kNobodyUid), 0);
  std::string as_nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups";
  std::string common = "HOME=/root XDG_CACHE_HOME= KILN_DIR= TMPDIR=" + tmp;
  KilnRun r = testing::RunKiln(KILN_BINARY, "build --context " + ctx + " --insecure-pull --no-push", common, as_nobody);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(Has(r.err, "/root/.cache/kiln is not writable")) << r.err;
  struct stat st;
  ASSERT_EQ(::stat((tmp + "/kiln-65534").c_str(), &st), 0) << r.err;
  EXPECT_EQ(st.st_uid, static_cast<unsigned>(testing::kNobodyUid));
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  // Someone else's directory in its place is refused, naming the flag that fixes it.
  std::string planted = env_->NewDir("planted-tmp");
  ASSERT_EQ(::chmod(planted.c_str(), 01777), 0);
  ASSERT_EQ(::mkdir((planted + "/kiln-65534").c_str(), 0777), 0);
  ASSERT_EQ(::chmod((planted + "/kiln-65534").c_str(), 0777), 0);
  KilnRun p = testing::RunKiln(KILN_BINARY, "build --context " + ctx + " --insecure-pull --no-push",
                               "HOME=/root XDG_CACHE_HOME= KILN_DIR= TMPDIR=" + planted, as_nobody);
  EXPECT_NE(p.rc, 0) << p.err;
  EXPECT_TRUE(Has(p.err, "--state-dir")) << p.err;
}

}  // namespace
}  // namespace kiln
