// Retrying transient failures: 5xx, 408, 429 (honouring Retry-After), resets and timeouts, with
// exponential backoff and jitter, a bounded number of attempts, and only for requests that can be
// sent again safely (a replayable body, and not PATCH, whose partial effect is unknown).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

#include "registry/clock.h"
#include "registry/transport.h"

namespace kiln::registry {

struct RetryPolicy {
  int max_attempts = 5;  // including the first
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{10'000};
  double multiplier = 2.0;
  double jitter = 0.2;  // each wait is scaled by a random factor in [1-jitter, 1+jitter]
  /// Retry-After values above this are capped (a registry asking for an hour gets this instead).
  std::chrono::milliseconds max_retry_after{60'000};
};

/// True for HTTP statuses worth retrying: 408, 429, 500, 502, 503, 504.
bool IsRetryableStatus(int status);

/// Parses Retry-After (delta-seconds only; HTTP-dates give nullopt and the backoff is used).
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value);

/// Decorator; thread-safe if `inner` is. Does not own `inner` or `clock`.
class RetryTransport : public Transport {
 public:
  RetryTransport(Transport* inner, RetryPolicy policy, Clock* clock, uint64_t seed = std::random_device{}());
  /// After the last attempt, returns the last response (so the caller reports its status) or the
  /// last transport error with "(after N attempts)" appended.
  Result<Response> RoundTrip(const Request& req) override;

  /// The wait before attempt `attempt + 1` (attempt counts from 1), before jitter.
  std::chrono::milliseconds BaseBackoff(int attempt) const;

 private:
  std::chrono::milliseconds Jittered(std::chrono::milliseconds d);

  Transport* inner_;
  RetryPolicy policy_;
  Clock* clock_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

}  // namespace kiln::registry
