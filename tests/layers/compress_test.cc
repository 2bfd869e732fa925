#include "layers/compress.h"

#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <random>
#include <string>

#include "tests/testing/temp_dir.h"

namespace kiln::layers {
namespace {

using kiln::testing::ReadFile;
using kiln::testing::RunShell;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;

// Text-like bytes: words from a small vocabulary with random numbers, so it compresses about 3:1.
std::string SemiCompressible(size_t n, uint32_t seed = 42) {
  static const char* kWords[] = {"layer ", "image ", "kiln ", "tar ", "gzip ", "\n", "0x", "digest ", "{", "}"};
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(n + 16);
  while (s.size() < n) {
    s += kWords[rng() % 10];
    if (rng() % 3 == 0) s += std::to_string(rng());
  }
  s.resize(n);
  return s;
}

Result<std::string> Compress(const CompressionOptions& opts, const std::string& data, size_t write_size = 0) {
  StringWriter out;
  KILN_ASSIGN_OR_RETURN(auto c, Compressor::Create(opts, &out));
  if (write_size == 0) write_size = data.size() + 1;
  for (size_t i = 0; i < data.size(); i += write_size) {
    KILN_RETURN_IF_ERROR(c->Write(data.data() + i, std::min(write_size, data.size() - i)));
  }
  KILN_RETURN_IF_ERROR(c->Close());
  return out.Take();
}

// Inflates a multi-member gzip stream the way zlib users must: reset after each member's end.
std::string Gunzip(const std::string& gz, int* members) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[65536];
  *members = 0;
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    int r = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (r == Z_STREAM_END) {
      ++*members;
      if (zs.avail_in == 0) break;
      inflateReset(&zs);
      continue;
    }
    if (r != Z_OK) {
      ADD_FAILURE() << "inflate: " << r;
      break;
    }
  }
  inflateEnd(&zs);
  return out;
}

std::string Unzstd(const std::string& z) {
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ZSTD_inBuffer in{z.data(), z.size(), 0};
  std::string out;
  std::string buf(ZSTD_DStreamOutSize(), '\0');
  size_t r = 1;
  while (in.pos < in.size) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    r = ZSTD_decompressStream(d, &o, &in);
    if (ZSTD_isError(r)) {
      ADD_FAILURE() << ZSTD_getErrorName(r);
      break;
    }
    out.append(buf.data(), o.pos);
  }
  EXPECT_EQ(r, 0u) << "zstd frame not complete";
  ZSTD_freeDCtx(d);
  return out;
}

CompressionOptions Gzip(int threads = 2, size_t chunk = 1 << 20, int level = 0) {
  CompressionOptions o;
  o.algorithm = media_type::Compression::kGzip;
  o.threads = threads;
  o.gzip_chunk_size = chunk;
  o.level = level;
  return o;
}

TEST(CompressTest, GzipIsOneIndependentMemberPerChunk) {
  std::string data = SemiCompressible((5 << 20) + 12345);
  auto gz = Compress(Gzip(2, 1 << 20), data);
  ASSERT_TRUE(gz.ok()) << gz.status().ToString();
  EXPECT_LT(gz->size(), data.size() / 2);
  int members = 0;
  EXPECT_EQ(Gunzip(*gz, &members), data);
  EXPECT_EQ(members, 6);
}

TEST(CompressTest, GzipOutputDoesNotDependOnThreadsOrWriteSizes) {
  std::string data = SemiCompressible(3 << 20, 7);
  auto one = Compress(Gzip(1, 256 << 10), data);
  auto two = Compress(Gzip(2, 256 << 10), data, 4096);
  auto four = Compress(Gzip(4, 256 << 10), data, 1000003);
  ASSERT_TRUE(one.ok() && two.ok() && four.ok());
  EXPECT_EQ(*one, *two);
  EXPECT_EQ(*one, *four);
  auto bytewise = Compress(Gzip(3, 256 << 10), data.substr(0, 300000), 1);
  ASSERT_TRUE(bytewise.ok());
  EXPECT_EQ(*bytewise, *Compress(Gzip(1, 256 << 10), data.substr(0, 300000)));
}

TEST(CompressTest, GzipEmptyStreamIsAValidGzipFile) {
  auto gz = Compress(Gzip(), "");
  ASSERT_TRUE(gz.ok());
  int members = 0;
  EXPECT_EQ(Gunzip(*gz, &members), "");
  EXPECT_EQ(members, 1);
  TempDir dir;
  WriteFile(dir.Sub("e.gz"), *gz);
  EXPECT_EQ(RunShell("gzip -t " + dir.Sub("e.gz")), 0);
}

TEST(CompressTest, GzipLevelsTradeSizeForSpeed) {
  std::string data = SemiCompressible(2 << 20, 3);
  auto fast = Compress(Gzip(2, 1 << 20, 1), data);
  auto best = Compress(Gzip(2, 1 << 20, 9), data);
  ASSERT_TRUE(fast.ok() && best.ok());
  EXPECT_GT(fast->size(), best->size());
  int members;
  EXPECT_EQ(Gunzip(*best, &members), data);
}

