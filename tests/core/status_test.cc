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

// A failing RUN's exit code survives every rewording on its way to the CLI.
TEST(StatusTest, StepExitCodeSurvivesContextAndRewording) {
  Status s = Status(ErrorCode::kFailedPrecondition, "RUN failed").WithStepExitCode(7);
  Status worded = s.WithContext("stage 1").WithMessage("Dockerfile:3:1: stage 1: RUN failed");
  EXPECT_EQ(worded.step_exit_code(), 7);
  EXPECT_EQ(worded.code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(worded.message(), "Dockerfile:3:1: stage 1: RUN failed");
  EXPECT_EQ(Status(ErrorCode::kInternal, "x").step_exit_code(), 0);
}

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
