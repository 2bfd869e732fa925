// Every credential form kiln handles, searched for in every output of builds that used them: the
// password, the base64 auth string of config.json, an identity (refresh) token, and the bearer
// tokens the registry's token server issued — in the log, the state directory (layers uncompressed),
// the docker-archive, the registry's storage (image and cache entries) and the build context. The
// RUN step tries to read the credentials too. Zero hits, or the test fails.
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

constexpr char kUser[] = "scan-bot";
constexpr char kPassword[] = "Ochre-Harbour-9053";
constexpr char kIdentityToken[] = "identity-Tundra-6620";

std::string Base64(const std::string& in) {
  std::string out;
  testing::RunShell("printf %s '" + in + "' | base64 -w0", &out);
  return out;
}

class BuildSecretScanTest : public testing::BuildEnvSuite {
 protected:
  static void SetUpTestSuite() {
    BuildEnvSuite::SetUpTestSuite();
    if (env_ == nullptr) return;
    testing::RegistryOptions o;
    o.token_auth = true;
    o.user = kUser;
    o.password = kPassword;
    o.refresh_token = kIdentityToken;
    reg_ = testing::RegistryServer::Start(o).release();
    testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", *reg_, "busybox:latest",
                            testing::MediaTypes::kOci, std::string(kUser) + ":" + kPassword);
  }
  static void TearDownTestSuite() {
    delete reg_;
    reg_ = nullptr;
    BuildEnvSuite::TearDownTestSuite();
  }

  // The first segment of a JWT from this token server: the same in every token it signs (it holds
  // the signing certificate), so finding it anywhere means a bearer token leaked.
  static std::string BearerTokenHeader() {
    std::string body;
    testing::RunShell("curl -sf -u " + std::string(kUser) + ":" + kPassword + " '" + reg_->token_realm() +
                          "?service=kiln-test-registry&scope=repository:scan:pull'",
                      &body);
    std::string token = nlohmann::json::parse(body).value("token", "");
    return token.substr(0, token.find('.'));
  }

  // Builds with the credentials in `config_json`, then returns every place a secret value was found.
  std::string BuildAndScan(const std::string& name, const std::string& config_json) {
    std::string docker_config = env_->NewDir("docker-config-" + name);
    testing::WriteFile(docker_config + "/config.json", config_json, 0600);
    std::string ctx = env_->Context(
        {{"Dockerfile", "FROM " + reg_->host() + "/busybox:latest\n"
                        "RUN cat /kaniko/.docker/config.json $DOCKER_CONFIG/config.json /root/.docker/config.json "
                        "2>&1; env; echo made > /made\n"}});
    std::string out = env_->NewDir("scan-out-" + name);
    std::string state = env_->NewDir("scan-state-" + name);
    auto r = testing::RunKiln(KILN_BINARY,
                              "build --context " + ctx + " --state-dir " + state +
                                  " --insecure --insecure-pull --compression uncompressed --cache --cache-repo " +
                                  reg_->host() + "/scan-cache --tar-path " + out + "/image.tar --destination " +
                                  reg_->host() + "/scan:" + name,
                              "DOCKER_CONFIG=" + docker_config);
    EXPECT_EQ(r.rc, 0) << r.err;
    EXPECT_NE(r.err.find("made"), std::string::npos);  // the step ran
    testing::WriteFile(out + "/log", r.out + r.err);
    std::string header = BearerTokenHeader();
    EXPECT_GT(header.size(), 20u);
    std::string hits;
    for (const std::string& secret : {std::string(kPassword), Base64(std::string(kUser) + ":" + kPassword),
                                      std::string(kIdentityToken), header}) {
      std::string found;
      testing::RunShell("grep -rlaF -- '" + secret + "' " + out + " " + state + " " + ctx + " " +
                            reg_->storage_dir() + " ; true",
                        &found);
      if (!found.empty()) hits += secret.substr(0, 12) + "... in " + found;
    }
    return hits;
  }

  inline static testing::RegistryServer* reg_ = nullptr;
};

TEST_F(BuildSecretScanTest, PasswordAndBase64AuthLeaveNoTrace) {
  std::string config = "{\"auths\": {\"" + reg_->host() + "\": {\"auth\": \"" +
                       Base64(std::string(kUser) + ":" + kPassword) + "\"}}}";
  EXPECT_EQ(BuildAndScan("password", config), "");
}

TEST_F(BuildSecretScanTest, IdentityTokenAndBearerTokensLeaveNoTrace) {
  std::string config = "{\"auths\": {\"" + reg_->host() + "\": {\"identitytoken\": \"" + kIdentityToken + "\"}}}";
  EXPECT_EQ(BuildAndScan("identity", config), "");
}

}  // namespace
}  // namespace kiln
