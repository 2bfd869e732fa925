// Self-tests of the real-registry harness: each flavour of RegistryServer is started and spoken to
// with curl and skopeo, the way kiln's registry tests will use it.
#include "tests/testing/registry_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "core/digest.h"
#include "tests/testing/certs.h"
#include "tests/testing/temp_dir.h"

namespace kiln::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

/// Runs curl and returns "CODE" (the HTTP status, "000" when none), the body going to `body`.
std::string CurlStatus(const std::string& args, std::string* body = nullptr) {
  TempDir tmp;
  std::string out;
  RunShell("curl -s -o " + tmp.Sub("body") + " -w '%{http_code}' " + args, &out);
  if (body) *body = std::filesystem::exists(tmp.Sub("body")) ? ReadFile(tmp.Sub("body")) : "";
  return out;
}

/// An OCI layout at dir/layout holding image "t" with one layer, made by umoci.
std::string MakeOciLayout(const TempDir& dir) {
  const std::string layout = dir.Sub("layout");
  WriteFile(dir.Sub("hello.txt"), "hello from the kiln harness\n");
  std::string out;
  int rc = RunShell("umoci init --layout " + layout + " && umoci new --image " + layout +
                        ":t && umoci insert --rootless --image " + layout + ":t " + dir.Sub("hello.txt") +
                        " /hello.txt",
                    &out);
  EXPECT_EQ(rc, 0) << out;
  return layout;
}

/// The processes other than this one with `needle` in their command line. (Reads /proc itself:
/// `pgrep -f` run through a shell would find the shell, whose command line holds the needle.)
std::vector<pid_t> ProcessesMentioning(const std::string& needle) {
  std::vector<pid_t> pids;
  const std::string self = std::to_string(::getpid());
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos || pid == self) continue;
    std::ifstream f(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    for (char& c : cmdline) if (c == '\0') c = ' ';
    if (cmdline.find(needle) != std::string::npos) pids.push_back(std::stoi(pid));
  }
  return pids;
}

bool AnyProcessMentions(const std::string& needle) { return !ProcessesMentioning(needle).empty(); }

