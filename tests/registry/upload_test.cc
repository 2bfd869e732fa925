// The chunked upload state machine against a scripted in-memory registry: a failed PATCH resumes at
// the byte the registry reports (GET on the session → Range 0-N), a lost session restarts once,
// and a registry that serves the wrong size after its 201 fails the upload.
#include <gtest/gtest.h>

#include <map>

#include "registry/client.h"
#include "registry/fake_transport.h"

namespace kiln::registry {
namespace {

FakeResponse Status(int code) {
  FakeResponse r;
  r.status = code;
  return r;
}

// One upload session at a time, kept by the OCI rules. `fail_patch` picks PATCHes (counted from 1)
// that fail after storing `keep` bytes of their body; `lose_session` makes status GETs answer 404.
struct FakeRegistry {
  std::string held;
  bool open = false;
  int patches = 0;
  std::map<int, std::pair<FakeResponse, size_t>> fail_patch;
  bool lose_session = false;
  std::map<std::string, std::string> blobs;
  int64_t served_size_override = -1;
  uint64_t patch_bytes = 0;

  FakeResponse Session(int status) {
    FakeResponse r;
    r.status = status;
    r.headers.Set("Location", "/v2/team/app/blobs/uploads/u1?_state=" + std::to_string(held.size()));
    r.headers.Set("Range", "0-" + std::to_string(held.empty() ? 0 : held.size() - 1));
    return r;
  }
  FakeResponse Handle(const RecordedRequest& q) {
    if (q.method == "POST") {
      open = true;
      held.clear();
      return Session(202);
    }
    if (q.method == "PATCH") {
      patch_bytes += q.body.size();
      if (!open) return Status(404);
      uint64_t start = std::stoull(q.headers.Get("Content-Range"));
      if (start != held.size()) return Status(416);
      auto f = fail_patch.find(++patches);
      if (f != fail_patch.end()) {
        held += q.body.substr(0, f->second.second);
        return f->second.first;
      }
      held += q.body;
      return Session(202);
    }
    if (q.method == "GET" && q.url.find("/uploads/") != std::string::npos) {
      if (!open || lose_session) return Status(404);
      return Session(204);
    }
    if (q.method == "PUT") {
      if (!open) return Status(404);
      Digest d = Sha256Of(held);
      if (q.url.find(UrlEscape(d.ToString())) == std::string::npos) return Status(400);
      blobs[d.ToString()] = held;
      open = false;
      FakeResponse r;
      r.status = 201;
      r.headers.Set("Docker-Content-Digest", d.ToString());
      return r;
    }
    if (q.method == "HEAD") {
      for (const auto& [digest, bytes] : blobs) {
        if (q.url.find(digest) == std::string::npos) continue;
        FakeResponse r;
        r.headers.Set("Content-Length", std::to_string(served_size_override >= 0 ? served_size_override
                                                                                 : static_cast<int64_t>(bytes.size())));
        return r;
      }
      return Status(404);
    }
    if (q.method == "DELETE") {
      open = false;
      return Status(204);
    }
    return Status(500);
  }
};

class UploadTest : public ::testing::Test {
 protected:
  UploadTest() {
    options_.chunk_size = 1000;
    options_.resume_settle = std::chrono::milliseconds(0);
    options_.notice = [this](std::string_view m) { notices_.emplace_back(m); };
  }
  std::unique_ptr<Repository> Open() {
    auto t = std::make_unique<FakeTransport>([this](const RecordedRequest& q) { return reg_.Handle(q); });
    transport_ = t.get();
    return std::make_unique<Repository>(Endpoint{"reg.test", "http://reg.test", ""}, "team/app", std::move(t), &options_);
  }
  static std::string Blob(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
    return s;
  }
  std::vector<std::string> Ranges() {
    std::vector<std::string> out;
    for (const auto& q : transport_->requests()) {
      if (q.method == "PATCH") out.push_back(q.headers.Get("Content-Range"));
    }
    return out;
  }

