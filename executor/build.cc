#include "executor/build.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "executor/cache_dir.h"
#include "executor/cache_registry.h"
#include "executor/dockerfile/parser.h"
#include "executor/dockerfile/plan.h"
#include "executor/registry_access.h"
#include "executor/outputs.h"
#include "executor/sandbox/build_namespace.h"
#include "executor/sandbox/id_mapping.h"
#include "executor/sandbox/linux_command_runner.h"
#include "executor/work_dirs.h"
#include "layers/safe_path.h"
#include "registry/reference.h"

namespace kiln::executor {
namespace {

using Clock = std::chrono::steady_clock;

std::string Env(const BuildOptions& o, const char* k) {
  auto it = o.environ.find(k);
  return it == o.environ.end() ? std::string() : it->second;
}

bool FileExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// The context directory as written (for finding the Dockerfile), or "" for a tarball context.
std::string ContextDir(const std::string& spec) {
  std::string s = spec;
  if (s.rfind("dir://", 0) == 0) s = s.substr(6);
  struct stat st;
  if (::stat(s.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return s;
  return "";
}

// Kaniko: a relative --dockerfile is looked up in the context first, then as given.
std::string ResolveDockerfile(const BuildOptions& o, const std::string& context_root) {
  std::string df = o.dockerfile.empty() ? "Dockerfile" : o.dockerfile;
  if (!df.empty() && df[0] == '/') return df;
  if (!context_root.empty() && FileExists(context_root + "/" + df)) return context_root + "/" + df;
  if (FileExists(df)) return df;
  return context_root.empty() ? df : context_root + "/" + df;
}

Result<std::string> ReadSmallFile(const std::string& path, const std::string& what) {
  Result<std::unique_ptr<Reader>> r = OpenFileReader(path);
  if (!r.ok()) return r.status().WithContext("reading " + what);
  return ReadAll(**r, 16 << 20);
}

Status RemoveTree(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening " + parent, errno);
  Status s = layers::RemoveAllAt(fd, path.substr(slash + 1));
  ::close(fd);
  return s;
}

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

Result<media_type::Compression> ParseCompression(const std::string& s) {
  if (s == "gzip" || s.empty()) return media_type::Compression::kGzip;
  if (s == "zstd") return media_type::Compression::kZstd;
  if (s == "uncompressed" || s == "none") return media_type::Compression::kNone;
  return InvalidArgument("--compression must be gzip, zstd or uncompressed, not \"" + s + "\"");
}

}  // namespace

namespace {

// Whether kiln can make (or use) directory `path`: it exists and is writable, or its nearest existing
// ancestor is writable.
bool CanUseDir(const std::string& path) {
  std::string p = path;
  while (!p.empty()) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0) return S_ISDIR(st.st_mode) && ::access(p.c_str(), W_OK | X_OK) == 0;
    if (errno != ENOENT) return false;
    size_t slash = p.rfind('/');
    if (slash == std::string::npos) return ::access(".", W_OK | X_OK) == 0;
    p = slash == 0 ? "/" : p.substr(0, slash);
    if (p == "/") return ::access("/", W_OK | X_OK) == 0;
  }
  return false;
}

}  // namespace

std::string ResolveStateDir(const BuildOptions& o, std::string* note) {
  if (!o.state_dir.empty()) return o.state_dir;
  std::string env = Env(o, "KILN_DIR");
  if (!env.empty()) return env;
  if (::geteuid() == 0) return "/var/lib/kiln";
  std::string preferred;
  std::string xdg = Env(o, "XDG_CACHE_HOME");
  std::string home = Env(o, "HOME");
  if (!xdg.empty()) {
    preferred = xdg + "/kiln";
  } else if (!home.empty()) {
    preferred = home + "/.cache/kiln";
  }
  std::string tmp = Env(o, "TMPDIR");
  std::string fallback = (tmp.empty() ? std::string("/tmp") : tmp) + "/kiln-" + std::to_string(::geteuid());
  if (preferred.empty()) return fallback;
  if (CanUseDir(preferred)) return preferred;
  // A runAsNonRoot pod often keeps HOME=/root (not writable by the pod's uid): use a private
  // directory under TMPDIR rather than fail, and say so (RunBuild checks that it is ours).
  if (note != nullptr) {
    *note = "state directory: " + preferred + " is not writable by uid " + std::to_string(::geteuid()) + ", using " +
            fallback + " (set --state-dir, KILN_DIR or XDG_CACHE_HOME to choose; a memory-backed emptyDir is a "
            "good place in a pod)";
  }
  return fallback;
}

Result<std::string> PrepareStateDir(const BuildOptions& options, BuildLog* log) {
  std::string note;
  std::string state = ResolveStateDir(options, &note);
  if (!note.empty()) log->Info(note);
  if (Status made = MakeDirs(state, 0700); !made.ok()) {
    return made.WithContext("kiln's state directory (choose a writable one with --state-dir)");
  }
  struct stat st;
  if (options.state_dir.empty() && ::stat(state.c_str(), &st) == 0 && st.st_uid != ::geteuid()) {
    // A default under a shared directory such as /tmp must be kiln's own, or another user could have
    // prepared it (and read or plant layers).
    return PermissionDenied("the state directory " + state + " belongs to uid " + std::to_string(st.st_uid) +
                            ", not to kiln's uid " + std::to_string(::geteuid()) + "; choose one with --state-dir");
  }
  return state;
}

Result<BuildResult> RunBuild(const BuildOptions& options, BuildDeps& deps) {
  BuildLog* log = deps.log;
  BuildResult result;
  auto build_start = Clock::now();

  if (options.sandbox == SandboxChoice::kInPlace) {
    return Unsupported("in-place builds (RUN in kiln's own filesystem, Kaniko's mode) are not implemented yet");
  }
  if (!options.no_push && options.destinations.empty() && options.tar_path.empty() &&
      options.oci_layout_path.empty() && !options.print_plan) {
    return InvalidArgument("no --destination given: name where to push the image, or use --no-push (with "
                           "--tar-path or --oci-layout-path to keep it)");
  }
  std::set<std::string> push_registries;
  for (const std::string& d : options.destinations) {
    Result<registry::Reference> ref = registry::Reference::Parse(d);
    if (!ref.ok()) return ref.status().WithContext("--destination");
    push_registries.insert(ref->registry());
  }
  KILN_ASSIGN_OR_RETURN(media_type::Compression compression, ParseCompression(options.compression));

  // --- state ---
  KILN_ASSIGN_OR_RETURN(std::string state, PrepareStateDir(options, log));
  {
    // Rootfs paths handed to the sandbox must be absolute.
    char* real = ::realpath(state.c_str(), nullptr);
    if (real == nullptr) return ErrnoStatus("resolving the state directory " + state, errno);
    state = real;
    ::free(real);
  }
  Result<layers::OciLayout> store = layers::OciLayout::OpenOrCreate(state + "/store");
  if (!store.ok()) return store.status().WithContext("kiln's blob store in " + state);
  {
    // Housekeeping: work directories of builds that were killed (no build holds their lock).
    Result<CleanReport> cleaned = RemoveStaleWorkDirs(state, /*include_kept=*/false);
    if (!cleaned.ok()) {
      log->Warn(cleaned.status().message() + "; `kiln clean` removes it later");
    } else if (cleaned->removed > 0) {
      log->Info("removed " + std::to_string(cleaned->removed) + " work directories left by killed builds");
    }
  }
  KILN_ASSIGN_OR_RETURN(WorkDirLease lease, CreateWorkDir(state, options.keep_work));
  std::string work = lease.path;
  // The work directory goes when the build is over. Once every layer is written its trees are not
  // needed, so removal starts then, on a thread of its own, while the image is written and pushed.
  struct Cleanup {
    std::string dir;
    bool keep;
    BuildLog* log;
    std::thread remover;
    void Start() {
      if (keep || remover.joinable()) return;
      remover = std::thread([this] {
        Status s = RemoveTree(dir);
        if (!s.ok()) log->Warn("could not remove " + dir + ": " + s.message());
      });
    }
    ~Cleanup() {
      Start();
      if (remover.joinable()) remover.join();
    }
  } cleanup{work, options.keep_work, log, {}};

  // --- context, then the Dockerfile (which may be inside a context tarball, as Kaniko allows) ---
  std::string context_dir = ContextDir(options.context);
  std::string dockerfile_path = ResolveDockerfile(options, context_dir);
  KILN_RETURN_IF_ERROR(MakeDirs(work + "/context", 0700));
  Result<std::unique_ptr<BuildContext>> context = BuildContext::Open(
      options.context, FileExists(dockerfile_path) ? dockerfile_path : std::string(), work + "/context");
  if (!context.ok()) return context.status().WithContext("build context " + options.context);
  if (!FileExists(dockerfile_path) && context_dir.empty()) {
    dockerfile_path = ResolveDockerfile(options, (*context)->root());
  }
  KILN_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(dockerfile_path, "the Dockerfile"));
  std::string display = options.dockerfile.empty() ? "Dockerfile" : options.dockerfile;
  KILN_ASSIGN_OR_RETURN(dockerfile::Dockerfile df, dockerfile::Parse(text, display));
  for (const std::string& w : df.warnings) log->Warn(w);
  KILN_ASSIGN_OR_RETURN(dockerfile::BuildArgs build_args, dockerfile::BuildArgs::FromFlags(options.build_args, options.environ));

