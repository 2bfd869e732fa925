// Docker config.json credentials: key normalisation and matching (tables), credential helpers run as
// real processes (a shell-script docker-credential-fake on PATH), and a pull from a TLS + basic-auth
// registry whose password is only in a config.json found through $DOCKER_CONFIG.
#include "registry/credentials.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "registry/client.h"
#include "core/image_copy.h"
#include "registry/curl_transport.h"
#include "core/reference.h"
#include "registry/transport.h"
#include "registry/registry_image.h"
#include "tests/registry/test_images.h"
#include "tests/testing/registry_server.h"
#include "tests/testing/temp_dir.h"

namespace kiln::registry {
namespace {

using kiln::testing::TempDir;
using kiln::testing::WriteFile;

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name); old != nullptr) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(NormalizeAuthKeyTest, Table) {
  struct Case {
    const char* key;
    const char* want;
  } cases[] = {
      {"https://index.docker.io/v1/", "docker.io"},
      {"index.docker.io", "docker.io"},
      {"http://index.docker.io/v1/", "docker.io"},
      {"registry-1.docker.io", "docker.io"},
      {"docker.io", "docker.io"},
      {"https://INDEX.docker.io/v1/", "docker.io"},
      {"r.example:5000", "r.example:5000"},
      {"https://r.example:5000", "r.example:5000"},
      {"https://r.example:5000/v2/", "r.example:5000"},
      {"http://127.0.0.1:5000/", "127.0.0.1:5000"},
      {"ghcr.io/owner/repo", "ghcr.io"},
      {"  quay.io ", "quay.io"},
      {"localhost", "localhost"},
      {"[::1]:5000", "[::1]:5000"},
  };
  for (const auto& c : cases) EXPECT_EQ(NormalizeAuthKey(c.key), c.want) << c.key;
}

TEST(HelperServerUrlTest, DockerHubGetsTheV1IndexUrl) {
  EXPECT_EQ(HelperServerUrl("docker.io"), "https://index.docker.io/v1/");
  EXPECT_EQ(HelperServerUrl("index.docker.io"), "https://index.docker.io/v1/");
  EXPECT_EQ(HelperServerUrl("r.example:5000"), "r.example:5000");
}

TEST(DockerConfigSearchTest, CandidatesInDockerOrderThenKaniko) {
  DockerConfigSearch s;
  s.docker_config_dir = "/cfg";
  s.home_dir = "/home/u";
  EXPECT_EQ(s.Candidates(), (std::vector<std::string>{"/cfg/config.json", "/home/u/.docker/config.json",
                                                     "/kaniko/.docker/config.json"}));
  s.docker_config_dir.clear();
  s.kaniko = false;
  EXPECT_EQ(s.Candidates(), (std::vector<std::string>{"/home/u/.docker/config.json"}));
  ScopedEnv dc("DOCKER_CONFIG", "/from/env");
  ScopedEnv home("HOME", "/home/env");
  auto env = DockerConfigSearch::FromEnvironment();
  EXPECT_EQ(env.docker_config_dir, "/from/env");
  EXPECT_EQ(env.home_dir, "/home/env");
  EXPECT_TRUE(env.kaniko);
}

// A HelperRunner that must not be called.
class NoHelpers : public HelperRunner {
 public:
  Result<std::string> Run(const std::string& program, const std::vector<std::string>&,
                          const std::string&) override {
    ADD_FAILURE() << "unexpected helper " << program;
    return InternalError("unexpected");
  }
};

std::string B64(const std::string& s) { return Base64Encode(s); }

TEST(DockerConfigKeychainTest, MatchesAuthsTheWayDockerDoes) {
  std::string json = R"({"auths": {
    "https://index.docker.io/v1/": {"auth": ")" + B64("hubuser:hubpass") + R"("},
    "https://r.example:5000/v2/": {"username": "ruser", "password": "rpass"},
    "exact.example": {"auth": ")" + B64("exact:one") + R"("},
    "https://exact.example": {"auth": ")" + B64("exact:two") + R"("},
    "tok.example": {"identitytoken": "refresh-1"},
    "bearer.example": {"registrytoken": "bearer-1"},
    "both.example": {"auth": ")" + B64("fromauth:p:with:colons") + R"(", "username": "ignored", "password": "x"}
  }})";
  NoHelpers runner;
  auto kc = DockerConfigKeychain::FromJson(json, &runner);
  ASSERT_TRUE(kc.ok()) << kc.status().ToString();
  struct Case {
    const char* registry;
    const char* user;
    const char* password;
    const char* identity;
    const char* registry_token;
  } cases[] = {
      {"docker.io", "hubuser", "hubpass", "", ""},
      {"index.docker.io", "hubuser", "hubpass", "", ""},
      {"r.example:5000", "ruser", "rpass", "", ""},
      {"r.example", "", "", "", ""},  // the port is part of the name
      {"exact.example", "exact", "one", "", ""},
      {"tok.example", "", "", "refresh-1", ""},
      {"bearer.example", "", "", "", "bearer-1"},
      {"both.example", "fromauth", "p:with:colons", "", ""},
      {"unknown.example", "", "", "", ""},
  };
  for (const auto& c : cases) {
    auto cred = (*kc)->Resolve(c.registry);
    ASSERT_TRUE(cred.ok()) << c.registry << ": " << cred.status().ToString();
    EXPECT_EQ(cred->username, c.user) << c.registry;
    EXPECT_EQ(cred->password, c.password) << c.registry;
    EXPECT_EQ(cred->identity_token, c.identity) << c.registry;
    EXPECT_EQ(cred->registry_token, c.registry_token) << c.registry;
  }
}

