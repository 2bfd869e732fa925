#include "core/digest.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

constexpr char kEmpty[] = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(Sha256Of("").ToString(), kEmpty);
  EXPECT_EQ(Sha256Of("abc").ToString(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, StreamingEqualsOneShot) {
  std::string data(1 << 20, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 255);
  Sha256 h;
  for (size_t off = 0; off < data.size(); off += 4097) h.Update(data.data() + off, std::min<size_t>(4097, data.size() - off));
  EXPECT_EQ(h.Finish(), Sha256Of(data));
}

TEST(DigestTest, ParseRoundTrip) {
  auto d = Digest::Parse(kEmpty);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->algorithm(), "sha256");
  EXPECT_EQ(d->ToString(), kEmpty);
  EXPECT_EQ(d->Short(), "sha256:e3b0c44298fc");
}

struct BadDigest {
  const char* text;
  ErrorCode code;
  const char* fragment;
};

class DigestParseErrorTest : public ::testing::TestWithParam<BadDigest> {};

TEST_P(DigestParseErrorTest, Rejects) {
  auto d = Digest::Parse(GetParam().text);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), GetParam().code);
  EXPECT_NE(d.status().message().find(GetParam().fragment), std::string::npos) << d.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    All, DigestParseErrorTest,
    ::testing::Values(
        BadDigest{"", ErrorCode::kInvalidArgument, "expected ALGORITHM:HEX"},
        BadDigest{"e3b0c442", ErrorCode::kInvalidArgument, "expected ALGORITHM:HEX"},
        BadDigest{"sha256:abc", ErrorCode::kInvalidArgument, "needs 64 hex characters, got 3"},
        BadDigest{"SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                  ErrorCode::kInvalidArgument, "malformed algorithm"},
        BadDigest{"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                  ErrorCode::kInvalidArgument, "not lowercase hex"},
        BadDigest{"md5:d41d8cd98f00b204e9800998ecf8427e", ErrorCode::kUnsupported, "unsupported algorithm"},
        BadDigest{"sha256::e3b0", ErrorCode::kInvalidArgument, "needs 64"},
        BadDigest{"sha--256:aa", ErrorCode::kInvalidArgument, "malformed algorithm"}));

TEST(DigestTest, Sha512Parses) {
  std::string d = "sha512:" + std::string(128, 'a');
  EXPECT_TRUE(Digest::Parse(d).ok());
}

}  // namespace
}  // namespace kiln
