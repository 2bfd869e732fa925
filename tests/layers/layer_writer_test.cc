#include "layers/layer_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace kiln::layers {
namespace {

using kiln::testing::ReadFile;
using kiln::testing::RunShell;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;

// A small tree with every kind of entry, content big enough to span several gzip members.
void MakeTree(const std::string& root) {
  std::string text;
  for (uint64_t i = 0; text.size() < (2u << 20) + 333; ++i) text += "line " + std::to_string(i * 31337 % 100003) + "\n";
  WriteFile(root + "/usr/share/doc/big.txt", text);
  WriteFile(root + "/etc/os-release", "ID=kiln\n");
  WriteFile(root + "/bin/tool", "#!/bin/sh\necho hi\n", 0755);
  ::link((root + "/bin/tool").c_str(), (root + "/bin/tool2").c_str());
  ::symlink("tool", (root + "/bin/alias").c_str());
  ::mkdir((root + "/empty").c_str(), 0700);
  struct timespec ts[2] = {{1600000000, 0}, {1600000000, 0}};
  ::utimensat(AT_FDCWD, root.c_str(), ts, 0);
}

std::string Sha256File(const std::string& cmd) {
  std::string out;
  EXPECT_EQ(RunShell(cmd + " | sha256sum", &out), 0) << out;
  return "sha256:" + out.substr(0, 64);
}

LayerOptions Options(media_type::Compression c, int threads = 0) {
  LayerOptions o;
  o.compression.algorithm = c;
  o.compression.threads = threads;
  o.tar.source_date_epoch = 1700000000;
  return o;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(LayerWriterTest, ChangesForTreeListsEverythingOnce) {
  TempDir d;
  MakeTree(d.path());
  auto ch = ChangesForTree(d.path());
  ASSERT_TRUE(ch.ok()) << ch.status().ToString();
  std::sort(ch->paths.begin(), ch->paths.end());
  EXPECT_EQ(ch->paths, (std::vector<std::string>{"bin", "bin/alias", "bin/tool", "bin/tool2", "empty", "etc",
                                                  "etc/os-release", "usr", "usr/share", "usr/share/doc",
                                                  "usr/share/doc/big.txt"}));
}

TEST(LayerWriterTest, GzipLayerDigestsMatchTheBytes) {
  TempDir d, out;
  MakeTree(d.path());
  auto ch = ChangesForTree(d.path());
  ASSERT_TRUE(ch.ok());
  ch->deletions = {"etc/old.conf"};
  auto info = WriteLayerToBlobDir(d.path(), *ch, Options(media_type::Compression::kGzip), out.Sub("blobs"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(ListDir(out.Sub("blobs/sha256")), std::vector<std::string>{info->digest.hex()});  // no temp left
  const std::string blob = out.Sub("blobs/sha256/" + info->digest.hex());
  struct stat st;
  ASSERT_EQ(::stat(blob.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), info->size);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(Sha256File("cat " + blob), info->digest.ToString());
  EXPECT_EQ(Sha256File("gzip -dc " + blob), info->diff_id.ToString());
  EXPECT_EQ(Sha256File("python3 -c 'import gzip,sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read())' " + blob),
            info->diff_id.ToString());
  EXPECT_EQ(RunShell("gzip -t " + blob), 0);
  EXPECT_EQ(RunShell("pigz -t " + blob), 0);
  std::string listing;
  ASSERT_EQ(RunShell("tar -tzvf " + blob, &listing), 0) << listing;
  EXPECT_NE(listing.find("bin/tool2 link to bin/tool"), std::string::npos) << listing;
  EXPECT_NE(listing.find("etc/.wh.old.conf"), std::string::npos) << listing;
  EXPECT_EQ(info->stats.hardlinks, 1u);
  EXPECT_LT(info->size, info->tar_size / 2);
}

TEST(LayerWriterTest, ZstdAndUncompressedLayers) {
  TempDir d, out;
  MakeTree(d.path());
  auto ch = ChangesForTree(d.path());
  ASSERT_TRUE(ch.ok());
  auto z = WriteLayerToBlobDir(d.path(), *ch, Options(media_type::Compression::kZstd), out.Sub("blobs"));
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_EQ(Sha256File("zstd -q -dc " + out.Sub("blobs/sha256/" + z->digest.hex())), z->diff_id.ToString());

  auto plain = WriteLayerToBlobDir(d.path(), *ch, Options(media_type::Compression::kNone), out.Sub("blobs"));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->media_type, "application/vnd.oci.image.layer.v1.tar");
  EXPECT_EQ(plain->digest, plain->diff_id);
  EXPECT_EQ(plain->size, plain->tar_size);
  // Same tar whatever the compression.
  EXPECT_EQ(plain->diff_id, z->diff_id);
}

TEST(LayerWriterTest, DigestsAreStableAcrossRunsAndThreadCounts) {
  TempDir d;
  MakeTree(d.path());
  auto ch = ChangesForTree(d.path());
  ASSERT_TRUE(ch.ok());
  for (media_type::Compression c : {media_type::Compression::kGzip, media_type::Compression::kZstd}) {
    StringWriter a, b, e;
    auto one = WriteLayer(d.path(), *ch, Options(c, 1), &a);
    auto two = WriteLayer(d.path(), *ch, Options(c, 2), &b);
    auto again = WriteLayer(d.path(), *ch, Options(c, 2), &e);
    ASSERT_TRUE(one.ok() && two.ok() && again.ok());
    EXPECT_EQ(one->digest, two->digest);
    EXPECT_EQ(two->digest, again->digest);
    EXPECT_EQ(one->diff_id, two->diff_id);
    EXPECT_EQ(a.data(), b.data());
    EXPECT_EQ(Sha256Of(b.data()), two->digest);
    EXPECT_EQ(b.data().size(), two->size);
  }
}

TEST(LayerWriterTest, ContentChangeChangesDigests) {
  TempDir d;
  MakeTree(d.path());
  auto ch = ChangesForTree(d.path());
  ASSERT_TRUE(ch.ok());
  NullWriter sink;
  auto before = WriteLayer(d.path(), *ch, Options(media_type::Compression::kGzip), &sink);
  WriteFile(d.Sub("etc/os-release"), "ID=klin\n");
  auto after = WriteLayer(d.path(), *ch, Options(media_type::Compression::kGzip), &sink);
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_NE(before->diff_id, after->diff_id);
  EXPECT_NE(before->digest, after->digest);
}

TEST(LayerWriterTest, FailureLeavesNoBlobBehind) {
  TempDir d, out;
  MakeTree(d.path());
  LayerChanges ch{{"etc/os-release", "does/not/exist"}, {}, {}};
  auto info = WriteLayerToBlobDir(d.path(), ch, Options(media_type::Compression::kGzip), out.Sub("blobs"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(ListDir(out.Sub("blobs/sha256")).empty());
}

TEST(LayerWriterTest, EmptyLayerIsTheWellKnownEmptyTar) {
  TempDir d;
  NullWriter sink;
  LayerOptions o = Options(media_type::Compression::kNone);
  auto info = WriteLayer(d.path(), {}, o, &sink);
  ASSERT_TRUE(info.ok());
  // 1024 zero bytes: the diff_id every builder gives an empty layer.
  EXPECT_EQ(info->diff_id.ToString(), "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");
}

}  // namespace
}  // namespace kiln::layers
