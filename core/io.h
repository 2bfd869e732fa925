// Streaming byte sources and sinks, and the adapters that hash, count, limit and verify as bytes pass.
//
// Every blob kiln handles (a layer being written, a layer being pulled, a manifest) moves through these
// interfaces in bounded memory. The adapters do not own what they wrap unless stated.
// None of these types is thread-safe; a stream belongs to one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/digest.h"
#include "core/status.h"

namespace kiln {

/// A source of bytes. Read returns the number of bytes read, 0 only at end of stream.
class Reader {
 public:
  virtual ~Reader() = default;
  virtual Result<size_t> Read(void* buf, size_t n) = 0;
};

/// A sink of bytes. Write consumes all n bytes or fails. Close flushes and finalises; writing after
/// Close is an error. Destroying an unclosed Writer abandons it (no partial result is committed).
class Writer {
 public:
  virtual ~Writer() = default;
  virtual Status Write(const void* data, size_t n) = 0;
  Status Write(std::string_view s) { return Write(s.data(), s.size()); }
  virtual Status Close() { return OkStatus(); }
};

/// Reads from a string it owns.
class StringReader : public Reader {
 public:
  explicit StringReader(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(void* buf, size_t n) override;

 private:
  std::string data_;
  size_t pos_ = 0;
};

/// Appends to a string it owns; for small blobs (manifests, configs) and tests.
class StringWriter : public Writer {
 public:
  Status Write(const void* data, size_t n) override;
  using Writer::Write;
  const std::string& data() const { return data_; }
  std::string Take() { return std::move(data_); }

 private:
  std::string data_;
};

/// Discards everything (counting still works through CountingWriter).
class NullWriter : public Writer {
 public:
  Status Write(const void*, size_t) override { return OkStatus(); }
  using Writer::Write;
};

/// Reads from a file descriptor. Owns (closes) the fd when `owned`.
class FdReader : public Reader {
 public:
  FdReader(int fd, bool owned, std::string name = "");
  ~FdReader() override;
  Result<size_t> Read(void* buf, size_t n) override;

 private:
  int fd_;
  bool owned_;
  std::string name_;
};

/// Writes to a file descriptor, retrying short writes and EINTR. Owns (closes on Close or
/// destruction) the fd when `owned`.
class FdWriter : public Writer {
 public:
  FdWriter(int fd, bool owned, std::string name = "");
  ~FdWriter() override;
  Status Write(const void* data, size_t n) override;
  using Writer::Write;
  Status Close() override;

 private:
  int fd_;
  bool owned_;
  std::string name_;
};

/// Opens `path` for reading.
Result<std::unique_ptr<Reader>> OpenFileReader(const std::string& path);

/// Creates directory `path` and any missing parents (`mkdir -p`) with `mode` (before the umask).
/// Existing directories are fine; the error names the first one that could not be made.
Status MakeDirs(const std::string& path, unsigned mode = 0755);

/// Writes a file atomically: bytes go to a temporary file beside `path`, which Close() fsyncs (when
/// `durable`) and renames over `path`. If the writer is destroyed before Close() succeeds, the
/// temporary file is removed and `path` is untouched.
class AtomicFileWriter : public Writer {
 public:
  static Result<std::unique_ptr<AtomicFileWriter>> Create(const std::string& path, int mode = 0644,
                                                          bool durable = false);
  ~AtomicFileWriter() override;
  Status Write(const void* data, size_t n) override;
  using Writer::Write;
  Status Close() override;

 private:
  AtomicFileWriter(std::string path, std::string tmp, int fd, bool durable);
  std::string path_, tmp_;
  int fd_;
  bool durable_;
  bool committed_ = false;
};

/// Passes writes through to `next` while computing their sha256 and byte count.
class HashingWriter : public Writer {
 public:
  explicit HashingWriter(Writer* next) : next_(next) {}
  Status Write(const void* data, size_t n) override;
  using Writer::Write;
  /// Closes `next`.
  Status Close() override { return next_->Close(); }
  /// REQUIRES: called once, after the last Write.
  Digest Finish() { return hash_.Finish(); }
  uint64_t size() const { return size_; }

 private:
  Writer* next_;
  Sha256 hash_;
  uint64_t size_ = 0;
};

/// Passes reads through from `src` while computing their sha256 and byte count.
class HashingReader : public Reader {
 public:
  explicit HashingReader(Reader* src) : src_(src) {}
  Result<size_t> Read(void* buf, size_t n) override;
  /// REQUIRES: called once, after Read returned 0.
  Digest Finish() { return hash_.Finish(); }
  uint64_t size() const { return size_; }

 private:
  Reader* src_;
  Sha256 hash_;
  uint64_t size_ = 0;
};

/// Reads `src` and checks, as bytes pass, that it is exactly `expected_size` bytes (when given) and
/// hashes to `expected`. A longer stream fails as soon as it passes the size; a wrong digest fails at
/// end of stream with kDigestMismatch, before the final 0 is returned, so a consumer that reads to the
/// end never accepts corrupt content. `what` names the blob in errors.
class VerifyingReader : public Reader {
 public:
  VerifyingReader(Reader* src, Digest expected, std::optional<uint64_t> expected_size, std::string what);
  Result<size_t> Read(void* buf, size_t n) override;

 private:
  Reader* src_;
  Digest expected_;
  std::optional<uint64_t> expected_size_;
  std::string what_;
  Sha256 hash_;
  uint64_t size_ = 0;
  bool done_ = false;
};

/// A VerifyingReader that owns its source (the usual way to hand a verified blob stream around).
std::unique_ptr<Reader> NewVerifyingReader(std::unique_ptr<Reader> src, Digest expected,
                                           std::optional<uint64_t> expected_size, std::string what);

/// Passes reads through from `src` and writes every byte read to `copy` (e.g. a blob store while the
/// same bytes are extracted). A failed write to `copy` fails the read.
class TeeReader : public Reader {
 public:
  TeeReader(Reader* src, Writer* copy) : src_(src), copy_(copy) {}
  Result<size_t> Read(void* buf, size_t n) override;

 private:
  Reader* src_;
  Writer* copy_;
};

/// Reads at most `limit` bytes of `src`; reading past the limit fails with `error` (e.g. to stop a
/// decompression bomb), rather than silently truncating.
class LimitReader : public Reader {
 public:
  LimitReader(Reader* src, uint64_t limit, Status error) : src_(src), remaining_(limit), error_(std::move(error)) {}
  Result<size_t> Read(void* buf, size_t n) override;

 private:
  Reader* src_;
  uint64_t remaining_;
  Status error_;
};

/// Copies `src` to `dst` until end of stream, in 1 MiB chunks. Does not Close `dst`.
/// Returns the number of bytes copied.
Result<uint64_t> Copy(Reader& src, Writer& dst);

/// Reads `src` to the end into a string; fails with kInvalidArgument if it exceeds `max_bytes`.
Result<std::string> ReadAll(Reader& src, size_t max_bytes);

}  // namespace kiln