  Platform host = Platform::Host();
  Platform target = host;
  if (!options.platform.empty()) {
    Result<Platform> p = Platform::Parse(options.platform);
    if (!p.ok()) return p.status().WithContext("--custom-platform");
    target = *p;
  }
  dockerfile::PlanOptions popts;
  popts.target = options.target;
  popts.build_args = build_args;
  popts.target_platform = {target.os, target.architecture, target.variant};
  popts.build_platform = {host.os, host.architecture, host.variant};
  KILN_ASSIGN_OR_RETURN(dockerfile::Plan plan, dockerfile::BuildPlan(df, popts));

  std::set<std::string> pull_registries;
  bool onbuild_pending = false;
  auto note_image = [&](const std::string& image) {
    Result<registry::Reference> r = registry::Reference::Parse(image);
    if (r.ok()) pull_registries.insert(r->registry());
  };
  for (const dockerfile::PlannedStage& s : plan.stages) {
    if (s.base.kind == dockerfile::SourceRef::Kind::kImage) note_image(s.base.image);
    for (const dockerfile::FromRef& f : s.from_refs) {
      if (f.ref.kind == dockerfile::SourceRef::Kind::kImage) note_image(f.ref.image);
    }
    onbuild_pending |= s.onbuild_pending;
  }

  KILN_ASSIGN_OR_RETURN(std::unique_ptr<RegistryAccess> access,
                        RegistryAccess::Create(options, pull_registries, push_registries, std::move(deps.keychain)));
  if (!options.no_push && !options.skip_push_permission_check) {
    // As Kaniko does: make sure every destination takes our credentials before building anything,
    // so a typo in a destination or a dead registry costs seconds, not a whole build.
    for (const std::string& d : options.destinations) {
      registry::Reference ref = *registry::Reference::Parse(d);
      registry::Client& c = access->push_client();
      Result<std::unique_ptr<registry::Repository>> repo = c.Open(c.PushEndpoint(ref.registry()), ref.repository(), true);
      Status s = repo.ok() ? (*repo)->HeadManifest(ref.Identifier()).status() : repo.status();
      if (!s.ok()) return s.WithContext("checking the destination " + ref.ToString() + " before building");
    }
  }
  ImageFetcher fetcher(&access->pull_client(), &*store, log);
  if (!options.cache_dir.empty()) {
    // Base images warmed into the cache dir (`kiln warm`) are used without asking a registry.
    fetcher.UseCacheDir(options.cache_dir, std::chrono::seconds(options.cache_ttl_hours * 3600));
  }

