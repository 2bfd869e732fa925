#include "core/image_model.h"

#include <gtest/gtest.h>

#include "core/media_types.h"

namespace kiln {
namespace {

const std::string kD1 = "sha256:" + std::string(64, 'a');
const std::string kD2 = "sha256:" + std::string(64, 'b');
const std::string kD3 = "sha256:" + std::string(64, 'c');

std::string DockerManifestJson() {
  return R"({
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469, "digest": ")" + kD1 + R"("},
   "layers": [
      {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2215993, "digest": ")" + kD2 + R"("}
   ]
})";
}

TEST(ImageModelTest, ParsesDockerManifest) {
  auto m = ParseManifest(DockerManifestJson());
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(m->is_docker());
  EXPECT_EQ(m->config.size, 1469);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].digest.ToString(), kD2);
  EXPECT_EQ(media_type::LayerCompression(m->layers[0].media_type), media_type::Compression::kGzip);
}

TEST(ImageModelTest, ManifestSerialisationIsCanonicalAndStable) {
  auto m = ParseManifest(DockerManifestJson());
  ASSERT_TRUE(m.ok());
  std::string a = SerializeManifest(*m);
  EXPECT_EQ(a,
            R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
            R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" + kD1 +
                R"(","size":1469},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip",)"
                R"("digest":")" + kD2 + R"(","size":2215993}]})");
  auto again = ParseManifest(a);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(SerializeManifest(*again), a);
  EXPECT_EQ(Sha256Of(SerializeManifest(*again)), Sha256Of(a));
}

TEST(ImageModelTest, ParsesOciIndexWithPlatforms) {
  std::string text = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + kD1 + R"(","size":10,
     "platform":{"architecture":"amd64","os":"linux"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + kD2 + R"(","size":11,
     "platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + kD3 + R"(","size":12,
     "platform":{"architecture":"unknown","os":"unknown"},
     "annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]})";
  auto kind = DetectManifestKind(text, "");
  ASSERT_TRUE(kind.ok());
  EXPECT_EQ(*kind, ManifestKind::kIndex);
  auto idx = ParseIndex(text);
  ASSERT_TRUE(idx.ok()) << idx.status().message();
  ASSERT_EQ(idx->manifests.size(), 3u);
  EXPECT_EQ(idx->manifests[1].platform->ToString(), "linux/arm64/v8");
  EXPECT_EQ(idx->manifests[2].annotations.at("vnd.docker.reference.type"), "attestation-manifest");
  auto round = ParseIndex(SerializeIndex(*idx));
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->manifests, idx->manifests);
}

TEST(ImageModelTest, DetectsKindFromShapeWhenMediaTypeMissing) {
  std::string manifest = R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                         kD1 + R"(","size":2},"layers":[]})";
  EXPECT_EQ(*DetectManifestKind(manifest, ""), ManifestKind::kImageManifest);
  EXPECT_EQ(*DetectManifestKind(R"({"schemaVersion":2,"manifests":[]})", ""), ManifestKind::kIndex);
  EXPECT_EQ(*DetectManifestKind(manifest, "application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            ManifestKind::kImageManifest);
}

TEST(ImageModelTest, RefusesSchema1WithAdvice) {
  auto k = DetectManifestKind(R"({"schemaVersion":1,"name":"x"})", "application/vnd.docker.distribution.manifest.v1+prettyjws");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(k.status().message().find("schema 1"), std::string::npos);
  auto m = ParseManifest(R"({"schemaVersion":1})");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), ErrorCode::kUnsupported);
}

struct BadDoc {
  const char* name;
  std::string json;
  std::string error;
};

class ManifestErrorTest : public ::testing::TestWithParam<BadDoc> {};

TEST_P(ManifestErrorTest, ClearError) {
  auto m = ParseManifest(GetParam().json);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), GetParam().error);
}

const std::string kCfg = R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + kD1 + R"(","size":2})";

