// Glob patterns over slash-separated paths, as Docker matches them: Go's filepath.Match syntax (COPY
// and ADD sources), optionally with the '**' and stricter classes of moby/patternmatcher
// (.dockerignore, COPY --exclude).
//
//   '*'       any run of bytes other than '/'
//   '?'       one byte other than '/'
//   '[...]'   one byte of the class: bytes and ranges lo-hi, '\' escapes inside; '[^...]' negates.
//             As in Go, '!' does not negate (it is an ordinary byte) and a class may match '/'.
//   '\c'      the byte c
//   c         itself
//
// Matching is by byte, not by UTF-8 character: '?' and a class take one byte (Go takes one rune).
// Pure; a compiled Glob is immutable and safe to share between threads.
#pragma once

#include <bitset>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/status.h"

namespace kiln::dockerfile {

struct GlobOptions {
  /// patternmatcher: "**" (and "**/") matches any number of directories, including none, and a
  /// trailing "**" everything below. Without it a run of '*' is one '*', as in filepath.Match.
  bool double_star = false;
  /// patternmatcher's regexp translation: a range with high < low, or '*' or '?' inside a class (even
  /// escaped), is malformed. filepath.Match accepts both (an empty range; ordinary bytes).
  bool strict_classes = false;
};

/// A compiled pattern.
class Glob {
 public:
  /// Compiles `pattern`. Errors: kInvalidArgument "syntax error in pattern ..." for a malformed
  /// pattern (a trailing '\', an unterminated or empty class, a class range with a missing end, or
  /// what `options.strict_classes` forbids), where Go's filepath.Match returns ErrBadPattern.
  static Result<Glob> Compile(std::string_view pattern, GlobOptions options);
  static Result<Glob> Compile(std::string_view pattern) { return Compile(pattern, GlobOptions{}); }

  /// Whether the pattern matches all of `name`. Time and memory O(pattern tokens × name length),
  /// whatever the pattern (a hostile .dockerignore cannot make matching exponential).
  bool Match(std::string_view name) const;

  /// Whether the pattern is a leading "**" (double_star) followed by plain bytes only.
  /// patternmatcher matches such a pattern by suffix instead of by its regexp.
  bool IsDoubleStarThenLiterals() const;

 private:
  struct Token {
    enum Kind { kLiteral, kStar, kAny, kDoubleStar, kDoubleStarEnd, kClass } kind = kLiteral;
    char c = 0;               // kLiteral
    std::bitset<256> bytes;   // kClass: the bytes it matches, negation applied
  };
  /// Whether tokens from `ti` match `s` from `si`. `failed` remembers the (ti, si) pairs already known
  /// not to match, so backtracking over several stars visits each pair once (and memory grows only
  /// with the pairs visited). Recursion is one level per star that is tried, and a run of "**/" is
  /// tried as one, so its depth grows with the name's length, not the pattern's.
  bool MatchFrom(size_t ti, std::string_view s, size_t si, std::unordered_set<size_t>& failed) const;
  /// MatchFrom without the memo lookup.
  bool MatchHere(size_t ti, std::string_view s, size_t si, std::unordered_set<size_t>& failed) const;

  std::vector<Token> tokens_;
};

/// Go's filepath.Match on slash-separated names: whether `pattern` matches all of `name`. A malformed
/// pattern matches nothing.
bool GlobMatch(std::string_view pattern, std::string_view name);

}  // namespace kiln::dockerfile
