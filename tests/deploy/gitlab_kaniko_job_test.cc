// GitLab's documented Kaniko job ("Use kaniko to build Docker images"), unchanged, run inside kiln's
// debug image with only the image swapped: the job's script goes to the image's /busybox/sh on stdin
// as GitLab's runner feeds it, in a container made by podrun from the unpacked image (the project
// and the runner's CA file bind-mounted where the runner puts them, GitLab's CI_* variables, the
// image's own Env, root with the runtime's default capabilities and seccomp's user-namespace rule).
// The registry is TLS with a private CA and basic auth; the script trusts the CA the documented way,
// by appending CI_SERVER_TLS_CA_FILE to a file in /kaniko/ssl/certs/. No kiln-only flag is used.
//
// What this pins down: busybox at /busybox (GitLab's `entrypoint: [""]` needs a shell), a writable
// /kaniko/.docker read through DOCKER_CONFIG, /kaniko/ssl/certs/ trusted file by file
// (SSL_CERT_DIR), and /kaniko/executor taking Kaniko's flags. A missing part fails the job.
#include <gtest/gtest.h>

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
using testing::Stat;

constexpr char kUser[] = "gitlab-ci-token";
constexpr char kPassword[] = "glcbt-Kan1ko-Recipe-77";
constexpr char kProjectDir[] = "/builds/group/app";

// The job's script as GitLab documents it (the private-CA recipe's line `ca_line` comes from its
// before_script), one command per line, under `set -e` as GitLab's runner runs a job.
std::string DocsScript(const std::string& ca_line) {
  return R"SH(set -e
mkdir -p /kaniko/.docker
echo "{\"auths\":{\"${CI_REGISTRY}\":{\"auth\":\"$(printf "%s:%s" "${CI_REGISTRY_USER}" "${CI_REGISTRY_PASSWORD}" | base64 | tr -d '\n')\"}}}" > /kaniko/.docker/config.json
)SH" + ca_line +
         R"SH(/kaniko/executor --context "${CI_PROJECT_DIR}" --dockerfile "${CI_PROJECT_DIR}/Dockerfile" --destination "${CI_REGISTRY_IMAGE}:${CI_COMMIT_TAG}"
)SH";
}

class GitlabKanikoJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::HaveRoot()) return;
    // Without busybox-static there is no debug image: a failure, not a skip (setup.sh installs it).
    have_busybox_ = testing::HaveBusyboxStatic();
    if (!have_busybox_) return;
    env_ = new testing::BuildEnv(KILN_BINARY);
    build_log_ = new std::string();
    build_rc_ = deploy_testing::BuildDebugImage(*env_, build_log_, &image_);
    reg_ = deploy_testing::StartAuthRegistryWithBusybox(kUser, kPassword);
  }
  static void TearDownTestSuite() {
    delete image_;
    delete reg_;
    delete env_;
    delete build_log_;
    image_ = nullptr;
    reg_ = nullptr;
    env_ = nullptr;
    build_log_ = nullptr;
  }
  void SetUp() override {
    if (!testing::HaveRoot()) GTEST_SKIP() << "podrun needs root";
    ASSERT_TRUE(have_busybox_) << "kiln's debug image needs a static busybox: install busybox-static (scripts/setup.sh)";
    ASSERT_EQ(build_rc_, 0) << *build_log_;
  }

  struct Job {
    int rc = -1;
    std::string log;
    std::string rootfs;  // the job container's root: a fresh copy of the image
  };
  // Runs `script` as GitLab's runner would run the job in kiln's debug image, tag `tag`.
  Job RunJob(const std::string& name, const std::string& script, const std::string& tag) {
    Job job;
    std::string dir = env_->NewDir(name);
    job.rootfs = dir + "/rootfs";
    std::string out;
    // Each job gets the image as published (cp -a keeps modes, owners and the CA bundle's hard link).
    EXPECT_EQ(RunShell("cp -a " + ShellQuote(image_->rootfs) + " " + ShellQuote(job.rootfs) + " 2>&1", &out), 0) << out;
    // The checkout, and the runner's CA file beside it ($CI_PROJECT_DIR.tmp/CI_SERVER_TLS_CA_FILE).
    std::string project = dir + "/project", runner_tmp = dir + "/project.tmp";
    testing::WriteFile(project + "/Dockerfile",
                       "FROM " + reg_->host() + "/base/busybox:latest\n"
                       "COPY app.txt /app/\n"
                       "RUN cat /kaniko/.docker/config.json; ls /kaniko/ssl/certs; echo built > /app/run.txt\n");
    testing::WriteFile(project + "/app.txt", "tagged " + tag + "\n");
    testing::WriteFile(runner_tmp + "/CI_SERVER_TLS_CA_FILE", ReadFile(reg_->ca_cert_path()));
    testing::WriteFile(runner_tmp + "/script.sh", script);

    std::string cmd = std::string(PODRUN_BINARY) + " --rootfs " + ShellQuote(job.rootfs) + " --host-dev-proc" +
                      " --bind " + ShellQuote(project + ":" + kProjectDir) + " --bind " +
                      ShellQuote(runner_tmp + ":" + std::string(kProjectDir) + ".tmp") +
                      " --uid 0 --gid 0 --caps default --no-userns --workdir " + kProjectDir;
    // The image's Env, then GitLab's predefined variables.
    std::map<std::string, std::string> env;
    for (const auto& kv : image_->config["config"]["Env"]) {
      std::string s = kv.get<std::string>();
      env[s.substr(0, s.find('='))] = s.substr(s.find('=') + 1);
    }
    std::map<std::string, std::string> ci = {
        {"CI", "true"},
        {"GITLAB_CI", "true"},
        {"CI_PROJECT_DIR", kProjectDir},
        {"CI_REGISTRY", reg_->host()},
        {"CI_REGISTRY_IMAGE", reg_->host() + "/group/app"},
        {"CI_REGISTRY_USER", kUser},
        {"CI_REGISTRY_PASSWORD", kPassword},
        {"CI_COMMIT_TAG", tag},
        {"CI_SERVER_TLS_CA_FILE", std::string(kProjectDir) + ".tmp/CI_SERVER_TLS_CA_FILE"},
    };
    for (auto& [k, v] : ci) env[k] = v;
    for (auto& [k, v] : env) cmd += " --env " + ShellQuote(k + "=" + v);
    // entrypoint [""]: the runner starts the image's shell and feeds it the script.
    cmd += " -- /busybox/sh < " + ShellQuote(runner_tmp + "/script.sh") + " 2>&1";
    job.rc = RunShell(cmd, &job.log);
    testing::WriteFile(dir + "/job.log", job.log);
    return job;
  }
  // The pushed image, read back with the registry's CA and credentials; empty when absent.
  std::string PushedManifest(const std::string& ref) {
    std::string raw;
    if (RunShell("skopeo --insecure-policy inspect --raw --cert-dir " + ShellQuote(reg_->ca_cert_dir()) + " --creds " +
                     ShellQuote(std::string(kUser) + ":" + kPassword) + " docker://" + reg_->host() + "/" + ref +
                     " 2>/dev/null",
                 &raw) != 0) {
      return "";
    }
    return raw;
  }
  void ExpectNoLeak(const Job& job) {
    std::vector<std::string> needles = {kPassword, deploy_testing::Base64(std::string(kUser) + ":" + kPassword)};
    EXPECT_FALSE(deploy_testing::Contains(job.log, needles[0])) << "the job log shows the password";
    EXPECT_FALSE(deploy_testing::Contains(job.log, needles[1])) << "the job log shows the auth string";
    int scanned = 0;
    std::vector<std::string> hits =
        deploy_testing::FindSecrets({reg_->storage_dir(), job.rootfs + "/var/lib/kiln"}, needles, &scanned);
    EXPECT_TRUE(hits.empty()) << ::testing::PrintToString(hits);
    EXPECT_GT(scanned, 3);
  }

  static bool have_busybox_;
  static testing::BuildEnv* env_;
  static testing::RegistryServer* reg_;
  static testing::ReadBack* image_;
  static std::string* build_log_;
  static int build_rc_;
};
bool GitlabKanikoJobTest::have_busybox_ = false;
testing::BuildEnv* GitlabKanikoJobTest::env_ = nullptr;
testing::RegistryServer* GitlabKanikoJobTest::reg_ = nullptr;
testing::ReadBack* GitlabKanikoJobTest::image_ = nullptr;
std::string* GitlabKanikoJobTest::build_log_ = nullptr;
int GitlabKanikoJobTest::build_rc_ = -1;

