// `kiln copy` end to end: the kiln binary against real registries (plain HTTP behind the fault proxy,
// and HTTPS with a private CA and basic auth), with skopeo pushing the fixtures and skopeo / umoci
// reading back what kiln wrote.
#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "core/digest.h"
#include "core/image_model.h"
#include "core/media_types.h"
#include "layers/oci_layout.h"
#include "tests/testing/certs.h"
#include "tests/testing/image_fixture.h"
#include "tests/testing/registry_server.h"
#include "tests/testing/temp_dir.h"

namespace kiln {
namespace {

using testing::ReadFile;
using testing::RunShell;
using testing::ShellQuote;

struct RunResult {
  int rc;
  std::string out, err;
};

class CopyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = new testing::TempDir();
    testing::RegistryOptions plain;
    plain.fault_proxy = true;
    reg_ = testing::RegistryServer::Start(plain).release();
    testing::RegistryOptions secure;
    secure.tls = true;
    secure.user = "copier";
    secure.password = "Sup3r-Secret-77";
    tls_ = testing::RegistryServer::Start(secure).release();
    testing::WriteFile(work_->Sub("docker/config.json"), "{}");
    testing::WriteDockerConfig(work_->Sub("docker-good"), tls_->host(), "copier", "Sup3r-Secret-77");
    testing::WriteDockerConfig(work_->Sub("docker-bad"), tls_->host(), "copier", "Wrong-Pass-42");

    // Fixtures: one image, and an index of two, pushed by skopeo (not by kiln).
    auto layout = layers::OciLayout::OpenOrCreate(work_->Sub("fixture")).value();
    auto one = testing::MakeFixtureImage(layout, work_->path(), {{"etc/hello.txt", "hello from the fixture\n"}}, "v1");
    auto amd = testing::MakeFixtureImage(layout, work_->path(), {{"arch.txt", "amd64\n"}}, "amd");
    auto arm = testing::MakeFixtureImage(layout, work_->path(), {{"arch.txt", "arm64\n"}}, "arm");
    Index idx;
    idx.media_type = std::string(media_type::kOciIndex);
    Descriptor a = amd.manifest_desc, b = arm.manifest_desc;
    a.platform = Platform::Parse("linux/amd64").value();
    b.platform = Platform::Parse("linux/arm64").value();
    idx.manifests = {a, b};
    std::string index_bytes = SerializeIndex(idx);
    Digest index_digest = layout.PutBlob(index_bytes).value();
    ASSERT_TRUE(layout.AddToIndex(Descriptor{std::string(media_type::kOciIndex), index_digest,
                                             static_cast<int64_t>(index_bytes.size()), {}, {}, std::nullopt, ""},
                                  "multi")
                    .ok());
    image_digest_ = new std::string(one.manifest_desc.digest.ToString());
    index_digest_ = new std::string(index_digest.ToString());
    arm_digest_ = new std::string(arm.manifest_desc.digest.ToString());
    Skopeo("copy --dest-tls-verify=false oci:" + work_->Sub("fixture") + ":v1 docker://" + reg_->host() + "/src/app:v1");
    Skopeo("copy --all --dest-tls-verify=false oci:" + work_->Sub("fixture") + ":multi docker://" + reg_->host() +
           "/src/multi:1");
  }
  static void TearDownTestSuite() {
    delete reg_;
    delete tls_;
    delete work_;
    delete image_digest_;
    delete index_digest_;
    delete arm_digest_;
  }
  void SetUp() override {
    reg_->SetFaults("");
    reg_->ClearRequests();
  }

  static std::string Skopeo(const std::string& args) {
    std::string out;
    int rc = RunShell("skopeo --insecure-policy " + args + " 2>&1", &out);
    EXPECT_EQ(rc, 0) << "skopeo " << args << "\n" << out;
    return out;
  }
  // The digest of the manifest skopeo reads for `image` (any transport).
  static std::string RawDigest(const std::string& image, const std::string& flags = "") {
    std::string raw = Skopeo("inspect --raw " + flags + " " + image);
    return Sha256Of(raw).ToString();
  }

  // Runs kiln with a private DOCKER_CONFIG / HOME (so the machine's credentials never leak in).
  RunResult Kiln(const std::string& args, const std::string& docker_config = "") {
    std::string cfg = docker_config.empty() ? work_->Sub("docker") : docker_config;
    std::string err_file = work_->Sub("kiln.err");
    std::string out;
    int rc = RunShell("{ DOCKER_CONFIG=" + ShellQuote(cfg) + " HOME=" + ShellQuote(work_->path()) + " " KILN_BINARY
                      " copy " + args + " 2>" + ShellQuote(err_file) + "; }",
                      &out);
    return RunResult{rc, out, ReadFile(err_file)};
  }
  std::string Plain() { return "--insecure-registry " + reg_->host() + " "; }
  std::string Ref(const std::string& repo_tag) { return reg_->host() + "/" + repo_tag; }

