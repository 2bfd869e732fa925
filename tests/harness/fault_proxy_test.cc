// Self-tests of fault_proxy.py through RegistryServer: each fault kind fires exactly as the spec says
// and the request log records it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "core/digest.h"
#include "tests/testing/registry_server.h"
#include "tests/testing/temp_dir.h"

namespace kiln::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct CurlResult {
  int exit_code;    // curl's exit status: 0, 18 (partial), 52 (empty reply), 56 (recv failure)...
  std::string code;  // HTTP status, "000" when none
  std::string body;
  std::string headers;
};

CurlResult Curl(const std::string& args) {
  TempDir tmp;
  CurlResult r;
  std::string out;
  r.exit_code = RunShell("curl -s -D " + tmp.Sub("h") + " -o " + tmp.Sub("b") + " -w '%{http_code}' " + args, &out);
  r.code = out;
  // curl writes no files when the connection is reset before a response.
  r.body = std::filesystem::exists(tmp.Sub("b")) ? ReadFile(tmp.Sub("b")) : "";
  r.headers = std::filesystem::exists(tmp.Sub("h")) ? ReadFile(tmp.Sub("h")) : "";
  return r;
}

/// The value of the first `name:` header line in `headers`, without CR.
std::string Header(const std::string& headers, const std::string& name) {
  std::string lower = headers;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto at = lower.find("\n" + name + ": ");
  if (at == std::string::npos) return "";
  const auto start = at + name.size() + 3;
  return headers.substr(start, headers.find_first_of("\r\n", start) - start);
}

/// 300 KB of non-repeating bytes.
std::string TestBlob() {
  std::string blob;
  uint32_t x = 12345;
  for (int i = 0; i < 300 * 1000; ++i) {
    x = x * 1664525u + 1013904223u;
    blob += static_cast<char>(x >> 24);
  }
  return blob;
}

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegistryOptions o;
    o.fault_proxy = true;
    reg_ = RegistryServer::Start(o);
    blob_ = TestBlob();
    WriteFile(work_.Sub("blob"), blob_);
    digest_ = Sha256Of(blob_).ToString();
    // Upload through the proxy: POST, a chunked PATCH, then PUT with the digest. Each Location the
    // registry answers must point back at the proxy.
    CurlResult post = Curl("-X POST " + reg_->url() + "/v2/h/r/blobs/uploads/");
    ASSERT_EQ(post.code, "202") << post.body;
    std::string location = Header(post.headers, "location");
    ASSERT_THAT(location, ::testing::StartsWith(reg_->url() + "/v2/h/r/blobs/uploads/"));
    CurlResult patch = Curl("-X PATCH -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' "
                            "--data-binary @" + work_.Sub("blob") + " '" + location + "'");
    ASSERT_EQ(patch.code, "202") << patch.body;
    EXPECT_EQ(Header(patch.headers, "range"), "0-299999");
    location = Header(patch.headers, "location");
    ASSERT_THAT(location, ::testing::StartsWith(reg_->url()));
    CurlResult put = Curl("-X PUT '" + location + "&digest=" + digest_ + "'");
    ASSERT_EQ(put.code, "201") << put.body;
    EXPECT_EQ(Header(put.headers, "docker-content-digest"), digest_);
    blob_url_ = reg_->url() + "/v2/h/r/blobs/" + digest_;
    reg_->ClearRequests();
  }

  TempDir work_;
  std::unique_ptr<RegistryServer> reg_;
  std::string blob_, digest_, blob_url_;
};

TEST_F(FaultProxyTest, StatusFaultsFireTheGivenNumberOfTimesThenPassThrough) {
  reg_->SetFaults("GET /v2/*/blobs/*: status=500 times=2; *: status=429 retry-after=1 times=1");
  EXPECT_EQ(reg_->PendingFaults(), 3);
  EXPECT_EQ(Curl(blob_url_).code, "500");
  EXPECT_EQ(Curl(blob_url_).code, "500");
  // The first rule is spent, so the catch-all rule takes the next request.
  CurlResult limited = Curl(blob_url_);
  EXPECT_EQ(limited.code, "429");
  EXPECT_EQ(Header(limited.headers, "retry-after"), "1");
  EXPECT_THAT(limited.body, HasSubstr("TOOMANYREQUESTS"));
  EXPECT_EQ(reg_->PendingFaults(), 0);
  CurlResult ok = Curl(blob_url_);
  EXPECT_EQ(ok.code, "200");
  EXPECT_TRUE(ok.body == blob_);
  EXPECT_EQ(Curl("-I " + reg_->url() + "/v2/").code, "200");
  const std::string p = "/v2/h/r/blobs/" + digest_;
  EXPECT_THAT(reg_->Requests(), ElementsAre("GET " + p + " 500 status", "GET " + p + " 500 status",
                                            "GET " + p + " 429 status", "GET " + p + " 200", "HEAD /v2/ 200"));
}

