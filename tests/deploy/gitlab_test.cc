// deploy/gitlab/kiln-build.sh, the GitLab job's script, run exactly as the job runs it (sh, the
// template's variables, GitLab's predefined CI_* variables, `executor` on PATH) against a TLS +
// basic-auth registry; then the pushed tags and digest are checked with skopeo and every output is
// searched for the credentials.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>

#include "tests/deploy/deploy_testing.h"
#include "tests/testing/base_images.h"

namespace kiln {
namespace {

using testing::ReadFile;
using testing::RunShell;
using testing::ShellQuote;

constexpr char kUser[] = "gitlab-ci-token";
constexpr char kToken[] = "glcbt-Tok3n-9f8e7d6c";

class GitlabJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::HaveRoot() || !testing::HaveBusyboxStatic()) return;
    work_ = new testing::TempDir();
    testing::RegistryOptions o;
    o.tls = true;
    o.user = kUser;
    o.password = kToken;
    reg_ = testing::RegistryServer::Start(o).release();
    testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", *reg_, "base/busybox:latest",
                            testing::MediaTypes::kOci, std::string(kUser) + ":" + kToken);
    // `executor` on PATH, as in kiln's image (argv[0] selects Kaniko's command line).
    std::filesystem::create_directories(work_->Sub("bin"));
    std::filesystem::create_symlink(KILN_BINARY, work_->Sub("bin/executor"));
  }
  static void TearDownTestSuite() {
    delete reg_;
    delete work_;
    reg_ = nullptr;
  }
  void SetUp() override {
    if (!reg_) GTEST_SKIP() << "needs root and busybox-static";
  }

  struct Job {
    int rc;
    std::string log;
    std::string project;  // CI_PROJECT_DIR
    std::string dotenv;
  };
  // Runs the script in a fresh project dir with the template's variables, `vars` on top.
  Job RunJob(const std::string& name, std::map<std::string, std::string> vars, std::string dockerfile = "") {
    Job job;
    job.project = work_->Sub(name + "/project");
    if (dockerfile.empty()) {
      dockerfile = "FROM " + reg_->host() + "/base/busybox:latest\n"
                   "COPY app.txt /app/\n"
                   "RUN cat /kaniko/.docker/config.json; ls -a /dev/shm /kaniko; env; "
                   "grep -r gitlab /etc /app; echo built > /app/run.txt\n";
    }
    testing::WriteFile(job.project + "/Dockerfile", dockerfile);
    testing::WriteFile(job.project + "/app.txt", "the application\n");
    std::string secrets_tmp = work_->Sub(name + "/shm");
    std::filesystem::create_directories(secrets_tmp);
    // The template's `variables:` (kiln.gitlab-ci.yml) and GitLab's predefined ones.
    std::map<std::string, std::string> env = {
        {"KILN_CONTEXT", job.project},   {"KILN_DOCKERFILE", "Dockerfile"},
        {"KILN_TAG_LATEST", "false"},    {"KILN_BUILD_ARGS", ""},
        {"KILN_DOTENV", "kiln.env"},     {"CI_PROJECT_DIR", job.project},
        {"CI_REGISTRY", reg_->host()},   {"CI_REGISTRY_IMAGE", reg_->host() + "/group/app"},
        {"CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567"},
        {"KILN_IMAGE", reg_->host() + "/group/app"},
        {"KILN_REGISTRY_CA", reg_->ca_cert_path()},
        {"KILN_SECRETS_TMPDIR", secrets_tmp},  // stands in for /dev/shm, so the test can look at it
        {"KILN_BUILD_ARGS", "--state-dir " + work_->Sub(name + "/state")},
        {"HOME", work_->Sub(name + "/home")},
        {"PATH", work_->Sub("bin") + ":/usr/bin:/bin"},
    };
    for (auto& [k, v] : vars) env[k] = v;
    std::string cmd = "cd " + ShellQuote(job.project) + " && env -i";
    for (auto& [k, v] : env) cmd += " " + ShellQuote(k + "=" + v);
    cmd += " sh " + ShellQuote(std::string(KILN_SOURCE_DIR) + "/deploy/gitlab/kiln-build.sh") + " 2>&1";
    job.rc = RunShell(cmd, &job.log);
    testing::WriteFile(work_->Sub(name + "/job.log"), job.log);
    if (std::filesystem::exists(job.project + "/kiln.env")) job.dotenv = ReadFile(job.project + "/kiln.env");
    // The credentials directory is gone.
    EXPECT_TRUE(std::filesystem::is_empty(secrets_tmp)) << name;
    return job;
  }
  std::string Skopeo(const std::string& what, const std::string& ref) {
    std::string out;
    int rc = RunShell("skopeo --insecure-policy inspect " + what + " --cert-dir " + ShellQuote(reg_->ca_cert_dir()) +
                          " --creds " + ShellQuote(std::string(kUser) + ":" + kToken) + " docker://" + reg_->host() +
                          "/" + ref + " 2>&1",
                      &out);
    return rc == 0 ? out : "";
  }
  std::string TagDigest(const std::string& ref) {
    std::string raw = Skopeo("--raw", ref);
    return raw.empty() ? "" : "sha256:" + Sha256Hex(raw);
  }
  static std::string Sha256Hex(const std::string& data) {
    std::string path = work_->Sub("sha-input");
    testing::WriteFile(path, data);
    std::string out;
    RunShell("sha256sum " + ShellQuote(path) + " | cut -d' ' -f1", &out);
    return out.substr(0, 64);
  }
  void ExpectNoLeak(const Job& job, const std::string& name) {
    std::vector<std::string> needles = {kToken, deploy_testing::Base64(std::string(kUser) + ":" + kToken)};
    EXPECT_FALSE(deploy_testing::Contains(job.log, kToken)) << "the job log shows the token";
    EXPECT_FALSE(deploy_testing::Contains(job.log, needles[1])) << "the job log shows the auth string";
    int scanned = 0;
    std::vector<std::string> hits = deploy_testing::FindSecrets(
        {reg_->storage_dir(), job.project, work_->Sub(name + "/state"), work_->Sub(name + "/job.log")}, needles,
        &scanned);
    EXPECT_TRUE(hits.empty()) << ::testing::PrintToString(hits);
    EXPECT_GT(scanned, 5);
  }
  static testing::TempDir* work_;
  static testing::RegistryServer* reg_;
};
testing::TempDir* GitlabJobTest::work_ = nullptr;
testing::RegistryServer* GitlabJobTest::reg_ = nullptr;

