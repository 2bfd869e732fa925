// Where `kiln build` finds registry credentials beyond Docker's config.json, and what a 401 says:
// `kiln login` / `kiln logout` writing Docker's config.json, containers' auth.json (what `podman
// login` writes: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json), and a refusal that
// says whether credentials were sent at all and where kiln looked — never the secret itself.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <fstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"
#include "tests/testing/temp_dir.h"

namespace kiln {
namespace {

using testing::BuildEnv;
using testing::KilnRun;

constexpr char kUser[] = "ci-bot";
constexpr char kPassword[] = "Quartz-Lantern-4471";

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

class BuildCredentialsTest : public testing::BuildEnvSuite {
 protected:
  static void SetUpTestSuite() {
    BuildEnvSuite::SetUpTestSuite();
    if (env_ == nullptr) return;
    testing::RegistryOptions o;
    o.tls = true;
    o.user = kUser;
    o.password = kPassword;
    secure_ = testing::RegistryServer::Start(o).release();
    testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", *secure_, "busybox:latest",
                            testing::MediaTypes::kOci, std::string(kUser) + ":" + kPassword);
  }
  static void TearDownTestSuite() {
    delete secure_;
    secure_ = nullptr;
    BuildEnvSuite::TearDownTestSuite();
  }

  // A build from and to the auth registry; `env` says where credentials are.
  KilnRun Build(const std::string& tag, const std::string& env) {
    std::string ctx = env_->Context({{"Dockerfile", "FROM " + secure_->host() + "/busybox:latest\nRUN echo c > /c\n"}});
    return testing::RunKiln(KILN_BINARY,
                            "build --context " + ctx + " --state-dir " + env_->state_dir() +
                                " --registry-certificate " + secure_->host() + "=" + secure_->ca_cert_path() +
                                " --destination " + secure_->host() + "/" + tag,
                            "HOME=/nonexistent DOCKER_CONFIG= XDG_RUNTIME_DIR= REGISTRY_AUTH_FILE= " + env);
  }

  // An auth.json as `podman login` writes it (the same "auths" form as Docker's config.json).
  static void WriteAuthJson(const std::string& path, const std::string& password) {
    std::string dir = env_->NewDir("auth-src");
    std::string written = testing::WriteDockerConfig(dir, secure_->host(), kUser, password);
    ASSERT_EQ(::rename(written.c_str(), path.c_str()), 0);
  }

  static testing::RegistryServer* secure_;
};
testing::RegistryServer* BuildCredentialsTest::secure_ = nullptr;

TEST_F(BuildCredentialsTest, LoginWritesDockersConfigAndLogoutRemovesIt) {
  std::string dir = env_->NewDir("docker");
  {
    std::ofstream keep(dir + "/config.json");
    keep << R"({"auths":{"other.example":{"auth":"eDp5"}},"credHelpers":{"gcr.io":"gcr"}})";
  }
  KilnRun login = testing::RunKiln(KILN_BINARY, "login " + secure_->host() + " -u " + kUser + " --password-stdin",
                                   "DOCKER_CONFIG=" + dir, "printf '%s\\n' " + std::string(kPassword) + " |");
  ASSERT_EQ(login.rc, 0) << login.err;
  EXPECT_FALSE(Has(login.err + login.out, kPassword));
  struct stat st;
  ASSERT_EQ(::stat((dir + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  nlohmann::json cfg = nlohmann::json::parse(testing::ReadFile(dir + "/config.json"));
  EXPECT_TRUE(cfg["auths"].contains("other.example")) << cfg.dump();
  EXPECT_EQ(cfg["credHelpers"]["gcr.io"], "gcr") << cfg.dump();

  KilnRun ok = Build("login:1", "DOCKER_CONFIG=" + dir);
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_FALSE(Has(ok.err + ok.out, kPassword));

  KilnRun logout = testing::RunKiln(KILN_BINARY, "logout " + secure_->host(), "DOCKER_CONFIG=" + dir);
  ASSERT_EQ(logout.rc, 0) << logout.err;
  cfg = nlohmann::json::parse(testing::ReadFile(dir + "/config.json"));
  EXPECT_FALSE(cfg["auths"].contains(secure_->host())) << cfg.dump();
  EXPECT_TRUE(cfg["auths"].contains("other.example")) << cfg.dump();
  EXPECT_NE(Build("login:2", "DOCKER_CONFIG=" + dir).rc, 0);
}

TEST_F(BuildCredentialsTest, PodmansAuthJsonIsRead) {
  std::string file = env_->NewDir("auth") + "/auth.json";
  WriteAuthJson(file, kPassword);
  KilnRun explicit_file = Build("podman:1", "REGISTRY_AUTH_FILE=" + file);
  EXPECT_EQ(explicit_file.rc, 0) << explicit_file.err;

  std::string runtime = env_->NewDir("run-user");
  ::mkdir((runtime + "/containers").c_str(), 0700);
  WriteAuthJson(runtime + "/containers/auth.json", kPassword);
  KilnRun xdg = Build("podman:2", "XDG_RUNTIME_DIR=" + runtime);
  EXPECT_EQ(xdg.rc, 0) << xdg.err;
}

TEST_F(BuildCredentialsTest, RefusalSaysWhetherCredentialsWereSentAndWhereKilnLooked) {
  KilnRun none = Build("refused:1", "");
  EXPECT_EQ(none.rc, 1) << none.err;
  EXPECT_TRUE(Has(none.err, "401")) << none.err;
  EXPECT_TRUE(Has(none.err, "no credentials were sent")) << none.err;
  EXPECT_TRUE(Has(none.err, "/kaniko/.docker/config.json")) << none.err;

  std::string file = env_->NewDir("wrong") + "/auth.json";
  WriteAuthJson(file, "Wrong-Pass-0000");
  KilnRun wrong = Build("refused:2", "REGISTRY_AUTH_FILE=" + file);
  EXPECT_EQ(wrong.rc, 1) << wrong.err;
  EXPECT_TRUE(Has(wrong.err, "were sent and refused")) << wrong.err;
  EXPECT_TRUE(Has(wrong.err, file)) << wrong.err;
  EXPECT_FALSE(Has(wrong.err, "Wrong-Pass-0000")) << wrong.err;
}

}  // namespace
}  // namespace kiln
