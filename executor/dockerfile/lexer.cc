#include "executor/dockerfile/lexer.h"

#include <cctype>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "executor/dockerfile/shell_lex.h"

namespace kiln::dockerfile {

Location LogicalLine::At(size_t offset) const {
  if (positions.empty()) return loc;
  Location l = positions[std::min(offset, positions.size() - 1)];
  if (offset >= positions.size()) l.column += static_cast<int>(offset - positions.size() + 1);
  l.end_line = loc.end_line;
  return l;
}

JsonArgs ParseJsonArgs(std::string_view text, std::vector<std::string>* out, std::string* trailing) {
  size_t i = 0;
  while (i < text.size() && IsGoSpace(text[i])) ++i;
  text.remove_prefix(i);
  if (text.empty() || text[0] != '[') return JsonArgs::kNotJson;
  // BuildKit decodes with json.NewDecoder(...).Decode, which reads the first JSON value and ignores
  // whatever follows it: `CMD ["a"] # note` is the exec form ["a"] (`#` is no comment there).
  // operator>> parses one value the same way and stops after it.
  nlohmann::json j;
  std::istringstream in{std::string(text)};
  try {
    in >> j;
  } catch (const nlohmann::json::exception&) {
    return JsonArgs::kNotJson;
  }
  if (!j.is_array()) return JsonArgs::kNotJson;
  if (trailing != nullptr) {
    in.clear();
    std::streamoff end = in.tellg();
    std::string rest = end < 0 ? std::string() : std::string(text.substr(static_cast<size_t>(end)));
    size_t a = rest.find_first_not_of(" \t\r\n\f\v");
    *trailing = a == std::string::npos ? std::string() : rest.substr(a);
  }
  std::vector<std::string> args;
  for (const auto& e : j) {
    if (!e.is_string()) return JsonArgs::kNotStrings;
    args.push_back(e.get<std::string>());
  }
  if (out != nullptr) *out = std::move(args);
  return JsonArgs::kOk;
}

namespace {

// Go's regexp \s: [\t\n\f\r ].
bool IsReSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class DirectiveState {
 public:
  // Mirrors possibleParserDirective: `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
  Status Check(std::string_view line, int lineno, const Source& src, Directives* d) {
    if (done_) return OkStatus();
    size_t i = 0;
    if (line.empty() || line[0] != '#') return Done();
    ++i;
    while (i < line.size() && IsReSpace(line[i])) ++i;
    size_t ks = i;
    if (i >= line.size() || !std::isalpha(static_cast<unsigned char>(line[i]))) return Done();
    while (i < line.size() && std::isalnum(static_cast<unsigned char>(line[i]))) ++i;
    std::string key = ToLower(line.substr(ks, i - ks));
    while (i < line.size() && IsReSpace(line[i])) ++i;
    if (i >= line.size() || line[i] != '=') return Done();
    ++i;
    while (i < line.size() && IsReSpace(line[i])) ++i;
    size_t vs = i;
    size_t ve = line.size();
    while (ve > vs && IsReSpace(line[ve - 1])) --ve;
    if (ve == vs) return Done();
    std::string value(line.substr(vs, ve - vs));
    if (key != "escape" && key != "syntax" && key != "check") return Done();
    Location loc{lineno, static_cast<int>(ks) + 1, lineno};
    if (!seen_.insert(key).second) return src.ErrorAt(loc, "only one " + key + " parser directive can be used");
    if (key == "escape") {
      if (value != "`" && value != "\\")
        return src.ErrorAt(loc, "invalid escape token '" + value + "' does not match ` or \\");
      d->escape = value[0];
    } else if (key == "syntax") {
      d->syntax = value;
    } else {
      d->check = value;
    }
    return OkStatus();
  }

 private:
  Status Done() {
    done_ = true;
    return OkStatus();
  }
  bool done_ = false;
  std::set<std::string> seen_;
};

bool IsCommentLine(std::string_view raw) {
  size_t i = 0;
  while (i < raw.size() && IsGoSpace(raw[i])) ++i;
  return i < raw.size() && raw[i] == '#';
}

// The continuation regex `\<escape>[ \t]*$`: returns the line without it and whether it was there.
bool TrimContinuation(std::string_view* line, char escape) {
  size_t e = line->size();
  while (e > 0 && ((*line)[e - 1] == ' ' || (*line)[e - 1] == '\t')) --e;
  if (e > 0 && (*line)[e - 1] == escape) {
    *line = line->substr(0, e - 1);
    return true;
  }
  return false;
}

// BuildKit's extractBuilderFlags, tracking where each flag starts in `line`.
void ExtractFlags(const LogicalLine& ll, size_t start, std::vector<RawFlag>* flags, size_t* rest) {
  const std::string& line = ll.original;
  enum { kSpaces, kWord, kQuote } phase = kSpaces;
  std::string word;
  size_t word_start = start;
  char quote = 0;
  bool blank_ok = false;
  for (size_t pos = start; pos <= line.size(); ++pos) {
    char ch = pos < line.size() ? line[pos] : 0;
    if (phase == kSpaces) {
      if (pos == line.size()) break;
      if (IsGoSpace(ch)) continue;
      if (ch != '-' || pos + 1 == line.size() || line[pos + 1] != '-') {
        *rest = pos;
        return;
      }
      phase = kWord;
      word_start = pos;
    }
    if ((phase == kWord || phase == kQuote) && pos == line.size()) {
      if (word != "--" && (blank_ok || !word.empty())) flags->push_back({word, ll.At(word_start)});
      break;
    }
    if (phase == kWord) {
      if (IsGoSpace(ch)) {
        phase = kSpaces;
        if (word == "--") {
          *rest = pos;
          return;
        }
        if (blank_ok || !word.empty()) flags->push_back({word, ll.At(word_start)});
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kQuote;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == line.size()) continue;
        ch = line[++pos];
      }
      word += ch;
      continue;
    }
    if (phase == kQuote) {
      if (ch == quote) {
        phase = kWord;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == line.size()) {
          phase = kWord;
          continue;
        }
        ch = line[++pos];
      }
      word += ch;
    }
  }
  *rest = line.size();
}

