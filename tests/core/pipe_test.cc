#include "core/pipe.h"

#include <gtest/gtest.h>

#include <thread>

namespace kiln {
namespace {

TEST(PipeTest, StreamsEverythingInOrderThroughASmallBuffer) {
  Pipe pipe(7);  // far smaller than the data: the writer must block and resume
  std::string data;
  for (int i = 0; i < 100000; ++i) data += static_cast<char>('a' + i % 26);
  std::string got;
  std::thread reader([&] {
    char buf[13];
    for (;;) {
      Result<size_t> n = pipe.reader().Read(buf, sizeof buf);
      ASSERT_TRUE(n.ok());
      if (*n == 0) break;
      got.append(buf, *n);
    }
  });
  for (size_t off = 0; off < data.size(); off += 1000) {
    ASSERT_TRUE(pipe.writer().Write(data.data() + off, std::min<size_t>(1000, data.size() - off)).ok());
  }
  ASSERT_TRUE(pipe.writer().Close().ok());
  reader.join();
  EXPECT_EQ(got, data);
}

TEST(PipeTest, AbortByTheReaderUnblocksAFullWriter) {
  Pipe pipe(4);
  std::thread writer([&] {
    std::string big(1000, 'x');
    Status s = pipe.writer().Write(big.data(), big.size());
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.message(), "upload failed");
  });
  char buf[2];
  ASSERT_TRUE(pipe.reader().Read(buf, 2).ok());
  pipe.Abort(Unavailable("upload failed"));
  writer.join();
  EXPECT_FALSE(pipe.reader().Read(buf, 2).ok());
}

TEST(PipeTest, AbortByTheWriterFailsTheReader) {
  Pipe pipe;
  ASSERT_TRUE(pipe.writer().Write("abc", 3).ok());
  pipe.Abort(IoError("disk full"));
  char buf[8];
  Result<size_t> n = pipe.reader().Read(buf, sizeof buf);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().message(), "disk full");
}

TEST(PipeTest, EmptyStreamEndsAtOnce) {
  Pipe pipe;
  ASSERT_TRUE(pipe.writer().Close().ok());
  char buf[4];
  Result<size_t> n = pipe.reader().Read(buf, sizeof buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

}  // namespace
}  // namespace kiln