INSTANTIATE_TEST_SUITE_P(
    All, ManifestErrorTest,
    ::testing::Values(
        BadDoc{"NotJson", "{", "invalid image manifest: not valid JSON"},
        BadDoc{"NotObject", "[]", "invalid image manifest: expected a JSON object"},
        BadDoc{"NoSchema", "{}", "invalid image manifest: schemaVersion: missing"},
        BadDoc{"Schema3", R"({"schemaVersion":3})", "invalid image manifest: schemaVersion: must be 2, got 3"},
        BadDoc{"NoConfig", R"({"schemaVersion":2,"layers":[]})", "invalid image manifest: config: missing"},
        BadDoc{"NoLayers", R"({"schemaVersion":2,)" + kCfg + "}", "invalid image manifest: layers: missing"},
        BadDoc{"BadDigest",
               R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:abc","size":2},"layers":[]})",
               "invalid image manifest: config.digest: invalid digest \"sha256:abc\": sha256 needs 64 hex characters, got 3"},
        BadDoc{"UnknownLayerType",
               R"({"schemaVersion":2,)" + kCfg + R"(,"layers":[{"mediaType":"application/x-tar","digest":")" + kD2 + R"(","size":1}]})",
               "invalid image manifest: layers[0].mediaType: unknown layer media type \"application/x-tar\""},
        BadDoc{"NegativeSize",
               R"({"schemaVersion":2,)" + kCfg + R"(,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" + kD2 + R"(","size":-1}]})",
               "invalid image manifest: layers[0].size: must not be negative"},
        BadDoc{"SizeString",
               R"({"schemaVersion":2,)" + kCfg + R"(,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" + kD2 + R"(","size":"1"}]})",
               "invalid image manifest: layers[0].size: must be an integer"},
        BadDoc{"WrongMediaType", R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)" + kCfg + R"(,"layers":[]})",
               "invalid image manifest: mediaType: \"application/vnd.oci.image.index.v1+json\" is not an image manifest media type"}),
    [](const auto& info) { return std::string(info.param.name); });

std::string BusyboxConfig() {
  return R"({"architecture":"amd64","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
  "Cmd":["sh"],"WorkingDir":"/app","User":"1000:1000","ExposedPorts":{"8080/tcp":{}},"Volumes":{"/data":{}},
  "Labels":{"org.opencontainers.image.source":"x"},"StopSignal":"SIGTERM",
  "Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":30000000000,"Retries":3},"OnBuild":["RUN echo hi"]},
  "created":"2023-05-18T22:34:17.230954553Z","history":[{"created":"2023-05-18T22:34:17.101214624Z",
  "created_by":"/bin/sh -c #(nop) ADD file:abc in / "},{"created":"2023-05-18T22:34:17.230954553Z",
  "created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],"os":"linux",
  "rootfs":{"type":"layers","diff_ids":[")" + kD3 + R"("]},"unknown_field":1})";
}

TEST(ImageModelTest, ParsesConfigWithEveryField) {
  auto c = ParseImageConfig(BusyboxConfig());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->platform().ToString(), "linux/amd64");
  EXPECT_EQ(c->config.cmd, std::vector<std::string>{"sh"});
  EXPECT_FALSE(c->config.entrypoint.has_value());
  EXPECT_EQ(c->config.user, "1000:1000");
  EXPECT_EQ(c->config.exposed_ports, std::set<std::string>{"8080/tcp"});
  EXPECT_EQ(c->config.volumes, std::set<std::string>{"/data"});
  EXPECT_EQ(c->config.healthcheck->interval, 30000000000);
  EXPECT_EQ(c->config.healthcheck->retries, 3);
  EXPECT_EQ(c->config.on_build, std::vector<std::string>{"RUN echo hi"});
  ASSERT_EQ(c->history.size(), 2u);
  EXPECT_TRUE(c->history[1].empty_layer);
  ASSERT_EQ(c->diff_ids.size(), 1u);

  std::string out = SerializeImageConfig(*c);
  auto again = ParseImageConfig(out);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->config, c->config);
  EXPECT_EQ(again->history, c->history);
  EXPECT_EQ(SerializeImageConfig(*again), out);
  EXPECT_EQ(out.find("unknown_field"), std::string::npos);
  EXPECT_EQ(out.find('\n'), std::string::npos);
}