TEST_F(FaultProxyTest, BodyFaultsCutOrCorruptExactlyWhereAsked) {
  reg_->SetFaults("GET */blobs/*: drop-after=1000 times=1; GET */blobs/*: truncate=5000 times=1; "
                  "GET */blobs/sha256:*: flip-byte=100 times=1");
  CurlResult dropped = Curl(blob_url_);
  EXPECT_NE(dropped.exit_code, 0);  // a reset mid-body is a transport error
  EXPECT_EQ(dropped.code, "200");
  EXPECT_TRUE(dropped.body == blob_.substr(0, 1000)) << dropped.body.size() << " bytes";
  EXPECT_EQ(Header(dropped.headers, "content-length"), "300000");

  CurlResult truncated = Curl(blob_url_);
  EXPECT_EQ(truncated.exit_code, 0);  // looks complete: only the digest can tell
  EXPECT_EQ(Header(truncated.headers, "content-length"), "5000");
  EXPECT_TRUE(truncated.body == blob_.substr(0, 5000)) << truncated.body.size() << " bytes";

  CurlResult flipped = Curl(blob_url_);
  EXPECT_EQ(flipped.exit_code, 0);
  ASSERT_EQ(flipped.body.size(), blob_.size());
  EXPECT_FALSE(flipped.body == blob_);
  std::string expected = blob_;
  expected[100] = static_cast<char>(expected[100] ^ 0x01);
  EXPECT_TRUE(flipped.body == expected);
  EXPECT_TRUE(Curl(blob_url_).body == blob_);

  const std::string p = "GET /v2/h/r/blobs/" + digest_ + " 200";
  EXPECT_THAT(reg_->Requests(), ElementsAre(p + " drop-after", p + " truncate", p + " flip-byte", p));
}

TEST_F(FaultProxyTest, ResetsDelaysAndSkips) {
  reg_->SetFaults("HEAD */blobs/*: reset times=1; GET,HEAD /v2/: delay=0.5 times=1; GET */blobs/*: skip=1 status=503 times=1");
  CurlResult reset = Curl("-I " + blob_url_);
  EXPECT_NE(reset.exit_code, 0);
  EXPECT_EQ(reset.code, "000");
  EXPECT_EQ(Curl("-I " + blob_url_).code, "200");

  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Curl(reg_->url() + "/v2/").code, "200");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(450));

  EXPECT_EQ(Curl(blob_url_).code, "200");  // skipped
  EXPECT_EQ(Curl(blob_url_).code, "503");
  EXPECT_EQ(Curl(blob_url_).code, "200");
  const std::string p = "/v2/h/r/blobs/" + digest_;
  EXPECT_THAT(reg_->Requests(), ElementsAre("HEAD " + p + " 000 reset", "HEAD " + p + " 200", "GET /v2/ 200 delay",
                                            "GET " + p + " 200", "GET " + p + " 503 status", "GET " + p + " 200"));
}

TEST_F(FaultProxyTest, DroppedUploadLeavesNoBlobAndTheRetrySucceeds) {
  reg_->SetFaults("PATCH */blobs/uploads/*: drop-request-after=100000 times=1");
  const std::string other = blob_ + "more";
  WriteFile(work_.Sub("other"), other);
  const std::string other_digest = Sha256Of(other).ToString();
  for (int attempt = 0; attempt < 2; ++attempt) {
    CurlResult post = Curl("-X POST " + reg_->url() + "/v2/h/r/blobs/uploads/");
    ASSERT_EQ(post.code, "202");
    CurlResult patch = Curl("-X PATCH -H 'Content-Type: application/octet-stream' --data-binary @" +
                            work_.Sub("other") + " '" + Header(post.headers, "location") + "'");
    if (attempt == 0) {
      EXPECT_NE(patch.exit_code, 0);
      EXPECT_EQ(patch.code, "000");
      EXPECT_FALSE(std::filesystem::exists(reg_->BlobPath(other_digest)));
      continue;
    }
    ASSERT_EQ(patch.code, "202") << patch.body;
    CurlResult put = Curl("-X PUT '" + Header(patch.headers, "location") + "&digest=" + other_digest + "'");
    EXPECT_EQ(put.code, "201") << put.body;
  }
  EXPECT_TRUE(ReadFile(reg_->BlobPath(other_digest)) == other);
  const auto log = reg_->Requests();
  ASSERT_EQ(log.size(), 5u);
  EXPECT_THAT(log[1], ::testing::EndsWith(" 000 drop-request-after"));
  EXPECT_THAT(log[4], ::testing::StartsWith("PUT /v2/h/r/blobs/uploads/"));
}

