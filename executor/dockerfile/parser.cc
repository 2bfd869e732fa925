#include "executor/dockerfile/parser.h"

#include <map>

#include "executor/dockerfile/instruction_parser.h"
#include "executor/dockerfile/words.h"

namespace kiln::dockerfile {

Result<std::vector<Instruction>> ParseInstructions(const Source& source, const LexResult& lexed,
                                                   std::vector<std::string>* warnings) {
  std::vector<Instruction> out;
  for (const LogicalLine& ll : lexed.lines) {
    KILN_ASSIGN_OR_RETURN(Instruction inst, ParseInstruction(source, ll, lexed.directives.escape, warnings));
    out.push_back(std::move(inst));
  }
  return out;
}

Result<Dockerfile> Parse(std::string_view text, std::string name) {
  Dockerfile df;
  df.source = Source(std::move(name), text);
  KILN_ASSIGN_OR_RETURN(LexResult lexed, Lex(df.source));
  df.directives = lexed.directives;
  df.warnings = lexed.warnings;
  KILN_ASSIGN_OR_RETURN(std::vector<Instruction> all, ParseInstructions(df.source, lexed, &df.warnings));
  std::map<std::string, Location> names;
  for (Instruction& inst : all) {
    if (const auto* f = std::get_if<FromInst>(&inst.cmd)) {
      if (!f->stage_name.empty()) {
        auto [it, inserted] = names.emplace(f->stage_name, inst.loc);
        if (!inserted) {
          // Point at the name itself: it is the last word of the line.
          size_t at = inst.original.size();
          while (at > 0 && !IsReWhitespace(inst.original[at - 1])) --at;
          Location loc = inst.loc;
          for (const LogicalLine& ll : lexed.lines) {
            if (ll.loc.line == inst.loc.line && ll.loc.column == inst.loc.column) loc = ll.At(at);
          }
          return df.source.ErrorAt(loc, "duplicate stage name \"" + f->stage_name + "\" (first defined on line " +
                                            std::to_string(it->second.line) + ")");
        }
      }
      df.stages.push_back(ParsedStage{std::move(inst), {}});
      continue;
    }
    if (df.stages.empty()) {
      if (std::holds_alternative<ArgInst>(inst.cmd)) {
        df.meta_args.push_back(std::move(inst));
        continue;
      }
      return df.source.ErrorAt(inst.loc, "no build stage in current context: " + inst.keyword +
                                             " comes before the first FROM (only ARG may come before FROM)");
    }
    df.stages.back().commands.push_back(std::move(inst));
  }
  if (df.stages.empty()) {
    return df.source.ErrorAt(Location{}, "the Dockerfile has no FROM instruction, so there are no stages to build");
  }
  return df;
}

Result<Instruction> ParseTrigger(std::string_view expression, char escape, const std::string& origin) {
  Source src(origin, expression);
  KILN_ASSIGN_OR_RETURN(LexResult lexed, Lex(src, escape));
  if (lexed.lines.size() != 1) return src.ErrorAt(Location{}, "an ONBUILD trigger must be exactly one instruction");
  std::string kw = AsciiUpper(lexed.lines[0].keyword);
  if (kw == "ONBUILD") return src.ErrorAt(lexed.lines[0].loc, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (kw == "FROM" || kw == "MAINTAINER") return src.ErrorAt(lexed.lines[0].loc, kw + " isn't allowed as an ONBUILD trigger");
  KILN_ASSIGN_OR_RETURN(std::vector<Instruction> insts, ParseInstructions(src, lexed, nullptr));
  insts[0].from_onbuild = true;
  return std::move(insts[0]);
}

std::string RunScriptWithHeredocs(const CommandLine& cmd) {
  if (cmd.args.empty()) return "";
  if (cmd.heredocs.empty() || cmd.exec_form) return cmd.args[0];
  Heredoc only;
  Result<bool> is = ParseHeredocWord(cmd.args[0], &only);
  if (is.ok() && *is && cmd.heredocs.size() == 1) return cmd.heredocs[0].content;
  std::string full = cmd.args[0];
  for (const Heredoc& h : cmd.heredocs) full += "\n" + h.content + h.name;
  return full;
}

}  // namespace kiln::dockerfile
