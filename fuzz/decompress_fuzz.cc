// Fuzz target: compression detection and streaming decompression of a layer blob (layers/decompress.h).
// The input is the blob; it is decoded to its end (or to 64 MiB of output, so a decompression bomb
// costs time, not memory) through the auto-detecting reader, and once more through the gzip and zstd
// readers directly so that each decoder sees every input whatever its first bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/io.h"
#include "layers/decompress.h"

namespace {

constexpr uint64_t kMaxOutput = 64 << 20;

void Drain(kiln::Reader& r) {
  static char buf[64 * 1024];
  uint64_t total = 0;
  while (total < kMaxOutput) {
    kiln::Result<size_t> n = r.Read(buf, sizeof buf);
    if (!n.ok() || *n == 0) return;
    if (*n > sizeof buf) std::abort();  // a reader must never claim more than it was given room for
    total += *n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)layers::DetectCompression(bytes);
  {
    StringReader src(bytes);
    layers::Compression detected;
    Result<std::unique_ptr<Reader>> r = layers::NewDecompressingReader(&src, &detected);
    if (r.ok()) Drain(**r);
  }
  {
    StringReader src(bytes);
    std::unique_ptr<Reader> r = layers::NewGzipReader(&src);
    Drain(*r);
  }
  {
    StringReader src(bytes);
    std::unique_ptr<Reader> r = layers::NewZstdReader(&src);
    Drain(*r);
  }
  return 0;
}
