#include "executor/pipeline/stages.h"

#include <unistd.h>

#include <ctime>

#include "executor/cache/cache_dir.h"
#include "executor/cache/cache_registry.h"
#include "executor/sandbox/linux_command_runner.h"
#include "layers/decompress.h"

namespace kiln::executor {
namespace {

sandbox::LinuxCommandRunnerOptions::Tier TierFor(SandboxChoice c) {
  switch (c) {
    case SandboxChoice::kRootless: return sandbox::LinuxCommandRunnerOptions::Tier::kUserNamespace;
    case SandboxChoice::kChroot: return sandbox::LinuxCommandRunnerOptions::Tier::kChroot;
    case SandboxChoice::kPtrace: return sandbox::LinuxCommandRunnerOptions::Tier::kPtrace;
    case SandboxChoice::kInPlace: return sandbox::LinuxCommandRunnerOptions::Tier::kInPlace;
    case SandboxChoice::kAuto: break;
  }
  return sandbox::LinuxCommandRunnerOptions::Tier::kAuto;
}

// Unprivileged without kiln's own user namespace for the build: what RUN steps create is owned on
// disk by the host ids the sandbox's user namespace maps to (and what kiln itself creates, by kiln's
// uid, which the namespace calls root). Layers must carry the ids as the step saw them.
std::function<void(uint32_t&, uint32_t&)> OwnerMapBack() {
  sandbox::IdMapPlan ids = sandbox::PlanIdMapping();
  auto back = [](const std::vector<sandbox::IdRange>& ranges, uint32_t& id) {
    for (const sandbox::IdRange& r : ranges) {
      if (id >= r.outside && id - r.outside < r.count) {
        id = r.inside + (id - r.outside);
        return;
      }
    }
  };
  return [ids, back](uint32_t& uid, uint32_t& gid) {
    back(ids.uids, uid);
    back(ids.gids, gid);
  };
}

}  // namespace

Result<std::unique_ptr<LayerCache>> OpenLayerCache(const BuildOptions& options, registry::Client& client,
                                                   const Platform& target, BuildLog* log) {
  std::unique_ptr<LayerCache> cache;
  if (options.cache_repo.rfind("oci:", 0) == 0) {
    // Kaniko's local form of --cache-repo: an OCI layout. kiln's directory cache is one.
    std::string dir = options.cache_repo.substr(4);
    if (dir.empty()) return InvalidArgument("--cache-repo oci: needs a directory, as in oci:/cache/layers");
    KILN_ASSIGN_OR_RETURN(cache, OpenDirCache(dir, options.cache_ttl));
  } else if (!options.cache_dir.empty() && options.cache_repo.empty()) {
    log->Info("--cache-dir " + options.cache_dir + " holds the layer cache (no --cache-repo given), as well as "
              "base images from `kiln warm`");
    KILN_ASSIGN_OR_RETURN(cache, OpenDirCache(options.cache_dir, options.cache_ttl));
  } else {
    if (!options.cache_dir.empty()) {
      // Kaniko's meaning: --cache-dir is the warmer's base-image cache, --cache-repo the layer cache.
      log->Info("--cache-dir " + options.cache_dir + " is used for base images (kiln warm); layers are cached in "
                "--cache-repo");
    }
    std::string repo = options.cache_repo;
    if (repo.empty()) {
      if (options.destinations.empty()) {
        return InvalidArgument("--cache needs --cache-repo or --cache-dir when there is no --destination");
      }
      repo = options.destinations[0].Name() + "/cache";
    }
    RegistryCacheOptions rco;
    rco.platform = target;
    KILN_ASSIGN_OR_RETURN(cache, OpenRegistryCache(client, repo, options.cache_ttl, rco));
  }
  if (options.cache_read_only) cache = ReadOnlyLayerCache(std::move(cache));
  log->Info("layer cache: " + cache->Describe());
  return cache;
}

Result<BuiltImage> BuildStages(PreparedBuild& build, const BuildOptions& options, BuildDeps& deps,
                               BackgroundUploads* uploads, PhaseTimes* times) {
  BuildLog* log = deps.log;
  const dockerfile::Plan& plan = build.front.plan;
  std::unique_ptr<sandbox::LinuxCommandRunner> owned_runner;
  std::unique_ptr<UrlFetcher> owned_fetcher;
  BuildServices svc;
  svc.log = log;
  svc.store = build.store.get();
  svc.fetcher = build.fetcher.get();
  svc.context = build.context.get();
  svc.plan = &plan;
  svc.build_args = &build.front.build_args;
  svc.single_snapshot = options.single_snapshot;
  svc.ignore_paths = options.ignore_paths;
  svc.runner = [&]() -> Result<sandbox::CommandRunner*> {
    if (deps.runner) return deps.runner;
    if (!owned_runner) {
      sandbox::LinuxCommandRunnerOptions ro;
      ro.tier = TierFor(options.sandbox);
      ro.protected_paths = {build.state_dir + "/store"};
      ro.scratch_dir = build.lease.path;
      ro.build_namespace = deps.build_namespace;
      ro.build_namespace_note = deps.build_namespace_note;
      Result<std::unique_ptr<sandbox::LinuxCommandRunner>> r = sandbox::LinuxCommandRunner::Create(ro);
      if (!r.ok()) return r.status().WithContext("no sandbox for RUN steps");
      owned_runner = std::move(r).value();
      log->Info(owned_runner->DescribeTier());
    }
    return owned_runner.get();
  };
  if (deps.url_fetcher) {
    svc.url_fetcher = deps.url_fetcher;
  } else {
    owned_fetcher = NewCurlUrlFetcher();
    svc.url_fetcher = owned_fetcher.get();
  }
  svc.uploads = uploads;
  if (!options.no_push && !options.destinations.empty()) {
    // New layers go to the first destination while they are written: the push then finds them there.
    registry::Repository* first = build.destinations.at(options.destinations[0].ToString()).get();
    svc.stream_push = [first]() { return first; };
  }
  svc.work_dir = build.lease.path;
  svc.secrets = build.secrets.get();
  svc.ssh_agents = build.ssh_agents.get();
  svc.cache_mounts = build.cache_mounts.get();
  svc.cache_mounts_used = &build.cache_mounts_used;
  svc.platform = build.front.target;
  svc.layer_options.compression.algorithm = options.compression;
  svc.layer_options.compression.level = options.compression_level;
  std::optional<int64_t> epoch = options.source_date_epoch;
  if (!epoch && options.reproducible) epoch = 0;
  svc.layer_options.tar.source_date_epoch = epoch;
  if (::geteuid() != 0) svc.layer_options.tar.map_owner = OwnerMapBack();
  svc.created = FormatRfc3339(epoch ? *epoch : static_cast<int64_t>(::time(nullptr)));
  svc.times = times;
  std::unique_ptr<LayerCache> cache;
  if (options.cache) {
    KILN_ASSIGN_OR_RETURN(cache, OpenLayerCache(options, build.access->push_client(), build.front.target, log));
    svc.cache = cache.get();
    svc.cache_run = options.cache_run_layers;
    svc.cache_copy = options.cache_copy_layers;
    svc.layer_format = std::string(layers::CompressionName(options.compression)) + "/" +
                       std::to_string(options.compression_level) + "/" +
                       (epoch ? std::to_string(*epoch) : std::string("now"));
    svc.dockerfile_id = build.front.dockerfile_path;
  }
  std::map<int, StageResult> done;
  std::map<std::string, std::string> image_roots;
  svc.done = &done;
  svc.image_roots = &image_roots;
  for (const dockerfile::PlannedStage& s : plan.stages) {
    if (s.base.kind == dockerfile::SourceRef::Kind::kStage) svc.rootfs_wanted.insert(s.base.stage);
    for (const dockerfile::FromRef& f : s.from_refs) {
      if (f.ref.kind == dockerfile::SourceRef::Kind::kStage) svc.rootfs_wanted.insert(f.ref.stage);
    }
  }
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(StageResult r, BuildStage(svc, i));
    done[plan.stages[i].index] = std::move(r);
  }

  BuiltImage image = done.at(plan.target).image;
  for (const auto& [key, value] : options.labels) image.config.config.labels[key] = value;
  image.config.created = svc.created;
  return image;
}

}  // namespace kiln::executor
