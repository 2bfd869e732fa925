// StepCache against a real --cache-dir cache: the key chain, a miss stored and then hit, the reason a
// miss gives, a keyed-but-uncached step, and that without a cache nothing happens.
#include "executor/cache/step_cache.h"

#include <gtest/gtest.h>

#include "core/media_types.h"
#include "executor/cache/cache_dir.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using kiln::testing::TempDir;

Platform Amd64() {
  Platform p;
  p.os = "linux";
  p.architecture = "amd64";
  return p;
}

class StepCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = OpenDirCache(dir_.path(), std::chrono::seconds(0));
    ASSERT_TRUE(c.ok()) << c.status().message();
    cache_ = std::move(c).value();
  }
  StepCache Fresh() {
    StepCache sc(cache_.get(), &log_, Amd64(), "Dockerfile|0");
    sc.Start(base_);
    return sc;
  }

  TempDir dir_;
  std::unique_ptr<LayerCache> cache_;
  MemoryBuildLog log_;
  Digest base_ = StageBaseKey(Sha256Of("manifest"), "gzip");
};

TEST_F(StepCacheTest, MissIsStoredThenHit) {
  CacheVars vars{{"A", "1"}};
  StepCache first = Fresh();
  EXPECT_TRUE(first.On(true));
  EXPECT_FALSE(first.On(false));
  EXPECT_EQ(first.key(), base_);
  EXPECT_FALSE(first.Lookup(2, "RUN make", vars, std::nullopt).has_value());
  EXPECT_EQ(first.key(), base_);  // the chain moves only once the step succeeded
  ASSERT_TRUE(first.StepSucceeded());
  const Digest key = StepKey(base_, "RUN make", vars, Amd64(), std::nullopt);
  EXPECT_EQ(first.key(), key);

  std::string blob = "layer bytes";
  CacheEntry made;
  made.created_by = "RUN make";
  made.layer.media_type = std::string(media_type::kOciLayerGzip);
  made.layer.digest = Sha256Of(blob);
  made.layer.size = static_cast<int64_t>(blob.size());
  made.diff_id = Sha256Of("tar");
  StringReader r(blob);
  std::string note = "layer x";
  first.Store(made, &r, &note);
  EXPECT_EQ(note, "layer x; cache miss: not cached yet");
  EXPECT_FALSE(first.StepSucceeded());  // nothing pending any more

  StepCache second = Fresh();
  std::optional<CacheEntry> hit = second.Lookup(2, "RUN make", vars, std::nullopt);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->created_by, "RUN make");
  EXPECT_EQ(hit->layer.digest, made.layer.digest);
  EXPECT_EQ(hit->diff_id, made.diff_id);
  EXPECT_EQ(second.key(), key);
  EXPECT_FALSE(second.StepSucceeded());
  EXPECT_EQ(second.key(), key);
}

TEST_F(StepCacheTest, MissSaysWhatChangedSinceTheLastBuild) {
  StepCache first = Fresh();
  ASSERT_FALSE(first.Lookup(3, "RUN make", {{"A", "1"}}, std::nullopt).has_value());
  ASSERT_TRUE(first.StepSucceeded());
  CacheEntry empty;
  empty.empty_layer = true;
  empty.created_by = "RUN make";
  std::string note;
  first.Store(empty, nullptr, &note);

  StepCache second = Fresh();
  ASSERT_FALSE(second.Lookup(3, "RUN make", {{"A", "2"}}, std::nullopt).has_value());
  ASSERT_TRUE(second.StepSucceeded());
  note.clear();
  second.Store(empty, nullptr, &note);
  EXPECT_EQ(note, "cache miss: build arg or env A changed");
}

TEST_F(StepCacheTest, ChainMovesTheKeyForUncachedSteps) {
  StepCache sc = Fresh();
  sc.Chain("ENV A=1", Sha256Of("config"));
  Digest after_env = StepKey(base_, "ENV A=1", {}, Amd64(), Sha256Of("config"));
  EXPECT_EQ(sc.key(), after_env);

  sc.ChainAfterStep("COPY a b", Sha256Of("files"));
  EXPECT_EQ(sc.key(), after_env);  // applied only once the step succeeded
  EXPECT_FALSE(sc.StepSucceeded());
  EXPECT_EQ(sc.key(), StepKey(after_env, "COPY a b", {}, Amd64(), Sha256Of("files")));
}

TEST_F(StepCacheTest, UnkeyableStepTurnsLookupsOff) {
  StepCache sc = Fresh();
  sc.MarkUnkeyable();
  EXPECT_FALSE(sc.On(true));
}

TEST(StepCacheWithoutCache, DoesNothing) {
  MemoryBuildLog log;
  StepCache sc(nullptr, &log, Amd64(), "Dockerfile|0");
  sc.Start(Sha256Of("base"));
  sc.Chain("ENV A=1", std::nullopt);
  EXPECT_FALSE(sc.On(true));
  EXPECT_EQ(sc.key(), Digest());
  EXPECT_FALSE(sc.StepSucceeded());
  EXPECT_EQ(log.text(), "");
}

}  // namespace
}  // namespace kiln::executor
