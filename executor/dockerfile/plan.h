// The stage plan: which stages to build, in which order, from what, with which variables.
//
//   KILN_ASSIGN_OR_RETURN(Dockerfile df, Parse(text));
//   PlanOptions opts; opts.target = "release"; opts.build_args = ...;
//   KILN_ASSIGN_OR_RETURN(Plan plan, BuildPlan(df, opts));
//   for (const PlannedStage& s : plan.stages) { ... }   // dependencies come first
//
// Stages are found by name (case-insensitive) or index. FROM may name an earlier stage; COPY --from
// and RUN --mount=from= may name any other stage, a stage index, or an image. Only the stages the
// target needs are kept. ONBUILD triggers: a stage based on an earlier stage runs that stage's
// ONBUILD instructions first; for a stage based on an image the plan asks
// PlanOptions::onbuild_triggers (when set) for the image config's OnBuild list, otherwise it marks
// the stage `onbuild_pending` and the executor must inject them (ParseTrigger) after pulling the base.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "executor/dockerfile/args.h"
#include "executor/dockerfile/parser.h"

namespace kiln::dockerfile {

struct PlanOptions {
  std::string target;  ///< stage name; "" = the last stage
  BuildArgs build_args;
  /// What TARGET* args describe and stages without --platform build for. BuildKit's default: the
  /// build platform.
  Platform target_platform = Platform::Host();
  /// The machine running the build (BUILD* args).
  Platform build_platform = Platform::Host();
  /// Optional: an image reference (expanded) and platform → the OnBuild list of its config.
  using OnbuildTriggers =
      std::function<Result<std::vector<std::string>>(const std::string& image, const Platform& platform)>;
  OnbuildTriggers onbuild_triggers;
  /// BuildKit's named contexts (--build-context): lower-case name → an image reference (FROM NAME and
  /// --from=NAME read that image), or "" for a directory (SourceRef::Kind::kContext). BuildKit's rule:
  /// a context named as a stage replaces that stage (PlannedStage::replaced_by_context), and one named
  /// as an image replaces the image.
  std::map<std::string, std::string> named_contexts;
};

/// What a stage starts from, or what a COPY --from / mount from= reads from.
struct SourceRef {
  enum class Kind { kScratch, kImage, kStage, kContext };
  Kind kind = Kind::kScratch;
  /// kImage: the reference as written after expansion (a named context's image when one applies);
  /// kContext: the named context's lower-case name.
  std::string image;
  int stage = -1;     ///< kStage: index of the stage in the Dockerfile
};

/// A COPY --from or RUN --mount from= resolved at plan time.
struct FromRef {
  size_t instruction = 0;  ///< index into PlannedStage::instructions
  std::string name;        ///< as expanded
  SourceRef ref;
};

struct PlannedStage {
  int index = 0;       ///< position among all FROMs in the Dockerfile
  std::string name;    ///< lower-case AS name, "" if none
  Location loc;        ///< of the FROM
  std::string original;  ///< the FROM line
  SourceRef base;
  Platform platform;     ///< --platform (expanded) or the target platform
  bool platform_set = false;
  std::vector<Instruction> instructions;  ///< ONBUILD triggers first (from_onbuild), then the stage's own
  bool onbuild_pending = false;  ///< base image triggers not yet known (see file comment)
  /// A named context of the stage's name stands in for it: `base` is the context, no instructions.
  bool replaced_by_context = false;
  std::vector<FromRef> from_refs;
  std::vector<int> depends_on;  ///< stage indexes, sorted
};

struct Plan {
  std::vector<PlannedStage> stages;  ///< only the needed stages, dependencies before dependents
  int target = 0;                    ///< Dockerfile index of the target stage (stages.back())
  GlobalArgs global_args;
  char escape = '\\';
  std::string syntax;  ///< the `# syntax=` directive, "" if none (kiln does not switch frontends)
  std::string check;   ///< the `# check=` directive, "" if none
  std::vector<std::string> unused_build_args;  ///< "--build-arg X was not used by any ARG"
  std::vector<std::string> warnings;           ///< parse warnings plus plan notes
  Source source;                               ///< for formatting build-time errors
};

/// Builds the plan. Errors (formatted with line and caret): blank or invalid base image after
/// expansion, invalid --platform, unknown --target, a --from naming neither a stage nor a valid
/// image, a stage index out of range or naming the current stage, circular stage dependencies,
/// malformed ONBUILD triggers.
Result<Plan> BuildPlan(const Dockerfile& df, const PlanOptions& options);

/// The plan as pretty JSON (fixed field order) for `kiln plan` / `kiln build --print-plan`. Never
/// throws: bytes that are not UTF-8 become U+FFFD.
std::string PlanToJson(const Plan& plan);

/// One instruction's "details" object of PlanToJson, as compact JSON (what the parser understood).
std::string InstructionDetailsJson(const Instruction& inst);

}  // namespace kiln::dockerfile
