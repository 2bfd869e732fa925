// `kiln index create` end to end: per-platform images built by kiln (as separate CI jobs would) are
// merged into one index in a real registry and read back by skopeo, which must pick each platform's
// image from it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>
#include <string>

#include "core/image_model.h"
#include "executor/sandbox/foreign_exec.h"
#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::RunKiln;
using testing::RunShell;

class IndexCreateTest : public testing::BuildEnvSuite {
 protected:
  // Builds a scratch image holding /platform.txt for `platform` and pushes it as `repo_tag`.
  static void BuildFor(const std::string& platform, const std::string& repo_tag, const std::string& extra = "") {
    std::string ctx = env_->Context({{"Dockerfile", "FROM scratch\nCOPY platform.txt /platform.txt\n"},
                                     {"platform.txt", platform + extra + "\n"}});
    auto r = env_->Build(ctx, "--destination " + env_->Ref(repo_tag) + " --custom-platform " + platform);
    ASSERT_EQ(r.rc, 0) << r.err;
  }

  static testing::KilnRun Index(const std::string& args) {
    return RunKiln(env_->kiln(), "index create --insecure " + args);
  }

  static json Raw(const std::string& repo_tag, const std::string& flags = "") {
    std::string out;
    int rc = RunShell("skopeo inspect --raw " + testing::SkopeoSourceFlags(env_->reg()) + " " + flags + " docker://" +
                          env_->Ref(repo_tag),
                      &out);
    EXPECT_EQ(rc, 0) << out;
    return rc == 0 ? json::parse(out) : json();
  }

  // "sha256:..." of the manifest `repo_tag` names, as the registry stores it.
  static std::string ManifestDigest(const std::string& repo_tag) {
    std::string out;
    int rc = RunShell("skopeo inspect --raw " + testing::SkopeoSourceFlags(env_->reg()) + " docker://" +
                          env_->Ref(repo_tag) + " | sha256sum | cut -d' ' -f1",
                      &out);
    EXPECT_EQ(rc, 0) << out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return "sha256:" + out;
  }

  static std::string ArchitectureFor(const std::string& repo_tag, const std::string& arch) {
    std::string out;
    int rc = RunShell("skopeo inspect --override-os linux --override-arch " + arch + " " +
                          testing::SkopeoSourceFlags(env_->reg()) + " --config docker://" + env_->Ref(repo_tag),
                      &out);
    EXPECT_EQ(rc, 0) << out;
    return rc == 0 ? json::parse(out).value("architecture", "") : "";
  }
};

