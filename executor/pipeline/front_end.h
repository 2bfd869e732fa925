// The front end `kiln plan` and `kiln build` share: find the Dockerfile (Kaniko's rule), read and
// parse it, take the build args, and plan the stages for the target platform. Both commands call
// this one function, so `kiln plan` and `kiln build --print-plan` cannot disagree.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/image_model.h"
#include "core/status.h"
#include "executor/dockerfile/args.h"
#include "executor/dockerfile/checks.h"
#include "executor/dockerfile/parser.h"
#include "executor/dockerfile/plan.h"

namespace kiln::executor {

struct FrontEndOptions {
  /// --dockerfile as given ("" = Dockerfile in the context).
  std::string dockerfile;
  /// --build-arg as given, and the environment for `--build-arg NAME` without a value.
  std::vector<std::string> build_args;
  std::map<std::string, std::string> environ;
  std::string target;
  /// unset: this machine's platform.
  std::optional<Platform> platform;
  /// Named build contexts (--build-context), lower-case name → image reference, or "" for a
  /// directory (dockerfile::PlanOptions::named_contexts).
  std::map<std::string, std::string> named_contexts;
};

/// The Dockerfile to read, as Kaniko finds it: an absolute path as given; a relative one in
/// `context_root` first (when it exists there), then relative to the current directory.
std::string ResolveDockerfilePath(const std::string& dockerfile, const std::string& context_root);

struct FrontEnd {
  std::string dockerfile_path;  ///< the file read
  dockerfile::Dockerfile dockerfile;
  dockerfile::BuildArgs build_args;
  dockerfile::PlanOptions plan_options;  ///< to plan again with ONBUILD triggers (ReplanWithTriggers)
  dockerfile::Plan plan;
  Platform host, target;
  /// Build checks (dockerfile/checks.h) under the file's `# check=` directive.
  dockerfile::CheckConfig check_config;
  std::vector<dockerfile::CheckFinding> checks;
};

/// Reads and plans the Dockerfile for a context whose files are at `context_root` ("" when the
/// context has no directory of its own). Errors name the file, line and column. Base images'
/// ONBUILD triggers are not known yet: such stages are marked onbuild_pending. The build checks
/// run too; a malformed `# check=` directive is an error.
Result<FrontEnd> LoadPlan(const FrontEndOptions& options, const std::string& context_root);

/// Plans again, asking `triggers` for the ONBUILD lists of base images (after they were resolved).
Status ReplanWithTriggers(FrontEnd& fe, dockerfile::PlanOptions::OnbuildTriggers triggers);

/// Fails with kFailedPrecondition when the Dockerfile's `# check=error=true` turns findings into
/// errors; otherwise OK.
Status ChecksVerdict(const FrontEnd& fe);

/// "[A B]": the build args no instruction consumed, for the warning both commands print.
std::string UnusedBuildArgs(const dockerfile::Plan& plan);

}  // namespace kiln::executor
