// The one Clock: monotonic time for retries and token expiry, wall time for cache entry ages.
#include "registry/clock.h"

#include <gtest/gtest.h>

#include <ctime>

namespace kiln::registry {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(FakeClockTest, WallTimeMovesWithTheMonotonicTime) {
  FakeClock clock(1'800'000'000);
  Clock::TimePoint start = clock.Now();
  EXPECT_EQ(clock.UnixSeconds(), 1'800'000'000);
  clock.Advance(seconds(90));
  EXPECT_EQ(clock.Now() - start, seconds(90));
  EXPECT_EQ(clock.UnixSeconds(), 1'800'000'090);
  clock.Sleep(milliseconds(1500));
  EXPECT_EQ(clock.UnixSeconds(), 1'800'000'091);  // whole seconds, rounded down
  clock.Sleep(milliseconds(500));
  EXPECT_EQ(clock.UnixSeconds(), 1'800'000'092);
  EXPECT_EQ(clock.sleeps(), (std::vector<milliseconds>{milliseconds(1500), milliseconds(500)}));
}

TEST(FakeClockTest, StartsAtAFixedDate) { EXPECT_EQ(FakeClock().UnixSeconds(), 1'700'000'000); }

TEST(RealClockTest, WallTimeIsTheSystemsTime) {
  int64_t before = static_cast<int64_t>(::time(nullptr));
  int64_t now = RealClock::Get()->UnixSeconds();
  int64_t after = static_cast<int64_t>(::time(nullptr));
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
  Clock::TimePoint a = RealClock::Get()->Now();
  EXPECT_LE(a, RealClock::Get()->Now());
}

}  // namespace
}  // namespace kiln::registry
