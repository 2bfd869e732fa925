#include "core/reference.h"

#include <cctype>

namespace kiln {
namespace {

constexpr size_t kNameTotalLengthMax = 255;  // distribution/reference NameTotalLengthMax

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsWord(char c) { return IsAlnum(c) || c == '_'; }
bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
bool HasUpper(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

// path-component := alpha-numeric (separator alpha-numeric)*, separator := [_.] | "__" | "-"+
bool ValidPathComponent(std::string_view c) {
  size_t i = 0, n = c.size();
  if (n == 0 || !IsLowerAlnum(c[0])) return false;
  while (i < n) {
    while (i < n && IsLowerAlnum(c[i])) ++i;
    if (i == n) return true;
    // A separator, then at least one alpha-numeric.
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < n && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < n && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (i == n || !IsLowerAlnum(c[i])) return false;
  }
  return true;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool ValidDomainComponent(std::string_view c) {
  if (c.empty() || !IsAlnum(c.front()) || !IsAlnum(c.back())) return false;
  for (char ch : c) {
    if (!IsAlnum(ch) && ch != '-') return false;
  }
  return true;
}

// domain := host [":" port]; host := domain-name | IPv4 | "[" IPv6 "]". (IPv4 addresses are
// domain-names syntactically, as in distribution's regexp.)
bool ValidDomain(std::string_view d) {
  std::string_view host = d, port;
  if (!d.empty() && d[0] == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : d.substr(1, close - 1)) {
      if (!IsHex(c) && c != ':') return false;
    }
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else {
    size_t colon = d.find(':');
    if (colon != std::string_view::npos) {
      host = d.substr(0, colon);
      port = d.substr(colon + 1);
      if (port.empty()) return false;
    }
    size_t start = 0;
    while (true) {
      size_t dot = host.find('.', start);
      if (!ValidDomainComponent(host.substr(start, dot == std::string_view::npos ? dot : dot - start))) {
        return false;
      }
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Checks the shape distribution's reference regexp requires of a digest before it is handed to the
// digest parser: [A-Za-z][A-Za-z0-9]* ([+.-_] [A-Za-z][A-Za-z0-9]*)* ":" [0-9a-fA-F]{32,}.
bool DigestShape(std::string_view s) {
  size_t colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view alg = s.substr(0, colon), hex = s.substr(colon + 1);
  bool need_alpha = true;
  for (char c : alg) {
    if (need_alpha) {
      if (!std::isalpha(static_cast<unsigned char>(c))) return false;
      need_alpha = false;
    } else if (c == '+' || c == '.' || c == '-' || c == '_') {
      need_alpha = true;
    } else if (!IsAlnum(c)) {
      return false;
    }
  }
  if (need_alpha || hex.size() < 32) return false;
  for (char c : hex) {
    if (!IsHex(c)) return false;
  }
  return true;
}

bool Is64Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

}  // namespace

bool IsValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128 || !IsWord(tag[0])) return false;
  for (char c : tag) {
    if (!IsWord(c) && c != '.' && c != '-') return false;
  }
  return true;
}

std::string NormalizeRegistry(std::string_view host) {
  if (host == "index.docker.io") return kDockerHub;
  return std::string(host);
}

std::string ApiHostFor(std::string_view registry) {
  if (registry == kDockerHub) return kDockerHubApiHost;
  return std::string(registry);
}

Result<Reference> Reference::Parse(std::string_view text) { return ParseReference(text, nullptr); }

ReferenceError CheckReference(std::string_view text) {
  ReferenceError kind = ReferenceError::kNone;
  (void)ParseReference(text, &kind);
  return kind;
}

Result<Reference> ParseReference(std::string_view text, ReferenceError* kind) {
  auto fail = [&](std::string_view why, ReferenceError k = ReferenceError::kFormat) {
    if (kind != nullptr) *kind = k;
    return InvalidArgument("invalid reference \"" + std::string(text.substr(0, 300)) + "\": " + std::string(why));
  };
  if (text.empty()) return fail("repository name must have at least one component");
  if (Is64Hex(text)) {
    return fail("cannot specify 64-byte hexadecimal strings (did you mean an image ID or \"@sha256:...\"?)");
  }

  Reference ref;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string_view dg = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (!DigestShape(dg)) return fail("invalid digest format");
    auto parsed = Digest::Parse(dg);
    if (!parsed.ok()) {
      if (parsed.status().code() == ErrorCode::kUnsupported) return fail("unsupported digest algorithm");
      return fail("invalid digest \"" + std::string(dg) + "\" (expected sha256: and 64 lowercase hex digits)");
    }
    ref.digest_ = std::move(parsed).value();
  }
  // The tag colon is the last one after the last '/' (a port colon is always before a '/').
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!IsValidTag(tag)) {
      return fail(tag.empty() ? "empty tag" : "invalid tag format (tags are [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})");
    }
    ref.tag_ = std::string(tag);
  }
  if (rest.empty()) return fail("repository name must have at least one component");

