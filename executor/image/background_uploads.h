// Layers streamed to a registry while they are written: each new layer's bytes go through a pipe to
// an upload that finishes in the background, so the push at the end finds the blob already there.
// A failed upload costs nothing but time: the blob is in the store and the push uploads it again.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/pipe.h"
#include "executor/log/build_log.h"
#include "registry/client.h"

namespace kiln::executor {

/// A layer upload fed through a pipe while the layer is written, finished in the background.
struct BackgroundUpload {
  Pipe pipe;
  std::thread thread;
};

/// The uploads started during a build. Wait() before pushing; the destructor aborts and joins.
/// Thread-safe (stages built at once start uploads of their own).
class BackgroundUploads {
 public:
  ~BackgroundUploads();
  /// Starts uploading what is written to the returned upload's pipe to `repo`. Failures are only
  /// logged (debug) to `log`, which must outlive this object: the push at the end uploads whatever
  /// is missing.
  BackgroundUpload* Start(registry::Repository* repo, BuildLog* log);
  void Wait();

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<BackgroundUpload>> uploads_;
  std::atomic<bool> failed_{false};
};

}  // namespace kiln::executor
