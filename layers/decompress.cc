#include "layers/decompress.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace kiln::layers {
namespace {

constexpr size_t kInputBuffer = 128 * 1024;

Status Corrupt(std::string_view format, std::string_view detail) {
  return InvalidArgument("layer is not valid " + std::string(format) + ": " + std::string(detail));
}

// Replays the bytes read for detection, then reads from `src`.
class PrefixReader : public Reader {
 public:
  PrefixReader(std::string prefix, Reader* src) : prefix_(std::move(prefix)), src_(src) {}
  Result<size_t> Read(void* buf, size_t n) override {
    if (pos_ < prefix_.size()) {
      size_t k = std::min(n, prefix_.size() - pos_);
      std::memcpy(buf, prefix_.data() + pos_, k);
      pos_ += k;
      return k;
    }
    return src_->Read(buf, n);
  }

 private:
  std::string prefix_;
  size_t pos_ = 0;
  Reader* src_;
};

class GzipReader : public Reader {
 public:
  explicit GzipReader(Reader* src) : src_(src), in_(kInputBuffer) {
    std::memset(&zs_, 0, sizeof zs_);
    // 16 + MAX_WBITS: gzip wrapper only (a zlib or raw deflate stream is not a gzip layer).
    init_rc_ = inflateInit2(&zs_, 16 + MAX_WBITS);
  }
  ~GzipReader() override {
    if (init_rc_ == Z_OK) inflateEnd(&zs_);
  }

  Result<size_t> Read(void* buf, size_t n) override {
    if (init_rc_ != Z_OK) return InternalError("gzip: cannot initialise zlib");
    if (done_ || n == 0) return size_t{0};
    zs_.next_out = static_cast<Bytef*>(buf);
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    const uInt want = zs_.avail_out;
    while (zs_.avail_out == want) {
      if (zs_.avail_in == 0 && !src_eof_) {
        KILN_ASSIGN_OR_RETURN(size_t got, src_->Read(in_.data(), in_.size()));
        if (got == 0) {
          src_eof_ = true;
        } else {
          zs_.next_in = in_.data();
          zs_.avail_in = static_cast<uInt>(got);
        }
      }
      if (zs_.avail_in == 0 && src_eof_ && !in_member_) {
        done_ = true;
        break;
      }
      in_member_ = true;
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        // End of one member. pigz and multi-threaded writers concatenate members; keep going
        // with the next one, if any (gzip(1) and Go's gzip.Reader do the same).
        inflateReset(&zs_);
        in_member_ = false;
        continue;
      }
      if (rc == Z_BUF_ERROR) {
        if (src_eof_) return Corrupt("gzip", "the stream is truncated");
        continue;
      }
      if (rc != Z_OK) return Corrupt("gzip", zs_.msg ? zs_.msg : "corrupt data");
    }
    return static_cast<size_t>(want - zs_.avail_out);
  }

 private:
  Reader* src_;
  std::vector<Bytef> in_;
  z_stream zs_;
  int init_rc_;
  bool src_eof_ = false;
  bool in_member_ = false;
  bool done_ = false;
};

class ZstdReader : public Reader {
 public:
  explicit ZstdReader(Reader* src) : src_(src), in_(ZSTD_DStreamInSize()), dctx_(ZSTD_createDCtx()) {}
  ~ZstdReader() override { ZSTD_freeDCtx(dctx_); }

  Result<size_t> Read(void* buf, size_t n) override {
    if (dctx_ == nullptr) return InternalError("zstd: cannot allocate a decompression context");
    if (done_ || n == 0) return size_t{0};
    ZSTD_outBuffer out = {buf, n, 0};
    while (out.pos == 0) {
      if (in_pos_ == in_size_ && !src_eof_) {
        KILN_ASSIGN_OR_RETURN(size_t got, src_->Read(in_.data(), in_.size()));
        if (got == 0) src_eof_ = true;
        in_pos_ = 0;
        in_size_ = got;
      }
      // `pending_` is the library's hint: 0 once a frame is fully decoded and flushed.
      if (in_pos_ == in_size_ && src_eof_ && pending_ == 0) {
        done_ = true;
        break;
      }
      ZSTD_inBuffer in = {in_.data(), in_size_, in_pos_};
      size_t rc = ZSTD_decompressStream(dctx_, &out, &in);
      bool progress = in.pos != in_pos_ || out.pos != 0;
      in_pos_ = in.pos;
      if (ZSTD_isError(rc)) return Corrupt("zstd", ZSTD_getErrorName(rc));
      pending_ = rc;
      if (!progress && src_eof_ && in_pos_ == in_size_) return Corrupt("zstd", "the stream is truncated");
    }
    return out.pos;
  }

 private:
  Reader* src_;
  std::vector<char> in_;
  size_t in_pos_ = 0, in_size_ = 0;
  ZSTD_DCtx* dctx_;
  size_t pending_ = 0;
  bool src_eof_ = false;
  bool done_ = false;
};

