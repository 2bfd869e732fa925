// Pipe: an in-memory, bounded, thread-safe byte pipe between one writer thread and one reader
// thread, so a producer (a layer being compressed) can feed a consumer (a registry upload) as it
// goes, without holding the stream in memory. The writer blocks while `capacity` bytes are waiting.
//
//   Pipe pipe(4 << 20);
//   std::thread up([&] { repo.UploadBlob(pipe.reader()); });
//   WriteLayer(..., &pipe.writer());  pipe.writer().Close();  up.join();
//
// Either side may abort: Abort(status) makes the other side's next call fail with `status` (a
// reader stops consuming, e.g. an upload that failed, so the writer does not block forever).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>

#include "core/io.h"

namespace kiln {

class Pipe {
 public:
  explicit Pipe(size_t capacity = 4 << 20);
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  /// Writes block while the buffer is full; Close() marks the end of the stream.
  Writer& writer() { return writer_; }
  /// Reads block until data, the end of the stream, or an abort.
  Reader& reader() { return reader_; }
  /// Fails both sides from now on with `status` (not OK). The first abort wins.
  void Abort(Status status);

 private:
  class PipeWriter : public Writer {
   public:
    explicit PipeWriter(Pipe* p) : p_(p) {}
    Status Write(const void* data, size_t n) override { return p_->Put(data, n); }
    using Writer::Write;
    Status Close() override { return p_->CloseWrite(); }
   private:
    Pipe* p_;
  };
  class PipeReader : public Reader {
   public:
    explicit PipeReader(Pipe* p) : p_(p) {}
    Result<size_t> Read(void* buf, size_t n) override { return p_->Get(buf, n); }
   private:
    Pipe* p_;
  };

  Status Put(const void* data, size_t n);
  Status CloseWrite();
  Result<size_t> Get(void* buf, size_t n);

  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buf_;  // waiting bytes start at head_
  size_t head_ = 0;
  bool closed_ = false;
  Status error_;
  PipeWriter writer_{this};
  PipeReader reader_{this};
};

}  // namespace kiln
