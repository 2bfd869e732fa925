#include "executor/dockerfile/glob.h"

#include <string>
#include <unordered_set>

namespace kiln::dockerfile {

Result<Glob> Glob::Compile(std::string_view p, GlobOptions options) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("syntax error in pattern \"" + std::string(p) + "\": " + std::string(why));
  };
  Glob g;
  for (size_t i = 0; i < p.size(); ++i) {
    char ch = p[i];
    Token tok;
    if (ch == '*') {
      tok.kind = Token::kStar;
      if (options.double_star && i + 1 < p.size() && p[i + 1] == '*') {
        // patternmatcher turns "**/" and "**" into regexp groups that cross directories.
        ++i;
        if (i + 1 < p.size() && p[i + 1] == '/') ++i;
        tok.kind = i + 1 == p.size() ? Token::kDoubleStarEnd : Token::kDoubleStar;
      } else if (!options.double_star) {
        while (i + 1 < p.size() && p[i + 1] == '*') ++i;  // "**" is "*" in filepath.Match
      }
    } else if (ch == '?') {
      tok.kind = Token::kAny;
    } else if (ch == '\\') {
      if (i + 1 == p.size()) return bad("trailing '\\'");
      tok.c = p[++i];
    } else if (ch == '[') {
      tok.kind = Token::kClass;
      size_t j = i + 1;
      bool negated = false;
      if (j < p.size() && p[j] == '^') {
        negated = true;
        ++j;
      }
      // One class member, as Go's getEsc reads it: a byte other than '-' and ']', or '\' and any byte.
      auto member = [&](unsigned char* out) -> bool {
        if (j >= p.size() || p[j] == '-' || p[j] == ']') return false;
        if (p[j] == '\\') {
          ++j;
          if (j >= p.size()) return false;
        }
        // patternmatcher writes '*' and '?' into its regexp as "[^/]*" and "[^/]", even in a class.
        if (options.strict_classes && (p[j] == '*' || p[j] == '?')) return false;
        *out = static_cast<unsigned char>(p[j++]);
        return true;
      };
      bool closed = false;
      for (bool first = true; j < p.size(); first = false) {
        if (p[j] == ']' && !first) {
          closed = true;
          break;
        }
        unsigned char lo = 0, hi = 0;
        if (!member(&lo)) return bad("malformed character class");
        hi = lo;
        if (j < p.size() && p[j] == '-') {
          ++j;
          if (!member(&hi)) return bad("malformed range in character class");
          if (options.strict_classes && hi < lo) return bad("range out of order in character class");
        }
        for (unsigned c = lo; c <= hi; ++c) tok.bytes.set(c);
      }
      if (!closed) return bad("unterminated character class");
      if (negated) tok.bytes.flip();
      i = j;
    } else {
      tok.c = ch;
    }
    g.tokens_.push_back(tok);
  }
  return g;
}

bool Glob::IsDoubleStarThenLiterals() const {
  if (tokens_.empty() || (tokens_[0].kind != Token::kDoubleStar && tokens_[0].kind != Token::kDoubleStarEnd)) {
    return false;
  }
  for (size_t i = 1; i < tokens_.size(); ++i) {
    if (tokens_[i].kind != Token::kLiteral) return false;
  }
  return true;
}

bool Glob::Match(std::string_view name) const {
  std::unordered_set<size_t> failed;
  return MatchFrom(0, name, 0, failed);
}

bool Glob::MatchFrom(size_t ti, std::string_view s, size_t si, std::unordered_set<size_t>& failed) const {
  // Without this, "*a*a*a*…b" or "**/**/**/…" against a long path backtracks exponentially (found by
  // fuzz/dockerignore_fuzz: a 100-byte .dockerignore line held one match for minutes).
  const size_t key = ti * (s.size() + 1) + si;
  if (failed.count(key) != 0) return false;
  if (MatchHere(ti, s, si, failed)) return true;
  failed.insert(key);
  return false;
}

bool Glob::MatchHere(size_t ti, std::string_view s, size_t si, std::unordered_set<size_t>& failed) const {
  while (ti < tokens_.size()) {
    const Token& tok = tokens_[ti];
    switch (tok.kind) {
      case Token::kLiteral:
        if (si >= s.size() || s[si] != tok.c) return false;
        break;
      case Token::kAny:
        if (si >= s.size() || s[si] == '/') return false;
        break;
      case Token::kClass:
        if (si >= s.size() || !tok.bytes.test(static_cast<unsigned char>(s[si]))) return false;
        break;
      case Token::kStar:
        // [^/]*
        for (size_t k = si;; ++k) {
          if (MatchFrom(ti + 1, s, k, failed)) return true;
          if (k >= s.size() || s[k] == '/') return false;
        }
      case Token::kDoubleStar: {
        // (.*/)? : nothing, or anything ending in '/'. A run of them means the same as one, and ends
        // like a final "**" when one does: skipped here, so that a line of 100000 "**/" does not
        // recurse 100000 deep (seen while fixing the fuzzer's timeout finding).
        size_t next = ti + 1;
        while (next < tokens_.size() && tokens_[next].kind == Token::kDoubleStar) ++next;
        if (next < tokens_.size() && tokens_[next].kind == Token::kDoubleStarEnd) return true;
        if (MatchFrom(next, s, si, failed)) return true;
        for (size_t k = si; k < s.size(); ++k) {
          if (s[k] == '/' && MatchFrom(next, s, k + 1, failed)) return true;
        }
        return false;
      }
      case Token::kDoubleStarEnd:
        return true;  // .*$
    }
    ++si;
    ++ti;
  }
  return si == s.size();
}

bool GlobMatch(std::string_view pattern, std::string_view name) {
  Result<Glob> glob = Glob::Compile(pattern);
  return glob.ok() && glob->Match(name);
}

}  // namespace kiln::dockerfile
