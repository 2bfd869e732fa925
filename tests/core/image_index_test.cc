// NewIndexSource (core/image_index.h) over in-memory images: platforms from configs, the index's
// media type, flattening of a source index, duplicates, and the order CopyImage puts things in.
#include "core/image_index.h"

#include <gtest/gtest.h>

#include "core/image_copy.h"
#include "core/media_types.h"
#include "tests/registry/test_images.h"

namespace kiln {
namespace {

using registry::testing::MakeImage;
using registry::testing::MakeIndex;
using registry::testing::MemorySink;
using registry::testing::MemorySource;
using registry::testing::TestImage;

std::unique_ptr<ImageSource> Source(const TestImage& img) {
  auto s = std::make_unique<MemorySource>();
  s->SetRoot(img);
  return s;
}

// Counts the blobs a source is asked for.
class CountingSource : public MemorySource {
 public:
  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) override {
    ++asked;
    return MemorySource::OpenBlob(d);
  }
  int asked = 0;
};

Index RootIndex(ImageSource& src) {
  auto root = src.RootManifest();
  EXPECT_TRUE(root.ok());
  auto idx = ParseIndex(root->bytes);
  EXPECT_TRUE(idx.ok());
  return *idx;
}

TEST(ImageIndexTest, PlatformsComeFromTheConfigsAndCopyPutsTheIndexLast) {
  TestImage amd = MakeImage(2, 1000, 1, false, "amd64"), arm = MakeImage(1, 1000, 2, false, "arm64");
  std::vector<std::unique_ptr<ImageSource>> sources;
  sources.push_back(Source(amd));
  sources.push_back(Source(arm));
  auto index = NewIndexSource(std::move(sources), {{{"org.opencontainers.image.version", "2"}}});
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  Index idx = RootIndex(**index);
  EXPECT_EQ(idx.media_type, media_type::kOciIndex);
  EXPECT_EQ(idx.annotations.at("org.opencontainers.image.version"), "2");
  ASSERT_EQ(idx.manifests.size(), 2u);
  EXPECT_EQ(idx.manifests[0].digest, amd.digest);
  EXPECT_EQ(idx.manifests[0].platform->ToString(), "linux/amd64");
  EXPECT_EQ(idx.manifests[1].platform->ToString(), "linux/arm64");

  MemorySink sink;
  auto r = CopyImage(**index, sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(sink.blobs.size(), 5u);  // two configs, three layers
  ASSERT_FALSE(sink.log.empty());
  EXPECT_EQ(sink.log.back(), "root " + r->root.digest.ToString());
  EXPECT_EQ(sink.manifests.count(amd.digest) + sink.manifests.count(arm.digest), 2u);
}

TEST(ImageIndexTest, EachBlobIsAskedOfTheSourceThatHoldsIt) {
  TestImage amd = MakeImage(3, 500, 11, false, "amd64"), arm = MakeImage(2, 500, 12, false, "arm64");
  auto a = std::make_unique<CountingSource>(), b = std::make_unique<CountingSource>();
  a->SetRoot(amd);
  b->SetRoot(arm);
  CountingSource *pa = a.get(), *pb = b.get();
  std::vector<std::unique_ptr<ImageSource>> sources;
  sources.push_back(std::move(a));
  sources.push_back(std::move(b));
  auto index = NewIndexSource(std::move(sources));
  ASSERT_TRUE(index.ok());
  pa->asked = pb->asked = 0;  // reading the configs for the platforms is not the copy's doing
  MemorySink sink;
  ASSERT_TRUE(CopyImage(**index, sink).ok());
  EXPECT_EQ(pa->asked, 4);  // its config and three layers, nothing of the other image
  EXPECT_EQ(pb->asked, 3);
}

TEST(ImageIndexTest, DockerImagesMakeAManifestListUnlessAnnotated) {
  TestImage amd = MakeImage(1, 100, 3, true, "amd64"), arm = MakeImage(1, 100, 4, true, "arm64");
  std::vector<std::unique_ptr<ImageSource>> plain;
  plain.push_back(Source(amd));
  plain.push_back(Source(arm));
  auto list = NewIndexSource(std::move(plain));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(RootIndex(**list).media_type, media_type::kDockerManifestList);

  std::vector<std::unique_ptr<ImageSource>> annotated;
  annotated.push_back(Source(amd));
  auto oci = NewIndexSource(std::move(annotated), {{{"a", "b"}}});
  ASSERT_TRUE(oci.ok());
  EXPECT_EQ(RootIndex(**oci).media_type, media_type::kOciIndex);
}

TEST(ImageIndexTest, AnIndexSourceContributesItsEntriesAndDuplicatesAreRefused) {
  TestImage amd = MakeImage(1, 100, 5, false, "amd64"), arm = MakeImage(1, 100, 6, false, "arm64");
  auto both = std::make_unique<MemorySource>();
  both->AddImage(amd);
  both->AddImage(arm);
  std::string bytes = MakeIndex({{amd, "amd64"}, {arm, "arm64"}});
  both->SetRoot(RawManifest{bytes, std::string(media_type::kOciIndex), Sha256Of(bytes)});
  TestImage s390 = MakeImage(1, 100, 7, false, "s390x");
  std::vector<std::unique_ptr<ImageSource>> sources;
  sources.push_back(std::move(both));
  sources.push_back(Source(s390));
  auto index = NewIndexSource(std::move(sources));
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(RootIndex(**index).manifests.size(), 3u);
  MemorySink sink;
  ASSERT_TRUE(CopyImage(**index, sink).ok());  // children of the source index are served from it

  TestImage other_amd = MakeImage(1, 100, 8, false, "amd64");
  std::vector<std::unique_ptr<ImageSource>> dup;
  dup.push_back(Source(amd));
  dup.push_back(Source(other_amd));
  auto refused = NewIndexSource(std::move(dup));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("two images for linux/amd64"), std::string::npos);
}

TEST(ImageIndexTest, AnImageWithoutPlatformIsRefused) {
  TestImage img = MakeImage(1, 100, 9, false, "");
  std::vector<std::unique_ptr<ImageSource>> sources;
  sources.push_back(Source(img));
  auto r = NewIndexSource(std::move(sources));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("names no os or architecture"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace kiln
