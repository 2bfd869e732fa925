// The first pass over a Dockerfile: parser directives, comments, line continuations, builder flags
// and heredocs — BuildKit's frontend/dockerfile/parser, producing one LogicalLine per instruction.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "executor/dockerfile/errors.h"
#include "executor/dockerfile/instructions.h"

namespace kiln::dockerfile {

/// Parser directives found at the top of the file (`# syntax=`, `# escape=`, `# check=`).
struct Directives {
  char escape = '\\';
  std::string syntax;
  std::string check;
};

/// A `--name[=value]` builder flag with quotes removed, and where it starts.
struct RawFlag {
  std::string text;  ///< e.g. "--from=build"
  Location loc;
};

/// One instruction before interpretation.
struct LogicalLine {
  std::string keyword;   ///< as written ("run")
  Location loc;          ///< of the keyword; end_line covers continuations and heredocs
  std::string original;  ///< the joined line, trimmed ("RUN --mount=x echo hi")
  std::vector<RawFlag> flags;
  std::string args;  ///< what follows the flags, trimmed
  Location args_loc;
  size_t args_offset = 0;  ///< where `args` starts in `original`
  std::vector<Heredoc> heredocs;  ///< read after the line, in order (contents not yet chomped)
  std::vector<Location> positions;  ///< the source position of each byte of `original`

  /// The position of byte `offset` of `original` (clamped), as a Location with line and column.
  Location At(size_t offset) const;
};

struct LexResult {
  Directives directives;
  std::vector<LogicalLine> lines;
  std::vector<std::string> warnings;  ///< formatted "Dockerfile:L:C: ..." notes (empty continuation lines)
};

/// Splits `source` into logical lines. Errors (kInvalidArgument, formatted with the source) for a bad
/// escape directive, a repeated directive, an unterminated heredoc, or a file with no instructions.
/// `escape` is the escape character until a `# escape=` directive changes it.
Result<LexResult> Lex(const Source& source, char escape = '\\');

/// Parses a heredoc word such as `<<EOF`, `<<-"EOF"`, `2<<'END'`; false if `word` is not one.
/// Errors for malformed quoting.
Result<bool> ParseHeredocWord(std::string_view word, Heredoc* out);

/// Whether `c` is one of Go's unicode.IsSpace ASCII characters.
inline bool IsGoSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace kiln::dockerfile

namespace kiln::dockerfile {

enum class JsonArgs { kNotJson, kOk, kNotStrings };
/// BuildKit's parseJSON: `text` (left-trimmed) must start with '[' and be a JSON array; kOk fills
/// `out` when every element is a string, kNotStrings when some element is not (an error in Docker),
/// kNotJson otherwise (the instruction then falls back to its shell/whitespace form). As BuildKit's
/// json.Decoder, only the first JSON value counts: text after the array is ignored, and returned
/// (trimmed) in `trailing` when that is not null.
JsonArgs ParseJsonArgs(std::string_view text, std::vector<std::string>* out, std::string* trailing = nullptr);

}  // namespace kiln::dockerfile
