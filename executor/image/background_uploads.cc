#include "executor/image/background_uploads.h"

namespace kiln::executor {

BackgroundUpload* BackgroundUploads::Start(registry::Repository* repo, BuildLog* log) {
  if (failed_) return nullptr;  // the destination did not take the last one: push at the end only
  auto u = std::make_unique<BackgroundUpload>();
  BackgroundUpload* raw = u.get();
  raw->thread = std::thread([this, raw, repo, log] {
    Result<Descriptor> r = repo->UploadBlob(raw->pipe.reader());
    if (!r.ok()) {
      failed_ = true;
      raw->pipe.Abort(r.status());
      log->Debug("streaming a layer to " + repo->Describe() + " failed (it is pushed at the end): " + r.status().message());
    }
  });
  std::lock_guard<std::mutex> lock(mu_);
  uploads_.push_back(std::move(u));
  return raw;
}

void BackgroundUploads::Wait() {
  std::vector<std::unique_ptr<BackgroundUpload>> taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    taken.swap(uploads_);
  }
  for (auto& u : taken) {
    if (u->thread.joinable()) u->thread.join();
  }
}

BackgroundUploads::~BackgroundUploads() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& u : uploads_) u->pipe.Abort(Status(ErrorCode::kCancelled, "build stopped"));
  }
  Wait();
}

}  // namespace kiln::executor
