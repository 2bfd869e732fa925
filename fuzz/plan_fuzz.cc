// Fuzz target: the stage plan (executor/dockerfile/plan.h) — what `kiln plan` and every build do
// with a Dockerfile after parsing it: global and stage ARGs with --build-arg values, base images
// and --platform after expansion, --target, COPY --from and mount from= references, stage
// dependencies and cycles, ONBUILD triggers of stages and (through a canned callback) of base
// images, and the plan's JSON. The input is a Dockerfile.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "executor/dockerfile/parser.h"
#include "executor/dockerfile/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  using namespace kiln::dockerfile;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Result<Dockerfile> df = Parse(text);
  if (!df.ok()) return 0;
  PlanOptions opts;
  opts.target_platform = Platform::Parse("linux/arm64/v8").value();
  opts.build_platform = Platform::Parse("linux/amd64").value();
  opts.build_args.Set("VERSION", "1.2");
  opts.build_args.Set("BASE", "alpine:3.19");
  opts.build_args.Set("EMPTY", "");
  opts.build_args.Set("HTTP_PROXY", "http://proxy:3128");
  if (size % 2 == 1) {
    // Base images answer with triggers, as an image config's OnBuild list would (including bad ones).
    opts.onbuild_triggers = [](const std::string& image, const Platform&) -> Result<std::vector<std::string>> {
      if (image.find("fail") != std::string::npos) return NotFound("no such image " + image);
      return std::vector<std::string>{"RUN echo from-" + image, "COPY --from=0 /a /b", "ENV X=${VERSION}",
                                      "FROM nested"};
    };
  }
  Result<Plan> plan = BuildPlan(*df, opts);
  if (plan.ok()) {
    (void)PlanToJson(*plan);
  } else {
    (void)plan.status().message();
  }
  // The same file planned for each named stage as --target.
  size_t tried = 0;
  for (const ParsedStage& stage : df->stages) {
    if (++tried > 4) break;
    PlanOptions t;
    t.target = std::to_string(tried);
    if (const auto* from = std::get_if<FromInst>(&stage.from.cmd); from != nullptr && !from->stage_name.empty()) t.target = from->stage_name;
    Result<Plan> p = BuildPlan(*df, t);
    if (p.ok()) (void)PlanToJson(*p);
  }
  return 0;
}
