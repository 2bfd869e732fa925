// `kiln build` end to end: where the image goes and how it is written. Several destinations, a
// docker-archive (--tar-path), an OCI layout, Kaniko's three digest files, --no-push, zstd layers,
// Docker media types when the base has them, --reproducible and SOURCE_DATE_EPOCH, the `executor`
// name (Kaniko's command line), and --log-format json.
#include <unistd.h>

#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"
#include "tests/testing/certs.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::BuildEnv;
using testing::ReadFile;
using testing::RunShell;
using testing::ShellQuote;
using testing::Stat;

class BuildOutputsTest : public testing::BuildEnvSuite {
 protected:

  static std::string Context(const std::string& from = "busybox:latest") {
    return env_->Context({{"Dockerfile",
                           "FROM @REG@/" + from + "\n"
                           "COPY hello.txt /srv/hello.txt\n"
                           "RUN echo visible-output && echo ran > /srv/ran && mkdir -p /srv/dir && touch /srv/dir/f\n"
                           "CMD [\"cat\", \"/srv/hello.txt\"]\n"},
                          {"hello.txt", "hello\n"}});
  }

  // The newest mtime in a layer blob (python's tarfile reads gzip and plain tars).
  static long MaxMtime(const std::string& blob) {
    std::string out;
    EXPECT_EQ(RunShell("python3 -c 'import sys, tarfile; print(max(m.mtime for m in tarfile.open(sys.argv[1])))' " +
                           ShellQuote(blob),
                       &out),
              0)
        << out;
    return std::atol(out.c_str());
  }

};

TEST_F(BuildOutputsTest, EveryOutputHoldsTheSameImage) {
  std::string out = env_->NewDir("outputs");
  std::string ctx = Context();
  auto r = env_->Build(ctx, "--destination " + env_->Ref("out/a:1") + " --destination " + env_->Ref("out/b:2") +
                                " --tar-path " + out + "/image.tar --oci-layout-path " + out + "/layout:mytag" +
                                " --digest-file " + out + "/digest --image-name-with-digest-file " + out +
                                "/name-digest --image-name-tag-with-digest-file " + out + "/name-tag-digest");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto a = env_->Read("out/a:1");
  auto b = env_->Read("out/b:2", false);
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(ReadFile(out + "/digest"), a.digest);
  EXPECT_EQ(ReadFile(out + "/name-digest"),
            env_->Ref("out/a") + "@" + a.digest + "\n" + env_->Ref("out/b") + "@" + a.digest + "\n");
  EXPECT_EQ(ReadFile(out + "/name-tag-digest"),
            env_->Ref("out/a:1") + "@" + a.digest + "\n" + env_->Ref("out/b:2") + "@" + a.digest + "\n");
  EXPECT_EQ(Stat(a.rootfs, "srv/hello.txt").content, "hello\n");
  EXPECT_EQ(Stat(a.rootfs, "srv/ran").content, "ran\n");

  // The OCI layout holds the very manifest that was pushed.
  auto layout = testing::ReadImage("oci:" + out + "/layout:mytag", env_->NewDir("read"));
  EXPECT_EQ(layout.digest, a.digest);
  EXPECT_EQ(Stat(layout.rootfs, "srv/dir/f").type, 'f');

  // The docker-archive: the same config and layers, tagged with the destinations.
  auto archive = testing::ReadImage("docker-archive:" + out + "/image.tar", env_->NewDir("read"));
  EXPECT_EQ(archive.config, a.config);
  EXPECT_EQ(Stat(archive.rootfs, "srv/ran").content, "ran\n");
  std::string manifest_json;
  ASSERT_EQ(RunShell("tar -xOf " + out + "/image.tar manifest.json", &manifest_json), 0) << manifest_json;
  json m = json::parse(manifest_json);
  EXPECT_EQ(m[0]["RepoTags"], json({env_->Ref("out/a:1"), env_->Ref("out/b:2")})) << manifest_json;
}

