// kiln's own image, built by kiln with deploy/build-image.sh and pushed to a harness registry, then
// unpacked and used the way Kubernetes uses it: the Jobs in deploy/kubernetes/ run (by kube_pod.py
// and podrun) with the image as their root filesystem, the registry secret mounted at
// /kaniko/.docker, their own args, users and security contexts, against a TLS + basic-auth registry.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "tests/deploy/deploy_testing.h"
#include "tests/testing/base_images.h"

namespace kiln {
namespace {

using testing::ReadFile;
using testing::RunShell;
using testing::ShellQuote;
using testing::Stat;

constexpr char kUser[] = "k8s-builder";
constexpr char kPassword[] = "Pod-S3cret-5150";

class KilnImageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::HaveRoot() || !testing::HaveBusyboxStatic()) return;
    env_ = new testing::BuildEnv(KILN_BINARY);
    build_log_ = new std::string();
    build_rc_ = deploy_testing::BuildDebugImage(*env_, build_log_, &image_);
    tls_ = deploy_testing::StartAuthRegistryWithBusybox(kUser, kPassword);
  }
  static void TearDownTestSuite() {
    delete image_;
    delete tls_;
    delete env_;
    delete build_log_;
    env_ = nullptr;
  }
  void SetUp() override {
    if (!env_) GTEST_SKIP() << "needs root and busybox-static";
    ASSERT_EQ(build_rc_, 0) << *build_log_;
  }
  // Runs container `container` of deploy/kubernetes/`manifest` with kube_pod.py.
  int RunPod(const std::string& manifest, const std::string& container, const std::string& extra, std::string* out) {
    std::string scratch = env_->NewDir("pod");
    std::string secret = scratch + "/secret.yaml";
    testing::WriteFile(secret, "apiVersion: v1\nkind: Secret\nmetadata: {name: kiln-registry-credentials}\n"
                               "type: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\":{\"" +
                                   tls_->host() + "\":{\"auth\":\"" +
                                   deploy_testing::Base64(std::string(kUser) + ":" + kPassword) + "\"}}}'\n");
    std::string image_config = scratch + "/image-config.json";
    testing::WriteFile(image_config, image_->config.dump());
    std::string cmd = "python3 " + std::string(DEPLOY_TEST_DIR) + "/kube_pod.py --manifest " + KILN_SOURCE_DIR +
                      "/deploy/kubernetes/" + manifest + " --container " + container + " --podrun " + PODRUN_BINARY +
                      " --scratch " + scratch + "/s --secret " + secret + " " + extra + " 2>&1";
    if (container == "kiln") {
      // The image is the container's root; the test CA stands in for the image's CA bundle.
      cmd = "python3 " + std::string(DEPLOY_TEST_DIR) + "/kube_pod.py --manifest " + KILN_SOURCE_DIR +
            "/deploy/kubernetes/" + manifest + " --container kiln --podrun " + PODRUN_BINARY + " --scratch " + scratch +
            "/s --secret " + secret + " --rootfs " + image_->rootfs + " --image-config " + image_config +
            " --bind " + tls_->ca_cert_path() + ":/etc/ssl/certs/ca-certificates.crt:ro " + extra + " 2>&1";
    }
    int rc = RunShell(cmd, out);
    testing::WriteFile(scratch + "/pod.log", *out);
    return rc;
  }
  std::string PushedDigest(const std::string& ref) {
    std::string raw;
    if (RunShell("skopeo --insecure-policy inspect --raw --cert-dir " + tls_->ca_cert_dir() + " --creds " +
                     ShellQuote(std::string(kUser) + ":" + kPassword) + " docker://" + tls_->host() + "/" + ref,
                 &raw) != 0) {
      return "";
    }
    return raw;
  }
  void ExpectNoLeak(const std::string& log, const std::vector<std::string>& more_roots) {
    std::vector<std::string> needles = {kPassword, deploy_testing::Base64(std::string(kUser) + ":" + kPassword)};
    EXPECT_FALSE(deploy_testing::Contains(log, needles[0]));
    EXPECT_FALSE(deploy_testing::Contains(log, needles[1]));
    std::vector<std::string> roots = {tls_->storage_dir()};
    roots.insert(roots.end(), more_roots.begin(), more_roots.end());
    int scanned = 0;
    std::vector<std::string> hits = deploy_testing::FindSecrets(roots, needles, &scanned);
    EXPECT_TRUE(hits.empty()) << ::testing::PrintToString(hits);
    EXPECT_GT(scanned, 3);
  }

  static testing::BuildEnv* env_;
  static testing::RegistryServer* tls_;
  static testing::ReadBack* image_;
  static std::string* build_log_;
  static int build_rc_;
};
testing::BuildEnv* KilnImageTest::env_ = nullptr;
testing::RegistryServer* KilnImageTest::tls_ = nullptr;
testing::ReadBack* KilnImageTest::image_ = nullptr;
std::string* KilnImageTest::build_log_ = nullptr;
int KilnImageTest::build_rc_ = -1;

