// PushReferrer over a scripted transport: what is sent to a registry with the referrers API (no
// fallback tag) and to one without (the sha256-<hex> index read, extended and written back).
#include "registry/referrers.h"

#include <gtest/gtest.h>

#include <map>

#include "core/media_types.h"
#include "registry/fake_transport.h"

namespace kiln::registry {
namespace {

class ReferrersTest : public ::testing::Test {
 protected:
  Descriptor Subject() {
    Descriptor s;
    s.media_type = std::string(media_type::kOciManifest);
    s.digest = Sha256Of("image manifest");
    s.size = 14;
    return s;
  }
  std::unique_ptr<Repository> Open(FakeTransport::Handler handler) {
    auto t = std::make_unique<FakeTransport>(std::move(handler));
    transport_ = t.get();
    return std::make_unique<Repository>(Endpoint{"reg.test", "http://reg.test", ""}, "team/app", std::move(t), &options_);
  }

  ClientOptions options_;
  FakeTransport* transport_ = nullptr;
};

FakeResponse Respond(int status, std::string body = "", std::string content_type = "") {
  FakeResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers.Set("Content-Length", std::to_string(r.body.size()));
  if (!content_type.empty()) r.headers.Set("Content-Type", content_type);
  return r;
}

TEST_F(ReferrersTest, ArtifactManifestHasTheEmptyConfigTheDocumentAndTheSubject) {
  Artifact a{"application/spdx+json", "{\"spdxVersion\":\"SPDX-2.3\"}", {{"org.opencontainers.image.created", "x"}}};
  auto m = ParseManifest(ArtifactManifest(a, Subject()));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->artifact_type, "application/spdx+json");
  EXPECT_EQ(m->config.media_type, "application/vnd.oci.empty.v1+json");
  EXPECT_EQ(m->config.digest, Sha256Of("{}"));
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].digest, Sha256Of(a.content));
  EXPECT_EQ(m->layers[0].media_type, "application/spdx+json");
  ASSERT_TRUE(m->subject.has_value());
  EXPECT_EQ(m->subject->digest, Subject().digest);
  EXPECT_EQ(ReferrersTag(Subject().digest), "sha256-" + Subject().digest.hex());
}

TEST_F(ReferrersTest, RegistryWithTheReferrersApiGetsNoFallbackTag) {
  auto repo = Open([](const RecordedRequest& r) {
    if (r.method == "HEAD" && r.url.find("/blobs/") != std::string::npos) return Respond(200, "", "");
    if (r.method == "PUT" && r.url.find("/manifests/sha256:") != std::string::npos) return Respond(201);
    if (r.method == "GET" && r.url.find("/referrers/") != std::string::npos) {
      return Respond(200, R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})",
                     "application/vnd.oci.image.index.v1+json");
    }
    return Respond(500);
  });
  auto d = PushReferrer(*repo, Subject(), Artifact{"application/vnd.in-toto+json", "{}", {}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  std::vector<std::string> log = transport_->Log();
  ASSERT_EQ(log.size(), 4u) << ::testing::PrintToString(log);
  EXPECT_EQ(log[2], "PUT http://reg.test/v2/team/app/manifests/" + d->digest.ToString());
  EXPECT_EQ(log[3], "GET http://reg.test/v2/team/app/referrers/" + Subject().digest.ToString());
}

TEST_F(ReferrersTest, WithoutTheApiTheFallbackIndexIsExtended) {
  std::string tag = "sha256-" + Subject().digest.hex();
  Descriptor other;
  other.media_type = std::string(media_type::kOciManifest);
  other.digest = Sha256Of("a signature");
  other.size = 11;
  other.artifact_type = "application/vnd.dev.cosign.artifact.sig.v1+json";
  Index existing;
  existing.media_type = std::string(media_type::kOciIndex);
  existing.manifests.push_back(other);
  std::string existing_bytes = SerializeIndex(existing);
  std::string put_index;
  std::map<std::string, size_t> stored;  // blob digest -> size, as a registry keeps what it accepted
  auto repo = Open([&](const RecordedRequest& r) {
    if (r.method == "HEAD" && r.url.find("/blobs/") != std::string::npos) {
      auto it = stored.find(r.url.substr(r.url.rfind('/') + 1));
      if (it == stored.end()) return Respond(404);
      FakeResponse f = Respond(200);
      f.headers.Set("Content-Length", std::to_string(it->second));
      return f;
    }
    if (r.method == "POST") {
      FakeResponse f = Respond(202);
      f.headers.Set("Location", "http://reg.test/v2/team/app/blobs/uploads/u1");
      return f;
    }
    if (r.method == "PUT" && r.url.find("/blobs/uploads/") != std::string::npos) {
      std::string digest = r.url.substr(r.url.find("digest=") + 7);
      if (size_t colon = digest.find("%3A"); colon != std::string::npos) digest.replace(colon, 3, ":");
      stored[digest] = r.body.size();
      return Respond(201);
    }
    if (r.method == "PUT" && r.url.find("/manifests/sha256:") != std::string::npos) return Respond(201);
    if (r.url.find("/referrers/") != std::string::npos) return Respond(404, "404 page not found\n");
    if (r.url.find("/manifests/" + tag) != std::string::npos) {
      if (r.method == "PUT") {
        put_index = r.body;
        return Respond(201);
      }
      FakeResponse f = Respond(200, r.method == "GET" ? existing_bytes : "", std::string(media_type::kOciIndex));
      f.headers.Set("Docker-Content-Digest", Sha256Of(existing_bytes).ToString());
      return f;
    }
    return Respond(500);
  });
  auto d = PushReferrer(*repo, Subject(), Artifact{"application/spdx+json", "{\"a\":1}", {{"k", "v"}}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  auto index = ParseIndex(put_index);
  ASSERT_TRUE(index.ok()) << put_index;
  ASSERT_EQ(index->manifests.size(), 2u);
  EXPECT_EQ(index->manifests[0], other);
  EXPECT_EQ(index->manifests[1].digest, d->digest);
  EXPECT_EQ(index->manifests[1].artifact_type, "application/spdx+json");
  EXPECT_EQ(index->manifests[1].annotations.at("k"), "v");
}

}  // namespace
}  // namespace kiln::registry
