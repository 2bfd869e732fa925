// Feeding a kiln Reader (a stream: a pipe, a decompressor, a verifying reader) to libarchive, which
// otherwise reads files. One place for the read callback and for keeping the Reader's own error.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

#include "core/io.h"
#include "core/status.h"

struct archive;

namespace kiln::layers {

/// The input of one libarchive reader. Not copyable; single-threaded, like the archive it feeds.
class ArchiveInput {
 public:
  /// Reads `reader` (not owned; it must outlive every read of the archive) `buffer_size` bytes at a time.
  explicit ArchiveInput(Reader& reader, size_t buffer_size = 64 * 1024);
  ArchiveInput(const ArchiveInput&) = delete;
  ArchiveInput& operator=(const ArchiveInput&) = delete;

  /// archive_read_open on `a` (configured with its formats and filters) with this input; returns
  /// libarchive's result (ARCHIVE_OK on success). This input must outlive every read of `a`.
  int Open(struct archive* a);

  /// The Reader's error that made a read fail (a digest mismatch, a size limit, a corrupt stream), or
  /// OK. libarchive itself only reports that the read failed, so callers prefer this status.
  const Status& status() const { return status_; }

 private:
  static ssize_t Read(struct archive* a, void* opaque, const void** out);  // libarchive's read callback

  Reader& reader_;
  std::vector<char> buf_;
  Status status_;
};

}  // namespace kiln::layers
