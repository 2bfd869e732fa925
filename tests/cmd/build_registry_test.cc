// `kiln build` end to end: the registry access flags (--skip-tls-verify, --skip-tls-verify-pull,
// --registry-certificate, --registry-mirror, --push-retry, --image-download-retry against injected
// faults) and the remaining build and log flags (--snapshot-mode, --compression uncompressed,
// --compression-level, --log-timestamp, --verbosity).
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::BuildEnv;
using testing::Stat;

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

class BuildRegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::HaveRoot() || !testing::HaveBusyboxStatic()) return;
    testing::RegistryOptions faulty;
    faulty.fault_proxy = true;
    env_ = new BuildEnv(KILN_BINARY, faulty);
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  void SetUp() override {
    if (env_ == nullptr) GTEST_SKIP() << "needs root and Debian's busybox-static";
    env_->reg().SetFaults("");
  }
  static std::string Context(const std::string& from) {
    return env_->Context({{"Dockerfile", "FROM " + from + "\nRUN echo built > /built\n"}});
  }
  static BuildEnv* env_;
};
BuildEnv* BuildRegistryTest::env_ = nullptr;

TEST_F(BuildRegistryTest, TlsWithAPrivateCa) {
  testing::RegistryOptions o;
  o.tls = true;
  auto tls = testing::RegistryServer::Start(o);
  testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", *tls, "busybox:latest");
  std::string ctx = Context(tls->host() + "/busybox:latest");
  std::string base = "build --context " + ctx + " --state-dir " + env_->state_dir() + " --destination " + tls->host() +
                     "/out:";

  // Not trusted: refused, and the message says why.
  auto refused = testing::RunKiln(KILN_BINARY, base + "1");
  EXPECT_EQ(refused.rc, 1) << refused.err;
  EXPECT_TRUE(Has(refused.err, tls->host())) << refused.err;
  EXPECT_TRUE(Has(refused.err, "certificate")) << refused.err;

  auto skip = testing::RunKiln(KILN_BINARY, base + "3 --skip-tls-verify-pull --skip-tls-verify");
  ASSERT_EQ(skip.rc, 0) << skip.err;
  auto ca = testing::RunKiln(KILN_BINARY, base + "4 --registry-certificate " + tls->host() + "=" + tls->ca_cert_path());
  ASSERT_EQ(ca.rc, 0) << ca.err;
  auto img = testing::ReadImage("docker://" + tls->host() + "/out:4", env_->NewDir("read"),
                                testing::SkopeoSourceFlags(*tls));
  EXPECT_EQ(Stat(img.rootfs, "built").content, "built\n");
  std::string out;
  EXPECT_EQ(testing::RunShell("skopeo inspect --raw " + testing::SkopeoSourceFlags(*tls) + " docker://" + tls->host() +
                                  "/out:3",
                              &out),
            0)
      << out;
}

TEST_F(BuildRegistryTest, SkipTlsVerifyPullDoesNotCoverThePush) {
  testing::RegistryOptions o;
  o.tls = true;
  auto tls = testing::RegistryServer::Start(o);
  testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", *tls, "busybox:latest");
  std::string ctx = Context(tls->host() + "/busybox:latest");
  // Pull unverified (Kaniko: only the base images), push still verified: the push fails.
  auto half = testing::RunKiln(KILN_BINARY, "build --context " + ctx + " --state-dir " + env_->state_dir() +
                                                " --destination " + tls->host() + "/out:2 --skip-tls-verify-pull");
  EXPECT_EQ(half.rc, 1) << half.err;
  EXPECT_TRUE(Has(half.err, "certificate")) << half.err;
  std::string out;
  EXPECT_NE(testing::RunShell("skopeo inspect --raw " + testing::SkopeoSourceFlags(*tls) + " docker://" + tls->host() +
                                  "/out:2",
                              &out),
            0)
      << "pushed without verifying the registry's certificate";
}

