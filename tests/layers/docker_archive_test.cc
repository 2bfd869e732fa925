#include "layers/docker_archive.h"

#include <gtest/gtest.h>

#include "core/media_types.h"
#include "layers/oci_layout.h"
#include "tests/testing/image_fixture.h"
#include "tests/testing/temp_dir.h"

namespace kiln::layers {
namespace {

using kiln::testing::ReadFile;
using kiln::testing::RunShell;
using kiln::testing::TempDir;

Status WriteArchive(const OciLayout& layout, const kiln::testing::FixtureImage& img,
                    const std::vector<std::string>& tags, const std::string& path) {
  auto out = AtomicFileWriter::Create(path);
  if (!out.ok()) return out.status();
  ArchiveImage a{img.manifest, img.config, tags};
  KILN_RETURN_IF_ERROR(WriteDockerArchive({a}, [&](const Descriptor& d) { return layout.OpenBlob(d.digest, d.size); },
                                          **out));
  return (*out)->Close();
}

TEST(DockerArchiveTest, SkopeoReadsWhatWeWrote) {
  TempDir dir;
  auto layout = *OciLayout::OpenOrCreate(dir.Sub("l"));
  auto img = kiln::testing::MakeFixtureImage(layout, dir.path(), {{"etc/motd", "from an archive\n"}}, "v1", true);
  std::string archive = dir.Sub("image.tar");
  Status s = WriteArchive(layout, img, {"registry.example/team/app:1.0"}, archive);
  ASSERT_TRUE(s.ok()) << s.message();

  std::string out;
  ASSERT_EQ(RunShell("skopeo inspect --config --raw docker-archive:" + archive, &out), 0) << out;
  EXPECT_EQ(out, img.config);
  // Through skopeo into an OCI layout, then unpacked by umoci: the file made it.
  ASSERT_EQ(RunShell("skopeo copy -q docker-archive:" + archive + " oci:" + dir.Sub("copy") + ":x", &out), 0) << out;
  ASSERT_EQ(RunShell("umoci unpack --rootless --image " + dir.Sub("copy") + ":x " + dir.Sub("bundle"), &out), 0) << out;
  EXPECT_EQ(ReadFile(dir.Sub("bundle/rootfs/etc/motd")), "from an archive\n");
}

TEST(DockerArchiveTest, WritingIsDeterministic) {
  TempDir dir;
  auto layout = *OciLayout::OpenOrCreate(dir.Sub("l"));
  auto img = kiln::testing::MakeFixtureImage(layout, dir.path(), {{"a", "b"}}, "v1");
  ASSERT_TRUE(WriteArchive(layout, img, {"a/b:c"}, dir.Sub("1.tar")).ok());
  ASSERT_TRUE(WriteArchive(layout, img, {"a/b:c"}, dir.Sub("2.tar")).ok());
  EXPECT_EQ(Sha256Of(ReadFile(dir.Sub("1.tar"))), Sha256Of(ReadFile(dir.Sub("2.tar"))));
}

TEST(DockerArchiveTest, CorruptLayerFailsTheWrite) {
  TempDir dir;
  auto layout = *OciLayout::OpenOrCreate(dir.Sub("l"));
  auto img = kiln::testing::MakeFixtureImage(layout, dir.path(), {{"a", "b"}}, "v1");
  std::string blob = ReadFile(img.layer_files[0]);
  blob[blob.size() / 2] ^= 0x01;
  kiln::testing::WriteFile(img.layer_files[0], blob);
  Status s = WriteArchive(layout, img, {}, dir.Sub("bad.tar"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kDigestMismatch) << s.message();
  EXPECT_NE(::access(dir.Sub("bad.tar").c_str(), F_OK), 0) << "no partial archive may be left";
}

TEST(DockerArchiveTest, ReadsWhatSkopeoWrote) {
  TempDir dir;
  auto layout = *OciLayout::OpenOrCreate(dir.Sub("l"));
  auto img = kiln::testing::MakeFixtureImage(layout, dir.path(), {{"hello.txt", "hi"}}, "v1");
  std::string archive = dir.Sub("skopeo.tar"), out;
  ASSERT_EQ(RunShell("skopeo copy -q oci:" + dir.Sub("l") + ":v1 docker-archive:" + archive + ":example.com/x:7", &out),
            0)
      << out;
  auto reader = DockerArchiveReader::Open(archive);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  ASSERT_EQ(reader->images().size(), 1u);
  EXPECT_EQ(reader->images()[0].repo_tags, std::vector<std::string>{"example.com/x:7"});
  auto config = reader->ReadEntry(reader->images()[0].config_path);
  ASSERT_TRUE(config.ok());
  auto parsed = ParseImageConfig(*config);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->diff_ids, ParseImageConfig(img.config)->diff_ids);

  auto manifest = reader->BuildManifest(0, /*oci=*/true);
  ASSERT_TRUE(manifest.ok()) << manifest.status().message();
  auto m = ParseManifest(*manifest);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->layers.size(), 1u);
  // skopeo stores docker-archive layers uncompressed, so the digest is the diff_id; reading the layer
  // back through a verifying reader proves it.
  auto layer = reader->OpenEntry(reader->images()[0].layer_paths[0]);
  ASSERT_TRUE(layer.ok());
  VerifyingReader v(layer->get(), m->layers[0].digest, m->layers[0].size, "layer");
  NullWriter sink;
  auto n = Copy(v, sink);
  ASSERT_TRUE(n.ok()) << n.status().message();
}

TEST(DockerArchiveTest, RefusesNonArchive) {
  TempDir dir;
  std::string out;
  kiln::testing::WriteFile(dir.Sub("x/file"), "x");
  RunShell("tar -C " + dir.Sub("x") + " -cf " + dir.Sub("plain.tar") + " file", &out);
  auto r = DockerArchiveReader::Open(dir.Sub("plain.tar"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), dir.Sub("plain.tar") + " is not a docker-archive (no manifest.json)");
}

}  // namespace
}  // namespace kiln::layers
