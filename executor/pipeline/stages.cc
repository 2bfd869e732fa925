#include "executor/pipeline/stages.h"

#include <unistd.h>

#include <atomic>
#include <ctime>
#include <mutex>
#include <sstream>
#include <thread>

#include "executor/cache/cache_dir.h"
#include "executor/cache/cache_registry.h"
#include "executor/pipeline/job_graph.h"
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

// A runner or fetcher that is not thread-safe, used by stages built at once: one call at a time.
class SerialRunner : public sandbox::CommandRunner {
 public:
  explicit SerialRunner(sandbox::CommandRunner* inner) : inner_(inner) {}
  Result<sandbox::RunResult> Run(const sandbox::RunSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    return inner_->Run(spec);
  }

 private:
  sandbox::CommandRunner* inner_;
  std::mutex mu_;
};

class SerialUrlFetcher : public UrlFetcher {
 public:
  explicit SerialUrlFetcher(UrlFetcher* inner) : inner_(inner) {}
  Result<FetchedUrl> Fetch(const std::string& url, Writer* out) override {
    std::lock_guard<std::mutex> lock(mu_);
    return inner_->Fetch(url, out);
  }

 private:
  UrlFetcher* inner_;
  std::mutex mu_;
};

// "#2 builder": how a stage's log lines are told apart when stages are built at once.
std::string LaneName(const dockerfile::PlannedStage& s, size_t position) {
  return "#" + std::to_string(position + 1) + (s.name.empty() ? "" : " " + s.name);
}

}  // namespace

