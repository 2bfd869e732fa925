#include "registry/fake_transport.h"

#include <cstring>

namespace kiln::registry {
namespace {

class FailingAfterReader : public Reader {
 public:
  FailingAfterReader(std::string data, Status err) : data_(std::move(data)), err_(std::move(err)) {}
  Result<size_t> Read(void* buf, size_t n) override {
    if (pos_ == data_.size()) return err_.ok() ? Result<size_t>(size_t{0}) : Result<size_t>(err_);
    size_t k = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::string data_;
  Status err_;
  size_t pos_ = 0;
};

}  // namespace

void FakeTransport::Enqueue(FakeResponse r) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(std::move(r));
}

Result<Response> FakeTransport::RoundTrip(const Request& req) {
  RecordedRequest rec{req.method, req.url, req.headers, req.body};
  if (req.body_reader != nullptr) {
    KILN_ASSIGN_OR_RETURN(rec.body, ReadAll(*req.body_reader, 1u << 30));
  } else if (req.body_opener) {
    KILN_ASSIGN_OR_RETURN(auto r, req.body_opener());
    KILN_ASSIGN_OR_RETURN(rec.body, ReadAll(*r, 1u << 30));
  }
  FakeResponse fr;
  Handler handler;
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(rec);
    if (!queue_.empty()) {
      fr = std::move(queue_.front());
      queue_.pop_front();
    } else if (handler_) {
      handler = handler_;
    } else {
      return InternalError("FakeTransport: no response scripted for " + req.method + " " + req.url);
    }
  }
  if (handler) fr = handler(rec);
  if (!fr.error.ok()) return fr.error;
  Response resp;
  resp.status = fr.status;
  resp.headers = fr.headers;
  if (req.method == "HEAD") fr.body.clear();
  resp.body = std::make_unique<FailingAfterReader>(std::move(fr.body), fr.body_error);
  return resp;
}

std::vector<RecordedRequest> FakeTransport::requests() {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::vector<std::string> FakeTransport::Log() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& r : requests_) out.push_back(r.method + " " + r.url);
  return out;
}

}  // namespace kiln::registry
