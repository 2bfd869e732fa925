// RunBuild: `kiln build` from start to finish, in three parts:
//
//   Prepare (prepare.h)      state dir and work dir, build context, Dockerfile → plan (front_end.h),
//                            registry clients, destination check, base images' ONBUILD triggers
//   BuildStages (stages.h)   each needed stage (stage_builder.h), independent ones at once (--jobs)
//                            → the target's image
//   Publish (image/publish)  assemble config and manifest, then copy the image into every output:
//                            --tar-path, --oci-layout-path, each --destination; digest files
//
// Work happens under the state directory: `store/` is a content-addressed blob store shared by
// builds (so base layers are fetched once per machine), `work/<build>/` holds this build's rootfs
// trees and is removed at the end, whatever happened. Nothing is pushed unless every stage built.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/status.h"
#include "executor/pipeline/build_deps.h"
#include "executor/pipeline/build_options.h"
#include "executor/pipeline/prepare.h"
#include "executor/pipeline/stage_builder.h"

namespace kiln::executor {

struct BuildResult {
  Digest digest;  ///< the image manifest's digest
  std::string manifest_bytes;
  std::string config_bytes;
  std::vector<Reference> pushed;  ///< destinations pushed
  PhaseTimes times;
  std::string plan_json;  ///< set when options.print_plan
};

Result<BuildResult> RunBuild(const BuildOptions& options, BuildDeps& deps);

/// Where the built image goes, in order: the local outputs, then each destination (unless no_push).
std::vector<ImageLocation> OutputsOf(const BuildOptions& options);

/// Runs `body` (which calls RunBuild with `options` and `deps`) where the build belongs. When kiln is
/// not root and RUN would use the rootless tier (--sandbox auto or rootless, and a probe creates a
/// user namespace), that is as root inside one user namespace for the whole build
/// (sandbox/build_namespace.h); options.state_dir is resolved first, outside, so the build uses the
/// user's state directory and not root's. Otherwise `body` runs here, directly. Returns body's exit
/// code, or `failure_code` after logging why the namespace could not be entered.
/// REQUIRES: no thread started yet.
int RunInBuildNamespace(BuildOptions& options, BuildDeps& deps, const std::function<int()>& body, int failure_code);

}  // namespace kiln::executor
