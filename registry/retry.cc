#include "registry/retry.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace kiln::registry {

bool IsRetryableStatus(int status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  double secs = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
  if (ec != std::errc() || ptr != value.data() + value.size() || secs < 0) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(secs * 1000));
}

RetryTransport::RetryTransport(Transport* inner, RetryPolicy policy, Clock* clock, uint64_t seed)
    : inner_(inner), policy_(policy), clock_(clock), rng_(seed) {}

std::chrono::milliseconds RetryTransport::BaseBackoff(int attempt) const {
  double ms = policy_.initial_backoff.count() * std::pow(policy_.multiplier, attempt - 1);
  ms = std::min(ms, static_cast<double>(policy_.max_backoff.count()));
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

std::chrono::milliseconds RetryTransport::Jittered(std::chrono::milliseconds d) {
  std::lock_guard<std::mutex> lock(mu_);
  std::uniform_real_distribution<double> dist(1.0 - policy_.jitter, 1.0 + policy_.jitter);
  return std::chrono::milliseconds(static_cast<int64_t>(d.count() * dist(rng_)));
}

Result<Response> RetryTransport::RoundTrip(const Request& req) {
  // PATCH appends to an upload session: after a failure we cannot know how much the server kept.
  bool may_retry = req.Replayable() && req.method != "PATCH";
  for (int attempt = 1;; ++attempt) {
    auto r = inner_->RoundTrip(req);
    bool last = !may_retry || attempt >= policy_.max_attempts;
    std::chrono::milliseconds wait = BaseBackoff(attempt);
    if (!r.ok()) {
      if (!r.status().temporary() || last) {
        if (attempt > 1) return r.status().WithContext("after " + std::to_string(attempt) + " attempts");
        return r;
      }
      wait = Jittered(wait);
    } else {
      if (!IsRetryableStatus(r->status) || last) return r;
      auto after = ParseRetryAfter(r->headers.Get("Retry-After"));
      if (after && (r->status == 429 || r->status == 503)) {
        wait = std::min(*after, policy_.max_retry_after);
      } else {
        wait = Jittered(wait);
      }
      // Read a small error body so the connection can be reused; give up on large ones.
      char buf[4096];
      for (size_t total = 0; total < (64u << 10);) {
        auto n = r->body->Read(buf, sizeof buf);
        if (!n.ok() || *n == 0) break;
        total += *n;
      }
    }
    clock_->Sleep(wait);
  }
}

}  // namespace kiln::registry
