// Time as a side effect: the retry and token-cache logic ask a Clock, so tests can use FakeClock.
#pragma once

#include <chrono>
#include <mutex>
#include <vector>

namespace kiln::registry {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() = 0;
  /// Blocks the calling thread for `d`.
  virtual void Sleep(std::chrono::milliseconds d) = 0;
};

/// The machine's monotonic clock.
class RealClock : public Clock {
 public:
  TimePoint Now() override { return std::chrono::steady_clock::now(); }
  void Sleep(std::chrono::milliseconds d) override;
  /// A process-wide instance.
  static RealClock* Get();
};

/// A clock that only moves when told; Sleep advances it and records the duration. Thread-safe.
class FakeClock : public Clock {
 public:
  TimePoint Now() override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Sleep(std::chrono::milliseconds d) override {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
    sleeps_.push_back(d);
  }
  void Advance(std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }
  std::vector<std::chrono::milliseconds> sleeps() {
    std::lock_guard<std::mutex> lock(mu_);
    return sleeps_;
  }

 private:
  std::mutex mu_;
  TimePoint now_{std::chrono::hours(1000)};
  std::vector<std::chrono::milliseconds> sleeps_;
};

}  // namespace kiln::registry