TEST_F(GitlabKanikoJobTest, ImageHasWhatTheDocumentedJobUses) {
  const std::string& root = image_->rootfs;
  EXPECT_EQ(Stat(root, "busybox/sh").type, 'l');
  EXPECT_EQ(Stat(root, "busybox/busybox").type, 'f');
  EXPECT_EQ(Stat(root, "bin/sh").link, "../busybox/sh");
  for (const char* applet : {"mkdir", "printf", "base64", "tr", "cat", "echo"}) {
    EXPECT_NE(Stat(root, std::string("busybox/") + applet).type, '-') << applet;
  }
  EXPECT_EQ(Stat(root, "kaniko/ssl/certs").type, 'd');
  EXPECT_EQ(Stat(root, "kaniko/ssl/certs").mode, 01777u);
  EXPECT_EQ(Stat(root, "kaniko/.docker").mode, 01777u);
  EXPECT_EQ(Stat(root, "kaniko/ssl/certs/ca-certificates.crt").content, ReadFile("/etc/ssl/certs/ca-certificates.crt"));
  std::string envs = image_->config["config"]["Env"].dump();
  EXPECT_NE(envs.find("SSL_CERT_DIR=/kaniko/ssl/certs\""), std::string::npos) << envs;
  EXPECT_NE(envs.find("PATH=/kaniko/bin:/kaniko:/busybox:"), std::string::npos) << envs;
  EXPECT_EQ(image_->config["config"]["WorkingDir"], "/workspace");
}

TEST_F(GitlabKanikoJobTest, DocumentedJobWithThePrivateCaRecipePushesTheTag) {
  // Depends on kiln trusting every file in SSL_CERT_DIR (/kaniko/ssl/certs), not only hashed names.
  Job job = RunJob("docs", DocsScript("cat \"${CI_SERVER_TLS_CA_FILE}\" >> "
                                           "/kaniko/ssl/certs/additional-ca-cert-bundle.crt\n"),
                   "v1.0.0");
  ASSERT_EQ(job.rc, 0) << job.log;
  std::string manifest = PushedManifest("group/app:v1.0.0");
  ASSERT_FALSE(manifest.empty()) << job.log;
  // The script wrote what Kaniko reads, where Kaniko reads it.
  EXPECT_NE(ReadFile(job.rootfs + "/kaniko/.docker/config.json").find("\"auths\""), std::string::npos);
  EXPECT_EQ(ReadFile(job.rootfs + "/kaniko/ssl/certs/additional-ca-cert-bundle.crt"), ReadFile(reg_->ca_cert_path()));
  // The RUN step ran in the base image, not in kiln's: neither the credentials nor the CA dir exist.
  EXPECT_NE(job.log.find("can't open '/kaniko/.docker/config.json'"), std::string::npos) << job.log;
  EXPECT_EQ(job.log.find("additional-ca-cert-bundle.crt"), std::string::npos) << job.log;
  // The image holds the project's file and the RUN step's.
  testing::ReadBack pushed = testing::ReadImage(
      "docker://" + reg_->host() + "/group/app:v1.0.0", env_->NewDir("pushed"),
      testing::SkopeoSourceFlags(*reg_, std::string(kUser) + ":" + kPassword));
  EXPECT_EQ(Stat(pushed.rootfs, "app/app.txt").content, "tagged v1.0.0\n");
  EXPECT_EQ(Stat(pushed.rootfs, "app/run.txt").content, "built\n");
  ExpectNoLeak(job);
}

TEST_F(GitlabKanikoJobTest, OlderRecipeAppendingToTheImagesBundleWorksToo) {
  // GitLab's first documented recipe appended the CA to Kaniko's own bundle.
  Job job = RunJob("bundle", DocsScript("cat \"${CI_SERVER_TLS_CA_FILE}\" >> /kaniko/ssl/certs/ca-certificates.crt\n"),
                   "v2.0.0");
  ASSERT_EQ(job.rc, 0) << job.log;
  EXPECT_FALSE(PushedManifest("group/app:v2.0.0").empty()) << job.log;
  ExpectNoLeak(job);
}

TEST_F(GitlabKanikoJobTest, WithoutTheCaTheSameJobFailsOnTheCertificate) {
  // The control: the registry's CA is what makes the job work, not a verification that is off.
  Job job = RunJob("noca", DocsScript(""), "v3.0.0");
  EXPECT_NE(job.rc, 0) << job.log;
  EXPECT_NE(job.log.find("certificate"), std::string::npos) << job.log;
  EXPECT_EQ(PushedManifest("group/app:v3.0.0"), "");
  ExpectNoLeak(job);
}

}  // namespace
}  // namespace kiln
