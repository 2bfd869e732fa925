// Authentication against real registries: HTTPS with a test CA and htpasswd basic auth, and bearer
// tokens from the harness's token server (anonymous pull, credentials, identity token, expiry).
#include <gtest/gtest.h>

#include <thread>

#include "registry/client.h"
#include "core/image_copy.h"
#include "registry/curl_transport.h"
#include "core/reference.h"
#include "registry/registry_image.h"
#include "tests/registry/test_images.h"
#include "tests/testing/registry_server.h"

namespace kiln::registry {
namespace {

using testing::MakeImage;
using testing::MemorySink;
using testing::MemorySource;
using testing::TestImage;

class StaticKeychain : public Keychain {
 public:
  explicit StaticKeychain(Credential c) : c_(std::move(c)) {}
  Result<Credential> Resolve(std::string_view) override { return c_; }

 private:
  Credential c_;
};

Result<CopyResult> PushImage(Client& client, const std::string& ref, const TestImage& img) {
  MemorySource src;
  src.SetRoot(img);
  KILN_ASSIGN_OR_RETURN(auto sink, OpenRegistrySink(client, Reference::Parse(ref).value()));
  return CopyImage(src, *sink);
}

Result<MemorySink*> PullImage(Client& client, const std::string& ref, MemorySink* sink) {
  KILN_ASSIGN_OR_RETURN(auto src, OpenRegistrySource(client, Reference::Parse(ref).value()));
  KILN_RETURN_IF_ERROR(CopyImage(*src, *sink).status());
  return sink;
}

TEST(RegistryTlsBasicTest, PushPullWithCaAndPasswordAndClearErrorOnWrongPassword) {
  kiln::testing::RegistryOptions ro;
  ro.tls = true;
  ro.user = "alice";
  ro.password = "s3cret-Pa55";
  auto server = kiln::testing::RegistryServer::Start(ro);
  CurlTransportOptions to;
  to.hosts[server->host()].ca_files = {server->ca_cert_path()};
  CurlTransport wire(to);

  StaticKeychain good(Credential{"alice", "s3cret-Pa55", "", ""});
  Client client(&wire, &good, ClientOptions{});
  TestImage img = MakeImage(2, 50'000, 21);
  auto pushed = PushImage(client, server->host() + "/secure/app:1", img);
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  MemorySink sink;
  auto pulled = PullImage(client, server->host() + "/secure/app:1", &sink);
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  EXPECT_EQ(sink.root.digest, img.digest);

  StaticKeychain bad(Credential{"alice", "WRONG-pw-123", "", ""});
  Client bad_client(&wire, &bad, ClientOptions{});
  auto denied = PullImage(bad_client, server->host() + "/secure/app:1", &sink);
  ASSERT_FALSE(denied.ok());
  const std::string msg = denied.status().message();
  EXPECT_EQ(denied.status().code(), ErrorCode::kUnauthenticated) << msg;
  EXPECT_NE(msg.find("401"), std::string::npos) << msg;
  EXPECT_NE(msg.find(server->host()), std::string::npos) << msg;
  EXPECT_NE(msg.find("secure/app"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("WRONG-pw-123"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("alice:"), std::string::npos) << msg;

  // Without the CA the certificate is not trusted; skip-verify for this host only works.
  CurlTransport untrusting;
  ClientOptions one_try;
  one_try.retry.max_attempts = 1;
  Client no_ca(&untrusting, &good, one_try);
  auto tls_fail = PullImage(no_ca, server->host() + "/secure/app:1", &sink);
  ASSERT_FALSE(tls_fail.ok());
  EXPECT_EQ(tls_fail.status().code(), ErrorCode::kFailedPrecondition) << tls_fail.status().ToString();
  CurlTransportOptions skip;
  skip.hosts[server->host()].skip_verify = true;
  CurlTransport skipping(skip);
  Client skip_client(&skipping, &good, ClientOptions{});
  MemorySink sink2;
  EXPECT_TRUE(PullImage(skip_client, server->host() + "/secure/app:1", &sink2).ok());
}

class RegistryTokenTest : public ::testing::Test {
 protected:
  ClientOptions Insecure(const kiln::testing::RegistryServer& s) {
    ClientOptions o;
    o.insecure_registries.insert(s.host());
    return o;
  }
  CurlTransport wire_;
};

TEST_F(RegistryTokenTest, CredentialsGetScopedTokensAndAnonymousCanOnlyPull) {
  kiln::testing::RegistryOptions ro;
  ro.token_auth = true;
  ro.anonymous_pull = true;
  ro.user = "bob";
  ro.password = "hunter2-x";
  auto server = kiln::testing::RegistryServer::Start(ro);

  StaticKeychain creds(Credential{"bob", "hunter2-x", "", ""});
  Client client(&wire_, &creds, Insecure(*server));
  TestImage img = MakeImage(2, 10'000, 31);
  auto pushed = PushImage(client, server->host() + "/team/app:1", img);
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  auto log = server->TokenRequests();
  ASSERT_FALSE(log.empty());
  // One token for the push scope, reused for every blob and the manifest.
  EXPECT_EQ(log.size(), 1u) << ::testing::PrintToString(log);
  EXPECT_NE(log[0].find("bob"), std::string::npos);
  EXPECT_NE(log[0].find("repository:team/app:pull,push"), std::string::npos) << log[0];

  AnonymousKeychain anon;
  Client anon_client(&wire_, &anon, Insecure(*server));
  MemorySink sink;
  auto pulled = PullImage(anon_client, server->host() + "/team/app:1", &sink);
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  EXPECT_EQ(sink.root.digest, img.digest);

  auto push_denied = PushImage(anon_client, server->host() + "/team/app:2", MakeImage(1, 100, 32));
  ASSERT_FALSE(push_denied.ok());
  EXPECT_EQ(push_denied.status().code(), ErrorCode::kUnauthenticated) << push_denied.status().ToString();
  EXPECT_NE(push_denied.status().message().find("team/app"), std::string::npos);

  StaticKeychain wrong(Credential{"bob", "not-it-77", "", ""});
  Client wrong_client(&wire_, &wrong, Insecure(*server));
  auto rejected = PullImage(wrong_client, server->host() + "/team/app:1", &sink);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.status().code(), ErrorCode::kUnauthenticated) << rejected.status().ToString();
  EXPECT_EQ(rejected.status().message().find("not-it-77"), std::string::npos);
}

TEST_F(RegistryTokenTest, ExpiredTokensAreRefreshed) {
  kiln::testing::RegistryOptions ro;
  ro.token_auth = true;
  ro.user = "carol";
  ro.password = "pw-carol-1";
  ro.token_expires_in = 2;
  auto server = kiln::testing::RegistryServer::Start(ro);
  StaticKeychain creds(Credential{"carol", "pw-carol-1", "", ""});
  Client client(&wire_, &creds, Insecure(*server));
  ASSERT_TRUE(PushImage(client, server->host() + "/r/app:1", MakeImage(1, 1000, 41)).ok());
  server->ClearTokenRequests();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  // The cached token is past its lifetime: a new one is fetched instead of failing with 401.
  auto again = PushImage(client, server->host() + "/r/app:2", MakeImage(1, 1000, 42));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_GE(server->TokenRequests().size(), 1u);
}

TEST_F(RegistryTokenTest, IdentityTokenUsesRefreshTokenGrant) {
  kiln::testing::RegistryOptions ro;
  ro.token_auth = true;
  ro.user = "dave";
  ro.password = "pw-dave-1";
  ro.refresh_token = "refresh-abc-123";
  auto server = kiln::testing::RegistryServer::Start(ro);
  StaticKeychain ident(Credential{"", "", "refresh-abc-123", ""});
  Client client(&wire_, &ident, Insecure(*server));
  auto pushed = PushImage(client, server->host() + "/id/app:1", MakeImage(1, 1000, 51));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  auto log = server->TokenRequests();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log[0].rfind("POST refresh_token dave", 0), 0u) << log[0];

  StaticKeychain bad(Credential{"", "", "refresh-wrong", ""});
  Client bad_client(&wire_, &bad, Insecure(*server));
  auto denied = PushImage(bad_client, server->host() + "/id/app:2", MakeImage(1, 1000, 52));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(denied.status().message().find("refresh-wrong"), std::string::npos);
}

}  // namespace
}  // namespace kiln::registry