TEST_F(KilnImageTest, ImageHasKanikosPathsAndNothingElseToRunBuildsWith) {
  const std::string& root = image_->rootfs;
  EXPECT_EQ(Stat(root, "kaniko/executor").type, 'f');
  EXPECT_EQ(Stat(root, "kaniko/executor").mode, 0755u);
  EXPECT_EQ(Stat(root, "kaniko/.docker").type, 'd');
  EXPECT_EQ(Stat(root, "kaniko/bin").type, 'd');
  EXPECT_EQ(Stat(root, "kaniko/bin/kiln-gitlab-build").content, ReadFile(std::string(KILN_SOURCE_DIR) + "/deploy/gitlab/kiln-build.sh"));
  EXPECT_EQ(Stat(root, "lib64/ld-linux-x86-64.so.2").type, 'f');
  // --ssh ID=KEYFILE: kiln starts an agent of its own with the keys.
  EXPECT_EQ(Stat(root, "kaniko/bin/ssh-agent").mode, 0755u);
  EXPECT_EQ(Stat(root, "kaniko/bin/ssh-add").mode, 0755u);
  EXPECT_EQ(Stat(root, "etc/ssl/certs/ca-certificates.crt").content, ReadFile("/etc/ssl/certs/ca-certificates.crt"));
  // Debian's git for ADD of a git repository and git contexts, with what a fetch runs.
  EXPECT_EQ(Stat(root, "usr/bin/git").mode, 0755u);
  EXPECT_EQ(Stat(root, "usr/lib/git-core/git-upload-pack").type, 'l');
  EXPECT_EQ(Stat(root, "usr/lib/git-core/git-remote-http").type, 'f');
  EXPECT_EQ(Stat(root, "usr/lib/git-core/git-remote-https").link, "git-remote-http");
  EXPECT_EQ(Stat(root, "usr/bin/ssh").type, 'f');
  EXPECT_EQ(Stat(root, "tmp").mode, 01777u);
  const auto& cfg = image_->config["config"];
  EXPECT_EQ(cfg["Entrypoint"], nlohmann::json::array({"/kaniko/executor"}));
  std::string envs = cfg["Env"].dump();
  EXPECT_NE(envs.find("DOCKER_CONFIG=/kaniko/.docker"), std::string::npos) << envs;
  // Kaniko's: every file in /kaniko/ssl/certs is trusted; libcurl's default file is the same bundle.
  EXPECT_NE(envs.find("SSL_CERT_DIR=/kaniko/ssl/certs\""), std::string::npos) << envs;
  EXPECT_EQ(envs.find("SSL_CERT_FILE="), std::string::npos) << envs;
  EXPECT_EQ(Stat(root, "kaniko/ssl/certs/ca-certificates.crt").content, ReadFile("/etc/ssl/certs/ca-certificates.crt"));
  EXPECT_NE(envs.find("HOME=/root"), std::string::npos) << envs;
  EXPECT_NE(envs.find("USER=root"), std::string::npos) << envs;
  EXPECT_EQ(cfg["WorkingDir"], "/workspace");
  EXPECT_EQ(Stat(root, "workspace").type, 'd');
  EXPECT_NE(Stat(root, "etc/nsswitch.conf").content.find("hosts: files dns"), std::string::npos);
  EXPECT_NE(envs.find("PATH=/kaniko/bin:/kaniko:"), std::string::npos) << envs;
  // Every library the binary needs resolves inside the image (no host paths leak in via chroot).
  std::string out;
  ASSERT_EQ(RunShell(std::string(PODRUN_BINARY) + " --rootfs " + root + " --env PATH=/busybox -- /kaniko/executor --help 2>&1", &out), 0) << out;
  EXPECT_NE(out.find("Kaniko"), std::string::npos) << out;
  ASSERT_EQ(RunShell(std::string(PODRUN_BINARY) + " --rootfs " + root + " -- /usr/local/bin/kiln version 2>&1", &out), 0) << out;
  EXPECT_EQ(out.rfind("kiln ", 0), 0u) << out;
  // git runs with the image's libraries: a file:// fetch (git-upload-pack) of a repository made
  // here, and the https helper is found (it fails to connect, not to start).
  std::string repo = root + "/tmp/r.git";
  ASSERT_EQ(RunShell("set -e; rm -rf " + ShellQuote(repo) + " " + ShellQuote(root + "/tmp/w") + "; git init -q --bare " +
                     ShellQuote(repo) + "; git init -q " + ShellQuote(root + "/tmp/w") + "; cd " +
                     ShellQuote(root + "/tmp/w") + "; echo x > f; git add f; git -c user.email=t@t -c user.name=t commit -qm c; "
                     "git push -q " + ShellQuote(repo) + " HEAD:refs/heads/main 2>&1"),
            0);
  ASSERT_EQ(RunShell(std::string(PODRUN_BINARY) + " --rootfs " + root + " --host-dev-proc --env HOME=/tmp -- /usr/bin/git ls-remote "
                     "file:///tmp/r.git 2>&1", &out), 0) << out;
  EXPECT_NE(out.find("refs/heads/main"), std::string::npos) << out;
  RunShell(std::string(PODRUN_BINARY) + " --rootfs " + root + " --host-dev-proc --env HOME=/tmp -- /usr/bin/git ls-remote "
           "https://127.0.0.1:1/x.git 2>&1", &out);
  EXPECT_EQ(out.find("remote-https"), std::string::npos) << out;
  EXPECT_NE(out.find("127.0.0.1"), std::string::npos) << out;
  RunShell("rm -rf " + ShellQuote(repo) + " " + ShellQuote(root + "/tmp/w"));
  // Amazon ECR's credential helper (Debian's amazon-ecr-credential-helper), where Kaniko has it,
  // and runnable with the image's libraries.
  ASSERT_EQ(Stat(root, "kaniko/docker-credential-ecr-login").type, 'f')
      << "install amazon-ecr-credential-helper (scripts/setup.sh)";
  ASSERT_EQ(RunShell(std::string(PODRUN_BINARY) + " --rootfs " + root + " -- /kaniko/docker-credential-ecr-login version 2>&1", &out), 0) << out;
}