TEST(CompressTest, MultiMemberGzipIsReadByStandardTools) {
  TempDir dir;
  std::string data = SemiCompressible((3 << 20) + 77, 11);
  WriteFile(dir.Sub("plain"), data);
  auto gz = Compress(Gzip(2, 1 << 20), data);
  ASSERT_TRUE(gz.ok());
  WriteFile(dir.Sub("data.gz"), *gz);
  const std::string f = dir.Sub("data.gz");
  EXPECT_EQ(RunShell("gzip -t " + f), 0);
  EXPECT_EQ(RunShell("pigz -t " + f), 0);
  EXPECT_EQ(RunShell("gzip -dc " + f + " | cmp - " + dir.Sub("plain")), 0);
  EXPECT_EQ(RunShell("pigz -dc " + f + " | cmp - " + dir.Sub("plain")), 0);
  EXPECT_EQ(RunShell("python3 -c 'import gzip,sys; sys.exit(gzip.open(sys.argv[1]).read() != "
                     "open(sys.argv[2],\"rb\").read())' " +
                     f + " " + dir.Sub("plain")),
            0);
}

TEST(CompressTest, ZstdRoundTripsWithChecksumAndIsThreadIndependent) {
  std::string data = SemiCompressible(5 << 20, 5);
  CompressionOptions o;
  o.algorithm = media_type::Compression::kZstd;
  o.threads = 1;
  auto one = Compress(o, data, 512);
  o.threads = 2;
  auto two = Compress(o, data);
  ASSERT_TRUE(one.ok() && two.ok()) << one.status().ToString() << two.status().ToString();
  EXPECT_EQ(*one, *two);
  EXPECT_EQ(Unzstd(*two), data);
  // Frame_Header_Descriptor (RFC 8878 §3.1.1.1.1) follows the 4-byte magic; bit 2 is the checksum.
  ASSERT_GT(two->size(), 5u);
  EXPECT_EQ(static_cast<uint8_t>((*two)[4]) & 0x04, 0x04);

  TempDir dir;
  WriteFile(dir.Sub("d.zst"), *two);
  WriteFile(dir.Sub("plain"), data);
  EXPECT_EQ(RunShell("zstd -q -t " + dir.Sub("d.zst")), 0);
  EXPECT_EQ(RunShell("zstd -q -dc " + dir.Sub("d.zst") + " | cmp - " + dir.Sub("plain")), 0);
}

TEST(CompressTest, ZstdEmptyStream) {
  CompressionOptions o;
  o.algorithm = media_type::Compression::kZstd;
  auto z = Compress(o, "");
  ASSERT_TRUE(z.ok());
  EXPECT_FALSE(z->empty());
  EXPECT_EQ(Unzstd(*z), "");
}

TEST(CompressTest, NoneIsPassThrough) {
  CompressionOptions o;
  o.algorithm = media_type::Compression::kNone;
  auto z = Compress(o, "hello, layer", 3);
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(*z, "hello, layer");
}

TEST(CompressTest, RejectsBadOptions) {
  StringWriter out;
  CompressionOptions o = Gzip(2, 1 << 20, 10);
  EXPECT_EQ(Compressor::Create(o, &out).status().code(), ErrorCode::kInvalidArgument);
  o = Gzip(2, 100, 6);
  EXPECT_EQ(Compressor::Create(o, &out).status().code(), ErrorCode::kInvalidArgument);
  o.algorithm = media_type::Compression::kZstd;
  o.level = 20;
  EXPECT_EQ(Compressor::Create(o, &out).status().code(), ErrorCode::kInvalidArgument);
  o.level = -1;
  EXPECT_EQ(Compressor::Create(o, &out).status().code(), ErrorCode::kInvalidArgument);
}

TEST(CompressTest, DefaultsAreDocumentedLevels) {
  CompressionOptions o;
  EXPECT_EQ(EffectiveLevel(o), 1);  // Kaniko's (go-containerregistry's gzip.BestSpeed)
  o.algorithm = media_type::Compression::kZstd;
  EXPECT_EQ(EffectiveLevel(o), 3);
  EXPECT_GE(EffectiveThreads(o), 1);
}

class FailingWriter : public Writer {
 public:
  Status Write(const void*, size_t) override { return IoError("disk full"); }
  using Writer::Write;
};

TEST(CompressTest, DownstreamErrorsSurface) {
  for (media_type::Compression c : {media_type::Compression::kGzip, media_type::Compression::kZstd}) {
    FailingWriter bad;
    CompressionOptions o;
    o.algorithm = c;
    auto comp = Compressor::Create(o, &bad);
    ASSERT_TRUE(comp.ok());
    std::string data = SemiCompressible(6 << 20);
    Status s = (*comp)->Write(data);
    if (s.ok()) s = (*comp)->Close();
    EXPECT_EQ(s.code(), ErrorCode::kIoError);
    EXPECT_NE(s.message().find("disk full"), std::string::npos);
  }
}

TEST(CompressTest, AbandonedCompressorStopsCleanly) {
  StringWriter out;
  auto comp = Compressor::Create(Gzip(2, 64 << 10), &out);
  ASSERT_TRUE(comp.ok());
  ASSERT_TRUE((*comp)->Write(SemiCompressible(1 << 20)).ok());
  comp->reset();  // no Close(): threads must still be joined without a hang
}

}  // namespace
}  // namespace kiln::layers
