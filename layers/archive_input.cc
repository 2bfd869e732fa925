#include "layers/archive_input.h"

#include <archive.h>

#include <cerrno>
#include <type_traits>

namespace kiln::layers {

// The header names libarchive's la_ssize_t by what it is on POSIX, so that it need not include <archive.h>.
static_assert(std::is_same_v<la_ssize_t, ssize_t>);

ArchiveInput::ArchiveInput(Reader& reader, size_t buffer_size) : reader_(reader), buf_(buffer_size) {}

int ArchiveInput::Open(struct archive* a) { return archive_read_open(a, this, nullptr, &ArchiveInput::Read, nullptr); }

ssize_t ArchiveInput::Read(struct archive* a, void* opaque, const void** out) {
  auto* in = static_cast<ArchiveInput*>(opaque);
  Result<size_t> r = in->reader_.Read(in->buf_.data(), in->buf_.size());
  if (!r.ok()) {
    in->status_ = r.status();
    archive_set_error(a, EIO, "reading the input failed: %s", in->status_.message().c_str());
    return -1;
  }
  *out = in->buf_.data();
  return static_cast<ssize_t>(*r);
}

}  // namespace kiln::layers
