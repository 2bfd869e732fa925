// The --cache-dir backend: round trips, TTL, and that a half-written entry is never returned, also
// with several threads and processes storing the same key at once.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "core/media_types.h"
#include "executor/cache/cache_dir.h"
#include "registry/clock.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using kiln::testing::TempDir;
using kiln::testing::WriteFile;

std::string Bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

struct Layer {
  std::string blob;
  CacheEntry entry;
};

Layer MakeLayer(size_t n, uint64_t seed, const std::string& created_by = "RUN make") {
  Layer l;
  l.blob = Bytes(n, seed);
  l.entry.layer.media_type = std::string(media_type::kOciLayerGzip);
  l.entry.layer.digest = Sha256Of(l.blob);
  l.entry.layer.size = static_cast<int64_t>(l.blob.size());
  l.entry.diff_id = Sha256Of("diff" + std::to_string(seed));
  l.entry.created_by = created_by;
  return l;
}

class DirCacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<LayerCache> Open(std::chrono::seconds ttl = std::chrono::seconds(0)) {
    auto c = OpenDirCache(dir_.Sub("cache"), ttl, &clock_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
  std::string ReadLayer(LayerCache& cache, const CacheEntry& e) {
    auto r = cache.OpenLayer(e);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return "";
    auto data = ReadAll(**r, 64 << 20);
    EXPECT_TRUE(data.ok()) << data.status().ToString();
    return data.ok() ? *data : "";
  }

  TempDir dir_;
  registry::FakeClock clock_{1'700'000'000};
};

TEST_F(DirCacheTest, StoreLookupOpenRoundTrip) {
  auto cache = Open();
  Digest key = Sha256Of("key1");
  auto miss = cache->Lookup(key);
  ASSERT_TRUE(miss.ok()) << miss.status().ToString();
  EXPECT_FALSE(miss->has_value());

  Layer l = MakeLayer(300'000, 1);
  StringReader blob(l.blob);
  ASSERT_TRUE(cache->Store(key, l.entry, &blob).ok());
  auto hit = cache->Lookup(key);
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();
  ASSERT_TRUE(hit->has_value());
  const CacheEntry& e = **hit;
  EXPECT_FALSE(e.empty_layer);
  EXPECT_EQ(e.layer.media_type, l.entry.layer.media_type);
  EXPECT_EQ(e.layer.digest, l.entry.layer.digest);
  EXPECT_EQ(e.layer.size, l.entry.layer.size);
  EXPECT_EQ(e.diff_id, l.entry.diff_id);
  EXPECT_EQ(e.created_by, "RUN make");
  EXPECT_EQ(e.created_unix, clock_.UnixSeconds());
  EXPECT_EQ(ReadLayer(*cache, e), l.blob);
  EXPECT_NE(cache->Describe().find(dir_.Sub("cache")), std::string::npos);

  // The blob sits in an OCI layout's blob store under its digest.
  EXPECT_EQ(kiln::testing::ReadFile(dir_.Sub("cache/blobs/sha256/" + l.entry.layer.digest.hex())), l.blob);
  // Another cache object on the same directory (another build) sees it.
  auto other = Open();
  auto again = other->Lookup(key);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->layer.digest, l.entry.layer.digest);
  // Other keys still miss.
  EXPECT_FALSE(other->Lookup(Sha256Of("key2"))->has_value());
}

TEST_F(DirCacheTest, EmptyLayerEntriesAndSharedBlobs) {
  auto cache = Open();
  CacheEntry empty;
  empty.empty_layer = true;
  empty.created_by = "RUN true";
  ASSERT_TRUE(cache->Store(Sha256Of("e"), empty, nullptr).ok());
  auto hit = cache->Lookup(Sha256Of("e"));
  ASSERT_TRUE(hit.ok() && hit->has_value());
  EXPECT_TRUE((*hit)->empty_layer);
  EXPECT_EQ((*hit)->created_by, "RUN true");
  EXPECT_FALSE(cache->OpenLayer(**hit).ok());

  // A second key naming a blob the cache has needs no blob.
  Layer l = MakeLayer(1000, 2);
  StringReader blob(l.blob);
  ASSERT_TRUE(cache->Store(Sha256Of("a"), l.entry, &blob).ok());
  ASSERT_TRUE(cache->Store(Sha256Of("b"), l.entry, nullptr).ok());
  EXPECT_TRUE(cache->Lookup(Sha256Of("b"))->has_value());
  // Without the blob in the cache, a blob is required.
  Layer m = MakeLayer(1000, 3);
  EXPECT_EQ(cache->Store(Sha256Of("c"), m.entry, nullptr).code(), ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(cache->Lookup(Sha256Of("c"))->has_value());
}

TEST_F(DirCacheTest, WrongBlobStoresNothing) {
  auto cache = Open();
  Layer l = MakeLayer(5000, 4);
  StringReader wrong(Bytes(5000, 5));
  Status s = cache->Store(Sha256Of("k"), l.entry, &wrong);
  EXPECT_EQ(s.code(), ErrorCode::kDigestMismatch) << s.ToString();
  EXPECT_FALSE(cache->Lookup(Sha256Of("k"))->has_value());
  struct stat st;
  EXPECT_NE(::stat(dir_.Sub("cache/blobs/sha256/" + l.entry.layer.digest.hex()).c_str(), &st), 0);
  StringReader short_blob(l.blob.substr(0, 100));
  EXPECT_EQ(cache->Store(Sha256Of("k"), l.entry, &short_blob).code(), ErrorCode::kDigestMismatch);
  EXPECT_FALSE(cache->Lookup(Sha256Of("k"))->has_value());
}

TEST_F(DirCacheTest, TtlExpiry) {
  auto cache = Open(std::chrono::hours(1));
  Layer l = MakeLayer(100, 6);
  StringReader blob(l.blob);
  ASSERT_TRUE(cache->Store(Sha256Of("k"), l.entry, &blob).ok());
  clock_.Advance(std::chrono::seconds(3599));
  EXPECT_TRUE(cache->Lookup(Sha256Of("k"))->has_value());
  clock_.Advance(std::chrono::seconds(2));
  EXPECT_FALSE(cache->Lookup(Sha256Of("k"))->has_value());
  // Storing again refreshes the entry.
  ASSERT_TRUE(cache->Store(Sha256Of("k"), l.entry, nullptr).ok());
  EXPECT_TRUE(cache->Lookup(Sha256Of("k"))->has_value());
  // A TTL of 0 never expires.
  auto forever = Open(std::chrono::seconds(0));
  clock_.Advance(std::chrono::hours(10 * 365 * 24));
  EXPECT_TRUE(forever->Lookup(Sha256Of("k"))->has_value());
}

TEST_F(DirCacheTest, HalfWrittenEntriesAreNeverReturned) {
  auto cache = Open();
  Layer l = MakeLayer(2000, 7);
  Digest key = Sha256Of("crash");
  std::string entry_path = dir_.Sub("cache/kiln-cache/layers/" + key.hex() + ".json");
  // A writer that died mid-entry leaves only its temporary file.
  WriteFile(entry_path + ".tmp-1234-5678", "{\"schemaVersion\":1,\"key\":\"" + key.ToString() + "\",\"empt");
  // A writer that died mid-blob leaves a partial incoming blob.
  WriteFile(dir_.Sub("cache/blobs/sha256/.incoming-abcdef"), l.blob.substr(0, 100));
  EXPECT_FALSE(cache->Lookup(key)->has_value());
  // Died between the blob and the entry: the blob is there, the entry is not.
  WriteFile(dir_.Sub("cache/blobs/sha256/" + l.entry.layer.digest.hex()), l.blob);
  EXPECT_FALSE(cache->Lookup(key)->has_value());
  // An entry whose blob has gone (pruned by hand) is a miss, not a broken hit.
  Layer gone = MakeLayer(2000, 8);
  StringReader blob(gone.blob);
  ASSERT_TRUE(cache->Store(Sha256Of("gone"), gone.entry, &blob).ok());
  ASSERT_EQ(::unlink(dir_.Sub("cache/blobs/sha256/" + gone.entry.layer.digest.hex()).c_str()), 0);
  EXPECT_FALSE(cache->Lookup(Sha256Of("gone"))->has_value());
  // A damaged entry file (truncated by someone writing it in place) is a miss too.
  WriteFile(entry_path, "{\"schemaVersion\":1,\"key\":");
  auto r = cache->Lookup(key);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->has_value());
  // An entry file holding another key's entry is not taken.
  std::string other = kiln::testing::ReadFile(dir_.Sub("cache/kiln-cache/layers/" + Sha256Of("gone").hex() + ".json"));
  WriteFile(entry_path, other);
  EXPECT_FALSE(cache->Lookup(key)->has_value());
  // Storing over the leftovers works.
  StringReader again(l.blob);
  ASSERT_TRUE(cache->Store(key, l.entry, &again).ok());
  EXPECT_TRUE(cache->Lookup(key)->has_value());
}

TEST_F(DirCacheTest, ConcurrentThreadsStoringOneKey) {
  Layer l = MakeLayer(2 << 20, 9);
  Digest key = Sha256Of("shared");
  std::atomic<bool> done{false};
  std::atomic<int> hits{0}, bad{0};
  std::thread reader([&] {
    auto cache = Open();
    while (!done) {
      auto r = cache->Lookup(key);
      if (!r.ok()) {
        bad++;
        continue;
      }
      if (!r->has_value()) continue;
      // A visible entry is complete: its layer reads back whole and verified.
      if (ReadLayer(*cache, **r) != l.blob) bad++;
      hits++;
    }
  });
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int i = 0; i < 6; ++i) {
    writers.emplace_back([&] {
      auto cache = Open();
      StringReader blob(l.blob);
      if (!cache->Store(key, l.entry, &blob).ok()) failures++;
    });
  }
  for (auto& t : writers) t.join();
  auto cache = Open();
  auto final_entry = cache->Lookup(key);
  done = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  ASSERT_TRUE(final_entry.ok() && final_entry->has_value());
  EXPECT_EQ(ReadLayer(*cache, **final_entry), l.blob);
  // No temporary files are left behind by writers that finished.
  std::string out;
  kiln::testing::RunShell("find '" + dir_.Sub("cache") + "' -name '*.tmp-*' -o -name '.incoming-*'", &out);
  EXPECT_EQ(out, "");
}

TEST_F(DirCacheTest, ConcurrentProcessesStoringOneKey) {
  Layer l = MakeLayer(1 << 20, 10);
  Digest key = Sha256Of("processes");
  std::string dir = dir_.Sub("cache");
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto cache = OpenDirCache(dir, std::chrono::seconds(0));
      if (!cache.ok()) ::_exit(2);
      for (int round = 0; round < 5; ++round) {
        StringReader blob(l.blob);
        if (!(*cache)->Store(key, l.entry, &blob).ok()) ::_exit(3);
        auto r = (*cache)->Lookup(key);
        if (!r.ok() || !r->has_value() || (*r)->layer.digest != l.entry.layer.digest) ::_exit(4);
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child exit " << WEXITSTATUS(status);
  }
  auto cache = Open();
  auto r = cache->Lookup(key);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ(ReadLayer(*cache, **r), l.blob);
}

TEST_F(DirCacheTest, RemembersKeyInputs) {
  auto cache = Open();
  Digest slot = Sha256Of("Dockerfile|stage 0|step 3");
  EXPECT_FALSE(cache->RecallInputs(slot)->has_value());
  Platform p = Platform::Parse("linux/amd64").value();
  StepKeyInputs in = StepKeyWithInputs(Sha256Of("parent"), "RUN make", {{"V", "1"}}, p, Sha256Of("src"));
  ASSERT_TRUE(cache->RememberInputs(slot, in).ok());
  auto back = cache->RecallInputs(slot);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->key, in.key);
  EXPECT_EQ(DescribeKeyChange(**back, in), "");
  StepKeyInputs now = StepKeyWithInputs(Sha256Of("parent"), "RUN make", {{"V", "2"}}, p, Sha256Of("src"));
  EXPECT_EQ(DescribeKeyChange(**back, now), "build arg or env V changed");
  // The record holds digests, never the values.
  std::string file = kiln::testing::ReadFile(dir_.Sub("cache/kiln-cache/inputs/" + slot.hex() + ".json"));
  EXPECT_EQ(file.find("RUN make"), std::string::npos);
}

TEST(Rfc3339Test, Parses) {
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00Z").value(), 0);
  EXPECT_EQ(ParseRfc3339("2024-01-02T03:04:05Z").value(), 1704164645);
  EXPECT_EQ(ParseRfc3339("2024-01-02T03:04:05.123456789Z").value(), 1704164645);
  EXPECT_EQ(ParseRfc3339("2024-01-02T04:04:05+01:00").value(), 1704164645);
  EXPECT_FALSE(ParseRfc3339("2024-01-02").ok());
  EXPECT_FALSE(ParseRfc3339("2024-13-02T03:04:05Z").ok());
  EXPECT_FALSE(ParseRfc3339("2024-01-02T03:04:05").ok());
}

}  // namespace
}  // namespace kiln::executor