TEST_F(GitlabJobTest, TagPipelineWithRegistryUserAndPassword) {
  Job job = RunJob("tag", {{"CI_REGISTRY_USER", kUser}, {"CI_REGISTRY_PASSWORD", kToken}, {"CI_COMMIT_TAG", "v1.2.3"}});
  ASSERT_EQ(job.rc, 0) << job.log;
  // Collapsible sections in GitLab's format, each opened and closed.
  EXPECT_NE(job.log.find("\x1b[0Ksection_start:"), std::string::npos);
  EXPECT_NE(job.log.find(":kiln_credentials[collapsed=true]\r\x1b[0KRegistry credentials"), std::string::npos) << job.log;
  EXPECT_NE(job.log.find(":kiln_build[collapsed=false]\r\x1b[0KBuilding"), std::string::npos);
  EXPECT_NE(job.log.find("\x1b[0Ksection_end:"), std::string::npos);
  EXPECT_NE(job.log.find(":kiln_build\r\x1b[0K"), std::string::npos);

  std::string sha = TagDigest("group/app:0123456789abcdef0123456789abcdef01234567");
  std::string tag = TagDigest("group/app:v1.2.3");
  ASSERT_FALSE(sha.empty()) << job.log;
  EXPECT_EQ(sha, tag);
  EXPECT_EQ(TagDigest("group/app:latest"), "") << "latest must not be pushed unless asked";
  EXPECT_EQ(job.dotenv, "KILN_IMAGE_DIGEST=" + sha + "\nKILN_IMAGE_REF=" + reg_->host() + "/group/app@" + sha + "\n");
  // The RUN step saw no credentials: no config under /kaniko, nothing from the job's environment.
  EXPECT_NE(job.log.find("can't open '/kaniko/.docker/config.json'"), std::string::npos) << job.log;
  EXPECT_EQ(job.log.find("DOCKER_CONFIG="), std::string::npos) << job.log;
  ExpectNoLeak(job, "tag");
}

TEST_F(GitlabJobTest, BranchPipelineWithJobTokenAndLatest) {
  Job job = RunJob("token", {{"CI_JOB_TOKEN", kToken}, {"KILN_TAG_LATEST", "true"},
                             {"CI_COMMIT_SHA", "fedcba9876543210fedcba9876543210fedcba98"}});
  ASSERT_EQ(job.rc, 0) << job.log;
  std::string sha = TagDigest("group/app:fedcba9876543210fedcba9876543210fedcba98");
  ASSERT_FALSE(sha.empty());
  EXPECT_EQ(TagDigest("group/app:latest"), sha);
  EXPECT_NE(job.log.find("using the credentials of gitlab-ci-token"), std::string::npos) << job.log;
  ExpectNoLeak(job, "token");
}

