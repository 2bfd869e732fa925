// A scripted Transport for unit tests: answers from a queue of canned responses, then from an
// optional handler, and records every request (with its body read in full).
#pragma once

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "registry/transport.h"

namespace kiln::registry {

struct RecordedRequest {
  std::string method, url;
  Headers headers;
  std::string body;
};

struct FakeResponse {
  int status = 200;
  Headers headers;
  std::string body;
  /// If not OK, RoundTrip fails with this (a transport failure such as a reset).
  Status error;
  /// If not OK, the body reader returns `body` and then fails with this (a connection cut mid-body).
  Status body_error;

  static FakeResponse Error(Status s) {
    FakeResponse r;
    r.error = std::move(s);
    return r;
  }
};

class FakeTransport : public Transport {
 public:
  using Handler = std::function<FakeResponse(const RecordedRequest&)>;
  explicit FakeTransport(Handler handler = nullptr) : handler_(std::move(handler)) {}

  /// Queues a response; queued responses are used first, in order.
  void Enqueue(FakeResponse r);
  Result<Response> RoundTrip(const Request& req) override;
  std::vector<RecordedRequest> requests();
  /// "METHOD url" per request, for compact expectations.
  std::vector<std::string> Log();

 private:
  std::mutex mu_;
  Handler handler_;
  std::deque<FakeResponse> queue_;
  std::vector<RecordedRequest> requests_;
};

}  // namespace kiln::registry
