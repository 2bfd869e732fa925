// Fuzz target: the Dockerfile front end without the plan (executor/dockerfile/): the lexer (parser
// directives, continuations, heredocs, builder flags), the instruction parser (flags, JSON forms,
// --mount specs, durations), the build checks and the `# check=` directive, the per-instruction
// JSON and the ONBUILD trigger parser. The input is a Dockerfile as a merge request may carry it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "executor/dockerfile/checks.h"
#include "executor/dockerfile/lexer.h"
#include "executor/dockerfile/parser.h"
#include "executor/dockerfile/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  using namespace kiln::dockerfile;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  {
    Source source("Dockerfile", text);
    (void)Lex(source, '`');
  }
  Result<Dockerfile> df = Parse(text);
  if (!df.ok()) {
    (void)df.status().message();
    return 0;
  }
  Result<CheckConfig> checks = ParseCheckDirective(df->directives.check);
  (void)RunChecks(*df, checks.ok() ? *checks : CheckConfig{});
  auto visit = [&](const Instruction& inst) {
    (void)InstructionDetailsJson(inst);
    if (const auto* onbuild = std::get_if<OnbuildInst>(&inst.cmd)) {
      (void)ParseTrigger(onbuild->expression, df->directives.escape, "ONBUILD trigger");
    }
  };
  for (const Instruction& inst : df->meta_args) visit(inst);
  for (const ParsedStage& stage : df->stages) {
    visit(stage.from);
    for (const Instruction& inst : stage.commands) visit(inst);
  }
  return 0;
}
