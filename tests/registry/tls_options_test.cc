// TLS and plain-HTTP settings from RegistryAccessOptions (what the CLI flags fill) against the
// harness's HTTPS registry with a private CA: per-registry CA files and certs.d directories, the
// system store from SSL_CERT_FILE, skip-verify only for the registry named, and plain HTTP only for
// registries named insecure.
#include "registry/access_options.h"

#include <gtest/gtest.h>

#include "registry/client.h"
#include "registry/curl_transport.h"
#include "tests/testing/registry_server.h"
#include "tests/testing/temp_dir.h"

namespace kiln::registry {
namespace {

const Digest kAbsent = Sha256Of("no such blob");

class TlsOptionsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    kiln::testing::RegistryOptions ro;
    ro.tls = true;
    tls_ = kiln::testing::RegistryServer::Start(ro).release();
    plain_ = kiln::testing::RegistryServer::Start({}).release();
  }
  static void TearDownTestSuite() {
    delete tls_;
    delete plain_;
  }

  // Talks to `host` with the settings `o` makes: OK when the registry answered (404 for an absent blob).
  Status Reach(const RegistryAccessOptions& o, const std::string& host) {
    KILN_ASSIGN_OR_RETURN(CurlTransportOptions to, o.TransportOptions());
    CurlTransport wire(to);
    AnonymousKeychain anon;
    ClientOptions co = o.ClientSettings();
    co.retry.max_attempts = 1;
    Client client(&wire, &anon, co);
    KILN_ASSIGN_OR_RETURN(auto repo, client.Open(client.PushEndpoint(host), "tls/probe", false));
    KILN_ASSIGN_OR_RETURN(auto size, repo->HeadBlob(kAbsent));
    if (size) return InternalError("absent blob reported present");
    return OkStatus();
  }

  RegistryAccessOptions Base() {
    RegistryAccessOptions o;
    o.certs_d_roots.clear();  // the machine's /etc/docker/certs.d is not part of the test
    o.extra_ca_dirs.clear();  // nor a /kaniko/ssl/certs
    return o;
  }

  static kiln::testing::RegistryServer* tls_;
  static kiln::testing::RegistryServer* plain_;
};
kiln::testing::RegistryServer* TlsOptionsTest::tls_ = nullptr;
kiln::testing::RegistryServer* TlsOptionsTest::plain_ = nullptr;

TEST_F(TlsOptionsTest, UntrustedCertificateFailsWithAHint) {
  Status s = Reach(Base(), tls_->host());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("CA"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(tls_->host()), std::string::npos) << s.message();
}

TEST_F(TlsOptionsTest, RegistryCertificateAsFileOrDirectory) {
  RegistryAccessOptions file = Base();
  ASSERT_TRUE(file.AddRegistryCertificate(tls_->host() + "=" + tls_->ca_cert_path()).ok());
  EXPECT_TRUE(Reach(file, tls_->host()).ok()) << Reach(file, tls_->host()).ToString();

  RegistryAccessOptions dir = Base();
  ASSERT_TRUE(dir.AddRegistryCertificate(tls_->host() + "=" + tls_->ca_cert_dir()).ok());
  EXPECT_TRUE(Reach(dir, tls_->host()).ok()) << Reach(dir, tls_->host()).ToString();

  // The CA is trusted for that registry only: "localhost:PORT" is another name.
  RegistryAccessOptions other = Base();
  std::string port = tls_->host().substr(tls_->host().find(':'));
  ASSERT_TRUE(other.AddRegistryCertificate("localhost" + port + "=" + tls_->ca_cert_path()).ok());
  EXPECT_FALSE(Reach(other, tls_->host()).ok());

  RegistryAccessOptions missing = Base();
  ASSERT_TRUE(missing.AddRegistryCertificate(tls_->host() + "=/nonexistent/ca.pem").ok());
  auto t = missing.TransportOptions();
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("/nonexistent/ca.pem"), std::string::npos);

  EXPECT_FALSE(Base().AddRegistryCertificate("no-equals-sign").ok());
  EXPECT_FALSE(Base().AddRegistryCertificate("host=").ok());
}

TEST_F(TlsOptionsTest, CertsDDirectoryIsFoundByHost) {
  kiln::testing::TempDir t;
  kiln::testing::WriteFile(t.Sub("certs.d/" + tls_->host() + "/ca.crt"), kiln::testing::ReadFile(tls_->ca_cert_path()));
  RegistryAccessOptions o = Base();
  o.certs_d_roots = {t.Sub("nonexistent"), t.Sub("certs.d")};
  EXPECT_TRUE(Reach(o, tls_->host()).ok()) << Reach(o, tls_->host()).ToString();

  // A client certificate without its key is a configuration error, reported with the path.
  kiln::testing::WriteFile(t.Sub("bad.d/" + tls_->host() + "/client.cert"), "x");
  o.certs_d_roots = {t.Sub("bad.d")};
  Status s = Reach(o, tls_->host());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("client.key"), std::string::npos) << s.message();
}

TEST_F(TlsOptionsTest, SystemStoreFromSslCertFile) {
  RegistryAccessOptions o = Base();
  o.system_ca_file = tls_->ca_cert_path();
  EXPECT_TRUE(Reach(o, tls_->host()).ok()) << Reach(o, tls_->host()).ToString();
  ::setenv("SSL_CERT_FILE", "/some/bundle.pem", 1);
  EXPECT_EQ(RegistryAccessOptions::FromEnvironment().system_ca_file, "/some/bundle.pem");
  ::unsetenv("SSL_CERT_FILE");
}