  static testing::TempDir* work_;
  static testing::RegistryServer* reg_;
  static testing::RegistryServer* tls_;
  static std::string* image_digest_;
  static std::string* index_digest_;
  static std::string* arm_digest_;
};
testing::TempDir* CopyTest::work_ = nullptr;
testing::RegistryServer* CopyTest::reg_ = nullptr;
testing::RegistryServer* CopyTest::tls_ = nullptr;
std::string* CopyTest::image_digest_ = nullptr;
std::string* CopyTest::index_digest_ = nullptr;
std::string* CopyTest::arm_digest_ = nullptr;

int Count(const std::vector<std::string>& log, const std::string& prefix) {
  int n = 0;
  for (const auto& l : log) n += l.rfind(prefix, 0) == 0;
  return n;
}

TEST_F(CopyTest, SameRegistryMountsBlobsAndKeepsTheDigest) {
  ASSERT_EQ(RawDigest("docker://" + Ref("src/app:v1"), "--tls-verify=false"), *image_digest_);
  std::string digest_file = work_->Sub("mount.digest");
  auto r = Kiln(Plain() + Ref("src/app:v1") + " docker://" + Ref("dst/app:copied") + " --digest-file " + digest_file);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("mounted sha256:"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("copied  sha256:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("digest " + *image_digest_), std::string::npos) << r.out;
  EXPECT_EQ(ReadFile(digest_file), *image_digest_);
  EXPECT_EQ(RawDigest("docker://" + Ref("dst/app:copied"), "--tls-verify=false"), *image_digest_);

  // Mounted (POST ?mount= answered 201), never uploaded (no PATCH, no PUT of an upload session).
  auto log = reg_->Requests();
  EXPECT_EQ(Count(log, "POST /v2/dst/app/blobs/uploads/ 201"), 2) << ::testing::PrintToString(log);
  EXPECT_EQ(Count(log, "PATCH /v2/dst/app/"), 0) << ::testing::PrintToString(log);
  EXPECT_EQ(Count(log, "PUT /v2/dst/app/blobs/"), 0) << ::testing::PrintToString(log);
  EXPECT_EQ(Count(log, "PUT /v2/dst/app/manifests/copied 201"), 1) << ::testing::PrintToString(log);

  // Again: every blob is already there.
  auto again = Kiln(Plain() + Ref("src/app:v1") + " " + Ref("dst/app:copied"));
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_NE(again.out.find("skipped sha256:"), std::string::npos) << again.out;
}

TEST_F(CopyTest, ToAnotherRegistryWithTlsAndCredentialsFromDockerConfig) {
  std::string dst = tls_->host() + "/mirror/app:v1";
  auto r = Kiln(Plain() + Ref("src/app:v1") + " docker://" + dst + " --registry-certificate " + tls_->host() + "=" +
                    tls_->ca_cert_path(),
                work_->Sub("docker-good"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("copied  sha256:"), std::string::npos) << r.out;
  EXPECT_EQ(RawDigest("docker://" + dst, "--cert-dir " + tls_->ca_cert_dir() + " --creds copier:Sup3r-Secret-77"),
            *image_digest_);

  // Wrong password: exit 1, the registry, repository and status named, the password never.
  auto bad = Kiln(Plain() + "docker://" + dst + " oci:" + work_->Sub("never") + " --retry 0 --registry-certificate " +
                      tls_->host() + "=" + tls_->ca_cert_dir(),
                  work_->Sub("docker-bad"));
  EXPECT_EQ(bad.rc, 1) << bad.out << bad.err;
  EXPECT_NE(bad.err.find(tls_->host()), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("mirror/app"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("401"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find("Wrong-Pass-42"), std::string::npos) << bad.err;
  EXPECT_EQ((bad.out + bad.err).find("Wrong-Pass-42"), std::string::npos);
  std::cerr << "wrong password: " << bad.err;

  // Without the CA the certificate is refused, with a hint.
  auto untrusted = Kiln("docker://" + dst + " oci:" + work_->Sub("never") + " --retry 0", work_->Sub("docker-good"));
  EXPECT_EQ(untrusted.rc, 1);
  EXPECT_NE(untrusted.err.find("--registry-certificate"), std::string::npos) << untrusted.err;
}

TEST_F(CopyTest, RegistryToOciLayoutAndBack) {
  std::string dir = work_->Sub("layout-out");
  auto r = Kiln(Plain() + Ref("src/app:v1") + " oci:" + dir + ":saved");
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_EQ(RawDigest("oci:" + dir + ":saved"), *image_digest_);
  std::string out;
  ASSERT_EQ(RunShell("cd " + work_->path() + " && umoci unpack --rootless --image " + dir + ":saved bundle 2>&1", &out), 0)
      << out;
  EXPECT_EQ(ReadFile(work_->Sub("bundle/rootfs/etc/hello.txt")), "hello from the fixture\n");

  auto back = Kiln(Plain() + "oci:" + dir + ":saved " + Ref("fromoci/app:2"));
  ASSERT_EQ(back.rc, 0) << back.out << back.err;
  EXPECT_EQ(RawDigest("docker://" + Ref("fromoci/app:2"), "--tls-verify=false"), *image_digest_);
  EXPECT_GT(Count(reg_->Requests(), "PUT /v2/fromoci/app/blobs/uploads/"), 0);
}

TEST_F(CopyTest, RegistryToDockerArchiveAndBack) {
  std::string tar = work_->Sub("img.tar");
  auto r = Kiln(Plain() + Ref("src/app:v1") + " docker-archive:" + tar + ":example.com/app:1");
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  std::string inspect = Skopeo("inspect docker-archive:" + tar);
  // skopeo reads the archive's layer (for docker-archive it reports the uncompressed digest, the diff_id).
  auto fixture = layers::OciLayout::Open(work_->Sub("fixture")).value();
  auto manifest = ParseManifest(fixture.ReadBlob(Digest::Parse(*image_digest_).value()).value()).value();
  auto config = ParseImageConfig(fixture.ReadBlob(manifest.config.digest).value()).value();
  EXPECT_NE(inspect.find(config.diff_ids[0].ToString()), std::string::npos) << inspect;
  EXPECT_NE(inspect.find("\"Architecture\": \"amd64\""), std::string::npos) << inspect;
  // ... and finds the image by the name kiln recorded in RepoTags.
  std::string by_tag = Skopeo("inspect docker-archive:" + tar + ":example.com/app:1");
  EXPECT_NE(by_tag.find("\"Name\": \"example.com/app\""), std::string::npos) << by_tag;

  // kiln's archives carry the OCI manifest, so the way back keeps the digest.
  auto back = Kiln(Plain() + "docker-archive:" + tar + " " + Ref("fromtar/app:1"));
  ASSERT_EQ(back.rc, 0) << back.out << back.err;
  EXPECT_EQ(RawDigest("docker://" + Ref("fromtar/app:1"), "--tls-verify=false"), *image_digest_);
}

TEST_F(CopyTest, IndexWholeOrOnePlatform) {
  auto all = Kiln(Plain() + Ref("src/multi:1") + " " + Ref("idx/all:1"));
  ASSERT_EQ(all.rc, 0) << all.out << all.err;
  EXPECT_NE(all.out.find("digest " + *index_digest_), std::string::npos) << all.out;
  EXPECT_EQ(RawDigest("docker://" + Ref("idx/all:1"), "--tls-verify=false"), *index_digest_);

  auto one = Kiln(Plain() + Ref("src/multi:1") + " " + Ref("idx/arm:1") + " --platform linux/arm64");
  ASSERT_EQ(one.rc, 0) << one.out << one.err;
  EXPECT_EQ(RawDigest("docker://" + Ref("idx/arm:1"), "--tls-verify=false"), *arm_digest_);

  auto layout = Kiln(Plain() + Ref("src/multi:1") + " oci:" + work_->Sub("multi-layout") + ":m");
  ASSERT_EQ(layout.rc, 0) << layout.err;
  EXPECT_EQ(RawDigest("oci:" + work_->Sub("multi-layout") + ":m"), *index_digest_);

  auto none = Kiln(Plain() + Ref("src/multi:1") + " " + Ref("idx/none:1") + " --platform linux/s390x");
  EXPECT_EQ(none.rc, 1);
  EXPECT_NE(none.err.find("linux/arm64"), std::string::npos) << none.err;  // lists what there is
}

TEST_F(CopyTest, FailuresNameTheRegistryAndRepository) {
  auto missing = Kiln(Plain() + Ref("src/app:nope") + " oci:" + work_->Sub("never"));
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.err.find(reg_->host()), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("src/app"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("404"), std::string::npos) << missing.err;
  std::cerr << "missing tag: " << missing.err;

  auto unreachable = Kiln("--insecure-registry 127.0.0.1:1 127.0.0.1:1/gone/app:1 oci:" + work_->Sub("never") +
                          " --retry 0");
  EXPECT_EQ(unreachable.rc, 1);
  EXPECT_NE(unreachable.err.find("127.0.0.1:1"), std::string::npos) << unreachable.err;
  EXPECT_NE(unreachable.err.find("gone/app"), std::string::npos) << unreachable.err;
  std::cerr << "unreachable: " << unreachable.err;

  auto usage = Kiln("dir:/tmp/x " + Ref("a/b:1"));
  EXPECT_EQ(usage.rc, 2);
  EXPECT_NE(usage.err.find("unsupported transport"), std::string::npos) << usage.err;
}

TEST_F(CopyTest, BlobUploadSurvivesServerErrors) {
  reg_->SetFaults("PUT */blobs/uploads/*: status=500 times=2");
  auto r = Kiln(Plain() + "oci:" + work_->Sub("fixture") + ":v1 " + Ref("fault/app:1"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_EQ(reg_->PendingFaults(), 0);
  auto log = reg_->Requests();
  EXPECT_EQ(Count(log, "PUT /v2/fault/app/blobs/uploads/"), 4) << ::testing::PrintToString(log);  // 2 × 500, 2 × 201
  EXPECT_EQ(RawDigest("docker://" + Ref("fault/app:1"), "--tls-verify=false"), *image_digest_);
}

}  // namespace
}  // namespace kiln
