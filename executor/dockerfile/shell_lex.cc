#include "executor/dockerfile/shell_lex.h"

#include <fnmatch.h>

#include <cctype>

namespace kiln::dockerfile {
namespace {

constexpr int kEof = -1;

bool IsSpace(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

// Accumulates field-split words the way BuildKit's wordsStruct does: characters from unquoted
// variable values split at whitespace, quoted text never does, and empty words are dropped.
class Words {
 public:
  void AddChar(char c) {
    if (IsSpace(c)) {
      if (in_word_ && !word_.empty()) {
        words_.push_back(std::move(word_));
        word_.clear();
        in_word_ = false;
      }
    } else {
      AddRawChar(c);
    }
  }
  void AddRawChar(char c) {
    word_ += c;
    in_word_ = true;
  }
  void AddString(std::string_view s) {
    for (char c : s) AddChar(c);
  }
  void AddRawString(std::string_view s) {
    word_ += s;
    in_word_ = true;
  }
  std::vector<std::string> Take() {
    if (!word_.empty()) words_.push_back(std::move(word_));
    word_.clear();
    return std::move(words_);
  }

 private:
  std::vector<std::string> words_;
  std::string word_;
  bool in_word_ = false;
};

struct Piece {
  std::string text;
  std::vector<std::string> words;
};

// A byte-wise port of BuildKit's shellWord. Errors are plain messages; the caller wraps them with
// "failed to process ...".
class ShellWord {
 public:
  ShellWord(std::string_view src, const Vars& env, const LexOptions& opts, std::set<std::string>* used)
      : src_(src), env_(env), opts_(opts), used_(used), raw_escapes_(opts.raw_escapes) {}

  Status Process(Piece* out) { return ProcessStopOnAny({kEof}, out); }

 private:
  int Peek() const { return pos_ < src_.size() ? static_cast<unsigned char>(src_[pos_]) : kEof; }
  int Next() { return pos_ < src_.size() ? static_cast<unsigned char>(src_[pos_++]) : kEof; }

  static bool Contains(const std::vector<int>& stops, int c) {
    for (int s : stops)
      if (s == c) return true;
    return false;
  }

  Status ProcessStopOnAny(const std::vector<int>& stops, Piece* out) {
    std::string result;
    Words words;
    while (Peek() != kEof) {
      int ch = Peek();
      if (Contains(stops, ch)) {
        Next();
        out->text = std::move(result);
        out->words = words.Take();
        return OkStatus();
      }
      if (ch == '$' || ch == '\'' || ch == '"') {
        std::string tmp;
        Status s = ch == '$' ? ProcessDollar(&tmp) : ch == '\'' ? ProcessSingleQuote(&tmp) : ProcessDoubleQuote(&tmp);
        if (!s.ok()) return s;
        result += tmp;
        if (ch == '$') {
          words.AddString(tmp);
        } else {
          words.AddRawString(tmp);
        }
        continue;
      }
      ch = Next();
      if (ch == static_cast<unsigned char>(opts_.escape)) {
        if (raw_escapes_) {
          words.AddRawChar(static_cast<char>(ch));
          result += static_cast<char>(ch);
        }
        // The escape character escapes the next one; at the very end it is dropped.
        ch = Next();
        if (ch == kEof) break;
        words.AddRawChar(static_cast<char>(ch));
      } else {
        words.AddChar(static_cast<char>(ch));
      }
      result += static_cast<char>(ch);
    }
    if (!Contains(stops, kEof)) {
      std::string which;
      for (int s : stops) which += static_cast<char>(s);
      return InvalidArgument("unexpected end of statement while looking for matching " + which);
    }
    out->text = std::move(result);
    out->words = words.Take();
    return OkStatus();
  }

  Status ProcessSingleQuote(std::string* out) {
    int ch = Next();
    if (opts_.raw_quotes) *out += static_cast<char>(ch);
    for (;;) {
      ch = Next();
      if (ch == kEof) return InvalidArgument("unexpected end of statement while looking for matching single-quote");
      if (ch == '\'') {
        if (opts_.raw_quotes) *out += static_cast<char>(ch);
        return OkStatus();
      }
      *out += static_cast<char>(ch);
    }
  }

  Status ProcessDoubleQuote(std::string* out) {
    int ch = Next();
    if (opts_.raw_quotes) *out += static_cast<char>(ch);
    for (;;) {
      int p = Peek();
      if (p == kEof) return InvalidArgument("unexpected end of statement while looking for matching double-quote");
      if (p == '"') {
        ch = Next();
        if (opts_.raw_quotes) *out += static_cast<char>(ch);
        return OkStatus();
      }
      if (p == '$') {
        std::string value;
        KILN_RETURN_IF_ERROR(ProcessDollar(&value));
        *out += value;
        continue;
      }
      ch = Next();
      if (ch == static_cast<unsigned char>(opts_.escape)) {
        if (raw_escapes_) *out += static_cast<char>(ch);
        int n = Peek();
        if (n == kEof) continue;  // the loop reports the missing quote
        // Only ", $ and the escape character itself can be escaped inside double quotes.
        if (n == '"' || n == '$' || n == static_cast<unsigned char>(opts_.escape)) ch = Next();
      }
      *out += static_cast<char>(ch);
    }
  }

  std::string ProcessName() {
    std::string name;
    while (Peek() != kEof) {
      int ch = Peek();
      if (name.empty() && std::isdigit(ch)) {
        while (Peek() != kEof && std::isdigit(Peek())) name += static_cast<char>(Next());
        return name;
      }
      if (name.empty() && (ch == '@' || ch == '*' || ch == '#' || ch == '?' || ch == '-' || ch == '$' ||
                           ch == '!' || ch == '0')) {
        Next();
        return std::string(1, static_cast<char>(ch));
      }
      if (!std::isalnum(ch) && ch != '_') break;
      name += static_cast<char>(Next());
    }
    return name;
  }

  bool GetEnv(const std::string& name, std::string* value) {
    auto it = env_.find(name);
    if (it == env_.end()) {
      value->clear();
      return false;
    }
    if (used_ != nullptr) used_->insert(name);
    *value = it->second;
    return true;
  }

  // Runs ProcessStopOnAny for the word inside ${...}, turning "ran off the end" into BuildKit's
  // "missing '}'" message.
  Status SubWord(const std::vector<int>& stops, bool raw_escapes, std::string* word) {
    bool saved = raw_escapes_;
    raw_escapes_ = raw_escapes || saved;
    Piece piece;
    Status s = ProcessStopOnAny(stops, &piece);
    raw_escapes_ = saved;
    if (!s.ok()) {
      if (Peek() == kEof) return InvalidArgument("syntax error: missing '}'");
      return s;
    }
    *word = std::move(piece.text);
    return OkStatus();
  }

  Status ProcessDollar(std::string* out) {
    Next();  // '$'
    if (Peek() != '{') {
      std::string name = ProcessName();
      if (name.empty()) {
        *out = "$";
        return OkStatus();
      }
      std::string value;
      if (!GetEnv(name, &value) && opts_.skip_unset) {
        *out = "$" + name;
        return OkStatus();
      }
      *out = value;
      return OkStatus();
    }
    Next();  // '{'
    int p = Peek();
    if (p == kEof) return InvalidArgument("syntax error: missing '}'");
    if (p == '{' || p == '}' || p == ':') return InvalidArgument("syntax error: bad substitution");
    std::string name = ProcessName();
    int ch = Next();
    std::string chs = ch == kEof ? "" : std::string(1, static_cast<char>(ch));
    bool null_is_unset = false;
    std::string value;
    switch (ch) {
      case kEof:
        return InvalidArgument("syntax error: missing '}'");
      case '}': {
        if (!GetEnv(name, &value) && opts_.skip_unset) {
          *out = "${" + name + "}";
          return OkStatus();
        }
        *out = value;
        return OkStatus();
      }
      case ':':
        null_is_unset = true;
        ch = Next();
        if (ch != kEof) chs += static_cast<char>(ch);
        [[fallthrough]];
      case '+':
      case '-':
      case '?':
      case '#':
      case '%': {
        bool raw = ch == '#' || ch == '%';
        if (null_is_unset && raw) return InvalidArgument("unsupported modifier (" + chs + ") in substitution");
        std::string word;
        KILN_RETURN_IF_ERROR(SubWord({'}'}, raw, &word));
        bool set = GetEnv(name, &value);
        if (opts_.skip_unset && !set) {
          *out = "${" + name + chs + word + "}";
          return OkStatus();
        }
        switch (ch) {
          case '-':
            *out = (!set || (null_is_unset && value.empty())) ? word : value;
            return OkStatus();
          case '+':
            *out = (!set || (null_is_unset && value.empty())) ? "" : word;
            return OkStatus();
          case '?':
            if (!set) return InvalidArgument(name + ": " + (word.empty() ? "is not allowed to be unset" : word));
            if (null_is_unset && value.empty())
              return InvalidArgument(name + ": " + (word.empty() ? "is not allowed to be empty" : word));
            *out = value;
            return OkStatus();
          case '#':
          case '%': {
            bool greedy = !word.empty() && word[0] == static_cast<char>(ch);
            if (greedy) word.erase(0, 1);
            *out = ch == '%' ? TrimSuffix(word, value, greedy) : TrimPrefix(word, value, greedy);
            return OkStatus();
          }
          default:
            return InvalidArgument("unsupported modifier (" + chs + ") in substitution");
        }
      }
      case '/': {
        bool all = Peek() == '/';
        if (all) Next();
        std::string pattern;
        size_t before = pos_;
        KILN_RETURN_IF_ERROR(SubWord({'/', '}'}, true, &pattern));
        std::string replacement;
        // SubWord consumed the stop character; only a '/' introduces a replacement.
        if (pos_ > before && src_[pos_ - 1] == '/') KILN_RETURN_IF_ERROR(SubWord({'}'}, true, &replacement));
        bool set = GetEnv(name, &value);
        if (opts_.skip_unset && !set) {
          *out = "${" + name + "/" + pattern + "/" + replacement + "}";
          return OkStatus();
        }
        *out = Replace(value, pattern, replacement, all);
        return OkStatus();
      }
      default:
        return InvalidArgument("unsupported modifier (" + chs + ") in substitution");
    }
  }

  static bool Glob(const std::string& pattern, const std::string& s) {
    return fnmatch(pattern.c_str(), s.c_str(), 0) == 0;
  }
  static std::string TrimPrefix(const std::string& pattern, const std::string& value, bool greedy) {
    for (size_t k = 0; k <= value.size(); ++k) {
      size_t n = greedy ? value.size() - k : k;
      if (Glob(pattern, value.substr(0, n))) return value.substr(n);
    }
    return value;
  }
  static std::string TrimSuffix(const std::string& pattern, const std::string& value, bool greedy) {
    for (size_t k = 0; k <= value.size(); ++k) {
      size_t start = greedy ? k : value.size() - k;
      if (Glob(pattern, value.substr(start))) return value.substr(0, start);
    }
    return value;
  }
  static std::string Replace(const std::string& value, const std::string& pattern, const std::string& repl, bool all) {
    std::string out;
    size_t s = 0;
    while (s <= value.size()) {
      size_t match_end = std::string::npos;
      for (size_t e = value.size() + 1; e-- > s;) {
        if (Glob(pattern, value.substr(s, e - s))) {
          match_end = e;
          break;
        }
      }
      if (match_end == std::string::npos) {
        if (s < value.size()) out += value[s];
        ++s;
        continue;
      }
      out += repl;
      if (match_end == s) {
        if (s < value.size()) out += value[s];
        ++s;
      } else {
        s = match_end;
      }
      if (!all) {
        if (s <= value.size()) out += value.substr(s);
        return out;
      }
    }
    return out;
  }

  std::string_view src_;
  size_t pos_ = 0;
  const Vars& env_;
  LexOptions opts_;
  std::set<std::string>* used_;
  bool raw_escapes_;
};

Result<Piece> Run(std::string_view word, const Vars& env, const LexOptions& opts, std::set<std::string>* used) {
  ShellWord sw(word, env, opts, used);
  Piece piece;
  Status s = sw.Process(&piece);
  if (!s.ok()) {
    return InvalidArgument("failed to process \"" + std::string(word) + "\": " + s.message());
  }
  return piece;
}

}  // namespace

Result<std::string> ExpandWord(std::string_view word, const Vars& env, const LexOptions& opts,
                               std::set<std::string>* used) {
  KILN_ASSIGN_OR_RETURN(Piece p, Run(word, env, opts, used));
  return std::move(p.text);
}

Result<std::string> ExpandWord(std::string_view word, const Vars& env, char escape, std::set<std::string>* used) {
  LexOptions o;
  o.escape = escape;
  return ExpandWord(word, env, o, used);
}

Result<std::vector<std::string>> ExpandWords(std::string_view text, const Vars& env, const LexOptions& opts,
                                             std::set<std::string>* used) {
  KILN_ASSIGN_OR_RETURN(Piece p, Run(text, env, opts, used));
  return std::move(p.words);
}

Result<std::vector<std::string>> ExpandWords(std::string_view text, const Vars& env, char escape,
                                             std::set<std::string>* used) {
  LexOptions o;
  o.escape = escape;
  return ExpandWords(text, env, o, used);
}

}  // namespace kiln::dockerfile