// The instruction a heredoc would belong to: the line's own, or an ONBUILD's trigger; it must be
// RUN, COPY or ADD and not in JSON form (flags are skipped before the JSON check, as the parser does).
bool CanContainHeredoc(const LogicalLine& ll) {
  std::string kw = ToLower(ll.keyword);
  std::string args = ll.args;
  if (kw == "onbuild") {
    LogicalLine sub;
    size_t k = 0;
    while (k < args.size() && !IsGoSpace(args[k])) ++k;
    kw = ToLower(args.substr(0, k));
    while (k < args.size() && IsGoSpace(args[k])) ++k;
    sub.original = args;
    std::vector<RawFlag> ignored;
    size_t rest = args.size();
    ExtractFlags(sub, k, &ignored, &rest);
    args = args.substr(rest);
  }
  if (kw != "run" && kw != "copy" && kw != "add") return false;
  return ParseJsonArgs(args, nullptr) == JsonArgs::kNotJson;
}

std::string ChompTabs(const std::string& s) {
  std::string out;
  bool at_start = true;
  for (char c : s) {
    if (at_start && c == '\t') continue;
    at_start = c == '\n';
    out += c;
  }
  return out;
}

}  // namespace

Result<bool> ParseHeredocWord(std::string_view src, Heredoc* out) {
  // reHeredoc: ^(\d*)<<(-?)\s*([^<]*)$
  size_t i = 0;
  while (i < src.size() && std::isdigit(static_cast<unsigned char>(src[i]))) ++i;
  std::string_view digits = src.substr(0, i);
  if (src.substr(i, 2) != "<<") return false;
  i += 2;
  bool chomp = false;
  if (i < src.size() && src[i] == '-') {
    chomp = true;
    ++i;
  }
  while (i < src.size() && IsReSpace(src[i])) ++i;
  std::string_view rest = src.substr(i);
  if (rest.find('<') != std::string_view::npos || rest.empty()) return false;

  Vars none;
  LexOptions opts;
  opts.skip_unset = true;
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> words, ExpandWords(rest, none, opts));
  if (words.size() != 1) return false;
  opts.raw_quotes = true;
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> raw, ExpandWords(rest, none, opts));
  if (raw.size() != words.size()) return InvalidArgument("internal lexing of heredoc produced inconsistent results: " + std::string(rest));
  auto quotes = [](const std::string& w) {
    size_t n = 0;
    for (char c : w) n += (c == '\'' || c == '"');
    return n;
  };
  out->name = words[0];
  out->expand = quotes(words[0]) == quotes(raw[0]);
  out->chomp = chomp;
  out->fd = 0;
  for (char c : digits) out->fd = std::min(out->fd * 10 + (c - '0'), 1 << 20);
  out->content.clear();
  return true;
}

