// Base images in the cache dir: `WarmBaseImage` / `kiln warm` fill it from a real registry, and
// LookupBaseImage then serves the image (by digest or by the warmed reference) without the registry.
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>

#include "executor/image/cache_warm.h"
#include "core/image_copy.h"
#include "registry/credentials.h"
#include "registry/curl_transport.h"
#include "core/reference.h"
#include "tests/registry/test_images.h"
#include "tests/testing/registry_server.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using registry::testing::MakeImage;
using registry::testing::MakeIndex;
using registry::testing::MemorySource;
using registry::testing::TestImage;

class WarmTest : public ::testing::Test {
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
  std::string Ref(const std::string& repo_tag) const { return server_->host() + "/" + repo_tag; }
  void Push(MemorySource& src, const std::string& repo_tag) {
    auto sink = registry::OpenRegistrySink(*client_, kiln::Reference::Parse(Ref(repo_tag)).value());
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    auto r = kiln::CopyImage(src, **sink);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::shared_ptr<const SourceImage> MustFind(const std::string& cache, const std::string& ref, const Platform& p) {
    auto r = LookupBaseImage(cache, ref, p);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->has_value()) {
      ADD_FAILURE() << "no cached image for " << ref;
      return nullptr;
    }
    return **r;
  }

  static kiln::testing::RegistryServer* server_;
  registry::CurlTransport wire_;
  registry::AnonymousKeychain keychain_;
  std::unique_ptr<registry::Client> client_;
  kiln::testing::TempDir dir_;
  Platform amd64_ = Platform::Parse("linux/amd64").value();
  Platform arm64_ = Platform::Parse("linux/arm64").value();
};
kiln::testing::RegistryServer* WarmTest::server_ = nullptr;

TEST_F(WarmTest, WarmedImageIsServedFromTheCacheDir) {
  TestImage img = MakeImage(3, 50'000, 11);
  MemorySource src;
  src.SetRoot(img);
  Push(src, "base/one:1");
  std::string cache = dir_.Sub("cache");
  // Nothing warmed yet: a miss (and no cache dir is not an error).
  auto none = LookupBaseImage(cache, Ref("base/one:1"), amd64_);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());

  WarmStats stats;
  Status s = WarmBaseImage(*client_, Ref("base/one:1"), amd64_, cache, &stats);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(stats.blobs_fetched, 4u);
  EXPECT_EQ(stats.canonical, Ref("base/one") + "@" + img.digest.ToString());

  // Delete the image from the registry's storage: the lookup must not need the registry.
  ASSERT_EQ(kiln::testing::RunShell("rm -rf '" + server_->storage_dir() + "/docker/registry/v2/repositories/base/one'"), 0);

  for (const std::string& ref : {Ref("base/one:1"), Ref("base/one@" + img.digest.ToString()), img.digest.ToString()}) {
    SCOPED_TRACE(ref);
    auto found = MustFind(cache, ref, amd64_);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->manifest_raw.digest, img.digest);
    EXPECT_EQ(found->manifest_raw.bytes, img.manifest);
    EXPECT_EQ(found->config_bytes, img.config);
    EXPECT_EQ(found->manifest.layers.size(), 3u);
    EXPECT_EQ(found->config.diff_ids.size(), 3u);
    // Every layer reads back, verified, from the cache dir.
    for (size_t i = 0; i < 3; ++i) {
      auto blob = found->source->OpenBlob(found->manifest.layers[i]);
      ASSERT_TRUE(blob.ok()) << blob.status().ToString();
      EXPECT_EQ(ReadAll(**blob, 1 << 20).value(), img.layers[i]);
    }
  }
  auto by_ref = MustFind(cache, Ref("base/one:1"), amd64_);
  EXPECT_EQ(by_ref->canonical, Ref("base/one") + "@" + img.digest.ToString());
  ASSERT_TRUE(by_ref->source->RegistryLocation().has_value());
  EXPECT_EQ(by_ref->source->RegistryLocation()->second, "base/one");

  // Other tags, and the same tag for another platform, were never warmed.
  EXPECT_FALSE(LookupBaseImage(cache, Ref("base/one:2"), amd64_)->has_value());
  EXPECT_FALSE(LookupBaseImage(cache, Ref("base/one:1"), arm64_)->has_value());
  // The warmed record expires with the TTL; the digest never does.
  registry::FakeClock later(::time(nullptr) + 7200);
  EXPECT_FALSE(LookupBaseImage(cache, Ref("base/one:1"), amd64_, std::chrono::hours(1), &later)->has_value());
  EXPECT_TRUE(LookupBaseImage(cache, Ref("base/one@" + img.digest.ToString()), amd64_, std::chrono::hours(1), &later)
                  ->has_value());
  // A missing layer blob makes it a miss, never an image that fails half-way through.
  ASSERT_EQ(::unlink((cache + "/blobs/sha256/" + Sha256Of(img.layers[1]).hex()).c_str()), 0);
  EXPECT_FALSE(LookupBaseImage(cache, Ref("base/one:1"), amd64_)->has_value());
}

