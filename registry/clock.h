// Time as a side effect: the retry and token-cache logic and the layer caches' TTLs ask a Clock, so
// tests can use FakeClock. The one clock interface of kiln.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

namespace kiln::registry {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  /// Monotonic time, for durations and deadlines within this process.
  virtual TimePoint Now() = 0;
  /// Wall-clock seconds since the Unix epoch, for times that outlive the process (cache entry ages).
  virtual int64_t UnixSeconds() = 0;
  /// Blocks the calling thread for `d`.
  virtual void Sleep(std::chrono::milliseconds d) = 0;
};

/// The machine's clocks: steady_clock and time(2).
class RealClock : public Clock {
 public:
  TimePoint Now() override { return std::chrono::steady_clock::now(); }
  int64_t UnixSeconds() override;
  void Sleep(std::chrono::milliseconds d) override;
  /// A process-wide instance.
  static RealClock* Get();
};

/// A clock that only moves when told; Sleep advances it and records the duration. Its wall clock
/// starts at `unix_seconds` and moves with it. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t unix_seconds = 1'700'000'000) : unix_start_(unix_seconds) {}
  TimePoint Now() override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  int64_t UnixSeconds() override {
    std::lock_guard<std::mutex> lock(mu_);
    return unix_start_ + std::chrono::duration_cast<std::chrono::seconds>(now_ - kStart).count();
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
  static constexpr TimePoint kStart{std::chrono::hours(1000)};
  std::mutex mu_;
  const int64_t unix_start_;
  TimePoint now_{kStart};
  std::vector<std::chrono::milliseconds> sleeps_;
};

}  // namespace kiln::registry
