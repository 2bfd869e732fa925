// Pull and push against a real docker-registry on 127.0.0.1 over plain HTTP, through CurlTransport.
#include <gtest/gtest.h>

#include "registry/client.h"
#include "core/image_copy.h"
#include "registry/curl_transport.h"
#include "core/reference.h"
#include "registry/registry_image.h"
#include "tests/registry/test_images.h"
#include "tests/testing/registry_server.h"

namespace kiln::registry {
namespace {

using testing::MakeImage;
using testing::MakeIndex;
using testing::MemorySink;
using testing::MemorySource;
using testing::TestImage;

class RegistryHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = kiln::testing::RegistryServer::Start().release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  ClientOptions Options() {
    ClientOptions o;
    o.insecure_registries.insert(server_->host());
    return o;
  }
  Reference Ref(const std::string& repo_tag) { return Reference::Parse(server_->host() + "/" + repo_tag).value(); }

  Result<CopyResult> Push(Client& client, ImageSource& src, const std::string& repo_tag) {
    KILN_ASSIGN_OR_RETURN(auto sink, OpenRegistrySink(client, Ref(repo_tag)));
    return CopyImage(src, *sink);
  }

  static kiln::testing::RegistryServer* server_;
  CurlTransport wire_;
  AnonymousKeychain keychain_;
};
kiln::testing::RegistryServer* RegistryHttpTest::server_ = nullptr;

TEST_F(RegistryHttpTest, PushThenPullKeepsBytesAndDigests) {
  Client client(&wire_, &keychain_, Options());
  TestImage img = MakeImage(3, 100'000, 1);
  MemorySource src;
  src.SetRoot(img);
  auto pushed = Push(client, src, "app/one:v1");
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  EXPECT_EQ(pushed->blobs_copied, 4);
  EXPECT_EQ(pushed->root.digest, img.digest);

  auto source = OpenRegistrySource(client, Ref("app/one:v1"));
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  MemorySink sink;
  auto pulled = CopyImage(**source, sink);
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  EXPECT_EQ(sink.root.bytes, img.manifest);
  EXPECT_EQ(sink.root.digest, img.digest);
  EXPECT_EQ(sink.root.media_type, img.media_type);
  EXPECT_EQ(sink.blobs.size(), 4u);
  for (const auto& l : img.layers) EXPECT_EQ(sink.blobs[Sha256Of(l)], l);

  // Pushing again transfers nothing: every blob is HEADed and found.
  auto again = Push(client, src, "app/one:v2");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->blobs_copied, 0);
  EXPECT_EQ(again->blobs_skipped, 4);
}

TEST_F(RegistryHttpTest, PullByDigestAndDockerMediaTypes) {
  Client client(&wire_, &keychain_, Options());
  TestImage img = MakeImage(1, 5000, 2, /*docker=*/true);
  MemorySource src;
  src.SetRoot(img);
  ASSERT_TRUE(Push(client, src, "app/docker:latest").ok());
  auto repo = client.Open(client.PushEndpoint(server_->host()), "app/docker", false).value();
  auto m = repo->GetManifest(img.digest.ToString());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->media_type, img.media_type);
  EXPECT_EQ(m->bytes, img.manifest);
  auto head = repo->HeadManifest("latest");
  ASSERT_TRUE(head.ok() && head->has_value());
  EXPECT_EQ((*head)->digest, img.digest);
}