TEST_F(KilnImageTest, ImageIsSlimNoXmlOrIcuAndUnderKanikosSize) {
  // libarchive is linked statically with only its tar code (cmake/StaticLibarchive.cmake): nothing
  // of libxml2 or ICU, which were 35 MB of the image.
  std::vector<std::string> libs = testing::ListTree(image_->rootfs, "lib/x86_64-linux-gnu");
  ASSERT_FALSE(libs.empty());
  for (const std::string& lib : libs) {
    EXPECT_EQ(lib.find("libxml2"), std::string::npos) << lib;
    EXPECT_EQ(lib.find("libicu"), std::string::npos) << lib;
    EXPECT_EQ(lib.find("libarchive"), std::string::npos) << lib;
  }
  // Kaniko's executor image is about 87 MB unpacked; kiln's debug image (busybox and the ECR helper
  // included) stays near half of that (it was 65 MB with Debian's libarchive.so). Debian's git for
  // git sources (git, git-remote-http, ssh and their libraries) is about 9 MB of it (39 -> 48 MB).
  std::string out;
  ASSERT_EQ(RunShell("du -sbx " + ShellQuote(image_->rootfs) + " | cut -f1", &out), 0);
  long unpacked = std::stol(out);
  EXPECT_LT(unpacked, 50L * 1000 * 1000) << unpacked;
  long pushed = 0;
  for (const auto& l : image_->manifest["layers"]) pushed += l["size"].get<long>();
  RecordProperty("unpacked_bytes", std::to_string(unpacked));
  RecordProperty("pushed_layer_bytes", std::to_string(pushed));
}

