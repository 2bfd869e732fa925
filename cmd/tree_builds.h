// Running the builds of a tree plan: each image is a child `kiln build` process (the running
// executable, /proc/self/exe), started once all its parents in the plan have been pushed, with at
// most `jobs` at once. A child process per image rather than the build pipeline in-process: every
// build keeps its own sandbox, namespaces, signal handling and work directory exactly as a lone
// `kiln build` has them, and one image's crash cannot take the others down.
//
// Not executor::RunJobGraph (kiln build --jobs): that stops every job at the first failure, which is
// right for the stages of one image; here a failed image stops only its descendants and the other
// branches of the tree still build.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace kiln::cmd {

/// One image to build: the child's arguments (after `kiln`) and the images it waits for.
struct TreeBuild {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::string> after;  // names of builds in the same run that must succeed first
  /// Called just before the child starts (after the parents succeeded); may add arguments (the base
  /// digest labels) or fail the build.
  std::function<Status(std::vector<std::string>& args)> prepare;
};

struct TreeBuildResult {
  std::map<std::string, Status> status;  // every build: ok, its failure, or "not built: PARENT failed"
};

/// Runs `builds` (in an order where parents come first), logging each child's output to
/// LOG_DIR/NAME.log and "built NAME" / "FAILED NAME" lines to stdout. Thread-safe for the caller:
/// returns when every build finished or was abandoned.
TreeBuildResult RunTreeBuilds(const std::vector<TreeBuild>& builds, int jobs, const std::string& log_dir);

}  // namespace kiln::cmd
