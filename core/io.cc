#include "core/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

namespace kiln {

Result<size_t> StringReader::Read(void* buf, size_t n) {
  size_t k = std::min(n, data_.size() - pos_);
  std::memcpy(buf, data_.data() + pos_, k);
  pos_ += k;
  return k;
}

Status StringWriter::Write(const void* data, size_t n) {
  data_.append(static_cast<const char*>(data), n);
  return OkStatus();
}

FdReader::FdReader(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {}
FdReader::~FdReader() {
  if (owned_ && fd_ >= 0) ::close(fd_);
}

Result<size_t> FdReader::Read(void* buf, size_t n) {
  for (;;) {
    ssize_t r = ::read(fd_, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno == EINTR) continue;
    return ErrnoStatus("reading " + name_, errno);
  }
}

FdWriter::FdWriter(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {}
FdWriter::~FdWriter() {
  if (owned_ && fd_ >= 0) ::close(fd_);
}

static Status WriteFully(int fd, const void* data, size_t n, const std::string& name) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("writing " + name, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return OkStatus();
}

Status FdWriter::Write(const void* data, size_t n) {
  if (fd_ < 0) return FailedPrecondition("writing " + name_ + ": already closed");
  return WriteFully(fd_, data, n, name_);
}

Status FdWriter::Close() {
  if (!owned_ || fd_ < 0) return OkStatus();
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return ErrnoStatus("closing " + name_, errno);
  return OkStatus();
}

Status MakeDirs(const std::string& path, unsigned mode) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i != path.size() && path[i] != '/') continue;
    std::string cur = path.substr(0, i);
    if (::mkdir(cur.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
      return ErrnoStatus("creating " + cur, errno);
    }
  }
  return OkStatus();
}

Result<std::unique_ptr<Reader>> OpenFileReader(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening " + path, errno);
  return std::unique_ptr<Reader>(std::make_unique<FdReader>(fd, true, path));
}

Result<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Create(const std::string& path, int mode,
                                                                   bool durable) {
  std::random_device rd;
  std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus("creating " + tmp, errno);
  return std::unique_ptr<AtomicFileWriter>(new AtomicFileWriter(path, tmp, fd, durable));
}

AtomicFileWriter::AtomicFileWriter(std::string path, std::string tmp, int fd, bool durable)
    : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd), durable_(durable) {}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

Status AtomicFileWriter::Write(const void* data, size_t n) {
  if (fd_ < 0) return FailedPrecondition("writing " + path_ + ": already closed");
  return WriteFully(fd_, data, n, path_);
}

Status AtomicFileWriter::Close() {
  if (committed_) return OkStatus();
  if (fd_ < 0) return FailedPrecondition("closing " + path_ + ": write failed earlier");
  if (durable_ && ::fsync(fd_) != 0) return ErrnoStatus("syncing " + tmp_, errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return ErrnoStatus("closing " + tmp_, errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return ErrnoStatus("renaming into " + path_, errno);
  committed_ = true;
  return OkStatus();
}

Status HashingWriter::Write(const void* data, size_t n) {
  hash_.Update(data, n);
  size_ += n;
  return next_->Write(data, n);
}

Result<size_t> HashingReader::Read(void* buf, size_t n) {
  auto r = src_->Read(buf, n);
  if (r.ok()) {
    hash_.Update(buf, *r);
    size_ += *r;
  }
  return r;
}

namespace {

class OwningVerifyingReader : public Reader {
 public:
  OwningVerifyingReader(std::unique_ptr<Reader> src, Digest d, std::optional<uint64_t> size, std::string what)
      : src_(std::move(src)), verify_(src_.get(), std::move(d), size, std::move(what)) {}
  Result<size_t> Read(void* buf, size_t n) override { return verify_.Read(buf, n); }

 private:
  std::unique_ptr<Reader> src_;
  VerifyingReader verify_;
};

}  // namespace

std::unique_ptr<Reader> NewVerifyingReader(std::unique_ptr<Reader> src, Digest expected,
                                           std::optional<uint64_t> expected_size, std::string what) {
  return std::make_unique<OwningVerifyingReader>(std::move(src), std::move(expected), expected_size, std::move(what));
}

VerifyingReader::VerifyingReader(Reader* src, Digest expected, std::optional<uint64_t> expected_size,
                                 std::string what)
    : src_(src), expected_(std::move(expected)), expected_size_(expected_size), what_(std::move(what)) {}

Result<size_t> VerifyingReader::Read(void* buf, size_t n) {
  if (done_) return size_t{0};
  auto r = src_->Read(buf, n);
  if (!r.ok()) return r.status().WithContext(what_);
  size_t k = *r;
  if (k > 0) {
    size_ += k;
    if (expected_size_ && size_ > *expected_size_) {
      return DigestMismatch(what_ + ": content is longer than the expected " + std::to_string(*expected_size_) +
                            " bytes");
    }
    hash_.Update(buf, k);
    return k;
  }
  done_ = true;
  if (expected_size_ && size_ != *expected_size_) {
    return DigestMismatch(what_ + ": content is " + std::to_string(size_) + " bytes, expected " +
                          std::to_string(*expected_size_));
  }
  if (expected_.algorithm() != "sha256") {
    return Unsupported(what_ + ": cannot verify digest algorithm " + expected_.algorithm());
  }
  Digest got = hash_.Finish();
  if (got != expected_) {
    return DigestMismatch(what_ + ": content hashes to " + got.ToString() + ", expected " + expected_.ToString());
  }
  return size_t{0};
}

Result<size_t> TeeReader::Read(void* buf, size_t n) {
  auto r = src_->Read(buf, n);
  if (r.ok() && *r > 0) KILN_RETURN_IF_ERROR(copy_->Write(buf, *r));
  return r;
}

Result<size_t> LimitReader::Read(void* buf, size_t n) {
  if (remaining_ == 0) {
    // Probe for one more byte: exactly `limit` bytes is fine, more is not.
    char probe;
    auto r = src_->Read(&probe, 1);
    if (!r.ok()) return r;
    if (*r == 0) return size_t{0};
    return error_;
  }
  size_t want = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
  auto r = src_->Read(buf, want);
  if (r.ok()) remaining_ -= *r;
  return r;
}

Result<uint64_t> Copy(Reader& src, Writer& dst) {
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  for (;;) {
    auto r = src.Read(buf.data(), buf.size());
    if (!r.ok()) return r.status();
    if (*r == 0) return total;
    KILN_RETURN_IF_ERROR(dst.Write(buf.data(), *r));
    total += *r;
  }
}

Result<std::string> ReadAll(Reader& src, size_t max_bytes) {
  std::string out;
  char buf[65536];
  for (;;) {
    auto r = src.Read(buf, sizeof buf);
    if (!r.ok()) return r.status();
    if (*r == 0) return out;
    if (out.size() + *r > max_bytes) {
      return InvalidArgument("content exceeds the limit of " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, *r);
  }
}

}  // namespace kiln
