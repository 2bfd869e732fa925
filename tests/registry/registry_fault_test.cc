// Pulls and pushes through tests/testing/fault_proxy.py: transient faults are retried until the copy
// succeeds; corruption is caught by digest checks; and no tag ever points at a missing blob.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <mutex>

#include <nlohmann/json.hpp>

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

class RegistryFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    kiln::testing::RegistryOptions ro;
    ro.fault_proxy = true;
    server_ = kiln::testing::RegistryServer::Start(ro).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    server_->SetFaults("");
    server_->ClearRequests();
  }

  ClientOptions Options() {
    ClientOptions o;
    o.insecure_registries.insert(server_->host());
    o.insecure_registries.insert(server_->direct_host());
    o.retry.initial_backoff = std::chrono::milliseconds(20);
    o.retry.max_backoff = std::chrono::milliseconds(200);
    return o;
  }
  Reference Ref(const std::string& repo_tag) { return Reference::Parse(server_->host() + "/" + repo_tag).value(); }

  Result<CopyResult> Push(Client& client, const TestImage& img, const std::string& repo_tag) {
    MemorySource src;
    src.SetRoot(img);
    KILN_ASSIGN_OR_RETURN(auto sink, OpenRegistrySink(client, Ref(repo_tag)));
    return CopyImage(src, *sink);
  }
  Result<CopyResult> Pull(Client& client, const std::string& repo_tag, MemorySink* sink) {
    KILN_ASSIGN_OR_RETURN(auto src, OpenRegistrySource(client, Ref(repo_tag)));
    return CopyImage(*src, *sink);
  }
  // Whether the registry itself (not through the proxy) has the tag.
  bool TagExists(const std::string& repo, const std::string& tag) {
    Client direct(&wire_, &keychain_, Options());
    auto r = direct.Open(direct.PushEndpoint(server_->direct_host()), repo, false).value();
    return r->HeadManifest(tag).value().has_value();
  }

  static kiln::testing::RegistryServer* server_;
  CurlTransport wire_;
  AnonymousKeychain keychain_;
};
kiln::testing::RegistryServer* RegistryFaultTest::server_ = nullptr;

