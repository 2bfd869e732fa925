#include "layers/compress.h"

#include <libdeflate.h>
#include <unistd.h>
#include <zstd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::layers {
namespace {

constexpr int kGzipMaxLevel = 9;  // libdeflate goes to 12, but "gzip -9" is what users know
constexpr int kZstdMaxLevel = 19;  // 20–22 (--ultra) need huge windows; not for layers

class NoneCompressor final : public Compressor {
 public:
  explicit NoneCompressor(Writer* next) : next_(next) {}
  Status Write(const void* data, size_t n) override { return next_->Write(data, n); }
  Status Close() override { return next_->Close(); }

 private:
  Writer* next_;
};

// Parallel gzip. The calling thread fills chunks and writes finished ones to `next` in order; the
// workers only compress. Each chunk owns its input and output buffers, recycled through free_ so a
// long stream does not keep mapping and unmapping megabyte buffers.
class GzipCompressor final : public Compressor {
 public:
  GzipCompressor(Writer* next, int level, int threads, size_t chunk_size)
      : next_(next), level_(level), chunk_size_(chunk_size), max_inflight_(2 * static_cast<size_t>(threads)) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  }

  ~GzipCompressor() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  Status Write(const void* data, size_t n) override {
    if (closed_) return FailedPrecondition("gzip: write after close");
    KILN_RETURN_IF_ERROR(error_);
    const uint8_t* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
      if (!current_) current_ = TakeFreeChunk();
      size_t k = std::min(n, chunk_size_ - current_->in_size);
      std::memcpy(current_->in.data() + current_->in_size, p, k);
      current_->in_size += k;
      p += k;
      n -= k;
      if (current_->in_size == chunk_size_) KILN_RETURN_IF_ERROR(Submit());
    }
    return OkStatus();
  }

  Status Close() override {
    if (closed_) return OkStatus();
    closed_ = true;
    KILN_RETURN_IF_ERROR(error_);
    // An empty stream still has to be a valid gzip file: one member of nothing.
    if (current_ || !submitted_any_) {
      if (!current_) current_ = TakeFreeChunk();
      KILN_RETURN_IF_ERROR(Submit());
    }
    while (!inflight_.empty()) KILN_RETURN_IF_ERROR(WriteHead(/*wait=*/true));
    return next_->Close();
  }

 private:
  struct Chunk {
    std::vector<uint8_t> in;
    size_t in_size = 0;
    std::vector<uint8_t> out;
    size_t out_size = 0;
    bool done = false;  // guarded by mu_
  };

  std::unique_ptr<Chunk> TakeFreeChunk() {
    std::unique_ptr<Chunk> c;
    if (!free_.empty()) {
      c = std::move(free_.back());
      free_.pop_back();
    } else {
      c = std::make_unique<Chunk>();
      c->in.resize(chunk_size_);
    }
    c->in_size = 0;
    c->out_size = 0;
    c->done = false;
    return c;
  }

  Status Submit() {
    // Bound memory: wait for the oldest chunk before queueing one more.
    while (inflight_.size() >= max_inflight_) KILN_RETURN_IF_ERROR(WriteHead(/*wait=*/true));
    Chunk* c = current_.get();
    inflight_.push_back(std::move(current_));
    submitted_any_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back(c);
    }
    work_cv_.notify_one();
    // Stream out whatever is already finished so the consumer (hash, upload) keeps moving.
    while (!inflight_.empty()) {
      bool done;
      {
        std::lock_guard<std::mutex> lock(mu_);
        done = inflight_.front()->done;
      }
      if (!done) break;
      KILN_RETURN_IF_ERROR(WriteHead(/*wait=*/false));
    }
    return OkStatus();
  }

  Status WriteHead(bool wait) {
    Chunk* c = inflight_.front().get();
    if (wait) {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [c] { return c->done; });
    }
    if (c->out_size == 0) {
      error_ = InternalError("gzip: libdeflate failed to compress a chunk");
      return error_;
    }
    Status s = next_->Write(c->out.data(), c->out_size);
    free_.push_back(std::move(inflight_.front()));
    inflight_.pop_front();
    if (!s.ok()) error_ = s;
    return s;
  }

  void WorkerLoop() {
    libdeflate_compressor* comp = libdeflate_alloc_compressor(level_);
    for (;;) {
      Chunk* c;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
        if (stop_) break;
        c = pending_.front();
        pending_.pop_front();
      }
      size_t out_size = 0;
      if (comp != nullptr) {
        size_t bound = libdeflate_gzip_compress_bound(comp, c->in_size);
        if (c->out.size() < bound) c->out.resize(bound);
        out_size = libdeflate_gzip_compress(comp, c->in.data(), c->in_size, c->out.data(), c->out.size());
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        c->out_size = out_size;
        c->done = true;
      }
      done_cv_.notify_all();
    }
    if (comp != nullptr) libdeflate_free_compressor(comp);
  }

  Writer* next_;
  const int level_;
  const size_t chunk_size_;
  const size_t max_inflight_;

  // Touched only by the calling thread.
  std::unique_ptr<Chunk> current_;
  std::deque<std::unique_ptr<Chunk>> inflight_;  // output order
  std::vector<std::unique_ptr<Chunk>> free_;
  bool submitted_any_ = false;
  bool closed_ = false;
  Status error_;

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Chunk*> pending_;  // guarded by mu_
  bool stop_ = false;           // guarded by mu_
  std::vector<std::thread> workers_;
};

