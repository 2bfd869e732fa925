// Error formatting for the Dockerfile frontend: "Dockerfile:LINE:COL: message", the source line and a
// caret under the column, so a person can see exactly what kiln rejected.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kiln::dockerfile {

/// A position in the source: 1-based line and 1-based byte column (0 = unknown).
struct Location {
  int line = 0;
  int column = 0;
  int end_line = 0;  ///< last physical line of the instruction (continuations, heredocs)
};

/// The text of a Dockerfile split into physical lines, with the name used in messages.
class Source {
 public:
  Source() = default;
  Source(std::string name, std::string_view text);

  const std::string& name() const { return name_; }
  const std::vector<std::string>& lines() const { return lines_; }
  /// The 1-based line `n`, or "" when out of range.
  std::string_view Line(int n) const;

  /// kInvalidArgument "NAME:LINE:COL: message\n<line>\n<caret>". Without a line only
  /// "NAME: message"; without a column "NAME:LINE: message" and the line with no caret.
  Status ErrorAt(const Location& loc, std::string_view message) const;
  /// Same text without the Status wrapper (for warnings).
  std::string Format(const Location& loc, std::string_view message) const;

 private:
  std::string name_;
  std::vector<std::string> lines_;
};

/// The option closest to `word` by edit distance (optimal string alignment, case-insensitive when
/// `ignore_case`), or "" when nothing is close enough to be a plausible typo (distance ≤ 2 and
/// smaller than the word).
std::string SuggestClosest(std::string_view word, const std::vector<std::string>& options, bool ignore_case);

/// " (did you mean X?)" or "" — appended to messages about unknown names.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& options, bool ignore_case);

}  // namespace kiln::dockerfile