TEST_F(FaultProxyTest, MonolithicUploadWithExpectContinueAndKeepAlive) {
  // curl sends "Expect: 100-continue" for bodies over 1 MiB; the proxy must answer it and stream.
  std::string big;
  for (int i = 0; big.size() < 3 * 1024 * 1024; ++i) big += blob_;
  big.resize(3 * 1024 * 1024);
  WriteFile(work_.Sub("big"), big);
  const std::string big_digest = Sha256Of(big).ToString();
  CurlResult post = Curl("-X POST " + reg_->url() + "/v2/h/big/blobs/uploads/");
  ASSERT_EQ(post.code, "202");
  CurlResult put = Curl("-X PUT -H 'Content-Type: application/octet-stream' --data-binary @" + work_.Sub("big") +
                        " '" + Header(post.headers, "location") + "&digest=" + big_digest + "'");
  ASSERT_EQ(put.code, "201") << put.body;
  EXPECT_TRUE(ReadFile(reg_->BlobPath(big_digest)) == big);

  // Two requests in one curl run share one connection (keep-alive), HEAD included.
  std::string out;
  const std::string url = reg_->url() + "/v2/h/big/blobs/" + big_digest;
  ASSERT_EQ(RunShell("curl -s -o /dev/null -o /dev/null -I -w '%{http_code}/%{num_connects} ' " + url + " " + url, &out), 0);
  EXPECT_EQ(out, "200/1 200/0 ");
  ASSERT_EQ(RunShell("curl -s -o /dev/null -o /dev/null -w '%{http_code}/%{size_download}/%{num_connects} ' " + url +
                         " " + url,
                     &out),
            0);
  EXPECT_EQ(out, "200/3145728/1 200/3145728/0 ");
}

TEST_F(FaultProxyTest, BadSpecsAreRejectedWithAReason) {
  // Straight to the control endpoint: SetFaults aborts the test binary on a bad spec, by design.
  for (const char* bad : {"GET /v2/*: explode=1", "GET /v2/* status=500", "*: retry-after=1",
                          "*: status=500 truncate=3", "*: status=abc", "*: times=2"}) {
    CurlResult r = Curl("--data-binary '" + std::string(bad) + "' " + reg_->url() + "/__faults");
    EXPECT_EQ(r.code, "400") << bad;
    EXPECT_THAT(r.body, HasSubstr("rule")) << bad;
  }
  reg_->SetFaults("");
  EXPECT_EQ(reg_->PendingFaults(), 0);
  EXPECT_TRUE(Curl(blob_url_).body == blob_);
}

TEST(FaultProxyTlsTest, ProxyServesTlsWithTheRegistryCertificate) {
  RegistryOptions o;
  o.tls = true;
  o.fault_proxy = true;
  o.faults = "GET /v2/: status=502 times=1";
  auto reg = RegistryServer::Start(o);
  EXPECT_NE(reg->host(), reg->direct_host());
  const std::string ca = "--cacert " + reg->ca_cert_path() + " ";
  EXPECT_EQ(Curl(ca + reg->url() + "/v2/").code, "502");
  EXPECT_EQ(Curl(ca + reg->url() + "/v2/").code, "200");
  EXPECT_EQ(Curl(ca + "https://" + reg->direct_host() + "/v2/").code, "200");
  EXPECT_THAT(reg->Requests(), ElementsAre("GET /v2/ 502 status", "GET /v2/ 200"));
}

TEST(FaultProxyTlsTest, SkopeoPushesThroughTheProxyWithTokenAuthAndTheManifestGoesLast) {
  RegistryOptions o;
  o.tls = true;
  o.fault_proxy = true;
  o.token_auth = true;
  o.user = "dave";
  o.password = "pw";
  auto reg = RegistryServer::Start(o);
  TempDir work;
  WriteFile(work.Sub("f"), "through the proxy\n");
  const std::string layout = work.Sub("layout");
  std::string out;
  ASSERT_EQ(RunShell("umoci init --layout " + layout + " && umoci new --image " + layout + ":t && umoci insert "
                     "--rootless --image " + layout + ":t " + work.Sub("f") + " /f",
                     &out),
            0)
      << out;
  ASSERT_EQ(RunShell("skopeo copy --quiet --dest-cert-dir " + reg->ca_cert_dir() + " --dest-creds dave:pw oci:" +
                         layout + ":t docker://" + reg->host() + "/p/q:v1",
                     &out),
            0)
      << out;
  const auto log = reg->Requests();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back(), "PUT /v2/p/q/manifests/v1 201");
  int blob_puts = 0;
  for (const auto& line : log) {
    if (line.rfind("PUT /v2/p/q/blobs/uploads/", 0) == 0) {
      EXPECT_THAT(line, ::testing::EndsWith(" 201"));
      ++blob_puts;
    }
  }
  EXPECT_EQ(blob_puts, 2);  // the layer and the config
  EXPECT_THAT(reg->TokenRequests(), ::testing::Contains(HasSubstr("GET basic dave repository:p/q:pull,push")));
}

}  // namespace
}  // namespace kiln::testing
