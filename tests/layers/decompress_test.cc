#include "layers/decompress.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/layers/hostile_tar.h"

namespace kiln::layers {
namespace {

using testing::Gzip;
using testing::Zstd;

std::string RandomText(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  // Compressible but not trivially so.
  for (auto& c : s) c = static_cast<char>('a' + rng() % 7);
  return s;
}

// Reads everything through `chunk`-sized reads, so that buffer boundaries fall everywhere.
Result<std::string> Inflate(const std::string& blob, Compression* detected, size_t chunk = 65536) {
  StringReader src(blob);
  KILN_ASSIGN_OR_RETURN(auto r, NewDecompressingReader(&src, detected));
  std::string out;
  std::string buf(chunk, '\0');
  for (;;) {
    KILN_ASSIGN_OR_RETURN(size_t n, r->Read(buf.data(), buf.size()));
    if (n == 0) return out;
    out.append(buf, 0, n);
  }
}

TEST(DecompressTest, DetectsFromMagicBytes) {
  EXPECT_EQ(DetectCompression("\x1f\x8b\x08\x00"), Compression::kGzip);
  EXPECT_EQ(DetectCompression(std::string("\x28\xb5\x2f\xfd", 4)), Compression::kZstd);
  EXPECT_EQ(DetectCompression(std::string("\x28\xb5\x2f", 3)), Compression::kNone);
  EXPECT_EQ(DetectCompression("./etc"), Compression::kNone);
  EXPECT_EQ(DetectCompression(""), Compression::kNone);
}

TEST(DecompressTest, PlainPassesThrough) {
  std::string data = RandomText(300000, 1);
  Compression c;
  auto out = Inflate(data, &c, 1000);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(c, Compression::kNone);
  EXPECT_EQ(*out, data);
  auto empty = Inflate("", &c);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST(DecompressTest, GzipSingleAndMultiMember) {
  std::string a = RandomText(500000, 2), b = RandomText(70000, 3), c = "tail";
  Compression kind;
  auto one = Inflate(Gzip(a), &kind, 4096);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(kind, Compression::kGzip);
  EXPECT_EQ(*one, a);
  // Concatenated members, as pigz and parallel writers produce; an empty member in the middle too.
  auto multi = Inflate(Gzip(a) + Gzip("") + Gzip(b, 1) + Gzip(c, 9), &kind, 777);
  ASSERT_TRUE(multi.ok()) << multi.status().ToString();
  EXPECT_EQ(*multi, a + b + c);
  // One-byte reads exercise pending output inside zlib.
  auto tiny = Inflate(Gzip(b) + Gzip(c), &kind, 1);
  ASSERT_TRUE(tiny.ok()) << tiny.status().ToString();
  EXPECT_EQ(*tiny, b + c);
}

TEST(DecompressTest, ZstdMultiFrame) {
  std::string a = RandomText(400000, 4), b = RandomText(1000, 5);
  Compression kind;
  auto out = Inflate(Zstd(a) + Zstd(b, 19), &kind, 3000);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(kind, Compression::kZstd);
  EXPECT_EQ(*out, a + b);
  auto tiny = Inflate(Zstd(b), &kind, 1);
  ASSERT_TRUE(tiny.ok()) << tiny.status().ToString();
  EXPECT_EQ(*tiny, b);
}

TEST(DecompressTest, TruncatedStreamsFail) {
  std::string data = RandomText(200000, 6);
  for (auto [blob, name] : {std::pair{Gzip(data), "gzip"}, std::pair{Zstd(data), "zstd"}}) {
    for (size_t cut : {blob.size() / 2, blob.size() - 1, size_t{10}}) {
      Compression kind;
      auto out = Inflate(blob.substr(0, cut), &kind);
      ASSERT_FALSE(out.ok()) << name << " cut at " << cut;
      EXPECT_EQ(out.status().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(out.status().message().find(name), std::string::npos) << out.status().message();
    }
  }
  // A gzip stream cut exactly after a member boundary is complete; one cut in the second is not.
  std::string two = Gzip("first") + Gzip(data);
  Compression kind;
  EXPECT_FALSE(Inflate(two.substr(0, two.size() - 4), &kind).ok());
}

TEST(DecompressTest, CorruptStreamsFail) {
  std::string data = RandomText(200000, 7);
  std::string gz = Gzip(data);
  gz[gz.size() / 2] ^= 0x55;
  Compression kind;
  auto out = Inflate(gz, &kind);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kInvalidArgument);

  std::string crc = Gzip(data);
  crc[crc.size() - 6] ^= 1;  // the CRC32 in the trailer
  EXPECT_FALSE(Inflate(crc, &kind).ok());

  // zstd frames carry a content checksum only when asked (kiln's writer asks); without one, a
  // flipped literal byte is caught by the blob digest instead.
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  std::string zs(ZSTD_compressBound(data.size()), '\0');
  zs.resize(ZSTD_compress2(cctx, zs.data(), zs.size(), data.data(), data.size()));
  ZSTD_freeCCtx(cctx);
  zs[zs.size() / 2] ^= 0x55;
  EXPECT_FALSE(Inflate(zs, &kind).ok());

  // Garbage after a complete member is not a gzip member.
  EXPECT_FALSE(Inflate(Gzip(data) + "not gzip", &kind).ok());
}

// The decompressor must read its source to the end before reporting end of stream, so that a
// VerifyingReader beneath sees every byte and can reject a wrong digest.
TEST(DecompressTest, DrainsSourceSoDigestIsChecked) {
  std::string blob = Gzip("hello");
  StringReader src(blob);
  VerifyingReader verify(&src, Sha256Of("something else"), std::nullopt, "blob");
  auto r = NewDecompressingReader(&verify);
  ASSERT_TRUE(r.ok());
  auto all = ReadAll(**r, 1 << 20);
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), ErrorCode::kDigestMismatch);
}

}  // namespace
}  // namespace kiln::layers