TEST(DockerConfigKeychainTest, MalformedConfigFailsWithoutQuotingSecrets) {
  NoHelpers runner;
  auto bad_b64 = DockerConfigKeychain::FromJson(R"({"auths":{"r":{"auth":"%%secret%%"}}})", &runner);
  ASSERT_FALSE(bad_b64.ok());
  EXPECT_EQ(bad_b64.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_b64.status().message().find("secret"), std::string::npos) << bad_b64.status().message();
  auto no_colon = DockerConfigKeychain::FromJson(R"({"auths":{"r":{"auth":")" + B64("justasecret") + "\"}}}", &runner);
  ASSERT_FALSE(no_colon.ok());
  EXPECT_EQ(no_colon.status().message().find("justasecret"), std::string::npos);
  auto not_json = DockerConfigKeychain::FromJson(R"({"auths":{"r":{"password":"topsecret)", &runner);
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.status().message().find("topsecret"), std::string::npos) << not_json.status().message();
}

TEST(DockerConfigKeychainTest, FirstExistingCandidateWinsAndIsNotMerged) {
  TempDir t;
  WriteFile(t.Sub("home/.docker/config.json"),
            R"({"auths":{"a.example":{"auth":")" + B64("home:pw") + R"("},"b.example":{"auth":")" + B64("b:pw") + "\"}}}");
  DockerConfigSearch s;
  s.docker_config_dir = t.Sub("missing");
  s.home_dir = t.Sub("home");
  s.kaniko_path = t.Sub("kaniko/config.json");
  NoHelpers runner;
  DockerConfigKeychain from_home(s, &runner);
  EXPECT_EQ(from_home.Resolve("a.example")->username, "home");

  WriteFile(t.Sub("cfg/config.json"), R"({"auths":{"a.example":{"auth":")" + B64("cfg:pw") + "\"}}}");
  s.docker_config_dir = t.Sub("cfg");
  DockerConfigKeychain from_cfg(s, &runner);
  EXPECT_EQ(from_cfg.Resolve("a.example")->username, "cfg");
  EXPECT_TRUE(from_cfg.Resolve("b.example")->anonymous());  // home's file is not consulted

  DockerConfigSearch none;
  none.home_dir = t.Sub("nohome");
  none.kaniko_path = t.Sub("kaniko/config.json");
  DockerConfigKeychain empty(none, &runner);
  auto anon = empty.Resolve("a.example");
  ASSERT_TRUE(anon.ok());
  EXPECT_TRUE(anon->anonymous());

  WriteFile(t.Sub("kaniko/config.json"), R"({"auths":{"a.example":{"auth":")" + B64("kaniko:pw") + "\"}}}");
  DockerConfigKeychain kaniko(none, &runner);
  EXPECT_EQ(kaniko.Resolve("a.example")->username, "kaniko");
}

// The fake helper answers per server URL; it logs its arguments so the test sees `get`.
constexpr char kFakeHelper[] = R"(#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls.log"
read -r server
case "$server" in
  helped.example:5000) printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-pass"}' "$server" ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"<token>","Secret":"hub-refresh"}' "$server" ;;
  broken.example) echo "stdout-secret-zzz"; echo "helper exploded" >&2; exit 3 ;;
  garbage.example) echo "not json secret-qqq" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
)";

class HelperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(bin_.Sub("docker-credential-fake"), kFakeHelper, 0755);
    path_ = std::make_unique<ScopedEnv>("PATH", bin_.path() + ":" + std::getenv("PATH"));
  }
  TempDir bin_;
  std::unique_ptr<ScopedEnv> path_;
  ProcessHelperRunner runner_;
};