Result<LexResult> Lex(const Source& source, char escape) {
  LexResult result;
  Directives& d = result.directives;
  d.escape = escape;
  DirectiveState directives;
  const std::vector<std::string>& lines = source.lines();
  const size_t n = lines.size();
  size_t i = 0;
  while (i < n) {
    std::string_view raw = lines[i];
    if (i == 0 && raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);
    int lineno = static_cast<int>(i) + 1;
    ++i;
    size_t lead = 0;
    while (lead < raw.size() && IsGoSpace(raw[lead])) ++lead;
    std::string_view trimmed = raw.substr(lead);
    size_t col0 = lead + (lines[i - 1].size() - raw.size());
    KILN_RETURN_IF_ERROR(directives.Check(trimmed, lineno, source, &d));
    if (!trimmed.empty() && trimmed[0] == '#') trimmed = {};
    bool cont = TrimContinuation(&trimmed, d.escape);
    if (!cont && trimmed.empty()) continue;

    LogicalLine ll;
    ll.loc = {lineno, static_cast<int>(col0) + 1, lineno};
    std::string line(trimmed);
    for (size_t j = 0; j < trimmed.size(); ++j) ll.positions.push_back({lineno, static_cast<int>(col0 + j) + 1, lineno});
    bool empty_continuation = false;
    int last = lineno;
    while (cont && i < n) {
      std::string_view next = lines[i];
      int ln = static_cast<int>(i) + 1;
      ++i;
      last = ln;
      KILN_RETURN_IF_ERROR(directives.Check(next, ln, source, &d));
      if (IsCommentLine(next)) continue;
      bool blank = true;
      for (char c : next) blank = blank && IsGoSpace(c);
      if (blank) {
        empty_continuation = true;
        continue;
      }
      cont = TrimContinuation(&next, d.escape);
      line += next;
      for (size_t j = 0; j < next.size(); ++j) ll.positions.push_back({ln, static_cast<int>(j) + 1, ln});
    }
    ll.loc.end_line = last;

    // splitCommand: trim, then the keyword up to the first run of [\t\v\f\r ].
    size_t s = 0, e = line.size();
    while (s < e && IsGoSpace(line[s])) ++s;
    while (e > s && IsGoSpace(line[e - 1])) --e;
    ll.original = line.substr(s, e - s);
    ll.positions = std::vector<Location>(ll.positions.begin() + s, ll.positions.begin() + e);
    if (!ll.positions.empty()) ll.loc = Location{ll.positions[0].line, ll.positions[0].column, last};
    if (empty_continuation) {
      result.warnings.push_back(source.Format(ll.loc, "empty continuation line found in: " + ll.original +
                                                          " (empty continuation lines will become errors in a future release)"));
    }
    size_t k = 0;
    const std::string& o = ll.original;
    while (k < o.size() && !(o[k] == ' ' || o[k] == '\t' || o[k] == '\v' || o[k] == '\f' || o[k] == '\r')) ++k;
    ll.keyword = o.substr(0, k);
    while (k < o.size() && IsGoSpace(o[k])) ++k;
    size_t rest = o.size();
    ExtractFlags(ll, k, &ll.flags, &rest);
    size_t as = rest, ae = o.size();
    while (as < ae && IsGoSpace(o[as])) ++as;
    while (ae > as && IsGoSpace(o[ae - 1])) --ae;
    ll.args = o.substr(as, ae - as);
    ll.args_loc = ll.At(as);
    ll.args_offset = as;

    // Heredocs: only RUN, COPY and ADD in their non-JSON form, also as an ONBUILD trigger
    // (BuildKit's canContainHeredoc), found among the shell words of the whole line
    // (heredocsFromLine always lexes with a backslash escape).
    if (o.find("<<") != std::string::npos && CanContainHeredoc(ll)) {
      LexOptions opts;
      opts.raw_quotes = true;
      opts.raw_escapes = true;
      Vars none;
      Result<std::vector<std::string>> words = ExpandWords(o, none, opts);
      size_t search = 0;
      if (words.ok()) {
        for (const std::string& w : *words) {
          Heredoc h;
          Result<bool> is = ParseHeredocWord(w, &h);
          if (!is.ok()) return source.ErrorAt(ll.loc, is.status().message());
          if (!*is) continue;
          size_t at = o.find("<<", search);
          Location hloc = at == std::string::npos ? ll.loc : ll.At(at > 0 && std::isdigit(static_cast<unsigned char>(o[at - 1])) ? at - 1 : at);
          if (at != std::string::npos) search = at + 2;
          bool terminated = false;
          while (i < n) {
            std::string_view body = lines[i];
            ++i;
            last = static_cast<int>(i);
            std::string_view term = body;
            if (h.chomp) {
              while (!term.empty() && term[0] == '\t') term.remove_prefix(1);
            }
            if (term == h.name) {
              terminated = true;
              break;
            }
            h.content += body;
            h.content += '\n';
          }
          if (!terminated) return source.ErrorAt(hloc, "unterminated heredoc " + h.name);
          if (h.chomp) h.content = ChompTabs(h.content);
          ll.heredocs.push_back(std::move(h));
        }
      }
      ll.loc.end_line = last;
    }
    result.lines.push_back(std::move(ll));
  }
  if (result.lines.empty()) return source.ErrorAt(Location{}, "file with no instructions");
  return result;
}

}  // namespace kiln::dockerfile