TEST_F(WarmTest, IndexKeepsTheRequestedPlatform) {
  TestImage a = MakeImage(1, 1000, 21, false, "amd64");
  TestImage b = MakeImage(1, 1000, 22, false, "arm64");
  std::string index = MakeIndex({{a, "amd64"}, {b, "arm64"}});
  MemorySource src;
  src.AddImage(a);
  src.AddImage(b);
  src.SetRoot(kiln::RawManifest{index, std::string(media_type::kOciIndex), Sha256Of(index)});
  Push(src, "base/multi:1");
  std::string cache = dir_.Sub("cache-multi");
  WarmStats stats;
  ASSERT_TRUE(WarmBaseImage(*client_, Ref("base/multi:1"), arm64_, cache, &stats).ok());
  EXPECT_EQ(stats.blobs_fetched, 2u);  // arm64's config and layer only
  auto found = MustFind(cache, Ref("base/multi:1"), arm64_);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->manifest_raw.digest, b.digest);
  // By the index digest too, choosing the platform from the stored index.
  auto by_index = MustFind(cache, Ref("base/multi@" + Sha256Of(index).ToString()), arm64_);
  ASSERT_TRUE(by_index);
  EXPECT_EQ(by_index->manifest_raw.digest, b.digest);
  // amd64 was not warmed: its blobs are absent, so it is a miss.
  auto amd = LookupBaseImage(cache, Ref("base/multi@" + Sha256Of(index).ToString()), amd64_);
  ASSERT_TRUE(amd.ok()) << amd.status().ToString();
  EXPECT_FALSE(amd->has_value());
  // Warming again fetches nothing.
  WarmStats again;
  ASSERT_TRUE(WarmBaseImage(*client_, Ref("base/multi:1"), arm64_, cache, &again).ok());
  EXPECT_EQ(again.blobs_fetched, 0u);
  EXPECT_EQ(again.blobs_present, 2u);
}

TEST_F(WarmTest, KilnWarmCommand) {
  TestImage img = MakeImage(2, 2000, 31);
  MemorySource src;
  src.SetRoot(img);
  Push(src, "base/cli:1");
  // The kiln binary sits at the top of the build tree, two levels above this test binary.
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  std::string exe(self, static_cast<size_t>(n));
  std::string kiln = exe.substr(0, exe.rfind('/')) + "/../../kiln";
  if (::access(kiln.c_str(), X_OK) != 0) GTEST_SKIP() << "kiln binary not built";
  std::string cache = dir_.Sub("cache-cli");
  std::string out;
  int rc = kiln::testing::RunShell(kiln + " warm --cache-dir " + cache + " --insecure-registry " + server_->host() +
                                       " --custom-platform linux/amd64 --image " + Ref("base/cli:1") + " 2>&1",
                                   &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("warmed " + Ref("base/cli") + "@" + img.digest.ToString()), std::string::npos) << out;
  EXPECT_TRUE(LookupBaseImage(cache, Ref("base/cli:1"), amd64_)->has_value());
  // Usage errors exit 2; a failed pull exits 1 and names the image.
  EXPECT_EQ(kiln::testing::RunShell(kiln + " warm --cache-dir " + cache + " 2>&1", &out), 2) << out;
  rc = kiln::testing::RunShell(kiln + " warm --cache-dir " + cache + " --insecure-registry " + server_->host() + " " +
                                   Ref("base/absent:1") + " 2>&1",
                               &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("base/absent"), std::string::npos) << out;
}

}  // namespace
}  // namespace kiln::executor