TEST_F(BuildRegistryTest, DockerHubImagesComeFromTheMirror) {
  // busybox:latest means docker.io/library/busybox:latest; the mirror serves it as library/busybox.
  testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", env_->reg(),
                          "library/busybox:latest");
  env_->reg().ClearRequests();
  std::string ctx = Context("busybox:latest");
  auto r = env_->Build(ctx, "--registry-mirror " + env_->reg().host() + " --insecure-registry " + env_->reg().host() +
                                " --skip-default-registry-fallback --destination " + env_->Ref("mirrored:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Stat(env_->Read("mirrored:1").rootfs, "built").content, "built\n");
  bool from_mirror = false;
  for (const std::string& req : env_->reg().Requests()) from_mirror |= req.rfind("GET /v2/library/busybox/manifests/", 0) == 0;
  EXPECT_TRUE(from_mirror) << ::testing::PrintToString(env_->reg().Requests());

  // A mirror without the image and no fallback allowed: a failure naming the image.
  std::string missing = Context("no-such-hub-image:1");
  auto m = env_->Build(missing, "--registry-mirror " + env_->reg().host() + " --insecure-registry " +
                                    env_->reg().host() + " --skip-default-registry-fallback --destination " +
                                    env_->Ref("mirrored:2"));
  EXPECT_EQ(m.rc, 1) << m.err;
  EXPECT_TRUE(Has(m.err, "no-such-hub-image")) << m.err;
}

TEST_F(BuildRegistryTest, RetriesGetPastFaults) {
  std::string ctx = Context(env_->Ref("busybox:latest"));
  // The manifest PUT fails twice with 500, a blob download breaks off once.
  env_->reg().SetFaults("PUT */manifests/*: status=500 times=2; GET /v2/*/blobs/*: drop-after=100 times=1");
  // A fresh state directory, so the base's blobs are downloaded again.
  auto r = testing::RunKiln(KILN_BINARY, "build --context " + ctx + " --state-dir " + env_->NewDir("fresh-state") +
                                             " --insecure --insecure-pull --destination " + env_->Ref("retried:1") +
                                             " --push-retry 3 --image-download-retry 3");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(env_->reg().PendingFaults(), 0);
  env_->reg().SetFaults("");
  EXPECT_EQ(Stat(env_->Read("retried:1").rootfs, "built").content, "built\n");
}

TEST_F(BuildRegistryTest, SnapshotModesAndCompressionSettings) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "RUN echo built > /built && rm /bin/vi\n"}});
  std::string digest;
  for (const char* mode : {"full", "redo", "time"}) {
    auto r = env_->Build(ctx, std::string("--reproducible --snapshot-mode ") + mode + " --destination " +
                                  env_->Ref(std::string("modes:") + mode));
    ASSERT_EQ(r.rc, 0) << mode << "\n" << r.err;
    auto img = env_->Read(std::string("modes:") + mode);
    EXPECT_EQ(Stat(img.rootfs, "built").content, "built\n") << mode;
    EXPECT_EQ(Stat(img.rootfs, "bin/vi").type, '-') << mode;
    if (digest.empty()) digest = img.digest;
    EXPECT_EQ(img.digest, digest) << mode;
  }

  auto plain = env_->Build(ctx, "--compression uncompressed --destination " + env_->Ref("modes:plain"));
  ASSERT_EQ(plain.rc, 0) << plain.err;
  auto p = env_->Read("modes:plain");
  EXPECT_EQ(p.manifest["layers"][1]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
  EXPECT_EQ(p.manifest["layers"][1]["digest"], p.config["rootfs"]["diff_ids"][1]);  // no compression
  EXPECT_EQ(Stat(p.rootfs, "built").content, "built\n");

  auto best = env_->Build(ctx, "--compression gzip --compression-level 9 --destination " + env_->Ref("modes:gz9"));
  ASSERT_EQ(best.rc, 0) << best.err;
  auto g = env_->Read("modes:gz9");
  EXPECT_EQ(g.manifest["layers"][1]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(Stat(g.rootfs, "built").content, "built\n");
}

TEST_F(BuildRegistryTest, LogTimestampAndVerbosity) {
  std::string ctx = Context(env_->Ref("busybox:latest"));
  auto stamped = env_->Build(ctx, "--log-timestamp --destination " + env_->Ref("logs:1"));
  ASSERT_EQ(stamped.rc, 0) << stamped.err;
  std::istringstream lines(stamped.err);
  int steps = 0;
  std::regex stamp("^\\S*\\d\\d:\\d\\d:\\d\\d");
  for (std::string line; std::getline(lines, line);) {
    if (!Has(line, "STEP ")) continue;  // a RUN step's own output is passed through as it is
    ++steps;
    EXPECT_TRUE(std::regex_search(line, stamp)) << line;
  }
  EXPECT_GE(steps, 4) << stamped.err;

  auto quiet = env_->Build(ctx, "--verbosity error --destination " + env_->Ref("logs:2"));
  ASSERT_EQ(quiet.rc, 0) << quiet.err;
  EXPECT_FALSE(Has(quiet.err, "STEP")) << quiet.err;
  EXPECT_FALSE(Has(quiet.err, "pushed")) << quiet.err;
  EXPECT_TRUE(env_->TagExists("logs:2"));
}

}  // namespace
}  // namespace kiln
