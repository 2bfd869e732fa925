// The --cache-repo backend against a real registry (docker-registry on 127.0.0.1): round trips,
// misses, TTL, entries that skopeo reads as ordinary images, and two writers of one key at once.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/media_types.h"
#include "executor/cache/cache_registry.h"
#include "registry/credentials.h"
#include "registry/curl_transport.h"
#include "tests/testing/registry_server.h"

namespace kiln::executor {
namespace {

std::string Bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

CacheEntry EntryFor(const std::string& blob, std::string_view media_type, const std::string& created_by) {
  CacheEntry e;
  e.layer.media_type = std::string(media_type);
  e.layer.digest = Sha256Of(blob);
  e.layer.size = static_cast<int64_t>(blob.size());
  e.diff_id = Sha256Of("diff:" + blob.substr(0, 16));
  e.created_by = created_by;
  return e;
}

class RegistryCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = kiln::testing::RegistryServer::Start().release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    registry::ClientOptions o;
    o.insecure_registries.insert(server_->host());
    client_ = std::make_unique<registry::Client>(&wire_, &keychain_, o);
  }
  std::unique_ptr<LayerCache> Open(const std::string& repo, std::chrono::seconds ttl = std::chrono::seconds(0)) {
    RegistryCacheOptions o;
    o.platform = Platform::Parse("linux/arm64").value();
    o.clock = &clock_;
    auto c = OpenRegistryCache(*client_, server_->host() + "/" + repo, ttl, o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
  std::string Skopeo(const std::string& args) {
    std::string out;
    int rc = kiln::testing::RunShell("skopeo inspect --tls-verify=false " + args + " 2>&1", &out);
    EXPECT_EQ(rc, 0) << out;
    return out;
  }

  static kiln::testing::RegistryServer* server_;
  registry::CurlTransport wire_;
  registry::AnonymousKeychain keychain_;
  std::unique_ptr<registry::Client> client_;
  registry::FakeClock clock_{1'700'000'000};
};
kiln::testing::RegistryServer* RegistryCacheTest::server_ = nullptr;

TEST_F(RegistryCacheTest, StoreLookupOpenRoundTripReadableBySkopeo) {
  auto cache = Open("app/cache");
  Digest key = Sha256Of("step-1");
  // Neither the repository nor the tag exists yet: a miss, not an error.
  auto miss = cache->Lookup(key);
  ASSERT_TRUE(miss.ok()) << miss.status().ToString();
  EXPECT_FALSE(miss->has_value());

  std::string blob = Bytes(200'000, 1);
  CacheEntry entry = EntryFor(blob, media_type::kOciLayerGzip, "RUN make all");
  StringReader r(blob);
  Status s = cache->Store(key, entry, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();

  auto hit = cache->Lookup(key);
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();
  ASSERT_TRUE(hit->has_value());
  EXPECT_FALSE((*hit)->empty_layer);
  EXPECT_EQ((*hit)->layer.digest, entry.layer.digest);
  EXPECT_EQ((*hit)->layer.size, entry.layer.size);
  EXPECT_EQ((*hit)->layer.media_type, entry.layer.media_type);
  EXPECT_EQ((*hit)->diff_id, entry.diff_id);
  EXPECT_EQ((*hit)->created_by, "RUN make all");
  EXPECT_EQ((*hit)->created_unix, clock_.UnixSeconds());
  auto layer = cache->OpenLayer(**hit);
  ASSERT_TRUE(layer.ok()) << layer.status().ToString();
  EXPECT_EQ(ReadAll(**layer, 1 << 20).value(), blob);

  auto loc = cache->RegistryLocation();
  ASSERT_TRUE(loc.has_value());
  EXPECT_EQ(loc->first, server_->host());
  EXPECT_EQ(loc->second, "app/cache");
  EXPECT_EQ(cache->Describe(), "cache repo " + server_->host() + "/app/cache");

  // The entry is an ordinary image tagged with the key's hex.
  std::string ref = "docker://" + server_->host() + "/app/cache:" + key.hex();
  auto raw = nlohmann::json::parse(Skopeo("--raw " + ref));
  EXPECT_EQ(raw["mediaType"], std::string(media_type::kOciManifest));
  ASSERT_EQ(raw["layers"].size(), 1u);
  EXPECT_EQ(raw["layers"][0]["digest"], entry.layer.digest.ToString());
  EXPECT_EQ(raw["annotations"][kCacheKeyAnnotation], key.ToString());
  auto config = nlohmann::json::parse(Skopeo("--config " + ref));
  EXPECT_EQ(config["architecture"], "arm64");
  EXPECT_EQ(config["os"], "linux");
  EXPECT_EQ(config["rootfs"]["diff_ids"][0], entry.diff_id.ToString());
  EXPECT_EQ(config["history"][0]["created_by"], "RUN make all");
  auto info = nlohmann::json::parse(Skopeo(ref));
  EXPECT_EQ(info["Layers"][0], entry.layer.digest.ToString());

  // Another cache object (another build) hits too; a second Store of the same blob needs no blob.
  auto other = Open("app/cache");
  ASSERT_TRUE(other->Lookup(key)->has_value());
  ASSERT_TRUE(other->Store(Sha256Of("step-1b"), entry, nullptr).ok());
  EXPECT_TRUE(other->Lookup(Sha256Of("step-1b"))->has_value());
  // A key never stored misses.
  EXPECT_FALSE(other->Lookup(Sha256Of("step-2"))->has_value());
}

TEST_F(RegistryCacheTest, EmptyLayerEntries) {
  auto cache = Open("app/cache-empty");
  CacheEntry e;
  e.empty_layer = true;
  e.created_by = "RUN true";
  Status s = cache->Store(Sha256Of("e"), e, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto hit = cache->Lookup(Sha256Of("e"));
  ASSERT_TRUE(hit.ok() && hit->has_value()) << hit.status().ToString();
  EXPECT_TRUE((*hit)->empty_layer);
  EXPECT_EQ((*hit)->created_by, "RUN true");
  auto raw = nlohmann::json::parse(Skopeo("--raw docker://" + server_->host() + "/app/cache-empty:" + Sha256Of("e").hex()));
  EXPECT_EQ(raw["layers"].size(), 0u);
}

TEST_F(RegistryCacheTest, TtlAndDockerMediaTypes) {
  auto cache = Open("app/cache-ttl", std::chrono::hours(2));
  std::string blob = Bytes(5000, 2);
  CacheEntry entry = EntryFor(blob, media_type::kDockerLayerGzip, "COPY . /app");
  StringReader r(blob);
  ASSERT_TRUE(cache->Store(Sha256Of("k"), entry, &r).ok());
  clock_.Advance(std::chrono::seconds(7199));
  auto hit = cache->Lookup(Sha256Of("k"));
  ASSERT_TRUE(hit.ok() && hit->has_value());
  EXPECT_EQ((*hit)->layer.media_type, std::string(media_type::kDockerLayerGzip));
  clock_.Advance(std::chrono::seconds(2));
  EXPECT_FALSE(cache->Lookup(Sha256Of("k"))->has_value());
  // A Docker layer makes a Docker schema 2 entry, which skopeo reads too.
  auto raw = nlohmann::json::parse(Skopeo("--raw docker://" + server_->host() + "/app/cache-ttl:" + Sha256Of("k").hex()));
  EXPECT_EQ(raw["mediaType"], std::string(media_type::kDockerManifest));
}

TEST_F(RegistryCacheTest, WrongBlobIsRefusedAndNothingIsTagged) {
  auto cache = Open("app/cache-bad");
  std::string blob = Bytes(5000, 3);
  CacheEntry entry = EntryFor(blob, media_type::kOciLayerGzip, "RUN x");
  StringReader wrong(Bytes(5000, 4));
  EXPECT_FALSE(cache->Store(Sha256Of("k"), entry, &wrong).ok());
  EXPECT_FALSE(cache->Lookup(Sha256Of("k"))->has_value());
}

TEST_F(RegistryCacheTest, ConcurrentStoresOfOneKey) {
  std::string blob = Bytes(1 << 20, 5);
  CacheEntry entry = EntryFor(blob, media_type::kOciLayerGzip, "RUN build");
  Digest key = Sha256Of("concurrent");
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < 3; ++i) {
    writers.emplace_back([&, i] {
      clock_.Advance(std::chrono::seconds(i));  // different configs, so different manifests under one tag
      auto cache = Open("app/cache-conc");
      StringReader r(blob);
      Status s = cache->Store(key, entry, &r);
      if (!s.ok()) {
        ADD_FAILURE() << s.ToString();
        failures++;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto cache = Open("app/cache-conc");
  auto hit = cache->Lookup(key);
  ASSERT_TRUE(hit.ok() && hit->has_value());
  EXPECT_EQ(ReadAll(*cache->OpenLayer(**hit).value(), 2 << 20).value(), blob);
}

TEST_F(RegistryCacheTest, RepositoryWithTagIsRefused) {
  auto c = OpenRegistryCache(*client_, server_->host() + "/app/cache:v1", std::chrono::seconds(0));
  EXPECT_EQ(c.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(OpenRegistryCache(*client_, "Not A Ref", std::chrono::seconds(0)).ok());
}

}  // namespace
}  // namespace kiln::executor
