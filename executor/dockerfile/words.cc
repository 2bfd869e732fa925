#include "executor/dockerfile/words.h"

#include <cctype>

namespace kiln::dockerfile {

std::string AsciiUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<Word> SplitWhitespace(const LogicalLine& ll) {
  std::vector<Word> out;
  const std::string& a = ll.args;
  size_t i = 0;
  while (i < a.size()) {
    while (i < a.size() && IsReWhitespace(a[i])) ++i;
    if (i >= a.size()) break;
    size_t s = i;
    while (i < a.size() && !IsReWhitespace(a[i])) ++i;
    out.push_back({a.substr(s, i - s), ll.args_offset + s});
  }
  return out;
}

// BuildKit's parseWords: splits at unquoted whitespace, keeping quotes and escapes in the words.
std::vector<Word> ParseWords(const LogicalLine& ll, char escape) {
  const std::string& rest = ll.args;
  std::vector<Word> words;
  enum { kSpaces, kWord, kQuote } phase = kSpaces;
  std::string word;
  size_t start = 0;
  char quote = 0;
  bool blank_ok = false;
  for (size_t pos = 0; pos <= rest.size(); ++pos) {
    char ch = pos < rest.size() ? rest[pos] : 0;
    if (phase == kSpaces) {
      if (pos == rest.size()) break;
      if (IsGoSpace(ch)) continue;
      phase = kWord;
      start = pos;
    }
    if ((phase == kWord || phase == kQuote) && pos == rest.size()) {
      if (blank_ok || !word.empty()) words.push_back({word, ll.args_offset + start});
      break;
    }
    if (phase == kWord) {
      if (IsGoSpace(ch)) {
        phase = kSpaces;
        if (blank_ok || !word.empty()) words.push_back({word, ll.args_offset + start});
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kQuote;
      }
      if (ch == escape) {
        if (pos + 1 == rest.size()) continue;
        word += ch;
        ch = rest[++pos];
      }
      word += ch;
      continue;
    }
    if (phase == kQuote) {
      if (ch == quote) phase = kWord;
      if (ch == escape && quote != '\'') {
        if (pos + 1 == rest.size()) {
          phase = kWord;
          continue;
        }
        word += ch;
        ch = rest[++pos];
      }
      word += ch;
    }
  }
  return words;
}

}  // namespace kiln::dockerfile