TEST_F(KilnImageTest, CredentialHelperAddedByADockerfileFromTheImageIsUsed) {
  // docs/deploy.md's way to add GCR/ACR helpers: a Dockerfile FROM kiln's image that puts a
  // docker-credential-NAME into /kaniko. A stand-in helper (busybox sh) answers `get` with the
  // registry's credentials; config.json names it in credHelpers, as for gcr/ecr-login/acr-env.
  std::string helper = "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread -r server\n"
                       "echo \"$server\" >> /tmp/standin-calls\n"
                       "printf '{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}\\n' \"$server\" \"" +
                       std::string(kUser) + "\" \"" + kPassword + "\"\n";
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/kiln/kiln:debug\n"
                                                  "COPY --chmod=0755 docker-credential-standin /kaniko/\n"},
                                   {"docker-credential-standin", helper}});
  testing::KilnRun built = env_->Build(ctx, "--destination " + env_->Ref("kiln/kiln:with-helper"));
  ASSERT_EQ(built.rc, 0) << built.err;
  testing::ReadBack img = env_->Read("kiln/kiln:with-helper");
  EXPECT_EQ(Stat(img.rootfs, "kaniko/docker-credential-standin").mode, 0755u);

  std::string docker = env_->NewDir("helper-docker"), app = env_->NewDir("helper-app");
  testing::WriteFile(docker + "/config.json", "{\"credHelpers\":{\"" + tls_->host() + "\":\"standin\"}}");
  testing::WriteFile(app + "/Dockerfile", "FROM " + tls_->host() + "/base/busybox:latest\nCOPY a.txt /a.txt\n");
  testing::WriteFile(app + "/a.txt", "via a helper\n");
  std::string cmd = std::string(PODRUN_BINARY) + " --rootfs " + img.rootfs + " --host-dev-proc --bind " + docker +
                    ":/kaniko/.docker:ro --bind " + app + ":/workspace/app:ro --bind " + tls_->ca_cert_path() +
                    ":/etc/ssl/certs/ca-certificates.crt:ro --caps default --no-userns";
  for (const auto& kv : img.config["config"]["Env"]) cmd += " --env " + ShellQuote(kv.get<std::string>());
  cmd += " -- /kaniko/executor --context dir:///workspace/app --destination " + tls_->host() + "/team/app:helper 2>&1";
  std::string out;
  ASSERT_EQ(RunShell(cmd, &out), 0) << out;
  // The registry wants credentials and only the helper had them; it was asked for this registry.
  EXPECT_FALSE(PushedDigest("team/app:helper").empty()) << out;
  EXPECT_NE(ReadFile(img.rootfs + "/tmp/standin-calls").find(tls_->host()), std::string::npos);
  ExpectNoLeak(out, {});
}

TEST_F(KilnImageTest, ReleaseTargetIsTheDefaultAndHasNoShell) {
  std::string out;
  ASSERT_EQ(RunShell(std::string(KILN_SOURCE_DIR) + "/deploy/build-image.sh --kiln " + KILN_BINARY + " --destination " +
                         env_->Ref("kiln/kiln:release") + " --insecure --compression-level 1 --state-dir " +
                         env_->state_dir() + " 2>&1",
                     &out),
            0)
      << out;
  testing::ReadBack rel = env_->Read("kiln/kiln:release");
  EXPECT_EQ(Stat(rel.rootfs, "kaniko/executor").type, 'f');
  EXPECT_EQ(Stat(rel.rootfs, "busybox").type, '-');
  EXPECT_EQ(Stat(rel.rootfs, "bin/sh").type, '-');
  // The same binary and libraries give the same first layer (reproducible build).
  EXPECT_EQ(rel.manifest["layers"][0]["digest"], image_->manifest["layers"][0]["digest"]);
}