// zstd through libzstd's streaming API. Input is gathered into 1 MiB before each call because the
// tar writer hands over many 512-byte headers and every ZSTD_compressStream2 call in multi-threaded
// mode takes locks.
class ZstdCompressor final : public Compressor {
 public:
  ZstdCompressor(Writer* next, ZSTD_CCtx* cctx) : next_(next), cctx_(cctx), in_(1 << 20), out_(1 << 20) {}
  ~ZstdCompressor() override { ZSTD_freeCCtx(cctx_); }

  Status Write(const void* data, size_t n) override {
    if (closed_) return FailedPrecondition("zstd: write after close");
    KILN_RETURN_IF_ERROR(error_);
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      size_t k = std::min(n, in_.size() - in_size_);
      std::memcpy(in_.data() + in_size_, p, k);
      in_size_ += k;
      p += k;
      n -= k;
      if (in_size_ == in_.size()) KILN_RETURN_IF_ERROR(Feed(ZSTD_e_continue));
    }
    return OkStatus();
  }

  Status Close() override {
    if (closed_) return OkStatus();
    closed_ = true;
    KILN_RETURN_IF_ERROR(error_);
    KILN_RETURN_IF_ERROR(Feed(ZSTD_e_end));
    return next_->Close();
  }

 private:
  Status Feed(ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{in_.data(), in_size_, 0};
    for (;;) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      size_t remaining = ZSTD_compressStream2(cctx_, &out, &in, mode);
      if (ZSTD_isError(remaining)) {
        error_ = InternalError(std::string("zstd: ") + ZSTD_getErrorName(remaining));
        return error_;
      }
      if (out.pos > 0) {
        Status s = next_->Write(out_.data(), out.pos);
        if (!s.ok()) {
          error_ = s;
          return s;
        }
      }
      bool finished = mode == ZSTD_e_end ? remaining == 0 : in.pos == in.size;
      if (finished) break;
    }
    in_size_ = 0;
    return OkStatus();
  }

  Writer* next_;
  ZSTD_CCtx* cctx_;
  std::vector<char> in_, out_;
  size_t in_size_ = 0;
  bool closed_ = false;
  Status error_;
};

Result<ZSTD_CCtx*> NewZstdContext(int level, int threads) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  if (cctx == nullptr) return InternalError("zstd: cannot allocate a compression context");
  auto set = [cctx](ZSTD_cParameter p, int v) { return !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, p, v)); };
  // nbWorkers >= 1 even for one thread: libzstd's multi-threaded framing differs from its
  // single-threaded one, and we want the same bytes whatever the thread count.
  if (!set(ZSTD_c_compressionLevel, level) || !set(ZSTD_c_checksumFlag, 1) || !set(ZSTD_c_nbWorkers, threads)) {
    ZSTD_freeCCtx(cctx);
    return Unsupported("zstd: this libzstd does not support multi-threaded compression");
  }
  return cctx;
}

}  // namespace

int EffectiveLevel(const CompressionOptions& options) {
  if (options.level != 0) return options.level;
  switch (options.algorithm) {
    case media_type::Compression::kGzip: return kDefaultGzipLevel;
    case media_type::Compression::kZstd: return kDefaultZstdLevel;
    case media_type::Compression::kNone: return 0;
  }
  return 0;
}

int EffectiveThreads(const CompressionOptions& options) {
  if (options.threads > 0) return options.threads;
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

Result<std::unique_ptr<Compressor>> Compressor::Create(const CompressionOptions& options, Writer* next) {
  int level = EffectiveLevel(options);
  int threads = EffectiveThreads(options);
  if (threads > 256) return InvalidArgument("compression threads must be at most 256, got " + std::to_string(threads));
  switch (options.algorithm) {
    case media_type::Compression::kNone:
      return std::unique_ptr<Compressor>(std::make_unique<NoneCompressor>(next));
    case media_type::Compression::kGzip:
      if (level < 1 || level > kGzipMaxLevel) {
        return InvalidArgument("gzip level must be between 1 and 9, got " + std::to_string(level));
      }
      if (options.gzip_chunk_size < 64 * 1024 || options.gzip_chunk_size > (size_t{256} << 20)) {
        return InvalidArgument("gzip chunk size must be between 64 KiB and 256 MiB");
      }
      return std::unique_ptr<Compressor>(
          std::make_unique<GzipCompressor>(next, level, threads, options.gzip_chunk_size));
    case media_type::Compression::kZstd: {
      if (level < 1 || level > kZstdMaxLevel) {
        return InvalidArgument("zstd level must be between 1 and 19, got " + std::to_string(level));
      }
      KILN_ASSIGN_OR_RETURN(ZSTD_CCtx * cctx, NewZstdContext(level, threads));
      return std::unique_ptr<Compressor>(std::make_unique<ZstdCompressor>(next, cctx));
    }
  }
  return InvalidArgument("unknown compression");
}

}  // namespace kiln::layers