// As Go reads $SSL_CERT_DIR: every file of every listed directory, whatever its name (GitLab's recipe
// appends a private CA to /kaniko/ssl/certs/additional-ca-cert-bundle.crt, not an OpenSSL hash name).
TEST_F(TlsOptionsTest, EveryFileOfTheCertDirectoriesIsTrusted) {
  kiln::testing::TempDir t;
  std::string ca = kiln::testing::ReadFile(tls_->ca_cert_path());
  kiln::testing::WriteFile(t.Sub("empty/README"), "no certificates here\n");
  kiln::testing::WriteFile(t.Sub("certs/additional-ca-cert-bundle.crt"), "# appended by a CI job\n" + ca + "\n");
  RegistryAccessOptions o = Base();
  o.system_ca_dir = t.Sub("empty");
  EXPECT_FALSE(Reach(o, tls_->host()).ok());
  o.system_ca_dir = t.Sub("nonexistent") + ":" + t.Sub("empty") + ":" + t.Sub("certs");
  EXPECT_TRUE(Reach(o, tls_->host()).ok()) << Reach(o, tls_->host()).ToString();

  // Kaniko's image directory is trusted without SSL_CERT_DIR naming it.
  RegistryAccessOptions kaniko = Base();
  kaniko.extra_ca_dirs = {t.Sub("certs")};
  EXPECT_TRUE(Reach(kaniko, tls_->host()).ok()) << Reach(kaniko, tls_->host()).ToString();

  // SSL_CERT_DIR is a colon-separated list; Kaniko's directory comes after it, once.
  auto to = kaniko.TransportOptions();
  ASSERT_TRUE(to.ok());
  EXPECT_EQ(to->system_ca_dirs, std::vector<std::string>{t.Sub("certs")});
}

// Kaniko's --registry-client-cert REGISTRY=CERT,KEY sets the client certificate for that registry
// (and for docker.io, its API host); malformed values and missing files name the flag.
TEST(AccessOptionsTest, RegistryClientCertAsKanikoWritesIt) {
  kiln::testing::TempDir t;
  kiln::testing::WriteFile(t.Sub("c.crt"), "cert");
  kiln::testing::WriteFile(t.Sub("c.key"), "key");
  RegistryAccessOptions o;
  o.certs_d_roots.clear();
  ASSERT_TRUE(o.AddRegistryClientCert("docker.io=" + t.Sub("c.crt") + "," + t.Sub("c.key")).ok());
  auto to = o.TransportOptions();
  ASSERT_TRUE(to.ok()) << to.status().ToString();
  EXPECT_EQ(to->hosts["docker.io"].client_cert, t.Sub("c.crt"));
  EXPECT_EQ(to->hosts["registry-1.docker.io"].client_key, t.Sub("c.key"));
  for (const char* bad : {"no-equals", "host=only-cert", "host=,key", "host=cert,"}) {
    Status s = RegistryAccessOptions().AddRegistryClientCert(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("--registry-client-cert"), std::string::npos) << s.message();
  }
  RegistryAccessOptions missing;
  ASSERT_TRUE(missing.AddRegistryClientCert("r.example=/nonexistent.crt," + t.Sub("c.key")).ok());
  EXPECT_FALSE(missing.TransportOptions().ok());
}

TEST(AccessOptionsTest, RegistryMapPairsAndNormalisedNames) {
  RegistryAccessOptions o;
  ASSERT_TRUE(o.AddRegistryMap("index.docker.io=mirror.example/hub;ghcr.io=m2.example").ok());
  ASSERT_TRUE(o.AddRegistryMap("docker.io=m3.example").ok());
  EXPECT_EQ(o.registry_maps["docker.io"], (std::vector<std::string>{"mirror.example/hub", "m3.example"}));
  EXPECT_EQ(o.registry_maps["ghcr.io"], std::vector<std::string>{"m2.example"});
  EXPECT_FALSE(o.AddRegistryMap("=x").ok());
  EXPECT_FALSE(o.AddRegistryMap("a=").ok());
  EXPECT_FALSE(o.AddRegistryMap("plain").ok());
}

TEST_F(TlsOptionsTest, SkipVerifyOnlyForTheNamedRegistry) {
  RegistryAccessOptions o = Base();
  o.skip_verify_registries.insert(tls_->host());
  EXPECT_TRUE(Reach(o, tls_->host()).ok()) << Reach(o, tls_->host()).ToString();
  RegistryAccessOptions other = Base();
  other.skip_verify_registries.insert("127.0.0.1:1");
  EXPECT_FALSE(Reach(other, tls_->host()).ok());
}

TEST_F(TlsOptionsTest, PlainHttpOnlyForInsecureRegistries) {
  Status https = Reach(Base(), plain_->host());
  EXPECT_FALSE(https.ok()) << "HTTPS to a plain-HTTP registry must fail";
  RegistryAccessOptions o = Base();
  o.insecure_registries.insert(plain_->host());
  EXPECT_TRUE(Reach(o, plain_->host()).ok()) << Reach(o, plain_->host()).ToString();
  EXPECT_EQ(Client(nullptr, nullptr, o.ClientSettings()).PushEndpoint(plain_->host()).base_url,
            "http://" + plain_->host());
}

TEST(AccessOptionsTest, DockerHubSettingsApplyToItsApiHost) {
  RegistryAccessOptions o;
  o.skip_verify_registries.insert("docker.io");
  auto t = o.TransportOptions();
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->hosts["docker.io"].skip_verify);
  EXPECT_TRUE(t->hosts["registry-1.docker.io"].skip_verify);
  o.retry_attempts = 2;
  o.mirrors = {"mirror.example:5000"};
  ClientOptions c = o.ClientSettings();
  EXPECT_EQ(c.retry.max_attempts, 2);
  EXPECT_EQ(c.docker_io_mirrors, o.mirrors);
}

}  // namespace
}  // namespace kiln::registry