TEST_F(BuildOutputsTest, NoPushWritesOnlyTheFiles) {
  std::string out = env_->NewDir("nopush");
  auto r = env_->Build(Context(), "--destination " + env_->Ref("out/nopush:1") + " --no-push --tar-path " + out +
                                      "/image.tar --digest-file " + out + "/digest");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_FALSE(env_->TagExists("out/nopush:1"));
  auto archive = testing::ReadImage("docker-archive:" + out + "/image.tar", env_->NewDir("read"), "", false);
  EXPECT_EQ(archive.config["config"]["Cmd"], json({"cat", "/srv/hello.txt"}));
  EXPECT_EQ(ReadFile(out + "/digest").rfind("sha256:", 0), 0u);
}

TEST_F(BuildOutputsTest, ZstdLayersNeedOciMediaTypes) {
  auto r = env_->Build(Context("busybox:docker"), "--destination " + env_->Ref("out/zstd:1") + " --compression zstd");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("out/zstd:1", false);  // umoci cannot read zstd layers
  EXPECT_EQ(img.manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(img.manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
  const json& layers = img.manifest["layers"];
  ASSERT_EQ(layers.size(), 3u);
  // The base layer is reused as it is; the new ones are zstd.
  EXPECT_EQ(layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(layers[1]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_EQ(layers[2]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
  std::string magic;
  ASSERT_EQ(RunShell("head -c4 " + img.layout + "/blobs/sha256/" + layers[2]["digest"].get<std::string>().substr(7) +
                         " | od -An -tx1",
                     &magic),
            0);
  EXPECT_NE(magic.find("28 b5 2f fd"), std::string::npos) << magic;
  std::vector<std::string> entries = img.LayerEntries(2);
  bool ran = false;
  for (const std::string& e : entries) ran |= e == "srv/ran" || e == "./srv/ran";
  EXPECT_TRUE(ran) << ::testing::PrintToString(entries);
}

TEST_F(BuildOutputsTest, DockerBaseGivesDockerMediaTypes) {
  auto r = env_->Build(Context("busybox:docker"), "--destination " + env_->Ref("out/docker:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("out/docker:1");
  EXPECT_EQ(img.manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(img.manifest["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
  for (const json& l : img.manifest["layers"]) {
    EXPECT_EQ(l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
  }
  EXPECT_EQ(Stat(img.rootfs, "srv/hello.txt").content, "hello\n");
}

TEST_F(BuildOutputsTest, ReproducibleBuildsGiveTheSameDigest) {
  std::string ctx = Context();
  auto r1 = env_->Build(ctx, "--destination " + env_->Ref("out/repro:1") + " --reproducible");
  ASSERT_EQ(r1.rc, 0) << r1.err;
  ::sleep(1);  // mtimes of the files RUN writes differ
  auto r2 = env_->Build(ctx, "--destination " + env_->Ref("out/repro:2") + " --reproducible");
  ASSERT_EQ(r2.rc, 0) << r2.err;
  EXPECT_NE(r2.err.find("\nvisible-output\n"), std::string::npos) << r2.err;
  // Each step ends with its duration.
  EXPECT_TRUE(std::regex_search(r2.err, std::regex("\\[stage 1/1\\] STEP 3/4: done in [0-9.]+(ms|s)\\b"))) << r2.err;
  auto a = env_->Read("out/repro:1", false);
  auto b = env_->Read("out/repro:2", false);
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(a.config["created"], "1970-01-01T00:00:00Z");
  for (const json& h : a.config["history"]) EXPECT_EQ(h["created"], "1970-01-01T00:00:00Z") << h.dump();
  for (size_t i = 1; i < a.manifest["layers"].size(); ++i) {
    EXPECT_EQ(MaxMtime(a.layout + "/blobs/sha256/" + a.manifest["layers"][i]["digest"].get<std::string>().substr(7)), 0)
        << "layer " << i;
  }

  // Without --reproducible two builds differ (the config's created time, the files' mtimes).
  auto r3 = env_->Build(ctx, "--destination " + env_->Ref("out/repro:3"));
  ASSERT_EQ(r3.rc, 0) << r3.err;
  auto c = env_->Read("out/repro:3", false);
  EXPECT_NE(c.digest, a.digest);
  EXPECT_NE(c.config["created"], "1970-01-01T00:00:00Z");
}

TEST_F(BuildOutputsTest, SourceDateEpochFixesTimestamps) {
  std::string ctx = Context();
  auto r1 = env_->Build(ctx, "--destination " + env_->Ref("out/epoch:1"), "SOURCE_DATE_EPOCH=1700000000");
  ASSERT_EQ(r1.rc, 0) << r1.err;
  ::sleep(1);
  auto r2 = env_->Build(ctx, "--destination " + env_->Ref("out/epoch:2") + " --build-arg SOURCE_DATE_EPOCH=1700000000");
  ASSERT_EQ(r2.rc, 0) << r2.err;
  EXPECT_NE(r2.err.find("\nvisible-output\n"), std::string::npos) << r2.err;
  // Each step ends with its duration.
  EXPECT_TRUE(std::regex_search(r2.err, std::regex("\\[stage 1/1\\] STEP 3/4: done in [0-9.]+(ms|s)\\b"))) << r2.err;
  auto a = env_->Read("out/epoch:1", false);
  auto b = env_->Read("out/epoch:2", false);
  EXPECT_EQ(a.config["created"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(a.config["history"].back()["created"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(a.digest, b.digest);
  for (size_t i = 1; i < a.manifest["layers"].size(); ++i) {
    EXPECT_LE(MaxMtime(a.layout + "/blobs/sha256/" + a.manifest["layers"][i]["digest"].get<std::string>().substr(7)),
              1700000000L)
        << "layer " << i;
  }
}

TEST_F(BuildOutputsTest, ExecutorNameTakesKanikosCommandLineAndLogsJson) {
  std::string bin = env_->NewDir("bin");
  ASSERT_EQ(::symlink(KILN_BINARY, (bin + "/executor").c_str()), 0);
  std::string ctx = Context();
  auto r = testing::RunKiln(bin + "/executor", "--context=dir://" + ctx + " --dockerfile=Dockerfile --destination=" +
                                                   env_->Ref("out/executor:1") + " --insecure --insecure-pull " +
                                                   "--kaniko-dir=" + env_->state_dir() + " --log-format=json " +
                                                   "--verbosity=info --cleanup");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(env_->TagExists("out/executor:1"));
  std::istringstream lines(r.err);
  int n = 0;
  bool saw_step = false, saw_output = false;
  for (std::string line; std::getline(lines, line);) {
    ++n;
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_TRUE(j.contains("level")) << line;
    EXPECT_TRUE(j.contains("time")) << line;
    EXPECT_TRUE(j.contains("msg") || j.contains("output")) << line;
    saw_step |= j.value("msg", "") == "[stage 1/1] STEP 3/4: RUN echo visible-output && echo ran > /srv/ran && mkdir -p "
                                      "/srv/dir && touch /srv/dir/f";
    // The step's output: a record of its own, tagged with the step it came from.
    saw_output |= j.value("output", "") == "visible-output" && j.value("step", 0) == 3 && j.value("stage", 0) == 1;
  }
  EXPECT_GT(n, 5);
  EXPECT_TRUE(saw_step) << r.err;
  EXPECT_TRUE(saw_output) << r.err;

  // `kiln executor` is the same command.
  auto r2 = testing::RunKiln(KILN_BINARY, "executor --context " + ctx + " --destination " +
                                              env_->Ref("out/executor:2") + " --insecure --insecure-pull --state-dir " +
                                              env_->state_dir());
  ASSERT_EQ(r2.rc, 0) << r2.err;
  EXPECT_NE(r2.err.find("\nvisible-output\n"), std::string::npos) << r2.err;
  // Each step ends with its duration.
  EXPECT_TRUE(std::regex_search(r2.err, std::regex("\\[stage 1/1\\] STEP 3/4: done in [0-9.]+(ms|s)\\b"))) << r2.err;
  EXPECT_NE(r2.err.find("[stage 1/1] STEP 3/4: RUN echo visible-output"), std::string::npos) << r2.err;
  EXPECT_TRUE(env_->TagExists("out/executor:2"));
}

}  // namespace
}  // namespace kiln