int StageJobs(int jobs) {
  if (jobs > 0) return jobs;
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores);
}

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
  // Stages that need nothing of each other may be built at once (--jobs); their positions in the plan:
  JobDeps after(plan.stages.size());
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    for (int d : plan.stages[i].depends_on) {
      for (size_t k = 0; k < i; ++k) {
        if (plan.stages[k].index == d) after[i].push_back(k);
      }
    }
  }
  const int jobs = StageJobs(options.jobs);
  const bool parallel = jobs > 1 && HasIndependentJobs(after);
  std::unique_ptr<sandbox::LinuxCommandRunner> owned_runner;
  std::unique_ptr<SerialRunner> serial_runner;
  std::mutex runner_mu;
  std::unique_ptr<UrlFetcher> owned_fetcher, serial_fetcher;
  BuildServices svc;
  svc.log = log;
  svc.build_log = log;
  svc.store = build.store.get();
  svc.fetcher = build.fetcher.get();
  svc.context = build.context.get();
  svc.plan = &plan;
  svc.build_args = &build.front.build_args;
  svc.single_snapshot = options.single_snapshot;
  svc.ignore_paths = options.ignore_paths;
  svc.layer_limits.max_bytes = options.max_layer_bytes;
  svc.layer_limits.max_ratio = options.max_decompression_ratio;
  svc.layer_limits.ratio_min_bytes = options.decompression_ratio_min_bytes;
  svc.layer_limits.max_bytes_setting = "--max-layer-size";
  svc.layer_limits.max_ratio_setting = "--max-decompression-ratio";
  svc.runner = [&]() -> Result<sandbox::CommandRunner*> {
    std::lock_guard<std::mutex> lock(runner_mu);
    if (deps.runner) {
      if (!parallel || deps.runner->concurrent()) return deps.runner;
      if (!serial_runner) serial_runner = std::make_unique<SerialRunner>(deps.runner);
      return serial_runner.get();
    }
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
    if (parallel && !owned_runner->concurrent()) {
      if (!serial_runner) serial_runner = std::make_unique<SerialRunner>(owned_runner.get());
      return serial_runner.get();
    }
    return owned_runner.get();
  };
  if (deps.url_fetcher) {
    svc.url_fetcher = deps.url_fetcher;
    if (parallel) {
      serial_fetcher = std::make_unique<SerialUrlFetcher>(deps.url_fetcher);
      svc.url_fetcher = serial_fetcher.get();
    }
  } else {  // libcurl's fetcher keeps no state between calls: thread-safe
    owned_fetcher = NewCurlUrlFetcher();
    svc.url_fetcher = owned_fetcher.get();
  }
  svc.uploads = uploads;
  if (auto path = options.environ.find("PATH"); path != options.environ.end()) {
    std::vector<std::string> dirs;
    std::stringstream in(path->second);
    for (std::string dir; std::getline(in, dir, ':');) {
      if (!dir.empty() && dir[0] == '/') dirs.push_back(dir);
    }
    dirs.insert(dirs.end(), svc.qemu_dirs.begin(), svc.qemu_dirs.end());
    svc.qemu_dirs = std::move(dirs);
  }
  svc.git = deps.git ? deps.git : CliGitRunnerFactory(options.environ);
  svc.git_commit_mtime = options.source_date_epoch.has_value();
  svc.git_allow_file = options.environ.count("KILN_ALLOW_FILE_GIT") && options.environ.at("KILN_ALLOW_FILE_GIT") == "1";
  svc.named_dirs = &build.named_dirs;
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
  if (options.cache) {
    // Kept by the prepared build, not here: the image's cached layers are read from it when the
    // image is published, after the stages are done.
    KILN_ASSIGN_OR_RETURN(build.layer_cache,
                          OpenLayerCache(options, build.access->push_client(), build.front.target, log));
    svc.cache = build.layer_cache.get();
    svc.cache_run = options.cache_run_layers;
    svc.cache_copy = options.cache_copy_layers;
    svc.layer_format = std::string(layers::CompressionName(options.compression)) + "/" +
                       std::to_string(options.compression_level) + "/" +
                       (epoch ? std::to_string(*epoch) : std::string("now"));
    svc.dockerfile_id = build.front.dockerfile_path;
  }
  std::map<int, StageResult> done;
  std::map<std::string, std::string> image_roots;
  std::mutex image_roots_mu, done_mu;
  std::atomic<bool> cancelled{false};
  svc.image_roots = &image_roots;
  svc.image_roots_mu = &image_roots_mu;
  svc.cancelled = &cancelled;
  for (const dockerfile::PlannedStage& s : plan.stages) {
    if (s.base.kind == dockerfile::SourceRef::Kind::kStage) svc.rootfs_wanted.insert(s.base.stage);
    for (const dockerfile::FromRef& f : s.from_refs) {
      if (f.ref.kind == dockerfile::SourceRef::Kind::kStage) svc.rootfs_wanted.insert(f.ref.stage);
    }
  }
  if (parallel) {
    log->Info("building up to " + std::to_string(jobs) + " stages at once (--jobs); each line says its stage, as [#N name]");
  }
  // Each stage gets its own copy of the services: its own log lane, times, and the results of the
  // stages it needs (copied once they are done), so that nothing it writes is shared.
  std::vector<PhaseTimes> stage_times(plan.stages.size());
  std::vector<std::set<std::string>> mounts_used(plan.stages.size());
  auto build_one = [&](size_t i) -> Status {
    BuildServices s = svc;
    std::unique_ptr<BuildLog> lane;
    if (parallel) {
      lane = log->Lane(LaneName(plan.stages[i], i));
      s.log = lane.get();
    }
    s.times = &stage_times[i];
    if (svc.cache_mounts_used) s.cache_mounts_used = &mounts_used[i];
    std::map<int, StageResult> needed;
    {
      std::lock_guard<std::mutex> lock(done_mu);
      for (int d : plan.stages[i].depends_on) needed.emplace(d, done.at(d));
    }
    s.done = &needed;
    Result<StageResult> r = BuildStage(s, i);
    if (!r.ok()) return r.status();
    std::lock_guard<std::mutex> lock(done_mu);
    done[plan.stages[i].index] = std::move(r).value();
    return OkStatus();
  };
  Status built = RunJobGraph(after, parallel ? jobs : 1, build_one, &cancelled);
  for (const PhaseTimes& t : stage_times) {
    times->base += t.base, times->run += t.run, times->snapshot += t.snapshot, times->copy += t.copy;
    times->layer += t.layer, times->push += t.push, times->outputs += t.outputs;
    times->layer_bytes += t.layer_bytes, times->layers += t.layers;
  }
  if (svc.cache_mounts_used) {
    for (const std::set<std::string>& m : mounts_used) svc.cache_mounts_used->insert(m.begin(), m.end());
  }
  KILN_RETURN_IF_ERROR(built);

  BuiltImage image = done.at(plan.target).image;
  for (const auto& [key, value] : options.labels) image.config.config.labels[key] = value;
  image.config.created = svc.created;
  return image;
}

}  // namespace kiln::executor
