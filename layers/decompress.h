// Streaming decompression of layer blobs, with the format detected from the first bytes.
//
// Layers come gzip-compressed (application/vnd.oci.image.layer.v1.tar+gzip, Docker's default),
// zstd-compressed (…tar+zstd) or plain. Media types lie often enough (and docker-archive tarballs
// carry none) that kiln trusts the magic bytes instead: 1f 8b is gzip, 28 b5 2f fd is zstd, anything
// else is passed through as a plain tar.
//
// gzip streams may hold several members back to back (pigz, Go's compress/gzip writers and kiln's
// own parallel writer produce them); all are decoded, as `gzip -d` does. zstd streams may hold several
// frames (and skippable frames). Memory is bounded: a 32 KiB window for gzip, at most a 128 MiB window
// for zstd (the library's default limit; frames that need more are refused), plus fixed buffers.
// A stream that ends early or is corrupt fails with kInvalidArgument and a message naming the format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/io.h"
#include "core/media_types.h"

namespace kiln::layers {

using Compression = media_type::Compression;

/// "none", "gzip" or "zstd".
std::string_view CompressionName(Compression c);
/// The compression a --compression value names: "gzip", "zstd", "none" or "uncompressed" (Kaniko's
/// word for none); nullopt for anything else.
std::optional<Compression> CompressionFromName(std::string_view name);

/// The compression whose magic number starts `prefix` (kNone when none does or `prefix` is short).
Compression DetectCompression(std::string_view prefix);

/// A reader of the decompressed bytes of `src`, which it does not own and reads only as needed.
/// End of stream is reported only after `src` itself reached its end (so a VerifyingReader below sees
/// every byte and can check the digest).
std::unique_ptr<Reader> NewGzipReader(Reader* src);
std::unique_ptr<Reader> NewZstdReader(Reader* src);

/// Limits on what one compressed layer may expand to, against decompression bombs: a layer of a few
/// KiB can declare a file of terabytes and fill the disk. Both limits count the uncompressed (tar)
/// bytes of one layer. The ratio is checked as the stream goes (uncompressed so far against compressed
/// read so far), but only past `ratio_min_bytes`, so that a small layer of zeros is not refused.
/// gzip cannot exceed a ratio of about 1032 (deflate's limit), zstd can go far beyond; real layers
/// stay well below 100.
struct DecompressionLimits {
  static constexpr uint64_t kDefaultMaxBytes = uint64_t{64} << 30;       // 64 GiB
  static constexpr uint64_t kDefaultMaxRatio = 1000;
  static constexpr uint64_t kDefaultRatioMinBytes = uint64_t{1} << 30;  // 1 GiB
  uint64_t max_bytes = 0;        ///< 0: no byte limit
  uint64_t max_ratio = 0;        ///< 0: no ratio limit
  uint64_t ratio_min_bytes = 0;  ///< the ratio is only checked once the stream is past this size
  /// How the user changes each limit (e.g. "--max-layer-size"), named in the error; may be empty.
  std::string max_bytes_setting, max_ratio_setting;
  /// kiln's defaults (64 GiB, a ratio of 1000 past 1 GiB).
  static DecompressionLimits Defaults();
};

/// A reader of `decompressed` (not owned) that fails with kInvalidArgument, naming `what` (e.g. the
/// layer's digest) and the limit, as soon as it has returned more bytes than `limits` allow.
/// `compressed_so_far` tells how many compressed bytes the decompressor has consumed.
std::unique_ptr<Reader> NewBombGuardReader(Reader* decompressed, std::function<uint64_t()> compressed_so_far,
                                           DecompressionLimits limits, std::string what);

/// Reads the first bytes of `src`, detects the compression, and returns a reader of the
/// decompressed stream (the bytes read for detection are replayed). `*detected` is set when non-null.
Result<std::unique_ptr<Reader>> NewDecompressingReader(Reader* src, Compression* detected = nullptr);

}  // namespace kiln::layers
