#include "executor/dockerfile/errors.h"

#include <algorithm>
#include <cctype>

namespace kiln::dockerfile {

Source::Source(std::string name, std::string_view text) : name_(std::move(name)) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      if (start < text.size()) lines_.emplace_back(text.substr(start));
      break;
    }
    std::string_view line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines_.emplace_back(line);
    start = nl + 1;
  }
  if (!lines_.empty() && lines_.back().size() > 0 && lines_.back().back() == '\r') lines_.back().pop_back();
}

std::string_view Source::Line(int n) const {
  if (n < 1 || static_cast<size_t>(n) > lines_.size()) return {};
  return lines_[n - 1];
}

std::string Source::Format(const Location& loc, std::string_view message) const {
  std::string out = name_;
  if (loc.line > 0) {
    out += ":" + std::to_string(loc.line);
    if (loc.column > 0) out += ":" + std::to_string(loc.column);
  }
  out += ": ";
  out += message;
  if (loc.line > 0 && static_cast<size_t>(loc.line) <= lines_.size()) {
    std::string_view line = Line(loc.line);
    out += "\n";
    out += line;
    if (loc.column > 0) {
      out += "\n";
      // Keep tabs so the caret lines up under the same column in a terminal.
      for (int i = 0; i + 1 < loc.column; ++i) {
        out += (static_cast<size_t>(i) < line.size() && line[i] == '\t') ? '\t' : ' ';
      }
      out += "^";
    }
  }
  return out;
}

Status Source::ErrorAt(const Location& loc, std::string_view message) const {
  return InvalidArgument(Format(loc, message));
}

namespace {

int Distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= m; ++j) d[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      // A swapped pair ("CPOY") is one typo, not two.
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string SuggestClosest(std::string_view word, const std::vector<std::string>& options, bool ignore_case) {
  if (word.empty() || word.size() > 64) return "";
  std::string w = ignore_case ? Lower(word) : std::string(word);
  int best = 3;
  std::string match;
  for (const std::string& o : options) {
    int d = Distance(w, ignore_case ? Lower(o) : o);
    if (d < best) {
      best = d;
      match = o;
    }
  }
  if (!match.empty() && best < static_cast<int>(word.size())) return match;
  // A truncated name ("--plat") is a plausible typo too.
  if (w.size() >= 3) {
    for (const std::string& o : options) {
      std::string lo = ignore_case ? Lower(o) : o;
      if (lo.size() > w.size() && lo.compare(0, w.size(), w) == 0) return o;
    }
  }
  return "";
}

std::string DidYouMean(std::string_view word, const std::vector<std::string>& options, bool ignore_case) {
  std::string s = SuggestClosest(word, options, ignore_case);
  return s.empty() ? "" : " (did you mean " + s + "?)";
}

}  // namespace kiln::dockerfile