  if (onbuild_pending) {
    // Resolve the base images first, so a missing or unreachable one is reported at its FROM line.
    for (const dockerfile::PlannedStage& st : plan.stages) {
      if (!st.onbuild_pending || st.base.kind != dockerfile::SourceRef::Kind::kImage) continue;
      Result<std::shared_ptr<const SourceImage>> img = fetcher.Resolve(st.base.image, st.platform);
      if (!img.ok()) {
        return img.status().WithMessage(
            plan.source.Format(st.loc, "pulling the base image " + st.base.image + ": " + img.status().message()));
      }
    }
    popts.onbuild_triggers = [&](const std::string& image, const dockerfile::Platform& p) -> Result<std::vector<std::string>> {
      Platform want{p.os, p.architecture, p.variant, {}, {}};
      KILN_ASSIGN_OR_RETURN(std::shared_ptr<const SourceImage> img, fetcher.Resolve(image, want));
      return img->config.config.on_build;
    };
    KILN_ASSIGN_OR_RETURN(plan, dockerfile::BuildPlan(df, popts));
  }
  if (!plan.unused_build_args.empty()) {
    std::string names;
    for (const std::string& u : plan.unused_build_args) names += (names.empty() ? "" : " ") + u;
    log->Warn("one or more build args were not consumed: [" + names + "]");
  }
  if (options.print_plan) {
    result.plan_json = dockerfile::PlanToJson(plan);
    return result;
  }

