#include "executor/dockerfile/dockerignore.h"

namespace kiln::dockerfile {
namespace {

bool IsGoSpaceChar(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsGoSpaceChar(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsGoSpaceChar(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string CleanPath(std::string_view p) {
  if (p.empty()) return ".";
  bool rooted = p[0] == '/';
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view part = p.substr(i, j - i);
    if (part.empty() || part == ".") {
      // skip
    } else if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(part);
      }
    } else {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out = rooted ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k) out += '/';
    out += parts[k];
  }
  return out.empty() ? "." : out;
}

std::vector<std::string> ReadIgnorePatterns(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    if (first && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    first = false;
    // Comments are recognised before trimming, exactly like ignorefile.ReadAll.
    if (!line.empty() && line[0] == '#') continue;
    std::string_view pattern = Trim(line);
    if (pattern.empty()) continue;
    bool invert = pattern[0] == '!';
    if (invert) pattern = Trim(pattern.substr(1));
    std::string p(pattern);
    if (!p.empty()) {
      p = CleanPath(p);
      if (p.size() > 1 && p[0] == '/') p.erase(0, 1);
    }
    out.push_back(invert ? "!" + p : p);
    if (nl == text.size()) break;
  }
  return out;
}

Result<IgnoreMatcher> IgnoreMatcher::Create(const std::vector<std::string>& patterns) {
  IgnoreMatcher m;
  for (const std::string& raw : patterns) {
    std::string_view t = Trim(raw);
    if (t.empty()) continue;
    Pattern pat;
    std::string p = CleanPath(t);
    if (p[0] == '!') {
      if (p.size() == 1) return InvalidArgument("illegal exclusion pattern: \"!\"");
      pat.exclusion = true;
      m.has_exceptions_ = true;
      p.erase(0, 1);
    }
    auto bad = [&] { return InvalidArgument("syntax error in .dockerignore pattern \"" + raw + "\""); };
    // Tokenise with the regexp translation of patternmatcher.compile, and validate classes and
    // escapes like filepath.Match does.
    for (size_t i = 0; i < p.size(); ++i) {
      char ch = p[i];
      Token tok;
      if (ch == '*') {
        if (i + 1 < p.size() && p[i + 1] == '*') {
          ++i;
          if (i + 1 < p.size() && p[i + 1] == '/') ++i;
          tok.kind = i + 1 == p.size() ? Token::kDoubleStarEnd : Token::kDoubleStar;
        } else {
          tok.kind = Token::kStar;
        }
      } else if (ch == '?') {
        tok.kind = Token::kAny;
      } else if (ch == '\\') {
        if (i + 1 == p.size()) return bad();
        tok.kind = Token::kLiteral;
        tok.c = p[++i];
      } else if (ch == '[') {
        tok.kind = Token::kClass;
        size_t j = i + 1;
        if (j < p.size() && p[j] == '^') {
          tok.negated = true;
          ++j;
        }
        bool closed = false;
        bool first_range = true;
        while (j < p.size()) {
          if (p[j] == ']' && !first_range) {
            closed = true;
            break;
          }
          auto get = [&](unsigned char* out) -> bool {
            if (j >= p.size() || p[j] == '-' || p[j] == ']') return false;
            if (p[j] == '\\') {
              ++j;
              if (j >= p.size()) return false;
            }
            if (p[j] == '*' || p[j] == '?') return false;  // patternmatcher's regexp breaks on these
            *out = static_cast<unsigned char>(p[j++]);
            return true;
          };
          unsigned char lo, hi;
          if (!get(&lo)) return bad();
          hi = lo;
          if (j < p.size() && p[j] == '-') {
            ++j;
            if (!get(&hi)) return bad();
            if (hi < lo) return bad();
          }
          tok.ranges.push_back({lo, hi});
          first_range = false;
        }
        if (!closed) return bad();
        i = j;
      } else {
        tok.kind = Token::kLiteral;
        tok.c = ch;
      }
      pat.tokens.push_back(std::move(tok));
    }
    pat.cleaned = p;
    m.patterns_.push_back(std::move(pat));
  }
  return m;
}

bool IgnoreMatcher::MatchTokens(const std::vector<Token>& t, size_t ti, std::string_view s, size_t si) {
  while (ti < t.size()) {
    const Token& tok = t[ti];
    switch (tok.kind) {
      case Token::kLiteral:
        if (si >= s.size() || s[si] != tok.c) return false;
        ++si;
        ++ti;
        break;
      case Token::kAny:
        if (si >= s.size() || s[si] == '/') return false;
        ++si;
        ++ti;
        break;
      case Token::kClass: {
        if (si >= s.size()) return false;
        unsigned char c = static_cast<unsigned char>(s[si]);
        bool in = false;
        for (auto [lo, hi] : tok.ranges) in = in || (c >= lo && c <= hi);
        if (in == tok.negated) return false;
        ++si;
        ++ti;
        break;
      }
      case Token::kStar:
        // [^/]*
        for (size_t k = si;; ++k) {
          if (MatchTokens(t, ti + 1, s, k)) return true;
          if (k >= s.size() || s[k] == '/') return false;
        }
      case Token::kDoubleStar:
        // (.*/)? : nothing, or anything ending in '/'
        if (MatchTokens(t, ti + 1, s, si)) return true;
        for (size_t k = si; k < s.size(); ++k) {
          if (s[k] == '/' && MatchTokens(t, ti + 1, s, k + 1)) return true;
        }
        return false;
      case Token::kDoubleStarEnd:
        return true;  // .*$
    }
  }
  return si == s.size();
}

bool IgnoreMatcher::Match(const Pattern& p, std::string_view path) {
  // patternmatcher classifies patterns; the exact/prefix/suffix shortcuts are not always the same as
  // the regexp, so follow the classification.
  const auto& t = p.tokens;
  bool special_after_lead = false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (i == 0 && (t[0].kind == Token::kDoubleStar || t[0].kind == Token::kDoubleStarEnd)) continue;
    if (t[i].kind != Token::kLiteral) special_after_lead = true;
  }
  bool escapes = p.cleaned.find('\\') != std::string::npos;
  if (!t.empty() && (t[0].kind == Token::kDoubleStar || t[0].kind == Token::kDoubleStarEnd) && !special_after_lead && !escapes) {
    // suffixMatch: strings.HasSuffix(path, pattern[2:]) or "**/foo" matching "foo".
    std::string_view suffix = std::string_view(p.cleaned).substr(2);
    if (path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix) return true;
    return !suffix.empty() && suffix[0] == '/' && path == suffix.substr(1);
  }
  return MatchTokens(t, 0, path, 0);
}

bool IgnoreMatcher::Excluded(std::string_view file) const {
  std::string path = CleanPath(file);
  if (path == ".") return false;
  std::vector<std::string> parents;
  size_t slash = path.rfind('/');
  if (slash != std::string::npos) {
    std::string parent = path.substr(0, slash);
    size_t pos = 0;
    for (;;) {
      size_t next = parent.find('/', pos);
      if (next == std::string::npos) {
        parents.push_back(parent);
        break;
      }
      parents.push_back(parent.substr(0, next));
      pos = next + 1;
    }
  }
  bool matched = false;
  for (const Pattern& p : patterns_) {
    if (p.exclusion != matched) continue;
    bool match = Match(p, path);
    for (size_t i = 0; !match && i < parents.size(); ++i) match = Match(p, parents[i]);
    if (match) matched = !p.exclusion;
  }
  return matched;
}

std::optional<std::string> ChooseIgnoreFile(const std::string& context_dir, const std::string& dockerfile_path,
                                            const std::function<bool(const std::string& path)>& exists) {
  if (!dockerfile_path.empty()) {
    std::string specific = dockerfile_path + ".dockerignore";
    if (exists(specific)) return specific;
  }
  std::string general = (context_dir.empty() ? std::string(".") : context_dir) + "/.dockerignore";
  if (exists(general)) return general;
  return std::nullopt;
}

}  // namespace kiln::dockerfile