TEST_F(RegistryHttpTest, ChunkedAndStreamedUploads) {
  ClientOptions o = Options();
  o.chunk_size = 64 * 1024;
  Client chunked(&wire_, &keychain_, o);
  auto repo = chunked.Open(chunked.PushEndpoint(server_->host()), "app/chunks", true).value();
  std::string blob = testing::RandomBytes(300'000, 7);  // 5 chunks, the last one short
  StringReader r1(blob);
  auto d = repo->UploadBlob(r1, Sha256Of(blob), blob.size());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->digest, Sha256Of(blob));
  auto size = repo->HeadBlob(Sha256Of(blob));
  ASSERT_TRUE(size.ok() && size->has_value());
  EXPECT_EQ(**size, 300'000);

  // A stream whose digest is not known up front (a layer being compressed): one PATCH, digest last.
  Client mono(&wire_, &keychain_, Options());
  auto repo2 = mono.Open(mono.PushEndpoint(server_->host()), "app/stream", true).value();
  std::string blob2 = testing::RandomBytes(200'000, 8);
  StringReader r2(blob2);
  auto d2 = repo2->UploadBlob(r2);
  ASSERT_TRUE(d2.ok()) << d2.status().ToString();
  EXPECT_EQ(d2->digest, Sha256Of(blob2));
  EXPECT_EQ(d2->size, 200'000);
  auto got = repo2->GetBlob(d2->digest, d2->size);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(ReadAll(**got, 1 << 20).value(), blob2);
}

TEST_F(RegistryHttpTest, UploadWithWrongExpectedDigestFailsAndStoresNothing) {
  Client client(&wire_, &keychain_, Options());
  auto repo = client.Open(client.PushEndpoint(server_->host()), "app/wrong", true).value();
  std::string blob = testing::RandomBytes(10'000, 9);
  Digest claimed = Sha256Of("something else");
  StringReader r(blob);
  auto d = repo->UploadBlob(r, claimed, blob.size());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), ErrorCode::kDigestMismatch) << d.status().ToString();
  EXPECT_FALSE(repo->HeadBlob(claimed).value().has_value());
}

TEST_F(RegistryHttpTest, CrossRepositoryMount) {
  Client client(&wire_, &keychain_, Options());
  TestImage img = MakeImage(2, 20'000, 3);
  MemorySource src;
  src.SetRoot(img);
  ASSERT_TRUE(Push(client, src, "mount/from:1").ok());
  auto from = OpenRegistrySource(client, Ref("mount/from:1")).value();
  auto to = OpenRegistrySink(client, Ref("mount/to:1")).value();
  auto r = CopyImage(*from, *to);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->blobs_copied, 0);
  EXPECT_EQ(r->blobs_mounted, 3);  // mounted, not transferred
  EXPECT_EQ(r->blobs_skipped, 0);
  auto repo = client.Open(client.PushEndpoint(server_->host()), "mount/to", false).value();
  EXPECT_TRUE(repo->HeadBlob(Sha256Of(img.layers[0])).value().has_value());
}

TEST_F(RegistryHttpTest, IndexCopiedWholeOrOnePlatform) {
  Client client(&wire_, &keychain_, Options());
  TestImage amd = MakeImage(1, 3000, 10, false, "amd64");
  TestImage arm = MakeImage(1, 3000, 11, false, "arm64");
  std::string index = MakeIndex({{amd, "amd64"}, {arm, "arm64"}});
  MemorySource src;
  src.AddImage(amd);
  src.AddImage(arm);
  src.SetRoot(RawManifest{index, std::string(media_type::kOciIndex), Sha256Of(index)});
  auto pushed = Push(client, src, "multi/app:1");
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  EXPECT_EQ(pushed->root.digest, Sha256Of(index));

  auto source = OpenRegistrySource(client, Ref("multi/app:1")).value();
  MemorySink all;
  ASSERT_TRUE(CopyImage(*source, all).ok());
  EXPECT_EQ(all.root.bytes, index);
  EXPECT_EQ(all.manifests.size(), 2u);
  // Children before the root.
  EXPECT_EQ(all.log.back(), "root " + Sha256Of(index).ToString());

  CopyOptions one;
  one.platform = Platform::Parse("linux/arm64").value();
  MemorySink arm_only;
  auto r = CopyImage(*source, arm_only, one);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(arm_only.root.digest, arm.digest);
  EXPECT_EQ(arm_only.blobs.size(), 2u);

  one.platform = Platform::Parse("linux/s390x").value();
  MemorySink none;
  auto missing = CopyImage(*source, none, one);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("linux/amd64, linux/arm64"), std::string::npos)
      << missing.status().ToString();
}

TEST_F(RegistryHttpTest, MissingManifestAndBlobErrorsNameRegistryAndRepository) {
  Client client(&wire_, &keychain_, Options());
  auto src = OpenRegistrySource(client, Ref("nothing/here:1"));
  ASSERT_FALSE(src.ok());
  EXPECT_EQ(src.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(src.status().message().find(server_->host() + "/nothing/here"), std::string::npos)
      << src.status().ToString();
  EXPECT_NE(src.status().message().find("404"), std::string::npos);
  EXPECT_NE(src.status().message().find("MANIFEST_UNKNOWN"), std::string::npos);

  auto repo = client.Open(client.PushEndpoint(server_->host()), "nothing/here", false).value();
  auto blob = repo->GetBlob(Sha256Of("nope"));
  ASSERT_FALSE(blob.ok());
  EXPECT_EQ(blob.status().code(), ErrorCode::kNotFound) << blob.status().ToString();
}

TEST_F(RegistryHttpTest, HttpsIsTheDefault) {
  // Not named as insecure: kiln speaks TLS to a plain-HTTP registry and fails rather than downgrade.
  ClientOptions o;
  o.retry.max_attempts = 1;
  Client client(&wire_, &keychain_, o);
  auto src = OpenRegistrySource(client, Ref("app/one:v1"));
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.status().message().find("https://" + server_->host()), std::string::npos)
      << src.status().ToString();
}

}  // namespace
}  // namespace kiln::registry
