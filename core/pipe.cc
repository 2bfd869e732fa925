#include "core/pipe.h"

#include <algorithm>
#include <cstring>

namespace kiln {

Pipe::Pipe(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

void Pipe::Abort(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok()) error_ = status.ok() ? Status(ErrorCode::kCancelled, "pipe aborted") : std::move(status);
  cv_.notify_all();
}

Status Pipe::Put(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  std::unique_lock<std::mutex> lock(mu_);
  while (n > 0) {
    cv_.wait(lock, [&] { return !error_.ok() || buf_.size() - head_ < capacity_; });
    if (!error_.ok()) return error_;
    if (closed_) return FailedPrecondition("write to a closed pipe");
    if (head_ > 0 && head_ == buf_.size()) {
      buf_.clear();
      head_ = 0;
    }
    size_t room = capacity_ - (buf_.size() - head_);
    size_t take = std::min(room, n);
    buf_.append(p, take);
    p += take;
    n -= take;
    cv_.notify_all();
  }
  return OkStatus();
}

Status Pipe::CloseWrite() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
  return error_;
}

Result<size_t> Pipe::Get(void* out, size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !error_.ok() || head_ < buf_.size() || closed_; });
  if (!error_.ok()) return error_;
  if (head_ == buf_.size()) return size_t{0};  // closed and drained
  size_t take = std::min(n, buf_.size() - head_);
  std::memcpy(out, buf_.data() + head_, take);
  head_ += take;
  // Compact once the consumed prefix is large, so the buffer does not grow without bound.
  if (head_ > capacity_) {
    buf_.erase(0, head_);
    head_ = 0;
  }
  cv_.notify_all();
  return take;
}

}  // namespace kiln
