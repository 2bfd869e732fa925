// BuildStages: runs every stage of a prepared build's plan (stage_builder.h), with the
// services they share — the RUN sandbox (made at the first RUN), the layer cache (--cache), layers
// streamed to the first destination while they are written — and returns the target stage's image
// with the --label flags and the creation time applied.
#pragma once

#include "executor/image/background_uploads.h"
#include "executor/image/built_image.h"
#include "executor/pipeline/build_deps.h"
#include "executor/pipeline/build_options.h"
#include "executor/pipeline/prepare.h"
#include "executor/pipeline/stage_builder.h"

namespace kiln::executor {

/// How many stages --jobs lets run at once: `jobs`, or the number of cores when 0.
int StageJobs(int jobs);

/// Stages that do not depend on each other are built at once, up to options.jobs (stages.h's
/// StageJobs); their log lines then start with "[#N name] " (BuildLog::Lane). The image is the same,
/// byte for byte, as one built stage after stage. The first stage to fail fails the build; the others
/// stop before their next step and are awaited.
/// `uploads` receives the layer uploads started while building; the caller waits for them before
/// pushing. Times are added to `times`.
Result<BuiltImage> BuildStages(PreparedBuild& build, const BuildOptions& options, BuildDeps& deps,
                               BackgroundUploads* uploads, PhaseTimes* times);

/// The layer cache --cache asks for: --cache-repo oci:DIR, --cache-dir (without --cache-repo), or a
/// registry repository (--cache-repo, default DESTINATION/cache). Read-only with --no-push-cache.
Result<std::unique_ptr<LayerCache>> OpenLayerCache(const BuildOptions& options, registry::Client& client,
                                                   const Platform& target, BuildLog* log);

}  // namespace kiln::executor