TEST(RegistryServerTest, PlainHttpServesTheDistributionApiAndSkopeoRoundTrips) {
  auto reg = RegistryServer::Start();
  EXPECT_EQ(reg->scheme(), "http");
  EXPECT_EQ(reg->host(), reg->direct_host());
  EXPECT_THAT(reg->host(), ::testing::StartsWith("127.0.0.1:"));
  EXPECT_EQ(CurlStatus(reg->url() + "/v2/"), "200");

  TempDir work;
  const std::string layout = MakeOciLayout(work);
  std::string out;
  ASSERT_EQ(RunShell("skopeo copy --quiet --dest-tls-verify=false oci:" + layout + ":t docker://" +
                         reg->host() + "/harness/hello:v1",
                     &out),
            0)
      << out;
  ASSERT_EQ(RunShell("skopeo inspect --raw --tls-verify=false docker://" + reg->host() +
                         "/harness/hello:v1",
                     &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("application/vnd.oci.image.layer.v1.tar+gzip"));

  // Every blob of the pushed manifest is where BlobPath says, so tests can corrupt or inspect it.
  std::string manifest = out;
  const std::string config_key = "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"";
  auto at = manifest.find(config_key);
  ASSERT_NE(at, std::string::npos) << manifest;
  const std::string config_digest = manifest.substr(at + config_key.size(), 71);
  ASSERT_TRUE(std::filesystem::exists(reg->BlobPath(config_digest))) << reg->BlobPath(config_digest);
  EXPECT_EQ(Sha256Of(ReadFile(reg->BlobPath(config_digest))).ToString(), config_digest);
  EXPECT_THAT(reg->storage_dir(), HasSubstr(reg->dir()));
}

TEST(RegistryServerTest, TlsWithBasicAuthNeedsTheCaAndTheCredentials) {
  RegistryOptions o;
  o.tls = true;
  o.user = "alice";
  o.password = "s3cret";
  auto reg = RegistryServer::Start(o);
  EXPECT_EQ(reg->scheme(), "https");
  const std::string v2 = reg->url() + "/v2/";

  std::string out;
  // Without the CA the certificate is not trusted (curl exit 60).
  EXPECT_EQ(RunShell("curl -s -o /dev/null " + v2, &out), 60) << out;
  const std::string ca = " --cacert " + reg->ca_cert_path() + " ";
  EXPECT_EQ(CurlStatus(ca + v2), "401");
  EXPECT_EQ(CurlStatus(ca + "-u alice:wrong " + v2), "401");
  EXPECT_EQ(CurlStatus(ca + "-u alice:s3cret " + v2), "200");
  // The certificate names localhost too.
  EXPECT_EQ(CurlStatus(ca + "-u alice:s3cret --resolve localhost:" + reg->host().substr(10) +
                       ":127.0.0.1 https://localhost:" + reg->host().substr(10) + "/v2/"),
            "200");
  EXPECT_EQ(RunShell("curl -s -D - -o /dev/null" + ca + v2 + " | grep -qi '^www-authenticate: basic'"), 0);

  TempDir work;
  const std::string layout = MakeOciLayout(work);
  const std::string dest = " docker://" + reg->host() + "/private/img:1";
  EXPECT_NE(RunShell("skopeo copy --quiet --dest-cert-dir " + reg->ca_cert_dir() +
                         " --dest-creds alice:wrong oci:" + layout + ":t" + dest,
                     &out),
            0);
  EXPECT_THAT(out, Not(HasSubstr("wrong")));
  ASSERT_EQ(RunShell("skopeo copy --quiet --dest-cert-dir " + reg->ca_cert_dir() +
                         " --dest-creds alice:s3cret oci:" + layout + ":t" + dest,
                     &out),
            0)
      << out;
  // A docker config.json written by the helper works as skopeo's --authfile.
  const std::string auth = WriteDockerConfig(work.path(), reg->host(), "alice", "s3cret");
  ASSERT_EQ(RunShell("skopeo inspect --raw --cert-dir " + reg->ca_cert_dir() + " --authfile " + auth +
                         dest,
                     &out),
            0)
      << out;
  EXPECT_THAT(ReadFile(auth), HasSubstr("\"auth\": \"YWxpY2U6czNjcmV0\""));  // base64("alice:s3cret")
}

TEST(RegistryServerTest, TokenAuthGrantsPushToTheUserAndPullToAnonymous) {
  RegistryOptions o;
  o.token_auth = true;
  o.user = "bob";
  o.password = "hunter2";
  o.anonymous_pull = true;
  auto reg = RegistryServer::Start(o);

  std::string out;
  RunShell("curl -s -D - -o /dev/null " + reg->url() + "/v2/", &out);
  EXPECT_THAT(out, HasSubstr("Bearer realm=\"" + reg->token_realm() + "\",service=\"kiln-test-registry\""));

  TempDir work;
  const std::string layout = MakeOciLayout(work);
  const std::string dest = " docker://" + reg->host() + "/team/app:1";
  // Anonymous clients only get pull tokens.
  EXPECT_NE(RunShell("skopeo copy --quiet --dest-tls-verify=false oci:" + layout + ":t" + dest, &out), 0);
  ASSERT_EQ(RunShell("skopeo copy --quiet --dest-tls-verify=false --dest-creds bob:hunter2 oci:" + layout +
                         ":t" + dest,
                     &out),
            0)
      << out;
  ASSERT_EQ(RunShell("skopeo inspect --raw --tls-verify=false --no-creds" + dest, &out), 0) << out;

  const auto log = reg->TokenRequests();
  EXPECT_THAT(log, ::testing::Contains(HasSubstr("GET basic bob repository:team/app:pull,push")));
  EXPECT_THAT(log, ::testing::Contains(HasSubstr("GET anonymous - repository:team/app:pull")));
  for (const auto& line : log) EXPECT_THAT(line, Not(HasSubstr("hunter2")));
  reg->ClearTokenRequests();
  EXPECT_TRUE(reg->TokenRequests().empty());

  // Wrong credentials are refused by the token server itself.
  EXPECT_EQ(CurlStatus("-u bob:nope '" + reg->token_realm() +
                       "?service=kiln-test-registry&scope=repository:team/app:pull'"),
            "401");
}

TEST(RegistryServerTest, TokensExpireAfterExpiresInAndRefreshTokensWork) {
  RegistryOptions o;
  o.token_auth = true;
  o.user = "carol";
  o.password = "pw";
  o.token_expires_in = 2;
  o.refresh_token = "identity-token-123";
  auto reg = RegistryServer::Start(o);

  std::string body;
  ASSERT_EQ(CurlStatus("-u carol:pw '" + reg->token_realm() +
                           "?service=kiln-test-registry&scope=repository:x/y:pull,push'",
                       &body),
            "200");
  EXPECT_THAT(body, HasSubstr("\"expires_in\": 2"));
  EXPECT_THAT(body, HasSubstr("\"issued_at\": \""));
  const auto start = body.find("\"token\": \"") + 10;
  const std::string token = body.substr(start, body.find('"', start) - start);
  const std::string post = "-X POST -H 'Authorization: Bearer " + token + "' " + reg->url() + "/v2/x/y/blobs/uploads/";
  EXPECT_EQ(CurlStatus(post), "202");
  std::this_thread::sleep_for(std::chrono::milliseconds(2300));
  EXPECT_EQ(CurlStatus(post), "401");  // the registry no longer accepts it

  // OAuth2 form: the refresh token (a docker "identitytoken") stands for carol.
  ASSERT_EQ(CurlStatus("--data 'grant_type=refresh_token&refresh_token=identity-token-123&service=kiln-test-registry"
                       "&scope=repository:x/y:pull,push&client_id=kiln' " + reg->token_realm(),
                       &body),
            "200");
  EXPECT_THAT(body, HasSubstr("\"access_token\""));
  EXPECT_EQ(CurlStatus("--data 'grant_type=refresh_token&refresh_token=other&service=kiln-test-registry' " +
                       reg->token_realm()),
            "401");
  EXPECT_EQ(CurlStatus("--data 'grant_type=password&username=carol&password=pw&access_type=offline"
                       "&service=kiln-test-registry&client_id=kiln' " + reg->token_realm(),
                       &body),
            "200");
  EXPECT_THAT(body, HasSubstr("\"refresh_token\": \"identity-token-123\""));
  EXPECT_THAT(reg->TokenRequests(), ::testing::Contains("POST refresh_token carol repository:x/y:pull,push"));
}

TEST(RegistryServerTest, DestructorStopsEveryChildAndRemovesItsDirectory) {
  std::string dir;
  {
    RegistryOptions o;
    o.token_auth = true;
    o.fault_proxy = true;
    auto reg = RegistryServer::Start(o);
    dir = reg->dir();
    EXPECT_TRUE(AnyProcessMentions(dir + "/config.yml"));
    EXPECT_TRUE(AnyProcessMentions(dir + "/token_server.port"));
    EXPECT_TRUE(AnyProcessMentions(dir + "/fault_proxy.port"));
  }
  EXPECT_FALSE(AnyProcessMentions(dir));
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(RegistryServerTest, ChildrenDieWithTheTestProcess) {
  // A test that crashes never runs the destructor: PR_SET_PDEATHSIG must take the children down.
  TempDir work;
  const std::string pid_file = work.Sub("dir");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    RegistryOptions o;
    o.fault_proxy = true;
    auto reg = RegistryServer::Start(o);
    WriteFile(pid_file, reg->dir());
    ::_exit(0);  // no destructors
  }
  int status;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const std::string dir = ReadFile(pid_file);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !AnyProcessMentions(dir + "/");
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(gone) << "children of " << dir << " outlived their parent";
  for (pid_t leaked : ProcessesMentioning(dir + "/")) ::kill(leaked, SIGKILL);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln::testing