// Owns the prefix replay and the decoder stacked on it.
class DetectedReader : public Reader {
 public:
  DetectedReader(std::unique_ptr<Reader> prefix, Compression c) : prefix_(std::move(prefix)) {
    if (c == Compression::kGzip) decoder_ = NewGzipReader(prefix_.get());
    if (c == Compression::kZstd) decoder_ = NewZstdReader(prefix_.get());
  }
  Result<size_t> Read(void* buf, size_t n) override {
    return decoder_ ? decoder_->Read(buf, n) : prefix_->Read(buf, n);
  }

 private:
  std::unique_ptr<Reader> prefix_;
  std::unique_ptr<Reader> decoder_;
};

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && n >= 1024 && n % 1024 == 0) {
    n /= 1024;
    ++u;
  }
  return std::to_string(n) + " " + units[u];
}

class BombGuardReader : public Reader {
 public:
  BombGuardReader(Reader* src, std::function<uint64_t()> compressed, DecompressionLimits limits, std::string what)
      : src_(src), compressed_(std::move(compressed)), limits_(std::move(limits)), what_(std::move(what)) {}

  Result<size_t> Read(void* buf, size_t n) override {
    if (!failed_.ok()) return failed_;
    KILN_ASSIGN_OR_RETURN(size_t got, src_->Read(buf, n));
    total_ += got;
    if (limits_.max_bytes > 0 && total_ > limits_.max_bytes) {
      failed_ = InvalidArgument(what_ + " decompresses to more than " + HumanBytes(limits_.max_bytes) +
                                ", the limit for one layer (a decompression bomb?)" +
                                Hint(limits_.max_bytes_setting));
      return failed_;
    }
    if (limits_.max_ratio > 0 && total_ > limits_.ratio_min_bytes) {
      uint64_t in = std::max<uint64_t>(compressed_ ? compressed_() : 0, 1);
      if ((total_ - 1) / in >= limits_.max_ratio) {  // total_ > in × max_ratio, without overflow
        failed_ = InvalidArgument(what_ + " expands more than " + std::to_string(limits_.max_ratio) +
                                  " times (" + std::to_string(in) + " compressed bytes gave " +
                                  std::to_string(total_) + " so far; a decompression bomb?)" +
                                  Hint(limits_.max_ratio_setting));
        return failed_;
      }
    }
    return got;
  }

 private:
  static std::string Hint(const std::string& setting) {
    return setting.empty() ? std::string() : "; " + setting + " changes the limit";
  }

  Reader* src_;
  std::function<uint64_t()> compressed_;
  DecompressionLimits limits_;
  std::string what_;
  uint64_t total_ = 0;
  Status failed_;
};

}  // namespace

DecompressionLimits DecompressionLimits::Defaults() {
  DecompressionLimits l;
  l.max_bytes = kDefaultMaxBytes;
  l.max_ratio = kDefaultMaxRatio;
  l.ratio_min_bytes = kDefaultRatioMinBytes;
  return l;
}

std::unique_ptr<Reader> NewBombGuardReader(Reader* decompressed, std::function<uint64_t()> compressed_so_far,
                                           DecompressionLimits limits, std::string what) {
  return std::make_unique<BombGuardReader>(decompressed, std::move(compressed_so_far), std::move(limits),
                                           std::move(what));
}

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
  }
  return "unknown";
}

std::optional<Compression> CompressionFromName(std::string_view name) {
  if (name == "gzip") return Compression::kGzip;
  if (name == "zstd") return Compression::kZstd;
  if (name == "none" || name == "uncompressed") return Compression::kNone;
  return std::nullopt;
}

Compression DetectCompression(std::string_view p) {
  if (p.size() >= 2 && p[0] == '\x1f' && p[1] == '\x8b') return Compression::kGzip;
  if (p.size() >= 4 && p.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) return Compression::kZstd;
  return Compression::kNone;
}

std::unique_ptr<Reader> NewGzipReader(Reader* src) { return std::make_unique<GzipReader>(src); }
std::unique_ptr<Reader> NewZstdReader(Reader* src) { return std::make_unique<ZstdReader>(src); }

Result<std::unique_ptr<Reader>> NewDecompressingReader(Reader* src, Compression* detected) {
  std::string prefix(4, '\0');
  size_t have = 0;
  while (have < prefix.size()) {
    KILN_ASSIGN_OR_RETURN(size_t got, src->Read(prefix.data() + have, prefix.size() - have));
    if (got == 0) break;
    have += got;
  }
  prefix.resize(have);
  Compression c = DetectCompression(prefix);
  if (detected) *detected = c;
  auto replay = std::make_unique<PrefixReader>(std::move(prefix), src);
  return std::unique_ptr<Reader>(std::make_unique<DetectedReader>(std::move(replay), c));
}

}  // namespace kiln::layers
