// RunJobGraph (executor/pipeline/job_graph.h): the order kiln build --jobs builds stages in.
#include "executor/pipeline/job_graph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

namespace kiln::executor {
namespace {

// base → {left, right} → final, as a Dockerfile with two independent stages.
const JobDeps kDiamond = {{}, {0}, {0}, {1, 2}};

TEST(JobGraphTest, SerialRunsInIndexOrderOnTheCallingThread) {
  std::vector<size_t> order;
  std::thread::id caller = std::this_thread::get_id();
  Status s = RunJobGraph(kDiamond, 1, [&](size_t i) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    order.push_back(i);
    return OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(JobGraphTest, IndependentJobsOverlapWithinTheBoundAndAfterTheirDependencies) {
  std::mutex mu;
  std::vector<std::string> events;
  int running = 0, most = 0;
  Status s = RunJobGraph(kDiamond, 4, [&](size_t i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back("start " + std::to_string(i));
      most = std::max(most, ++running);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::lock_guard<std::mutex> lock(mu);
    events.push_back("end " + std::to_string(i));
    --running;
    return OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto at = [&](const std::string& e) { return std::find(events.begin(), events.end(), e) - events.begin(); };
  EXPECT_EQ(most, 2);  // left and right together; never the final before both
  EXPECT_LT(at("end 0"), at("start 1"));
  EXPECT_LT(at("end 0"), at("start 2"));
  EXPECT_LT(at("start 2"), at("end 1"));  // they overlapped
  EXPECT_LT(at("end 1"), at("start 3"));
  EXPECT_LT(at("end 2"), at("start 3"));
}

TEST(JobGraphTest, FirstFailureWinsAndNothingStartsAfterIt) {
  std::atomic<bool> cancel{false};
  std::mutex mu;
  std::vector<size_t> started;
  Status s = RunJobGraph(kDiamond, 2, [&](size_t i) -> Status {
    {
      std::lock_guard<std::mutex> lock(mu);
      started.push_back(i);
    }
    if (i == 1) return FailedPrecondition("left failed");
    if (i == 2) {
      // right notices the cancellation, as a stage does before its next step
      while (!cancel) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return Status(ErrorCode::kCancelled, "stopped");
    }
    return OkStatus();
  }, &cancel);
  EXPECT_EQ(s.message(), "left failed");
  EXPECT_TRUE(cancel);
  EXPECT_EQ(std::count(started.begin(), started.end(), 3u), 0) << "the final job must not start";
}

TEST(JobGraphTest, IndependenceIsTransitive) {
  EXPECT_TRUE(HasIndependentJobs(kDiamond));
  EXPECT_FALSE(HasIndependentJobs({{}, {0}, {1}}));      // a chain
  EXPECT_FALSE(HasIndependentJobs({{}}));
  EXPECT_TRUE(HasIndependentJobs({{}, {}}));             // two FROM image stages
  EXPECT_FALSE(HasIndependentJobs({{}, {0}, {1}, {2, 0}}));
}

}  // namespace
}  // namespace kiln::executor