TEST_F(IndexCreateTest, MergesPerPlatformImagesIntoOneIndex) {
  BuildFor("linux/amd64", "multi/app:1-amd64");
  BuildFor("linux/arm64", "multi/app:1-arm64");

  auto r = Index(env_->Ref("multi/app:1") + " " + env_->Ref("multi/app:1-amd64") + " " + env_->Ref("multi/app:1-arm64") +
                 " --annotation org.opencontainers.image.version=1.0");
  ASSERT_EQ(r.rc, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("linux/amd64"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("linux/arm64"), std::string::npos) << r.out;

  json idx = Raw("multi/app:1");
  EXPECT_EQ(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(idx["annotations"]["org.opencontainers.image.version"], "1.0");
  ASSERT_EQ(idx["manifests"].size(), 2u);
  std::set<std::string> archs;
  for (const json& m : idx["manifests"]) {
    EXPECT_EQ(m["platform"]["os"], "linux");
    archs.insert(m["platform"]["architecture"].get<std::string>());
  }
  EXPECT_EQ(archs, (std::set<std::string>{"amd64", "arm64"}));
  // Each platform's child is the image that was pushed for it, unchanged.
  for (const json& m : idx["manifests"]) {
    std::string tag = "multi/app:1-" + m["platform"]["architecture"].get<std::string>();
    EXPECT_EQ(m["digest"], ManifestDigest(tag)) << tag;
  }
  // A client asking for one platform gets that platform's image.
  EXPECT_EQ(ArchitectureFor("multi/app:1", "arm64"), "arm64");
  EXPECT_EQ(ArchitectureFor("multi/app:1", "amd64"), "amd64");
}

TEST_F(IndexCreateTest, IntoAnotherRepositoryCopiesEveryChildFirst) {
  BuildFor("linux/amd64", "jobs/amd64:7");
  BuildFor("linux/arm64", "jobs/arm64:7");
  auto r = Index(env_->Ref("release/app:7") + " " + env_->Ref("jobs/amd64:7") + " " + env_->Ref("jobs/arm64:7"));
  ASSERT_EQ(r.rc, 0) << r.err << r.out;
  json idx = Raw("release/app:7");
  ASSERT_EQ(idx["manifests"].size(), 2u);
  // The children and their blobs are in release/app itself: skopeo can copy the whole index out.
  std::string out;
  EXPECT_EQ(RunShell("skopeo copy --all " + testing::SkopeoSourceFlags(env_->reg()) + " docker://" +
                         env_->Ref("release/app:7") + " oci:" + env_->NewDir("copied") + ":x",
                     &out),
            0)
      << out;
}

TEST_F(IndexCreateTest, RefusesTwoImagesForOnePlatformBeforePushing) {
  BuildFor("linux/amd64", "dup/app:a");
  BuildFor("linux/amd64", "dup/app:b", " (another build)");
  auto r = Index(env_->Ref("dup/app:1") + " " + env_->Ref("dup/app:a") + " " + env_->Ref("dup/app:b"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("two images for linux/amd64"), std::string::npos) << r.err;
  EXPECT_FALSE(env_->TagExists("dup/app:1"));

  r = Index(env_->Ref("dup/app:1") + " " + env_->Ref("dup/app:a") + " --annotation novalue");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--annotation must be KEY=VALUE"), std::string::npos) << r.err;
  r = Index("docker-archive:/tmp/x.tar " + env_->Ref("dup/app:a"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("a docker-archive holds single images"), std::string::npos) << r.err;
}

// `kiln build --custom-platform linux/amd64,linux/arm64`: one image per platform (TARGETARCH set
// for each), pushed under one index; a client asking for either platform gets that one's files.
TEST_F(IndexCreateTest, MultiPlatformBuildPushesAnIndexOfItsImages) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch.txt\n"},
                                   {"amd64.txt", "built for amd64\n"},
                                   {"arm64.txt", "built for arm64\n"}});
  std::string digest_dir = env_->NewDir("mp-digest");
  auto r = env_->Build(ctx, "--destination " + env_->Ref("mp/app:1") + " --custom-platform linux/amd64,linux/arm64" +
                                " --digest-file " + digest_dir + "/d");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("built index sha256:"), std::string::npos) << r.err;
  json idx = Raw("mp/app:1");
  EXPECT_EQ(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
  ASSERT_EQ(idx["manifests"].size(), 2u);
  EXPECT_EQ(idx["manifests"][0]["platform"]["architecture"], "amd64");
  EXPECT_EQ(idx["manifests"][1]["platform"]["architecture"], "arm64");
  EXPECT_EQ(testing::ReadFile(digest_dir + "/d"), ManifestDigest("mp/app:1"));  // the index's digest
  for (std::string arch : {"amd64", "arm64"}) {
    EXPECT_EQ(ArchitectureFor("mp/app:1", arch), arch);
    // The files of the image a client of that platform pulls.
    std::string dir = env_->NewDir("read-" + arch), out;
    ASSERT_EQ(RunShell("skopeo --override-os linux --override-arch " + arch + " copy " +
                           testing::SkopeoSourceFlags(env_->reg()) + " docker://" + env_->Ref("mp/app:1") + " oci:" +
                           dir + "/layout:img && umoci raw unpack --image " + dir + "/layout:img " + dir + "/rootfs",
                       &out),
              0)
        << out;
    EXPECT_EQ(testing::ReadFile(dir + "/rootfs/arch.txt"), "built for " + arch + "\n");
  }

  // A docker-archive holds one image: refused before anything is built.
  r = env_->Build(ctx, "--no-push --tar-path " + env_->NewDir("tar") + "/x.tar --custom-platform linux/amd64,linux/arm64");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("makes an index"), std::string::npos) << r.err;
  r = env_->Build(ctx, "--no-push --custom-platform linux/amd64,linux/amd64");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("named twice"), std::string::npos) << r.err;
}

// Into an OCI layout, with the layer cache: each platform keeps its own cache history, so a rebuild
// hits for the platform whose files did not change and names the cause for the one whose did.
TEST_F(IndexCreateTest, MultiPlatformIntoALayoutWithTheLayerCache) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch.txt\n"},
                                   {"amd64.txt", "amd64\n"},
                                   {"arm64.txt", "arm64\n"}});
  std::string cache = env_->NewDir("mp-cache"), out = env_->NewDir("mp-layout");
  std::string args = "--no-push --cache --cache-dir " + cache + " --custom-platform linux/amd64,linux/arm64";
  auto first = env_->Build(ctx, args + " --oci-layout-path " + out + "/one:v1");
  ASSERT_EQ(first.rc, 0) << first.err;
  std::string raw;
  ASSERT_EQ(RunShell("skopeo inspect --raw oci:" + out + "/one:v1", &raw), 0) << raw;
  EXPECT_EQ(json::parse(raw)["manifests"].size(), 2u);

  testing::WriteFile(ctx + "/arm64.txt", "arm64, changed\n");
  auto second = env_->Build(ctx, args + " --oci-layout-path " + out + "/two:v1");
  ASSERT_EQ(second.rc, 0) << second.err;
  EXPECT_NE(second.err.find("cache hit"), std::string::npos) << second.err;  // amd64
  EXPECT_NE(second.err.find("cache miss: the files it copies changed"), std::string::npos) << second.err;  // arm64
  EXPECT_EQ(second.err.find("the platform changed"), std::string::npos) << second.err;
}

// RUN in a stage built for another architecture needs an emulator: without one registered the
// build fails at the RUN line saying what to do, instead of an "exec format error" from inside.
TEST_F(IndexCreateTest, RunForAnotherArchitectureNeedsAnEmulator) {
  Platform host = Platform::Host();
  std::string other = host.architecture == "arm64" ? "linux/amd64" : "linux/arm64";
  sandbox::ForeignExec exec = sandbox::ProbeForeignExec(*Platform::Parse(other), host);
  std::string ctx = env_->Context({{"Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\nRUN [\"/bin/true\"]\n"}, {"a.txt", "a"}});
  auto r = env_->Build(ctx, "--no-push --custom-platform " + other);
  if (exec.way != sandbox::ForeignExec::Way::kNone) {
    GTEST_SKIP() << exec.how << ": nothing to refuse (build_foreign_test runs RUN through qemu)";
  }
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("Dockerfile:3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("needs emulation"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kiln
