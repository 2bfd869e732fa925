#include "executor/dockerfile/dockerignore.h"

#include "core/path.h"

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
  for (std::string_view part : PathComponents(p)) {
    if (part == ".") {
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
    // patternmatcher compiles a pattern to a regexp after checking it with filepath.Match: '**' crosses
    // directories, and classes are as strict as both.
    Result<Glob> glob = Glob::Compile(p, GlobOptions{.double_star = true, .strict_classes = true});
    if (!glob.ok()) return InvalidArgument("syntax error in .dockerignore pattern \"" + raw + "\"");
    pat.glob = std::move(*glob);
    pat.cleaned = p;
    m.patterns_.push_back(std::move(pat));
  }
  return m;
}

bool IgnoreMatcher::Match(const Pattern& p, std::string_view path) {
  // patternmatcher classifies patterns; the exact/prefix/suffix shortcuts are not always the same as
  // the regexp, so follow the classification.
  bool escapes = p.cleaned.find('\\') != std::string::npos;
  if (p.glob.IsDoubleStarThenLiterals() && !escapes) {
    // suffixMatch: strings.HasSuffix(path, pattern[2:]) or "**/foo" matching "foo".
    std::string_view suffix = std::string_view(p.cleaned).substr(2);
    if (path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix) return true;
    return !suffix.empty() && suffix[0] == '/' && path == suffix.substr(1);
  }
  return p.glob.Match(path);
}

bool IgnoreMatcher::Excluded(std::string_view file) const {
  std::string path = CleanPath(file);
  if (path == ".") return false;
  std::vector<std::string_view> parents = PathAncestors(path);
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
