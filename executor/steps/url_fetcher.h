// Downloading ADD's remote sources. The interface lets tests and the executor swap the network for a
// fake; NewCurlUrlFetcher is the real thing.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "core/io.h"
#include "core/status.h"

namespace kiln::executor {

struct FetchedUrl {
  std::string filename;                       // file name to use when the destination is a directory
  std::optional<time_t> last_modified;        // from Last-Modified, when the server sent one
};

/// Downloads URLs. Implementations need not be thread-safe.
class UrlFetcher {
 public:
  virtual ~UrlFetcher() = default;
  /// Downloads `url` into `out` (not closed), returning the file name to use (Content-Disposition's
  /// filename, else the last path component of the URL) and the Last-Modified time if any. Fails
  /// with the HTTP status for responses >= 400; messages never contain the query or credentials.
  virtual Result<FetchedUrl> Fetch(const std::string& url, Writer* out) = 0;
};

/// libcurl implementation: follows redirects (at most 10), fails on HTTP >= 400.
std::unique_ptr<UrlFetcher> NewCurlUrlFetcher();

/// `url` without userinfo, query and fragment, for messages.
std::string RedactUrl(const std::string& url);
/// The last path component of `url` (no query/fragment), "" when the path is empty or ends in '/'.
std::string UrlBaseName(const std::string& url);
/// The filename from a Content-Disposition header value, "" when none (path components dropped).
std::string ContentDispositionFilename(const std::string& header_value);

}  // namespace kiln::executor
