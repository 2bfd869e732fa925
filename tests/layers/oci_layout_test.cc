#include "layers/oci_layout.h"

#include <thread>

#include <gtest/gtest.h>

#include "core/media_types.h"
#include "tests/testing/image_fixture.h"
#include "tests/testing/temp_dir.h"

namespace kiln::layers {
namespace {

using kiln::testing::ReadFile;
using kiln::testing::RunShell;
using kiln::testing::TempDir;

TEST(OciLayoutTest, CreateWritesMarkerAndEmptyIndex) {
  TempDir dir;
  auto layout = OciLayout::OpenOrCreate(dir.Sub("img"));
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  EXPECT_EQ(ReadFile(dir.Sub("img/oci-layout")), R"({"imageLayoutVersion":"1.0.0"})");
  auto idx = layout->ReadIndex();
  ASSERT_TRUE(idx.ok());
  EXPECT_TRUE(idx->manifests.empty());
  EXPECT_EQ(idx->media_type, media_type::kOciIndex);
}

TEST(OciLayoutTest, OpenRefusesNonLayout) {
  TempDir dir;
  auto layout = OciLayout::Open(dir.path());
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.status().message(), dir.path() + " is not an OCI image layout (no oci-layout file)");
}

TEST(OciLayoutTest, BlobWriterNamesByDigestAndRefusesMismatch) {
  TempDir dir;
  auto layout = *OciLayout::OpenOrCreate(dir.path());
  {
    auto w = layout.NewBlob();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("hello").ok());
    auto d = (*w)->Commit(Sha256Of("hellp"));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), ErrorCode::kDigestMismatch);
  }
  std::string listing;
  RunShell("ls -A " + dir.Sub("blobs/sha256"), &listing);
  EXPECT_EQ(listing, "") << "a refused blob must leave nothing behind";

  auto w = std::move(layout.NewBlob()).value();
  ASSERT_TRUE(w->Write("hello").ok());
  auto d = w->Commit();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Sha256Of("hello"));
  EXPECT_EQ(ReadFile(layout.BlobPath(*d)), "hello");
  EXPECT_EQ(*layout.ReadBlob(*d), "hello");
}

TEST(OciLayoutTest, OpenBlobDetectsCorruptionOnDisk) {
  TempDir dir;
  auto layout = *OciLayout::OpenOrCreate(dir.path());
  Digest d = *layout.PutBlob("original content");
  kiln::testing::WriteFile(layout.BlobPath(d), "tampered content");
  auto r = layout.ReadBlob(d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDigestMismatch);
}

TEST(OciLayoutTest, TagsMoveBetweenImages) {
  TempDir dir;
  auto layout = *OciLayout::OpenOrCreate(dir.Sub("l"));
  auto a = kiln::testing::MakeFixtureImage(layout, dir.path(), {{"a.txt", "a"}}, "v1");
  auto b = kiln::testing::MakeFixtureImage(layout, dir.path(), {{"b.txt", "b"}}, "v2");
  EXPECT_EQ(layout.Resolve("v1")->digest, a.manifest_desc.digest);
  EXPECT_EQ(layout.Resolve("v2")->digest, b.manifest_desc.digest);
  ASSERT_TRUE(layout.AddToIndex(b.manifest_desc, "v1").ok());
  EXPECT_EQ(layout.Resolve("v1")->digest, b.manifest_desc.digest);
  EXPECT_EQ(layout.Resolve("missing").status().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(layout.Resolve("").ok()) << "two images: an empty ref is ambiguous";
}

TEST(OciLayoutTest, SkopeoAndUmociReadWhatWeWrote) {
  TempDir dir;
  auto layout = *OciLayout::OpenOrCreate(dir.Sub("l"));
  auto img = kiln::testing::MakeFixtureImage(layout, dir.path(), {{"etc/motd", "hello kiln\n"}, {"bin/x", "#!"}}, "v1");
  std::string out;
  ASSERT_EQ(RunShell("skopeo inspect --raw oci:" + dir.Sub("l") + ":v1", &out), 0) << out;
  EXPECT_EQ(out, img.manifest);
  ASSERT_EQ(RunShell("skopeo inspect --config --raw oci:" + dir.Sub("l") + ":v1", &out), 0) << out;
  EXPECT_EQ(out, img.config);
  ASSERT_EQ(RunShell("umoci unpack --rootless --image " + dir.Sub("l") + ":v1 " + dir.Sub("bundle"), &out), 0) << out;
  EXPECT_EQ(ReadFile(dir.Sub("bundle/rootfs/etc/motd")), "hello kiln\n");
}

}  // namespace
}  // namespace kiln::layers

namespace kiln::layers {
namespace {

// Two builds sharing a new state directory create its store at the same moment: whichever comes
// second must find a complete layout (once, index.json was missing for it) and no tag is lost.
TEST(OciLayoutRaceTest, ConcurrentCreatorsBothGetACompleteLayout) {
  kiln::testing::TempDir dir;
  for (int round = 0; round < 40; ++round) {
    std::string path = dir.Sub("store-" + std::to_string(round));
    Status results[2];
    std::thread a([&] { results[0] = OciLayout::OpenOrCreate(path).status(); });
    std::thread b([&] { results[1] = OciLayout::OpenOrCreate(path).status(); });
    a.join();
    b.join();
    ASSERT_TRUE(results[0].ok()) << results[0].ToString();
    ASSERT_TRUE(results[1].ok()) << results[1].ToString();
    ASSERT_TRUE(OciLayout::Open(path).ok());
  }
}

}  // namespace
}  // namespace kiln::layers
