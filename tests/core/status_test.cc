#include "core/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  Status s = Unavailable("503 Service Unavailable").WithContext("GET /v2/").WithContext("pulling busybox");
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(s.temporary());
  EXPECT_EQ(s.message(), "pulling busybox: GET /v2/: 503 Service Unavailable");
}

TEST(StatusTest, WithContextOnOkStaysOk) { EXPECT_TRUE(OkStatus().WithContext("x").ok()); }

TEST(StatusTest, ErrnoMapsCodes) {
  EXPECT_EQ(ErrnoStatus("open a", ENOENT).code(), ErrorCode::kNotFound);
  EXPECT_EQ(ErrnoStatus("open a", EACCES).code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus("mkdir a", EEXIST).code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(ErrnoStatus("write a", EIO).code(), ErrorCode::kIoError);
  EXPECT_EQ(ErrnoStatus("open a", ENOENT).message(), "open a: No such file or directory");
}

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  KILN_ASSIGN_OR_RETURN(int h, Half(x));
  KILN_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(ResultTest, ValueAndErrorPropagate) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "3 is odd");
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
}

TEST(ResultTest, OkStatusIsNotAValue) {
  Result<int> r{OkStatus()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
}

}  // namespace
}  // namespace kiln