TEST_F(GitlabJobTest, DockerAuthConfigWinsAndWrongCredentialsFailWithoutShowingThem) {
  std::string auth = deploy_testing::Base64(std::string(kUser) + ":" + kToken);
  Job ok = RunJob("authcfg", {{"DOCKER_AUTH_CONFIG", "{\"auths\":{\"" + reg_->host() + "\":{\"auth\":\"" + auth + "\"}}}"},
                              {"CI_REGISTRY_USER", "someone"}, {"CI_REGISTRY_PASSWORD", "not-the-password"},
                              {"CI_COMMIT_SHA", "1111111111111111111111111111111111111111"}});
  ASSERT_EQ(ok.rc, 0) << ok.log;
  EXPECT_NE(ok.log.find("using DOCKER_AUTH_CONFIG"), std::string::npos);
  EXPECT_FALSE(TagDigest("group/app:1111111111111111111111111111111111111111").empty());
  ExpectNoLeak(ok, "authcfg");

  Job bad = RunJob("badpass", {{"CI_REGISTRY_USER", kUser}, {"CI_REGISTRY_PASSWORD", "Wrong-Pass-314"},
                               {"CI_COMMIT_SHA", "2222222222222222222222222222222222222222"}});
  EXPECT_NE(bad.rc, 0);
  EXPECT_FALSE(deploy_testing::Contains(bad.log, "Wrong-Pass-314")) << "the failure shows the password";
  EXPECT_EQ(TagDigest("group/app:2222222222222222222222222222222222222222"), "");
  EXPECT_EQ(bad.dotenv, "");
}

TEST_F(GitlabJobTest, RefusesToPushWithoutATag) {
  Job job = RunJob("notag", {{"CI_JOB_TOKEN", kToken}, {"CI_COMMIT_SHA", ""}});
  EXPECT_NE(job.rc, 0);
  EXPECT_NE(job.log.find("nothing to tag"), std::string::npos) << job.log;
}

// The template's multi-platform recipe: one job per architecture into its own repository, then a
// job with KILN_INDEX_OF that merges them into one index under the pipeline's tags.
TEST_F(GitlabJobTest, PerPlatformJobsThenAnIndexJob) {
  const std::string sha = "3333333333333333333333333333333333333333";
  for (std::string arch : {"amd64", "arm64"}) {
    Job job = RunJob("matrix-" + arch,
                     {{"CI_JOB_TOKEN", kToken}, {"CI_COMMIT_SHA", sha},
                      {"KILN_IMAGE", reg_->host() + "/group/app/build-" + arch},
                      {"KILN_BUILD_ARGS", "--state-dir " + work_->Sub("matrix-" + arch + "/state") +
                                              " --custom-platform linux/" + arch}},
                     "FROM scratch\nCOPY app.txt /app/\n");
    ASSERT_EQ(job.rc, 0) << job.log;
  }
  Job index = RunJob("matrix-index", {{"CI_JOB_TOKEN", kToken}, {"CI_COMMIT_SHA", sha}, {"CI_COMMIT_TAG", "v2.0"},
                                      {"KILN_BIN", KILN_BINARY},
                                      {"KILN_INDEX_OF", reg_->host() + "/group/app/build-amd64 " + reg_->host() +
                                                            "/group/app/build-arm64"}});
  ASSERT_EQ(index.rc, 0) << index.log;
  EXPECT_NE(index.log.find(":kiln_index[collapsed=false]"), std::string::npos) << index.log;
  std::string raw = Skopeo("--raw", "group/app:" + sha);
  ASSERT_FALSE(raw.empty()) << index.log;
  nlohmann::json idx = nlohmann::json::parse(raw);
  ASSERT_EQ(idx["manifests"].size(), 2u);
  EXPECT_EQ(idx["manifests"][0]["platform"]["architecture"], "amd64");
  EXPECT_EQ(idx["manifests"][1]["platform"]["architecture"], "arm64");
  std::string digest = TagDigest("group/app:" + sha);
  EXPECT_EQ(TagDigest("group/app:v2.0"), digest);
  EXPECT_EQ(index.dotenv, "KILN_IMAGE_DIGEST=" + digest + "\nKILN_IMAGE_REF=" + reg_->host() + "/group/app@" + digest + "\n");
  ExpectNoLeak(index, "matrix-index");
}

}  // namespace
}  // namespace kiln
