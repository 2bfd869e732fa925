// Layer compression as a Writer adapter: gzip (parallel, libdeflate) and zstd (multi-threaded
// libzstd), or none.
//
// gzip is the bottleneck of every image build (zlib -6 does ~36 MB/s on one core), so the input is
// cut into fixed-size chunks and each chunk becomes an INDEPENDENT gzip member, compressed with
// libdeflate on a small thread pool and written out in order. A stream of several members is valid
// gzip (RFC 1952 §2.2) and is read by Go's compress/gzip (containerd, Docker, skopeo), zlib (with
// inflateReset), gunzip and pigz. Because every chunk boundary is fixed by the byte offset, the output
// is identical whatever the number of threads: digests are deterministic.
//
// zstd uses libzstd's own worker threads (ZSTD_c_nbWorkers >= 1, whose output does not depend on the
// number of workers) with the content checksum on.
//
// Memory is bounded: at most `2 × threads` chunks are in flight; a full queue makes Write() wait.
#pragma once

#include <cstddef>
#include <memory>

#include "core/io.h"
#include "core/media_types.h"
#include "core/status.h"

namespace kiln::layers {

/// Default gzip level: 1, the level Kaniko's layers get (go-containerregistry's tarball layers default
/// to gzip.BestSpeed). Measured here on a 910 MB tree of mixed text and random files, libdeflate level
/// 1 took 10.1 s against 15.0 s for level 6 (both on 2 threads) for 4.6% more bytes; gzip is the
/// bottleneck of a big COPY, so the faster level is the better default. --compression-level 6 (or 9)
/// is there for images pulled far more often than they are built.
inline constexpr int kDefaultGzipLevel = 1;
/// Default zstd level (zstd's own default).
inline constexpr int kDefaultZstdLevel = 3;

struct CompressionOptions {
  media_type::Compression algorithm = media_type::Compression::kGzip;
  /// gzip 1–9, zstd 1–19; 0 picks the default for the algorithm.
  int level = 0;
  /// Compression threads; 0 = the number of online CPUs. The output never depends on this.
  int threads = 0;
  /// gzip only: uncompressed bytes per independent gzip member. Changing it changes the output.
  size_t gzip_chunk_size = size_t{1} << 20;
};

/// Writes the compressed form of everything written to it into `next` (which it does not own).
/// Close() flushes the final chunk/frame, then closes `next`. Writes to `next` all happen on the
/// thread that calls Write/Close. Not thread-safe itself; one stream per instance. Destroying it
/// without Close() stops its threads and abandons the stream.
class Compressor : public Writer {
 public:
  /// Validates the options (level range, chunk size) and starts the threads.
  static Result<std::unique_ptr<Compressor>> Create(const CompressionOptions& options, Writer* next);

  ~Compressor() override = default;
  using Writer::Write;
};

/// The level actually used for `options` (the default when level is 0).
int EffectiveLevel(const CompressionOptions& options);
/// Number of compression threads used for `options` (>= 1).
int EffectiveThreads(const CompressionOptions& options);

}  // namespace kiln::layers
