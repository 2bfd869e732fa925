// Fuzz target: the Dockerfile variable expander (executor/dockerfile/shell_lex.h), which runs at
// build time on words of FROM, COPY, ENV, ARG, … with the stage's variables. The input's first byte
// picks the escape character and the lexer options; the rest is the word. It is expanded as one word
// and as a word list, with variables that hold blanks, quotes, '$' and nothing.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "executor/dockerfile/shell_lex.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::dockerfile;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string_view word(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const Vars kVars = {{"A", "a b"},   {"E", ""},         {"Q", "'\"$X"},  {"X", "${A}"},
                             {"P", "/usr/local/bin"}, {"N", "0"}, {"LONG", std::string(300, 'x')}};
  LexOptions opts;
  opts.escape = (mode & 1) != 0 ? '`' : '\\';
  opts.raw_quotes = (mode & 2) != 0;
  opts.raw_escapes = (mode & 4) != 0;
  opts.skip_unset = (mode & 8) != 0;
  std::set<std::string> used;
  (void)ExpandWord(word, kVars, opts, &used);
  (void)ExpandWords(word, kVars, opts, &used);
  return 0;
}
