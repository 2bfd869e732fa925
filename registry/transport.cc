#include "registry/transport.h"

#include <strings.h>

#include <ctime>

#include <thread>

#include "registry/clock.h"

namespace kiln::registry {
namespace {

bool NameEq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

void Headers::Set(std::string name, std::string value) {
  Remove(name);
  Add(std::move(name), std::move(value));
}

void Headers::Remove(std::string_view name) {
  std::erase_if(entries_, [&](const auto& e) { return NameEq(e.first, name); });
}

std::string Headers::Get(std::string_view name) const {
  for (const auto& [k, v] : entries_) {
    if (NameEq(k, name)) return v;
  }
  return "";
}

std::vector<std::string> Headers::GetAll(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : entries_) {
    if (NameEq(k, name)) out.push_back(v);
  }
  return out;
}

bool Headers::Has(std::string_view name) const {
  for (const auto& e : entries_) {
    if (NameEq(e.first, name)) return true;
  }
  return false;
}

bool Request::Idempotent() const {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE";
}

Result<std::string> Response::ReadBody(size_t max_bytes) { return ReadAll(*body, max_bytes); }

std::string RedactUrl(std::string_view url) {
  size_t cut = url.find_first_of("?#");
  return std::string(url.substr(0, cut));
}

std::string UrlOrigin(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return "";
  size_t path = url.find_first_of("/?#", scheme + 3);
  return std::string(url.substr(0, path));
}

std::string UrlHost(std::string_view url) {
  std::string origin = UrlOrigin(url);
  size_t scheme = origin.find("://");
  return scheme == std::string::npos ? "" : origin.substr(scheme + 3);
}

std::string ResolveUrl(std::string_view base, std::string_view location) {
  if (location.find("://") != std::string_view::npos) return std::string(location);
  if (location.substr(0, 2) == "//") {
    size_t scheme = base.find("://");
    return std::string(base.substr(0, scheme + 1)) + std::string(location);
  }
  if (!location.empty() && location[0] == '/') return UrlOrigin(base) + std::string(location);
  std::string dir = RedactUrl(base);
  size_t slash = dir.rfind('/');
  size_t origin_len = UrlOrigin(base).size();
  if (slash == std::string::npos || slash < origin_len) return UrlOrigin(base) + "/" + std::string(location);
  return dir.substr(0, slash + 1) + std::string(location);
}

std::string UrlEscape(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Base64Encode(std::string_view data) {
  static const char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += kTable[v & 63];
  }
  if (i + 1 == data.size()) {
    uint32_t v = uint8_t(data[i]) << 16;
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8);
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = val(c);
    // Never echo the input: it is usually a credential.
    if (v < 0) return InvalidArgument("malformed base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

void RealClock::Sleep(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

int64_t RealClock::UnixSeconds() { return static_cast<int64_t>(::time(nullptr)); }

RealClock* RealClock::Get() {
  static RealClock clock;
  return &clock;
}

}  // namespace kiln::registry