  // --- stages ---
  std::unique_ptr<sandbox::LinuxCommandRunner> owned_runner;
  std::unique_ptr<UrlFetcher> owned_fetcher;
  BuildServices svc;
  svc.options = &options;
  svc.log = log;
  svc.store = &*store;
  svc.fetcher = &fetcher;
  svc.context = context->get();
  svc.plan = &plan;
  svc.build_args = &build_args;
  svc.runner = [&]() -> Result<sandbox::CommandRunner*> {
    if (deps.runner) return deps.runner;
    if (!owned_runner) {
      sandbox::LinuxCommandRunnerOptions ro;
      ro.tier = TierFor(options.sandbox);
      ro.protected_paths = {state + "/store"};
      ro.scratch_dir = work;
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
  std::unique_ptr<registry::Repository> stream_repo;  // outlives the uploads that use it
  BackgroundUploads uploads;
  svc.uploads = &uploads;
  bool stream_tried = false;
  if (!options.no_push && !options.destinations.empty()) {
    svc.stream_push = [&]() -> registry::Repository* {
      if (!stream_tried) {
        stream_tried = true;
        Result<registry::Reference> ref = registry::Reference::Parse(options.destinations[0]);
        if (ref.ok()) {
          registry::Client& c = access->push_client();
          Result<std::unique_ptr<registry::Repository>> r = c.Open(c.PushEndpoint(ref->registry()), ref->repository(), true);
          if (r.ok()) stream_repo = std::move(r).value();
        }
      }
      return stream_repo.get();
    };
  }
  svc.work_dir = work;
  svc.platform = target;
  svc.layer_options.compression.algorithm = compression;
  svc.layer_options.compression.level = options.compression_level;
  std::optional<int64_t> epoch = options.source_date_epoch;
  if (!epoch && options.reproducible) epoch = 0;
  svc.layer_options.tar.source_date_epoch = epoch;
  if (::geteuid() != 0) {
    // Unprivileged without kiln's own user namespace for the build: what RUN steps create is owned on
    // disk by the host ids the sandbox's user namespace maps to (and what kiln itself creates, by
    // kiln's uid, which the namespace calls root). Layers must carry the ids as the step saw them.
    sandbox::IdMapPlan ids = sandbox::PlanIdMapping();
    auto back = [](const std::vector<sandbox::IdRange>& ranges, uint32_t& id) {
      for (const sandbox::IdRange& r : ranges) {
        if (id >= r.outside && id - r.outside < r.count) {
          id = r.inside + (id - r.outside);
          return;
        }
      }
    };
    svc.layer_options.tar.map_owner = [ids, back](uint32_t& uid, uint32_t& gid) {
      back(ids.uids, uid);
      back(ids.gids, gid);
    };
  }
  svc.created = FormatRfc3339(epoch ? *epoch : static_cast<int64_t>(::time(nullptr)));
  svc.times = &result.times;
  std::unique_ptr<LayerCache> cache;
  if (options.cache) {
    std::chrono::seconds ttl(options.cache_ttl_hours * 3600);
    if (options.cache_repo.rfind("oci:", 0) == 0) {
      // Kaniko's local form of --cache-repo: an OCI layout. kiln's directory cache is one.
      std::string dir = options.cache_repo.substr(4);
      if (dir.empty()) return InvalidArgument("--cache-repo oci: needs a directory, as in oci:/cache/layers");
      KILN_ASSIGN_OR_RETURN(cache, OpenDirCache(dir, ttl));
    } else if (!options.cache_dir.empty() && options.cache_repo.empty()) {
      log->Info("--cache-dir " + options.cache_dir + " holds the layer cache (no --cache-repo given), as well as "
                "base images from `kiln warm`");
      KILN_ASSIGN_OR_RETURN(cache, OpenDirCache(options.cache_dir, ttl));
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
        KILN_ASSIGN_OR_RETURN(registry::Reference d, registry::Reference::Parse(options.destinations[0]));
        repo = d.Name() + "/cache";
      }
      RegistryCacheOptions rco;
      rco.platform = target;
      KILN_ASSIGN_OR_RETURN(cache, OpenRegistryCache(access->push_client(), repo, ttl, rco));
    }
    if (options.cache_read_only) cache = ReadOnlyLayerCache(std::move(cache));
    log->Info("layer cache: " + cache->Describe());
    svc.cache = cache.get();
    svc.cache_run = options.cache_run_layers;
    svc.cache_copy = options.cache_copy_layers;
    svc.layer_format = options.compression + "/" + std::to_string(options.compression_level) + "/" +
                       (epoch ? std::to_string(*epoch) : std::string("now"));
    svc.dockerfile_id = dockerfile_path;
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

  // --- the image ---
  cleanup.Start();
  BuiltImage image = done.at(plan.target).image;
  for (const std::string& l : options.labels) {
    size_t eq = l.find('=');
    if (eq == std::string::npos || eq == 0) return InvalidArgument("--label must be KEY=VALUE, not \"" + l + "\"");
    image.config.config.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  image.config.created = svc.created;
  MediaTypeFamily family = ChooseFamily(image, compression == media_type::Compression::kZstd);
  KILN_ASSIGN_OR_RETURN(AssembledImage assembled, Assemble(image, family, *store));
  result.digest = assembled.manifest.digest;
  result.manifest_bytes = assembled.manifest_bytes;
  result.config_bytes = assembled.config_bytes;
  log->Info("built image " + assembled.manifest.digest.ToString() + " (" + std::to_string(assembled.layers.size()) +
            " layers)");

  auto t = Clock::now();
  if (!options.tar_path.empty()) {
    KILN_RETURN_IF_ERROR(WriteTarOutput(assembled, *store, options.destinations, options.tar_path));
    log->Info("wrote docker-archive " + options.tar_path);
  }
  if (!options.oci_layout_path.empty()) {
    KILN_RETURN_IF_ERROR(WriteOciLayoutOutput(assembled, *store, options.oci_layout_path));
    log->Info("wrote OCI layout " + options.oci_layout_path);
  }
  result.times.outputs = Clock::now() - t;
  if (!options.no_push && !options.destinations.empty()) {
    t = Clock::now();
    uploads.Wait();
    KILN_RETURN_IF_ERROR(PushImage(assembled, *store, image.base, access->push_client(), options.destinations,
                                   1 + options.push_retry, log));
    result.times.push = Clock::now() - t;
    result.pushed = options.destinations;
  }
  KILN_RETURN_IF_ERROR(WriteDigestFiles(assembled.manifest.digest, options.destinations, options.digest_file,
                                        options.image_name_with_digest_file, options.image_name_tag_with_digest_file));
  log->Info("done in " + FormatDuration(Clock::now() - build_start) + ": " + result.times.Summary());
  return result;
}

int RunInBuildNamespace(BuildOptions& options, BuildDeps& deps, const std::function<int()>& body, int failure_code) {
  bool wants_rootless = options.sandbox == SandboxChoice::kAuto || options.sandbox == SandboxChoice::kRootless;
  if (::geteuid() == 0 || !wants_rootless || options.print_plan) return body();
  sandbox::UserNamespaceProbe probe = sandbox::ProbeUserNamespace();
  if (!probe.problem.empty()) return body();  // the runner says why and falls back (or refuses a forced tier)
  // Made and checked here, outside, where its owner is still this uid; the build inside uses it as named.
  Result<std::string> state = PrepareStateDir(options, deps.log);
  if (!state.ok()) {
    deps.log->Error(state.status().message());
    return failure_code;
  }
  options.state_dir = *state;
  deps.build_namespace = probe.id_mapping;
  deps.build_namespace_note = probe.id_mapping_note;
  Result<int> rc = sandbox::RunInUserNamespace(probe.id_mapping, body);
  if (!rc.ok()) {
    deps.log->Error(rc.status().message());
    return failure_code;
  }
  return *rc;
}

}  // namespace kiln::executor
