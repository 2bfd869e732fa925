#include "core/io.h"

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace kiln {
namespace {

TEST(IoTest, CopyHashesAndCounts) {
  std::string data(3 * 1024 * 1024 + 17, 'q');
  StringReader r(data);
  StringWriter sink;
  HashingWriter hw(&sink);
  auto n = Copy(r, hw);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, data.size());
  EXPECT_EQ(hw.size(), data.size());
  EXPECT_EQ(hw.Finish(), Sha256Of(data));
  EXPECT_EQ(sink.data(), data);
}

TEST(IoTest, VerifyingReaderAcceptsGoodContent) {
  StringReader src("hello");
  VerifyingReader v(&src, Sha256Of("hello"), 5, "blob");
  StringWriter out;
  ASSERT_TRUE(Copy(v, out).ok());
  EXPECT_EQ(out.data(), "hello");
}

TEST(IoTest, VerifyingReaderRejectsFlippedByteAtEnd) {
  StringReader src("hellp");
  VerifyingReader v(&src, Sha256Of("hello"), 5, "layer sha256:2cf2");
  StringWriter out;
  auto n = Copy(v, out);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), ErrorCode::kDigestMismatch);
  EXPECT_NE(n.status().message().find("layer sha256:2cf2: content hashes to sha256:"), std::string::npos)
      << n.status().message();
}

TEST(IoTest, VerifyingReaderRejectsTooLongAsSoonAsItPassesTheSize) {
  StringReader src("hello world");
  VerifyingReader v(&src, Sha256Of("hello"), 5, "blob");
  char buf[64];
  auto n = v.Read(buf, sizeof buf);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), ErrorCode::kDigestMismatch);
  EXPECT_NE(n.status().message().find("longer than the expected 5 bytes"), std::string::npos);
}

TEST(IoTest, VerifyingReaderRejectsTruncated) {
  StringReader src("hel");
  VerifyingReader v(&src, Sha256Of("hello"), 5, "blob");
  StringWriter out;
  auto n = Copy(v, out);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("3 bytes, expected 5"), std::string::npos);
}

TEST(IoTest, LimitReaderAllowsExactAndRejectsMore) {
  {
    StringReader src("12345");
    LimitReader l(&src, 5, InvalidArgument("too big"));
    StringWriter out;
    ASSERT_TRUE(Copy(l, out).ok());
    EXPECT_EQ(out.data(), "12345");
  }
  {
    StringReader src("123456");
    LimitReader l(&src, 5, InvalidArgument("too big"));
    StringWriter out;
    auto n = Copy(l, out);
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.status().message(), "too big");
  }
}

TEST(IoTest, AtomicFileWriterCommitsOnlyOnClose) {
  testing::TempDir dir;
  std::string path = dir.Sub("out");
  {
    auto w = AtomicFileWriter::Create(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("partial").ok());
    // destroyed without Close: nothing appears
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
  {
    auto w = AtomicFileWriter::Create(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("complete").ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  EXPECT_EQ(testing::ReadFile(path), "complete");
}

TEST(IoTest, TeeReaderCopiesEverythingRead) {
  StringReader src("stream me twice");
  StringWriter copy;
  TeeReader tee(&src, &copy);
  auto all = ReadAll(tee, 1024);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, "stream me twice");
  EXPECT_EQ(copy.data(), "stream me twice");
}

TEST(IoTest, ReadAllEnforcesLimit) {
  StringReader src(std::string(100, 'a'));
  auto r = ReadAll(src, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace kiln
