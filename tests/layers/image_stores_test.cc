// Copying between memory, OCI layouts and docker-archives, and parsing transport-prefixed names.
// (Registry ends are covered by tests/cmd/copy_test.cc through the kiln binary.)
#include "layers/docker_archive_store.h"
#include "layers/oci_layout_store.h"

#include <gtest/gtest.h>

#include "layers/docker_archive.h"
#include "layers/oci_layout.h"
#include "core/image_copy.h"
#include "tests/registry/test_images.h"
#include "tests/testing/certs.h"
#include "tests/testing/temp_dir.h"

namespace kiln::layers {
namespace {

using registry::testing::MakeImage;
using registry::testing::MakeIndex;
using registry::testing::MemorySink;
using registry::testing::MemorySource;
using registry::testing::TestImage;
using kiln::testing::TempDir;

TEST(LayoutIoTest, MemoryToOciLayoutAndBackKeepsDigests) {
  TempDir t;
  TestImage img = MakeImage(2, 30'000, 81, /*docker=*/true);
  MemorySource mem;
  mem.SetRoot(img);
  auto sink = OpenLayoutSink(t.Sub("lay"), "v1");
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  auto r = CopyImage(mem, **sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->blobs_copied, 3);

  auto layout = layers::OciLayout::Open(t.Sub("lay")).value();
  auto d = layout.Resolve("v1");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->digest, img.digest);
  EXPECT_EQ(d->media_type, media_type::kDockerManifest);

  // Again: every blob is already there.
  auto again = CopyImage(mem, **OpenLayoutSink(t.Sub("lay"), "v1"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->blobs_skipped, 3);

  auto src = OpenLayoutSource(t.Sub("lay"), "v1");
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  MemorySink back;
  ASSERT_TRUE(CopyImage(**src, back).ok());
  EXPECT_EQ(back.root.digest, img.digest);
  EXPECT_EQ(back.root.bytes, img.manifest);
  EXPECT_EQ(back.blobs.size(), 3u);

  auto missing = OpenLayoutSource(t.Sub("lay"), "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
}

TEST(LayoutIoTest, CorruptLayoutBlobIsCaught) {
  TempDir t;
  TestImage img = MakeImage(1, 10'000, 82);
  MemorySource mem;
  mem.SetRoot(img);
  ASSERT_TRUE(CopyImage(mem, **OpenLayoutSink(t.Sub("lay"), "")).ok());
  auto layout = layers::OciLayout::Open(t.Sub("lay")).value();
  std::string path = layout.BlobPath(Sha256Of(img.layers[0]));
  std::string bytes = kiln::testing::ReadFile(path);
  bytes[100] ^= 1;
  kiln::testing::WriteFile(path, bytes);
  auto src = OpenLayoutSource(t.Sub("lay"), "");
  ASSERT_TRUE(src.ok());
  MemorySink out;
  auto r = CopyImage(**src, out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDigestMismatch) << r.status().ToString();
}

TEST(LayoutIoTest, IndexGoesWholeIntoALayoutButNotIntoAnArchive) {
  TempDir t;
  TestImage amd = MakeImage(1, 3000, 83, false, "amd64");
  TestImage arm = MakeImage(1, 3000, 84, false, "arm64");
  std::string index = MakeIndex({{amd, "amd64"}, {arm, "arm64"}});
  MemorySource mem;
  mem.AddImage(amd);
  mem.AddImage(arm);
  mem.SetRoot(RawManifest{index, std::string(media_type::kOciIndex), Sha256Of(index)});

  auto r = CopyImage(mem, **OpenLayoutSink(t.Sub("lay"), "multi"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto layout = layers::OciLayout::Open(t.Sub("lay")).value();
  EXPECT_EQ(layout.Resolve("multi")->digest, Sha256Of(index));
  EXPECT_TRUE(layout.HasBlob(amd.digest));
  EXPECT_TRUE(layout.HasBlob(arm.digest));

  auto archive = OpenArchiveSink(t.Sub("a.tar"), {});
  ASSERT_TRUE(archive.ok());
  auto refused = CopyImage(mem, **archive);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(refused.status().message().find("--platform"), std::string::npos) << refused.status().message();

  CopyOptions one;
  one.platform = Platform::Parse("linux/arm64").value();
  auto picked = CopyImage(mem, **OpenArchiveSink(t.Sub("a.tar"), {}), one);
  ASSERT_TRUE(picked.ok()) << picked.status().ToString();
  EXPECT_EQ(picked->root.digest, arm.digest);
}

TEST(LayoutIoTest, DockerArchiveRoundTripKeepsTheManifestDigest) {
  TempDir t;
  TestImage img = MakeImage(2, 20'000, 85);
  MemorySource mem;
  mem.SetRoot(img);
  auto ref = Reference::Parse("example.com/team/app:7").value();
  {
    auto sink = OpenArchiveSink(t.Sub("img.tar"), {ref.FamiliarString()});
    ASSERT_TRUE(sink.ok());
    auto r = CopyImage(mem, **sink);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  // The scratch spool is gone; only the archive is left.
  std::string listing;
  kiln::testing::RunShell("ls " + kiln::testing::ShellQuote(t.path()), &listing);
  EXPECT_EQ(listing, "img.tar\n");

  auto archive = layers::DockerArchiveReader::Open(t.Sub("img.tar"));
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  ASSERT_EQ(archive->images().size(), 1u);
  EXPECT_EQ(archive->images()[0].repo_tags, std::vector<std::string>{"example.com/team/app:7"});

  for (auto pick : {std::optional<Reference>(ref), std::optional<Reference>()}) {
    auto src = OpenArchiveSource(t.Sub("img.tar"), pick, std::nullopt);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    MemorySink back;
    auto r = CopyImage(**src, back);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(back.root.digest, img.digest);
    EXPECT_EQ(back.blobs.size(), 3u);
  }
  auto other = OpenArchiveSource(t.Sub("img.tar"), Reference::Parse("example.com/team/app:8").value(), std::nullopt);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), ErrorCode::kNotFound);
}

TEST(LayoutIoTest, ClassicDockerArchiveGetsABuiltV2s2Manifest) {
  // A `docker save`-style archive from before Docker 25: manifest.json, a config and a plain tar layer.
  TempDir t;
  kiln::testing::WriteFile(t.Sub("root/hello.txt"), "hello\n");
  ASSERT_EQ(kiln::testing::RunShell("cd " + t.Sub("root") + " && tar --sort=name --mtime=@0 --owner=0 --group=0 -cf " +
                                    t.Sub("layer.tar") + " hello.txt"),
            0);
  std::string layer = kiln::testing::ReadFile(t.Sub("layer.tar"));
  std::string config = R"({"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[")" +
                       Sha256Of(layer).ToString() + R"("]}})";
  kiln::testing::WriteFile(t.Sub("save/abc/layer.tar"), layer);
  kiln::testing::WriteFile(t.Sub("save/" + Sha256Of(config).hex() + ".json"), config);
  kiln::testing::WriteFile(t.Sub("save/manifest.json"), R"([{"Config":")" + Sha256Of(config).hex() +
                                                            R"(.json","RepoTags":["old:1"],"Layers":["abc/layer.tar"]}])");
  ASSERT_EQ(kiln::testing::RunShell("cd " + t.Sub("save") + " && tar -cf " + t.Sub("old.tar") + " ."), 0);

  auto src = OpenArchiveSource(t.Sub("old.tar"), Reference::Parse("old:1").value(), std::nullopt);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  auto root = (*src)->RootManifest().value();
  EXPECT_EQ(root.media_type, media_type::kDockerManifest);
  auto m = ParseManifest(root.bytes).value();
  EXPECT_EQ(m.config.digest, Sha256Of(config));
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(m.layers[0].digest, Sha256Of(layer));
  EXPECT_EQ(m.layers[0].media_type, media_type::kDockerLayer);

  TempDir out;
  auto r = CopyImage(**src, **OpenLayoutSink(out.Sub("lay"), "old"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(layers::OciLayout::Open(out.Sub("lay"))->HasBlob(Sha256Of(layer)));
}

}  // namespace
}  // namespace kiln::layers
