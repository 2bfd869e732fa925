#include "executor/dockerfile/reference.h"

#include <cctype>
#include <vector>

namespace kiln::dockerfile {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// path-component := [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
bool ValidPathComponent(std::string_view s) {
  size_t i = 0;
  auto alnum_run = [&] {
    size_t st = i;
    while (i < s.size() && IsLowerAlnum(s[i])) ++i;
    return i > st;
  };
  if (!alnum_run()) return false;
  while (i < s.size()) {
    if (s[i] == '.') {
      ++i;
    } else if (s[i] == '_') {
      ++i;
      if (i < s.size() && s[i] == '_') ++i;
    } else if (s[i] == '-') {
      while (i < s.size() && s[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

bool ValidDomainComponent(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  return s.front() != '-' && s.back() != '-';
}

bool ValidDomain(std::string_view d) {
  std::string_view host = d;
  size_t colon;
  if (!d.empty() && d[0] == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos) return false;
    for (char c : d.substr(1, close - 1))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
    host = {};
    d = d.substr(close + 1);
    if (d.empty()) return true;
    if (d[0] != ':') return false;
    colon = 0;
  } else {
    colon = d.find(':');
    host = d.substr(0, colon);
    size_t st = 0;
    for (;;) {
      size_t dot = host.find('.', st);
      if (!ValidDomainComponent(host.substr(st, dot == std::string_view::npos ? std::string_view::npos : dot - st))) return false;
      if (dot == std::string_view::npos) break;
      st = dot + 1;
    }
    if (colon == std::string_view::npos) return true;
  }
  std::string_view port = d.substr(colon + 1);
  if (port.empty()) return false;
  for (char c : port)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::string CheckImageReference(std::string_view ref) {
  const std::string kBad = "invalid reference format";
  if (ref.empty() || ref.size() > 1024) return kBad;
  std::string_view name = ref;
  size_t at = name.find('@');
  if (at != std::string_view::npos) {
    std::string_view digest = name.substr(at + 1);
    name = name.substr(0, at);
    size_t c = digest.find(':');
    if (c == std::string_view::npos || c == 0 || !std::isalpha(static_cast<unsigned char>(digest[0]))) return kBad;
    for (char ch : digest.substr(0, c))
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '+' && ch != '.') return kBad;
    std::string_view hex = digest.substr(c + 1);
    if (hex.size() < 32) return kBad;
    for (char ch : hex)
      if (!std::isxdigit(static_cast<unsigned char>(ch))) return kBad;
  }
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = name.substr(colon + 1);
    name = name.substr(0, colon);
    if (tag.empty() || tag.size() > 128 || tag[0] == '.' || tag[0] == '-') return kBad;
    for (char ch : tag)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '-') return kBad;
  }
  if (name.empty()) return kBad;
  std::string_view remote = name;
  size_t first = name.find('/');
  if (first != std::string_view::npos) {
    std::string_view dom = name.substr(0, first);
    bool is_domain = dom.find('.') != std::string_view::npos || dom.find(':') != std::string_view::npos ||
                     dom == "localhost";
    for (char ch : dom) is_domain = is_domain || std::isupper(static_cast<unsigned char>(ch));
    if (is_domain) {
      if (!ValidDomain(dom)) return kBad;
      remote = name.substr(first + 1);
    }
  }
  if (remote.size() > 255) return kBad + ": repository name must not be more than 255 characters";
  bool upper = false;
  for (char ch : remote) upper = upper || std::isupper(static_cast<unsigned char>(ch));
  size_t st = 0;
  for (;;) {
    size_t sl = remote.find('/', st);
    std::string_view comp = remote.substr(st, sl == std::string_view::npos ? std::string_view::npos : sl - st);
    if (!ValidPathComponent(comp)) return upper ? kBad + ": repository name must be lowercase" : kBad;
    if (sl == std::string_view::npos) break;
    st = sl + 1;
  }
  return "";
}

}  // namespace kiln::dockerfile
