// Word expansion with the rules of BuildKit's shell lexer (frontend/dockerfile/shell/lex.go).
//
// Docker expands variables itself (not through /bin/sh) in ADD, COPY, ENV, EXPOSE, FROM, LABEL,
// STOPSIGNAL, USER, VOLUME, WORKDIR, ARG and in the values of ONBUILD-free flags (--chown, --chmod,
// --from, --mount options). RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and MAINTAINER are never
// expanded by the builder. The executor calls these functions at build time with the stage's
// current ENV/ARG state, so expansion sees exactly what Docker would.
//
// Supported: $V ${V} ${V:-w} ${V-w} ${V:+w} ${V+w} ${V:?w} ${V?w} ${V#p} ${V##p} ${V%p} ${V%%p}
// ${V/p/r} ${V//p/r}, single quotes (literal), double quotes (with $ and escapes), the escape
// character (backslash or backtick) outside quotes. Stateless and thread-compatible.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kiln::dockerfile {

/// Variables visible to an expansion: name → value. Names are case-sensitive (Linux semantics).
using Vars = std::map<std::string, std::string, std::less<>>;

/// Options mirroring the knobs of BuildKit's shell.Lex.
struct LexOptions {
  char escape = '\\';        ///< the Dockerfile's escape character: '\\' or '`'
  bool raw_quotes = false;   ///< keep quote characters in the output
  bool raw_escapes = false;  ///< keep escape characters in the output
  bool skip_unset = false;   ///< leave references to unset variables as written
};

/// Expands `word` as one word (no field splitting): quotes are removed, variables substituted.
/// When `used` is non-null, the names of variables that were looked up and set are added to it.
/// Errors read like BuildKit's: `failed to process "${X": syntax error: missing '}'`.
Result<std::string> ExpandWord(std::string_view word, const Vars& env, const LexOptions& opts = {},
                               std::set<std::string>* used = nullptr);
/// As ExpandWord with only the escape character set.
Result<std::string> ExpandWord(std::string_view word, const Vars& env, char escape,
                               std::set<std::string>* used = nullptr);

/// Expands `text` and splits it into words at unquoted whitespace (including whitespace that comes
/// from unquoted variable values). Empty words are dropped, as Docker does (EXPOSE, heredoc words).
Result<std::vector<std::string>> ExpandWords(std::string_view text, const Vars& env,
                                             const LexOptions& opts = {},
                                             std::set<std::string>* used = nullptr);
Result<std::vector<std::string>> ExpandWords(std::string_view text, const Vars& env, char escape,
                                             std::set<std::string>* used = nullptr);

}  // namespace kiln::dockerfile
