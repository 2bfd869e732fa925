// The HTTP seam of the registry client: one small interface, implemented over libcurl
// (CurlTransport) and by a scripted fake (FakeTransport), and decorated by auth and retry the way
// go-containerregistry stacks its transports (retry → auth → wire).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/io.h"
#include "core/status.h"

namespace kiln::registry {

/// An ordered HTTP header list whose names compare case-insensitively.
class Headers {
 public:
  void Add(std::string name, std::string value) { entries_.emplace_back(std::move(name), std::move(value)); }
  /// Replaces every header called `name` with one entry.
  void Set(std::string name, std::string value);
  void Remove(std::string_view name);
  /// The first value of `name`, or "" when absent.
  std::string Get(std::string_view name) const;
  std::vector<std::string> GetAll(std::string_view name) const;
  bool Has(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

/// Opens a fresh reader over the same body bytes each time; makes a streamed body replayable.
using BodyOpener = std::function<Result<std::unique_ptr<Reader>>()>;

/// One HTTP request. The body is `body` (bytes), or the stream `body_reader` (read once, so the
/// request cannot be replayed), or the streams produced by `body_opener` (replayable).
struct Request {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
  Reader* body_reader = nullptr;  // not owned; must outlive the response
  BodyOpener body_opener;
  /// Content-Length of a streamed body; unset means chunked transfer encoding.
  std::optional<uint64_t> body_size;

  bool HasStreamBody() const { return body_reader != nullptr || static_cast<bool>(body_opener); }
  /// True if sending the request again sends the same bytes.
  bool Replayable() const { return body_reader == nullptr; }
  /// GET, HEAD, PUT and DELETE are idempotent (RFC 9110); POST and PATCH are not.
  bool Idempotent() const;
};

/// A response head plus its streaming body. Non-2xx statuses are responses, not errors.
struct Response {
  int status = 0;
  Headers headers;
  /// Never null. Reading fails with kUnavailable if the connection breaks mid-body. Destroying the
  /// response early abandons the rest of the body (and the connection).
  std::unique_ptr<Reader> body;
  /// Set by the auth layer on a 401/403 it could not resolve: whether credentials were sent and
  /// where kiln looks for them (never a secret). HttpError appends it to the message.
  std::string auth_note;

  /// Reads the body to its end (at most `max_bytes`).
  Result<std::string> ReadBody(size_t max_bytes = 4 << 20);
};

class Transport {
 public:
  virtual ~Transport() = default;
  /// Sends `req` and returns once the response head has arrived. Only transport failures
  /// (connect, reset, timeout, TLS) are errors; those worth retrying are kUnavailable.
  /// Implementations are thread-safe.
  virtual Result<Response> RoundTrip(const Request& req) = 0;
};

/// `url` without its query string and fragment, for messages (upload URLs carry opaque state).
std::string RedactUrl(std::string_view url);
/// "scheme://host[:port]" of an absolute URL, or "" if it has none.
std::string UrlOrigin(std::string_view url);
/// The "host[:port]" of an absolute URL.
std::string UrlHost(std::string_view url);
/// Resolves `location` (absolute, absolute-path or relative) against `base`, as a browser would.
std::string ResolveUrl(std::string_view base, std::string_view location);
/// application/x-www-form-urlencoded / query-component escaping.
std::string UrlEscape(std::string_view s);
/// Standard base64.
std::string Base64Encode(std::string_view data);
/// Decodes standard base64 (padding optional); fails on other characters.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace kiln::registry
