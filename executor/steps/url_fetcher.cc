#include "executor/steps/url_fetcher.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>

namespace kiln::executor {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// A file name from a server must not be a path: only its last component is used.
std::string SafeName(std::string name) {
  size_t slash = name.find_last_of("/\\");
  if (slash != std::string::npos) name = name.substr(slash + 1);
  if (name == "." || name == "..") return "";
  return name;
}

struct Transfer {
  Writer* out;
  Status write_status;
  std::string disposition;
};

size_t WriteCallback(char* data, size_t size, size_t n, void* opaque) {
  auto* t = static_cast<Transfer*>(opaque);
  Status s = t->out->Write(data, size * n);
  if (!s.ok()) {
    t->write_status = s;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  return size * n;
}

size_t HeaderCallback(char* data, size_t size, size_t n, void* opaque) {
  auto* t = static_cast<Transfer*>(opaque);
  std::string line(data, size * n);
  // A redirect starts a new header block; only the final response's headers count.
  if (line.rfind("HTTP/", 0) == 0) t->disposition.clear();
  constexpr std::string_view kName = "content-disposition:";
  if (line.size() > kName.size()) {
    std::string lower = line.substr(0, kName.size());
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == kName) t->disposition = Trim(line.substr(kName.size()));
  }
  return size * n;
}

class CurlUrlFetcher : public UrlFetcher {
 public:
  Result<FetchedUrl> Fetch(const std::string& url, Writer* out) override {
    const std::string shown = RedactUrl(url);
    CURL* curl = curl_easy_init();
    if (!curl) return InternalError("cannot initialise libcurl");
    Transfer t{out, OkStatus(), ""};
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FILETIME, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    // Abort a stalled download (less than 1 byte/s for 60 s) rather than hang the build.
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "kiln");
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteCallback);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, HeaderCallback);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    // Fail before writing an error page into the file.
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_off_t filetime = -1;
    curl_easy_getinfo(curl, CURLINFO_FILETIME_T, &filetime);
    char* effective = nullptr;
    curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective);
    std::string final_url = effective ? effective : url;
    curl_easy_cleanup(curl);
    if (!t.write_status.ok()) return t.write_status.WithContext("downloading " + shown);
    if (rc == CURLE_HTTP_RETURNED_ERROR || code >= 400) {
      Status s(code >= 500 || code == 429 ? ErrorCode::kUnavailable
               : code == 404            ? ErrorCode::kNotFound
               : code == 401 || code == 403 ? ErrorCode::kPermissionDenied
                                        : ErrorCode::kInvalidArgument,
               "downloading " + shown + ": HTTP " + std::to_string(code));
      return s;
    }
    if (rc != CURLE_OK) {
      // libcurl's error text may quote the URL; use only the code's description.
      return Unavailable("downloading " + shown + ": " + curl_easy_strerror(rc));
    }
    FetchedUrl result;
    result.filename = ContentDispositionFilename(t.disposition);
    if (result.filename.empty()) result.filename = UrlBaseName(final_url);
    if (result.filename.empty()) result.filename = UrlBaseName(url);
    if (filetime >= 0) result.last_modified = static_cast<time_t>(filetime);
    return result;
  }
};

}  // namespace

std::string RedactUrl(const std::string& url) {
  std::string out = url;
  size_t cut = out.find_first_of("?#");
  if (cut != std::string::npos) out.resize(cut);
  size_t scheme = out.find("://");
  size_t host = scheme == std::string::npos ? 0 : scheme + 3;
  size_t path = out.find('/', host);
  size_t at = out.rfind('@', path == std::string::npos ? out.size() : path);
  if (at != std::string::npos && at >= host) out.erase(host, at + 1 - host);
  return out;
}

std::string UrlBaseName(const std::string& url) {
  std::string u = url;
  size_t cut = u.find_first_of("?#");
  if (cut != std::string::npos) u.resize(cut);
  size_t scheme = u.find("://");
  size_t host = scheme == std::string::npos ? 0 : scheme + 3;
  size_t path = u.find('/', host);
  if (path == std::string::npos) return "";
  std::string p = u.substr(path);
  if (p.empty() || p.back() == '/') return "";
  return SafeName(p.substr(p.rfind('/') + 1));
}

std::string ContentDispositionFilename(const std::string& header_value) {
  // attachment; filename="a.tar.gz" (RFC 6266). filename* (RFC 5987) is rare for downloads; the plain
  // parameter is what servers send alongside it.
  std::string v = header_value;
  size_t pos = 0;
  while ((pos = v.find(';', pos)) != std::string::npos) {
    ++pos;
    std::string param = Trim(v.substr(pos, v.find(';', pos) - pos));
    std::string key = param.substr(0, param.find('='));
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    if (Trim(key) != "filename" || param.find('=') == std::string::npos) continue;
    std::string value = Trim(param.substr(param.find('=') + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    return SafeName(value);
  }
  return "";
}

std::unique_ptr<UrlFetcher> NewCurlUrlFetcher() { return std::make_unique<CurlUrlFetcher>(); }

}  // namespace kiln::executor