TEST(ImageModelTest, EmptyEntrypointIsKeptDistinctFromUnset) {
  ImageConfig c;
  c.architecture = "amd64";
  c.os = "linux";
  c.config.entrypoint = std::vector<std::string>{};
  std::string out = SerializeImageConfig(c);
  EXPECT_NE(out.find(R"("Entrypoint":[])"), std::string::npos) << out;
  auto back = ParseImageConfig(out);
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(back->config.entrypoint.has_value());
  EXPECT_TRUE(back->config.entrypoint->empty());
  EXPECT_FALSE(back->config.cmd.has_value());
}

TEST(ImageModelTest, ConfigHistoryMustAgreeWithDiffIds) {
  std::string text = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
    "history":[{"created_by":"RUN x"}]})";
  auto c = ParseImageConfig(text);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "invalid image config: history: 1 non-empty entries but rootfs has 0 diff_ids");
}

// Found by fuzz/image_model_fuzz: a history entry with every field empty (a base image's `{}`, or one
// with only keys kiln does not know) was written back as `null`, which kiln itself and other tools
// then refuse ("history[1]: must be an object").
TEST(ImageModelTest, EmptyHistoryEntryRoundTripsAsAnObject) {
  std::string text = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[")" + kD1 + R"(",")" +
                     kD2 + R"("]},"history":[{"created_by":"RUN x"},{"future_field":1,"empty_layer":false}]})";
  auto c = ParseImageConfig(text);
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->history.size(), 2u);
  std::string out = SerializeImageConfig(*c);
  EXPECT_NE(out.find(R"("history":[{"created_by":"RUN x"},{}])"), std::string::npos) << out;
  auto again = ParseImageConfig(out);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->history, c->history);
}

TEST(ImageModelTest, ConfigErrors) {
  EXPECT_EQ(ParseImageConfig(R"({"os":"linux","rootfs":{"type":"layers","diff_ids":[]}})").status().message(),
            "invalid image config: architecture: missing");
  EXPECT_EQ(ParseImageConfig(R"({"os":"linux","architecture":"amd64"})").status().message(),
            "invalid image config: rootfs: missing");
  EXPECT_EQ(ParseImageConfig(R"({"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["x"]}})")
                .status().message(),
            "invalid image config: rootfs.diff_ids[0]: invalid digest \"x\": expected ALGORITHM:HEX");
  EXPECT_EQ(ParseImageConfig(R"({"os":"linux","architecture":"amd64","config":{"Env":"A=1"},"rootfs":{"type":"layers","diff_ids":[]}})")
                .status().message(),
            "invalid image config: config.Env: must be an array of strings");
}

TEST(PlatformTest, ParseAndNormalise) {
  EXPECT_EQ(Platform::Parse("linux/amd64")->ToString(), "linux/amd64");
  EXPECT_EQ(Platform::Parse("linux/x86_64")->ToString(), "linux/amd64");
  EXPECT_EQ(Platform::Parse("linux/aarch64")->ToString(), "linux/arm64");
  EXPECT_EQ(Platform::Parse("Linux/ARM64/8")->ToString(), "linux/arm64/v8");
  EXPECT_EQ(Platform::Parse("linux/armhf")->ToString(), "linux/arm/v7");
  EXPECT_EQ(Platform::Parse("linux/arm/7")->ToString(), "linux/arm/v7");
  EXPECT_FALSE(Platform::Parse("amd64").ok());
  EXPECT_FALSE(Platform::Parse("linux//v7").ok());
  EXPECT_FALSE(Platform::Parse("linux/arm/v7/x").ok());
  EXPECT_EQ(Platform::Host().os, "linux");
}

TEST(PlatformTest, Satisfies) {
  Platform arm64{"linux", "arm64", "", "", {}};
  Platform want_v8{"linux", "arm64", "v8", "", {}};
  Platform armv7{"linux", "arm", "v7", "", {}};
  Platform want_v6{"linux", "arm", "v6", "", {}};
  EXPECT_TRUE(arm64.Satisfies(want_v8));
  EXPECT_TRUE(arm64.Satisfies(arm64));
  EXPECT_FALSE(armv7.Satisfies(want_v6));
  EXPECT_TRUE(armv7.Satisfies(Platform{"linux", "arm", "", "", {}}));
  EXPECT_FALSE(arm64.Satisfies(Platform{"windows", "arm64", "", "", {}}));
}

TEST(ImageModelTest, Rfc3339) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(1700000000), "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace kiln
