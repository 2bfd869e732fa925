// Splitting an instruction's argument text into words, as BuildKit's parser does, and ASCII case. Internal to the
// Dockerfile frontend (instruction_parser.cc, parser.cc, checks.cc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "executor/dockerfile/lexer.h"

namespace kiln::dockerfile {

/// The whitespace of BuildKit's regular expressions ([\t\v\f\r ]), which differs from IsGoSpace.
inline bool IsReWhitespace(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }

/// `s` with ASCII letters in upper / lower case (instruction keywords and names are ASCII).
std::string AsciiUpper(std::string_view s);
std::string AsciiLower(std::string_view s);

/// One word of an instruction's arguments.
struct Word {
  std::string text;
  size_t offset;  ///< in LogicalLine::original
};

/// BuildKit's parseStringsWhitespaceDelimited: `ll.args` split at runs of [\t\v\f\r ].
std::vector<Word> SplitWhitespace(const LogicalLine& ll);

/// BuildKit's parseWords: `ll.args` split at unquoted whitespace, keeping quotes and escapes in the
/// words (ENV, LABEL and ARG expand them later).
std::vector<Word> ParseWords(const LogicalLine& ll, char escape);

}  // namespace kiln::dockerfile