  // Docker's splitDockerDomain.
  std::string_view domain, path = rest;
  size_t first = rest.find('/');
  if (first != std::string_view::npos) {
    std::string_view head = rest.substr(0, first);
    bool is_domain = head.find_first_of(".:") != std::string_view::npos || head == "localhost" || HasUpper(head);
    if (is_domain) {
      domain = head;
      path = rest.substr(first + 1);
    }
  }
  if (HasUpper(path)) return fail("repository name must be lowercase", ReferenceError::kUppercase);
  if (!domain.empty() && !ValidDomain(domain)) return fail("invalid registry host \"" + std::string(domain) + "\"");
  ref.registry_ = domain.empty() ? std::string(kDockerHub) : NormalizeRegistry(domain);

  if (path.empty()) return fail("repository name must have at least one component");
  size_t start = 0;
  while (true) {
    size_t s = path.find('/', start);
    std::string_view comp = path.substr(start, s == std::string_view::npos ? s : s - start);
    if (comp.empty()) return fail("invalid reference format (empty path component)");
    if (!ValidPathComponent(comp)) {
      return fail("invalid reference format (path component \"" + std::string(comp) +
                  "\" must be lower-case letters and digits, separated by '.', '_', '__' or '-')");
    }
    if (s == std::string_view::npos) break;
    start = s + 1;
  }
  ref.repository_ = std::string(path);
  if (ref.registry_ == kDockerHub && ref.repository_.find('/') == std::string::npos) {
    ref.repository_ = "library/" + ref.repository_;
  }
  // distribution checks the length of the normalised name ("docker.io/library/x").
  if (ref.registry_.size() + 1 + ref.repository_.size() > kNameTotalLengthMax) {
    return fail("repository name must not be more than " + std::to_string(kNameTotalLengthMax) + " characters",
                ReferenceError::kNameTooLong);
  }
  return ref;
}

std::string Reference::Identifier() const {
  if (digest_) return digest_->ToString();
  return tag_.empty() ? "latest" : tag_;
}

std::string Reference::TagOrDefault() const {
  if (!tag_.empty()) return tag_;
  return digest_ ? "" : "latest";
}

std::string Reference::ToString() const {
  std::string s = Name();
  if (!tag_.empty()) s += ":" + tag_;
  if (digest_) s += "@" + digest_->ToString();
  return s;
}

std::string Reference::FamiliarString() const {
  std::string s;
  if (registry_ == kDockerHub) {
    s = repository_.rfind("library/", 0) == 0 && repository_.find('/', 8) == std::string::npos
            ? repository_.substr(8)
            : repository_;
  } else {
    s = Name();
  }
  if (!tag_.empty()) s += ":" + tag_;
  if (digest_) s += "@" + digest_->ToString();
  return s;
}

std::string Reference::ApiHost() const { return ApiHostFor(registry_); }

Reference Reference::WithTag(std::string tag) const {
  Reference r = *this;
  r.tag_ = std::move(tag);
  return r;
}

Reference Reference::WithDigest(Digest d) const {
  Reference r = *this;
  r.digest_ = std::move(d);
  return r;
}

}  // namespace kiln
