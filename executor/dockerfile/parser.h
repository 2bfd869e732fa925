// Parsing a Dockerfile into typed instructions grouped by stage.
//
//   KILN_ASSIGN_OR_RETURN(Dockerfile df, Parse(text));            // syntax only, no expansion
//   KILN_ASSIGN_OR_RETURN(Plan plan, BuildPlan(df, options));     // stages, args, --target (plan.h)
//
// Every error is kInvalidArgument with "Dockerfile:LINE:COL: message", the line and a caret.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "executor/dockerfile/errors.h"
#include "executor/dockerfile/instructions.h"
#include "executor/dockerfile/lexer.h"

namespace kiln::dockerfile {

/// A FROM instruction and the instructions after it, up to the next FROM.
struct ParsedStage {
  Instruction from;  ///< holds FromInst
  std::vector<Instruction> commands;
};

/// A parsed Dockerfile. Owns its source so later phases can point at lines.
struct Dockerfile {
  Source source;
  Directives directives;
  std::vector<Instruction> meta_args;  ///< ARG instructions before the first FROM
  std::vector<ParsedStage> stages;     ///< at least one
  std::vector<std::string> warnings;   ///< formatted notes (not errors) for the user
};

/// Parses `text`; `name` is used in messages ("Dockerfile", "build/Dockerfile.prod").
/// Checks syntax, instruction names, flags, JSON forms, heredocs, stage names (valid, unique) and
/// that the file has a FROM before any instruction other than ARG. Pure: no I/O.
Result<Dockerfile> Parse(std::string_view text, std::string name = "Dockerfile");

/// Parses every logical line of `source` into instructions (no stage grouping).
Result<std::vector<Instruction>> ParseInstructions(const Source& source, const LexResult& lexed,
                                                   std::vector<std::string>* warnings);

/// Parses one ONBUILD trigger expression (as stored in an image config's OnBuild list, or an
/// OnbuildInst::expression). `origin` names it in messages, e.g. "ONBUILD trigger of alpine:3".
/// Errors for FROM/MAINTAINER/ONBUILD triggers and anything Parse would reject.
Result<Instruction> ParseTrigger(std::string_view expression, char escape, const std::string& origin);

/// The shell script RUN gives to the shell for its heredocs, as BuildKit does: a single heredoc that
/// is the whole command runs its content; otherwise the command line followed by each heredoc
/// body and its delimiter. Requires a shell-form command; returns args[0] when there are no heredocs.
std::string RunScriptWithHeredocs(const CommandLine& cmd);

}  // namespace kiln::dockerfile