TEST_F(KilnImageTest, DefaultJobBuildsFromAGitCheckoutWithTheMountedSecret) {
  // The git repository the init container clones (file:// stands in for the network).
  std::string repo = env_->NewDir("repo");
  testing::WriteFile(repo + "/Dockerfile",
                     "FROM " + tls_->host() + "/base/busybox:latest\n"
                     "COPY app.txt /app/\n"
                     "RUN id -u; cat /kaniko/.docker/config.json; env; echo ran > /app/ran.txt\n");
  testing::WriteFile(repo + "/app.txt", "from git\n");
  std::string out;
  ASSERT_EQ(RunShell("cd " + repo + " && git init -q -b main && git add . && git -c user.email=t@t -c user.name=t commit -qm init 2>&1", &out), 0) << out;
  std::string workspace = env_->NewDir("workspace");
  std::string vol = " --volume-dir workspace=" + workspace;
  ASSERT_EQ(RunPod("job-git.yaml", "checkout",
                   "--host-image --bind " + repo + ":/srv/app.git:ro --set-env GIT_URL=file:///srv/app.git" + vol, &out),
            0)
      << out;
  ASSERT_EQ(ReadFile(workspace + "/src/app.txt"), "from git\n");

  int rc = RunPod("job-git.yaml", "kiln", "--set-env KILN_DESTINATION=" + tls_->host() + "/team/app:1.0.0" + vol, &out);
  ASSERT_EQ(rc, 0) << out;
  // The default pod (root, default capabilities, RuntimeDefault seccomp) runs RUN in the chroot tier.
  EXPECT_NE(out.find("RUN sandbox: chroot"), std::string::npos) << out;
  EXPECT_NE(out.find("can't open '/kaniko/.docker/config.json'"), std::string::npos) << out;
  ASSERT_FALSE(PushedDigest("team/app:1.0.0").empty()) << out;
  ExpectNoLeak(out, {workspace + "/kiln"});
}

TEST_F(KilnImageTest, NonRootJobBuildsFromAContextTarball) {
  std::string cm = env_->NewDir("configmap");
  std::string ctx = env_->NewDir("ctx");
  testing::WriteFile(ctx + "/app.txt", "from a tarball\n");
  testing::WriteFile(cm + "/Dockerfile", "FROM " + tls_->host() + "/base/busybox:latest\nCOPY app.txt /app/\nENV MODE=nonroot\n");
  std::string out;
  ASSERT_EQ(RunShell("tar -C " + ctx + " -czf " + cm + "/context.tar.gz . && chmod a+r " + cm + "/*", &out), 0) << out;
  std::string state = env_->NewDir("state");
  int rc = RunPod("job-nonroot.yaml", "kiln",
                  "--configmap kiln-context=" + cm + " --volume-dir state=" + state +
                      " --set-env KILN_DESTINATION=" + tls_->host() + "/team/app:nonroot",
                  &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_FALSE(PushedDigest("team/app:nonroot").empty());
  ExpectNoLeak(out, {state});

  // RUN steps as the pod's uid run in the ptrace sandbox, the pod's default seccomp profile allowing.
  testing::WriteFile(cm + "/Dockerfile", "FROM " + tls_->host() + "/base/busybox:latest\nUSER 1000:1000\n"
                                         "WORKDIR /out\nRUN id -u > uid && ls /bin/busybox\n");
  ::chmod((cm + "/Dockerfile").c_str(), 0644);
  rc = RunPod("job-nonroot.yaml", "kiln",
              "--configmap kiln-context=" + cm + " --set-env KILN_DESTINATION=" + tls_->host() + "/team/app:run", &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("RUN sandbox: ptrace"), std::string::npos) << out;
  EXPECT_FALSE(PushedDigest("team/app:run").empty());

  // A RUN step as root cannot run there, and the message says what to change.
  testing::WriteFile(cm + "/Dockerfile", "FROM " + tls_->host() + "/base/busybox:latest\nRUN true\n");
  ::chmod((cm + "/Dockerfile").c_str(), 0644);
  rc = RunPod("job-nonroot.yaml", "kiln",
              "--configmap kiln-context=" + cm + " --set-env KILN_DESTINATION=" + tls_->host() + "/team/app:root", &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("RUN as uid 0, gid 0: the ptrace sandbox runs steps only as kiln's own uid 1000"), std::string::npos)
      << out;
  EXPECT_NE(out.find("Give this step USER 1000:1000"), std::string::npos) << out;
}

}  // namespace
}  // namespace kiln