  ClientOptions options_;
  FakeRegistry reg_;
  FakeTransport* transport_ = nullptr;
  std::vector<std::string> notices_;
};

TEST_F(UploadTest, ResetMidChunkResumesWhereTheRegistryStands) {
  std::string blob = Blob(3500);
  reg_.fail_patch[3] = {FakeResponse::Error(Unavailable("connection reset")), 300};
  auto repo = Open();
  StringReader r(blob);
  auto d = repo->UploadBlob(r, Sha256Of(blob), 3500);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(reg_.blobs[Sha256Of(blob).ToString()], blob);
  EXPECT_EQ(Ranges(), (std::vector<std::string>{"0-999", "1000-1999", "2000-2999", "2300-2999", "3000-3499"}));
  EXPECT_EQ(reg_.patch_bytes, 3500u + 1000u - 300u);
  ASSERT_EQ(notices_.size(), 1u);
  EXPECT_NE(notices_[0].find("resumed upload of " + Sha256Of(blob).ToString() + " at 2300 bytes after: connection reset"),
            std::string::npos)
      << notices_[0];
}

TEST_F(UploadTest, ServerErrorResumesWithTheRestOfTheChunk) {
  std::string blob = Blob(2500);
  FakeResponse busy;
  busy.status = 503;
  reg_.fail_patch[2] = {busy, 0};
  auto repo = Open();
  StringReader r(blob);
  auto d = repo->UploadBlob(r);  // streamed: digest computed on the way
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->digest, Sha256Of(blob));
  EXPECT_EQ(Ranges(), (std::vector<std::string>{"0-999", "1000-1999", "1000-1999", "2000-2499"}));
}

TEST_F(UploadTest, LostSessionOnTheFirstChunkRestartsOnceInPlace) {
  std::string blob = Blob(800);
  reg_.fail_patch[1] = {FakeResponse::Error(Unavailable("connection reset")), 0};
  reg_.lose_session = true;
  auto repo = Open();
  StringReader r(blob);
  auto d = repo->UploadBlob(r, Sha256Of(blob), 800);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(reg_.blobs[Sha256Of(blob).ToString()], blob);
  ASSERT_EQ(notices_.size(), 1u);
  EXPECT_NE(notices_[0].find("restarted upload"), std::string::npos) << notices_[0];
}

TEST_F(UploadTest, LostSessionLaterFailsTemporarilySoTheSourceIsReadAgain) {
  std::string blob = Blob(3500);
  reg_.fail_patch[2] = {FakeResponse::Error(Unavailable("connection reset")), 10};
  reg_.lose_session = true;
  auto repo = Open();
  StringReader r(blob);
  auto d = repo->UploadBlob(r, Sha256Of(blob), 3500);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().temporary()) << d.status().message();
  EXPECT_NE(d.status().message().find("the blob must be sent again"), std::string::npos) << d.status().message();
  EXPECT_NE(d.status().message().find("reg.test/team/app"), std::string::npos) << d.status().message();
  EXPECT_TRUE(reg_.blobs.empty());
}

TEST_F(UploadTest, RegistryServingTheWrongSizeAfterItsCreatedFailsTheUpload) {
  std::string blob = Blob(1500);
  reg_.served_size_override = 0;
  auto repo = Open();
  StringReader r(blob);
  auto d = repo->UploadBlob(r, Sha256Of(blob), 1500);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("serves 0 bytes"), std::string::npos) << d.status().message();
}

TEST(ParseUploadRangeTest, Forms) {
  EXPECT_EQ(ParseUploadRange("0-999"), std::optional<uint64_t>(1000));
  EXPECT_EQ(ParseUploadRange("bytes=0-9"), std::optional<uint64_t>(10));
  EXPECT_EQ(ParseUploadRange("0-0"), std::optional<uint64_t>(0));
  EXPECT_EQ(ParseUploadRange("5-9"), std::nullopt);
  EXPECT_EQ(ParseUploadRange(""), std::nullopt);
  EXPECT_EQ(ParseUploadRange("0-x"), std::nullopt);
}

}  // namespace
}  // namespace kiln::registry