TEST_F(HelperTest, ProcessRunnerPassesStdinAndReturnsStdout) {
  auto out = runner_.Run("docker-credential-fake", {"get"}, "helped.example:5000\n");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, R"({"ServerURL":"helped.example:5000","Username":"helper-user","Secret":"helper-pass"})");
  EXPECT_EQ(kiln::testing::ReadFile(bin_.Sub("calls.log")), "get\n");

  auto failed = runner_.Run("docker-credential-fake", {"get"}, "broken.example\n");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("exit status 3"), std::string::npos) << failed.status().message();
  EXPECT_NE(failed.status().message().find("helper exploded"), std::string::npos);
  EXPECT_EQ(failed.status().message().find("stdout-secret-zzz"), std::string::npos);

  auto missing = runner_.Run("docker-credential-nosuch", {"get"}, "x\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("docker-credential-nosuch"), std::string::npos);
}

TEST_F(HelperTest, CredHelpersPerRegistryAndCredsStoreAsDefault) {
  auto kc = DockerConfigKeychain::FromJson(R"({
    "auths": {"inline.example": {"auth": ")" + B64("inline:pw") + R"("}, "helped.example:5000": {}},
    "credHelpers": {"helped.example:5000": "fake", "https://broken.example": "fake", "garbage.example": "fake"},
    "credsStore": "fake"
  })", &runner_);
  ASSERT_TRUE(kc.ok()) << kc.status().ToString();
  auto helped = (*kc)->Resolve("helped.example:5000");
  ASSERT_TRUE(helped.ok()) << helped.status().ToString();
  EXPECT_EQ(helped->username, "helper-user");
  EXPECT_EQ(helped->password, "helper-pass");

  // credsStore serves Docker Hub, asked for by its v1 URL; "<token>" means an identity token.
  auto hub = (*kc)->Resolve("docker.io");
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  EXPECT_EQ(hub->username, "");
  EXPECT_EQ(hub->identity_token, "hub-refresh");

  // "credentials not found" is anonymous, not an error.
  auto none = (*kc)->Resolve("other.example");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->anonymous());
  // ... and inline credentials still count when the store has nothing.
  EXPECT_EQ((*kc)->Resolve("inline.example")->username, "inline");

  auto broken = (*kc)->Resolve("broken.example");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("docker-credential-fake"), std::string::npos) << broken.status().message();
  EXPECT_EQ(broken.status().message().find("stdout-secret-zzz"), std::string::npos);
  auto garbage = (*kc)->Resolve("garbage.example");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().message().find("secret-qqq"), std::string::npos) << garbage.status().message();
}

TEST(DockerConfigIntegrationTest, PullWithPasswordFromDockerConfigAndClearErrorWhenWrong) {
  kiln::testing::RegistryOptions ro;
  ro.tls = true;
  ro.user = "erin";
  ro.password = "Corr3ct-Horse";
  auto server = kiln::testing::RegistryServer::Start(ro);
  CurlTransportOptions to;
  to.hosts[server->host()].ca_files = {server->ca_cert_path()};
  CurlTransport wire(to);
  TempDir home, cfg;
  ScopedEnv home_env("HOME", home.path());
  ScopedEnv cfg_env("DOCKER_CONFIG", cfg.path());
  kiln::testing::WriteDockerConfig(cfg.path(), server->host(), "erin", "Corr3ct-Horse");

  DockerConfigSearch search = DockerConfigSearch::FromEnvironment();
  search.kaniko = false;
  ProcessHelperRunner runner;
  DockerConfigKeychain keychain(search, &runner);
  Client client(&wire, &keychain, ClientOptions{});
  auto img = testing::MakeImage(2, 20'000, 71);
  testing::MemorySource mem;
  mem.SetRoot(img);
  auto sink = OpenRegistrySink(client, Reference::Parse(server->host() + "/cfg/app:1").value());
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  auto pushed = CopyImage(mem, **sink);
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  auto src = OpenRegistrySource(client, Reference::Parse(server->host() + "/cfg/app:1").value());
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  testing::MemorySink pulled;
  ASSERT_TRUE(CopyImage(**src, pulled).ok());
  EXPECT_EQ(pulled.root.digest, img.digest);
  EXPECT_EQ(pulled.blobs.size(), 3u);

  kiln::testing::WriteDockerConfig(cfg.path(), server->host(), "erin", "Wr0ng-Horse-99");
  DockerConfigKeychain wrong(search, &runner);
  Client wrong_client(&wire, &wrong, ClientOptions{});
  auto denied = OpenRegistrySource(wrong_client, Reference::Parse(server->host() + "/cfg/app:1").value());
  ASSERT_FALSE(denied.ok());
  const std::string msg = denied.status().message();
  EXPECT_EQ(denied.status().code(), ErrorCode::kUnauthenticated) << msg;
  EXPECT_NE(msg.find(server->host()), std::string::npos) << msg;
  EXPECT_NE(msg.find("cfg/app"), std::string::npos) << msg;
  EXPECT_NE(msg.find("401"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("Wr0ng-Horse-99"), std::string::npos) << msg;
  EXPECT_EQ(msg.find(Base64Encode("erin:Wr0ng-Horse-99")), std::string::npos) << msg;
}

}  // namespace
}  // namespace kiln::registry