TEST_F(RegistryFaultTest, PullSurvivesTransientFaults) {
  Client client(&wire_, &keychain_, Options());
  TestImage img = MakeImage(3, 300'000, 61);
  ASSERT_TRUE(Push(client, img, "f/pull:1").ok());
  server_->SetFaults(
      "GET */manifests/*: status=500 times=2; "
      "GET */blobs/*: drop-after=100000 times=2; "
      "HEAD *: status=429 retry-after=1 times=1; "
      "GET */manifests/*: reset times=1; "
      "GET */blobs/*: status=503 times=1 skip=2");
  MemorySink sink;
  auto r = Pull(client, "f/pull:1", &sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(sink.root.digest, img.digest);
  for (const auto& l : img.layers) EXPECT_EQ(sink.blobs[Sha256Of(l)], l);
  EXPECT_EQ(server_->PendingFaults(), 1);  // the HEAD rule: a pull sends no HEAD
  auto log = server_->Requests();
  EXPECT_GE(std::count_if(log.begin(), log.end(), [](auto& l) { return l.find("drop-after") != std::string::npos; }), 2);
}

TEST_F(RegistryFaultTest, FlippedByteIsCaughtByTheDigestCheck) {
  Client client(&wire_, &keychain_, Options());
  TestImage img = MakeImage(1, 100'000, 62);
  ASSERT_TRUE(Push(client, img, "f/flip:1").ok());
  server_->SetFaults("GET */blobs/sha256:*: flip-byte=5000");
  MemorySink sink;
  auto r = Pull(client, "f/flip:1", &sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDigestMismatch) << r.status().ToString();
  EXPECT_TRUE(sink.blobs.empty() || sink.blobs.size() == 1u);  // the config may have landed, not the layer
  EXPECT_EQ(sink.blobs.count(Sha256Of(img.layers[0])), 0u);
}

TEST_F(RegistryFaultTest, TruncatedBodyIsCaught) {
  Client client(&wire_, &keychain_, Options());
  TestImage img = MakeImage(1, 100'000, 63);
  ASSERT_TRUE(Push(client, img, "f/trunc:1").ok());
  server_->SetFaults("GET */blobs/sha256:*: truncate=4000");
  MemorySink sink;
  auto r = Pull(client, "f/trunc:1", &sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDigestMismatch) << r.status().ToString();

  // A flipped manifest is caught too (against Docker-Content-Digest).
  server_->SetFaults("GET */manifests/*: flip-byte=20");
  auto m = Pull(client, "f/trunc:1", &sink);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), ErrorCode::kDigestMismatch) << m.status().ToString();
}

TEST_F(RegistryFaultTest, PushSurvivesTransientFaultsAndPutsTheManifestLast) {
  Client client(&wire_, &keychain_, Options());
  TestImage img = MakeImage(3, 200'000, 64);
  server_->SetFaults(
      "POST */blobs/uploads/*: status=500 times=1; "
      "PUT */blobs/uploads/*: status=503 times=1; "
      "PUT */blobs/uploads/*: drop-request-after=50000 times=1; "
      "HEAD */blobs/*: reset times=1; "
      "PUT */manifests/*: status=429 retry-after=0.1 times=1");
  auto r = Push(client, img, "f/push:1");
  ASSERT_TRUE(r.ok()) << r.status().ToString() << ::testing::PrintToString(server_->Requests());
  EXPECT_EQ(server_->PendingFaults(), 0);
  EXPECT_TRUE(TagExists("f/push", "1"));

  // Every blob upload completed (201) before the first manifest PUT.
  auto log = server_->Requests();
  size_t first_manifest = log.size(), last_blob = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    if (log[i].rfind("PUT ", 0) == 0 && log[i].find("/manifests/") != std::string::npos) {
      first_manifest = std::min(first_manifest, i);
    }
    if (log[i].rfind("PUT ", 0) == 0 && log[i].find("/blobs/uploads/") != std::string::npos &&
        log[i].find(" 201") != std::string::npos) {
      last_blob = i;
    }
  }
  ASSERT_LT(first_manifest, log.size()) << ::testing::PrintToString(log);
  EXPECT_LT(last_blob, first_manifest) << ::testing::PrintToString(log);
}

TEST_F(RegistryFaultTest, FailedPushLeavesNoTag) {
  Client client(&wire_, &keychain_, Options());
  TestImage img = MakeImage(2, 50'000, 65);
  // The second blob's upload keeps failing: the push fails and the manifest is never sent.
  server_->SetFaults("PUT */blobs/uploads/*: status=500 skip=1");
  auto r = Push(client, img, "f/fail:1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("500"), std::string::npos);
  for (const auto& l : server_->Requests()) EXPECT_EQ(l.find("/manifests/"), std::string::npos) << l;
  server_->SetFaults("");
  EXPECT_FALSE(TagExists("f/fail", "1"));
}

TEST_F(RegistryFaultTest, CorruptSourceBlobIsNotPushedAndLeavesNoTag) {
  Client client(&wire_, &keychain_, Options());
  TestImage good = MakeImage(1, 50'000, 66);
  ASSERT_TRUE(Push(client, good, "f/src:1").ok());
  // Copy registry → registry through the proxy with the source's layer corrupted in flight.
  server_->SetFaults("GET */blobs/sha256:" + Sha256Of(good.layers[0]).hex() + ": flip-byte=10");
  server_->ClearRequests();
  auto src = OpenRegistrySource(client, Ref("f/src:1")).value();
  auto sink = OpenRegistrySink(client, Reference::Parse(server_->host() + "/f/dst:1").value()).value();
  // Disable mounting by copying to another registry name: the direct host is the same registry.
  auto direct_sink =
      OpenRegistrySink(client, Reference::Parse(server_->direct_host() + "/f/dst:1").value()).value();
  auto r = CopyImage(*src, *direct_sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDigestMismatch) << r.status().ToString();
  server_->SetFaults("");
  EXPECT_FALSE(TagExists("f/dst", "1"));
  Client direct(&wire_, &keychain_, Options());
  auto repo = direct.Open(direct.PushEndpoint(server_->direct_host()), "f/dst", false).value();
  EXPECT_FALSE(repo->HeadBlob(Sha256Of(good.layers[0])).value().has_value());
}

}  // namespace
}  // namespace kiln::registry

namespace kiln::registry {
namespace {

// A 200 MiB blob in 16 MiB chunks, with a 503 and a reset on PATCHes late in the upload: it resumes
// where the registry stands each time, so what the proxy receives stays well under twice the blob.
TEST_F(RegistryFaultTest, LargeUploadResumesAfterFailedPatches) {
  ClientOptions o = Options();
  std::vector<std::string> notices;
  std::mutex mu;
  o.notice = [&](std::string_view m) {
    std::lock_guard<std::mutex> lock(mu);
    notices.emplace_back(m);
  };
  Client client(&wire_, &keychain_, o);
  std::string blob(200u << 20, '\0');
  for (size_t i = 0; i < blob.size(); i += 4096) blob[i] = static_cast<char>(i / 4096);
  Digest digest = Sha256Of(blob);
  server_->SetFaults("PATCH */blobs/uploads/*: status=503 times=1 skip=6; PATCH */blobs/uploads/*: reset times=1 skip=3");
  auto repo = client.Open(client.PushEndpoint(server_->host()), "f/large", true).value();
  StringReader r(blob);
  auto d = repo->UploadBlob(r, digest, static_cast<int64_t>(blob.size()));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(server_->PendingFaults(), 0);
  auto stats = nlohmann::json::parse(server_->ProxyStats());
  uint64_t received = stats.value("request_body_bytes", uint64_t{0});
  std::cout << "200 MiB upload with 2 failed PATCHes: proxy received " << (received >> 20) << " MiB\n";
  EXPECT_LT(received, 2 * blob.size());
  EXPECT_GE(received, blob.size());
  // The 503 always resumes; libcurl may resend a PATCH cut on a reused connection by itself, so the
  // reset resumes or is absorbed below kiln.
  ASSERT_GE(notices.size(), 1u);
  EXPECT_NE(notices[0].find("resumed upload of " + digest.ToString() + " at 96 MiB after: PATCH"), std::string::npos)
      << notices[0];
  // Straight from the registry: the blob is there, whole.
  Client direct(&wire_, &keychain_, Options());
  auto dr = direct.Open(direct.PushEndpoint(server_->direct_host()), "f/large", false).value();
  auto reader = dr->GetBlob(digest, static_cast<int64_t>(blob.size()));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto all = ReadAll(**reader, blob.size() + 1);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), blob.size());
}

}  // namespace
}  // namespace kiln::registry
