// libFuzzer target: Parse, then plan and print whatever parses. Built only with -DKILN_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "executor/dockerfile/dockerignore.h"
#include "executor/dockerfile/plan.h"
#include "executor/dockerfile/shell_lex.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace kiln;
  using namespace kiln::dockerfile;
  Result<Dockerfile> df = Parse(text);
  if (df.ok()) {
    Result<Plan> plan = BuildPlan(*df, PlanOptions{});
    if (plan.ok()) (void)PlanToJson(*plan);
  }
  if (size < 512) {
    (void)ExpandWords(text, Vars{{"A", "a b"}, {"E", ""}}, '\\');
    Result<IgnoreMatcher> m = IgnoreMatcher::Create(ReadIgnorePatterns(text));
    if (m.ok()) (void)m->Excluded("a/b/c.txt");
  }
  return 0;
}
