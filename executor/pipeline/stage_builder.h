// StageBuilder: runs one stage of the plan, instruction by instruction, into a BuiltImage.
//
//   FROM     the base image's config and layers (its rootfs is extracted only when some step needs
//            files: RUN, COPY, ADD, WORKDIR, or a later COPY --from of this stage)
//   metadata config changes, an empty history entry each (metadata.h)
//   WORKDIR  creates the directory (owned by USER) — a layer when it did not exist
//   COPY/ADD copy_step.h; the layer is exactly what was copied, no scan of the rootfs
//   RUN      the sandbox runs the command; the snapshotter's walk finds what changed (stat tuples,
//            content hashing only where those cannot decide) and that becomes the layer
// A step that changes nothing adds no layer, only a history entry marked empty_layer.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>


#include "core/image_model.h"
#include "core/status.h"
#include "executor/steps/build_context.h"
#include "executor/image/background_uploads.h"
#include "executor/log/build_log.h"
#include "executor/image/built_image.h"
#include "executor/cache/cache_key.h"
#include "executor/cache/cache_store.h"
#include "executor/cache/mount_cache.h"
#include "executor/steps/secrets.h"
#include "executor/steps/ssh_forward.h"
#include "executor/dockerfile/plan.h"
#include "executor/image/image_fetcher.h"
#include "executor/sandbox/command_runner.h"
#include "executor/steps/git_source.h"
#include "executor/steps/url_fetcher.h"
#include "layers/layer_writer.h"
#include "layers/oci_layout.h"

namespace kiln::executor {

/// Where a build's time went, for the summary line and the benchmarks.
struct PhaseTimes {
  std::chrono::nanoseconds base{0}, run{0}, snapshot{0}, copy{0}, layer{0}, push{0}, outputs{0};
  uint64_t layer_bytes = 0, layers = 0;
  std::string Summary() const;
};

/// A finished stage: its image, and its rootfs when it was materialised (for COPY --from).
struct StageResult {
  BuiltImage image;
  Digest cache_key;  ///< the key after the stage's last step (a later stage's parent key)
  std::string rootfs;  ///< "" when no step needed files
  dockerfile::Vars env;
  std::vector<std::string> shell{"/bin/sh", "-c"};
};

/// What every stage of a build shares. Nothing is owned.
struct BuildServices {
  BuildLog* log = nullptr;  ///< the stage's log: the build's, or its lane when stages run at once
  BuildLog* build_log = nullptr;  ///< the build's own log, for what outlives a stage (uploads); null: `log`
  const layers::OciLayout* store = nullptr;
  ImageFetcher* fetcher = nullptr;
  const BuildContext* context = nullptr;
  const dockerfile::Plan* plan = nullptr;
  const dockerfile::BuildArgs* build_args = nullptr;
  /// Creates the RUN sandbox on first use (a build without RUN never needs one).
  std::function<Result<sandbox::CommandRunner*>()> runner;
  UrlFetcher* url_fetcher = nullptr;
  /// Where RUN for another architecture looks for a static qemu-user binary when binfmt_misc has no
  /// handler (sandbox::ForeignExecEnv::qemu_dirs): kiln's PATH, then /usr/bin and /usr/local/bin.
  std::vector<std::string> qemu_dirs{"/usr/bin", "/usr/local/bin"};
  std::string work_dir;  ///< per-build directory for rootfs trees
  bool single_snapshot = false;  ///< --single-snapshot: one layer for the whole target stage
  std::vector<std::string> ignore_paths;  ///< --ignore-path: left out of RUN snapshots
  /// --max-layer-size, --max-decompression-ratio: applied to every layer extracted.
  layers::DecompressionLimits layer_limits;
  Platform platform;     ///< target platform
  layers::LayerOptions layer_options;
  std::string created;   ///< RFC 3339 timestamp for config and history
  PhaseTimes* times = nullptr;
  /// Stages already built, by Dockerfile index.
  std::map<int, StageResult>* done = nullptr;
  /// Stage indexes that a later stage reads files from (COPY --from, FROM stage): keep their rootfs.
  std::set<int> rootfs_wanted;
  /// The repository new layers are streamed to while they are written (the first destination), or
  /// nullptr. Called once per layer; may be empty.
  std::function<registry::Repository*()> stream_push;
  BackgroundUploads* uploads = nullptr;
  /// The layer cache (--cache), or nullptr. RUN steps are cached when cache_run, COPY/ADD when
  /// cache_copy (Kaniko's --cache-run-layers / --cache-copy-layers).
  LayerCache* cache = nullptr;
  bool cache_run = true;
  bool cache_copy = false;
  /// Compression, level and timestamps: layers of the same files differ by these.
  std::string layer_format;
  /// Names the Dockerfile in cache slots (where a step's key inputs are remembered, per stage and
  /// platform, so the platforms of one multi-platform build do not overwrite each other's).
  std::string dockerfile_id;
  /// RUN --mount=type=secret: the build's secrets (--secret), or nullptr when none were given.
  const SecretStore* secrets = nullptr;
  /// RUN --mount=type=ssh: the agents given with --ssh, or nullptr.
  SshAgents* ssh_agents = nullptr;
  /// RUN --mount=type=cache: where the directories live, and the keys this build used (for export).
  CacheMountStore* cache_mounts = nullptr;
  std::set<std::string>* cache_mounts_used = nullptr;
  /// Images unpacked for COPY --from=IMAGE, by reference → rootfs directory; shared by the stages,
  /// used under image_roots_mu.
  std::map<std::string, std::string>* image_roots = nullptr;
  std::mutex* image_roots_mu = nullptr;
  /// Set when another stage built at the same time failed: the stage stops before its next step.
  const std::atomic<bool>* cancelled = nullptr;
  /// Runs git for ADD of a git repository, given the remote (git_source.h).
  GitRunnerFactory git;
  /// Files fetched from git get the commit's time (BuildKit does so when SOURCE_DATE_EPOCH is set).
  bool git_commit_mtime = false;
  /// ADD of a file:// repository (KILN_ALLOW_FILE_GIT=1): off by default, since it reads the build
  /// host's files from outside the context at the Dockerfile's request.
  bool git_allow_file = false;
  /// Named build contexts (--build-context NAME=DIR or =GIT-URL) by lower-case name → directory.
  const std::map<std::string, std::string>* named_dirs = nullptr;
};

/// Builds stage `position` (0-based among plan->stages).
Result<StageResult> BuildStage(BuildServices& services, size_t position);

}  // namespace kiln::executor
