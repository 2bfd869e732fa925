// .dockerignore with Docker's exact semantics (moby/patternmatcher and its ignorefile reader).
//
//  - One pattern per line; lines starting with '#' are comments; blank lines are skipped.
//  - Patterns are trimmed, cleaned like Go's filepath.Clean, and a leading '/' is dropped: all
//    patterns are relative to the context root.
//  - '*' matches any run of non-'/' characters, '?' one non-'/' character, '[...]' a class,
//    '**' any number of directories (including none), '\' escapes the next character.
//  - '!' starts an exception. Patterns apply in order; the last one that matches wins.
//  - A path is also matched when a pattern matches one of its parent directories
//    (MatchesOrParentMatches), so "dir" excludes "dir/a/b".
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "executor/dockerfile/glob.h"

namespace kiln::dockerfile {

/// Reads .dockerignore text into patterns (ignorefile.ReadAll): comments and blanks dropped,
/// each pattern trimmed, cleaned, relative; exceptions keep their '!'.
std::vector<std::string> ReadIgnorePatterns(std::string_view text);

/// A compiled list of patterns. Immutable once built; safe to share between threads.
class IgnoreMatcher {
 public:
  /// Compiles `patterns` (as from ReadIgnorePatterns). Errors for "!" alone and malformed patterns
  /// (an unterminated '[' or a trailing '\'), like Go's filepath.ErrBadPattern.
  static Result<IgnoreMatcher> Create(const std::vector<std::string>& patterns);

  /// Whether `path` (slash-separated, relative to the context root) is excluded. "." never is.
  bool Excluded(std::string_view path) const;
  /// Whether any pattern is an exception (callers must then walk into excluded directories).
  bool HasExceptions() const { return has_exceptions_; }
  size_t size() const { return patterns_.size(); }

 private:
  struct Pattern {
    std::string cleaned;
    bool exclusion = false;
    Glob glob;
  };
  static bool Match(const Pattern& p, std::string_view path);

  std::vector<Pattern> patterns_;
  bool has_exceptions_ = false;
};

/// Go's path.Clean for slash-separated paths.
std::string CleanPath(std::string_view p);

/// Which ignore file applies: `<dockerfile>.dockerignore` next to the Dockerfile takes precedence
/// over `<context>/.dockerignore`. `exists` says whether a candidate path exists (the caller does the
/// I/O). Returns the path to read, or nullopt when neither exists.
std::optional<std::string> ChooseIgnoreFile(const std::string& context_dir, const std::string& dockerfile_path,
                                            const std::function<bool(const std::string& path)>& exists);

}  // namespace kiln::dockerfile
