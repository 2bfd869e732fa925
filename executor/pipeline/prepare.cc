#include "executor/pipeline/prepare.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "executor/pipeline/contexts.h"
#include "executor/pipeline/policy_gate.h"
#include "layers/safe_path.h"

namespace kiln::executor {
namespace {

std::string Env(const BuildOptions& o, const char* k) {
  auto it = o.environ.find(k);
  return it == o.environ.end() ? std::string() : it->second;
}

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

Status RemoveTree(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening " + parent, errno);
  Status s = layers::RemoveAllAt(fd, path.substr(slash + 1));
  ::close(fd);
  return s;
}

bool FileExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// The state directory, absolute, with the blob store opened and this build's work directory made.
Status PrepareState(const BuildOptions& options, BuildLog* log, PreparedBuild& b) {
  KILN_ASSIGN_OR_RETURN(std::string state, PrepareStateDir(options, log));
  char* real = ::realpath(state.c_str(), nullptr);
  if (real == nullptr) return ErrnoStatus("resolving the state directory " + state, errno);
  b.state_dir = real;
  ::free(real);
  Result<layers::OciLayout> store = layers::OciLayout::OpenOrCreate(b.state_dir + "/store");
  if (!store.ok()) return store.status().WithContext("kiln's blob store in " + b.state_dir);
  b.store = std::make_unique<layers::OciLayout>(std::move(store).value());
  // Housekeeping: work directories of builds that were killed (no build holds their lock).
  Result<CleanReport> cleaned = RemoveStaleWorkDirs(b.state_dir, /*include_kept=*/false);
  if (!cleaned.ok()) {
    log->Warn(cleaned.status().message() + "; `kiln clean` removes it later");
  } else if (cleaned->removed > 0) {
    log->Info("removed " + std::to_string(cleaned->removed) + " work directories left by killed builds");
  }
  KILN_ASSIGN_OR_RETURN(b.lease, CreateWorkDir(b.state_dir, options.keep_work));
  b.remover = std::make_unique<WorkDirRemover>(b.lease.path, options.keep_work, log);
  if (!options.keep_work) {
    b.stop_cleanup = std::make_unique<StopCleanup>([dir = b.lease.path] { RemoveTree(dir).IgnoreError(); });
  }
  return OkStatus();
}

// The context (fetched first when it is a git repository), the named contexts, then the Dockerfile
// (which may be inside a context tarball, as Kaniko allows).
Status PrepareContextAndPlan(const BuildOptions& options, const GitRunnerFactory& git, BuildLog* log,
                             PreparedBuild& b) {
  std::string spec = options.context;
  std::string context_dir;
  if (IsGitContext(spec)) {
    Result<std::string> fetched = FetchGitContext(options, git, b.lease.path + "/git-context", log);
    if (!fetched.ok()) return fetched.status().WithContext("build context " + RedactGitUrl(spec));
    spec = context_dir = *fetched;
  } else {
    context_dir = ContextDirectory(spec);
  }
  std::string dockerfile = ResolveDockerfilePath(options.dockerfile, context_dir);
  KILN_RETURN_IF_ERROR(MakeDirs(b.lease.path + "/context", 0700));
  Result<std::unique_ptr<BuildContext>> context = BuildContext::Open(
      spec, FileExists(dockerfile) ? dockerfile : std::string(), b.lease.path + "/context");
  if (!context.ok()) return context.status().WithContext("build context " + RedactGitUrl(options.context));
  b.context = std::move(context).value();
  KILN_ASSIGN_OR_RETURN(NamedContexts named, ResolveNamedContexts(options, git, b.lease.path, log));
  FrontEndOptions fo = FrontEndOptionsOf(options);
  for (const auto& [name, dir] : named.dirs) fo.named_contexts[name] = "";
  for (const auto& [name, image] : named.images) fo.named_contexts[name] = image;
  b.named_dirs = std::move(named.dirs);
  const std::string& root = context_dir.empty() ? b.context->root() : context_dir;
  KILN_ASSIGN_OR_RETURN(b.front, LoadPlan(fo, root));
  return OkStatus();
}

// The registries the plan reads from (bases, COPY --from images).
std::set<std::string> PullRegistries(const dockerfile::Plan& plan) {
  std::set<std::string> out;
  auto note = [&](const std::string& image) {
    Result<Reference> r = Reference::Parse(image);
    if (r.ok()) out.insert(r->registry());
  };
  for (const dockerfile::PlannedStage& s : plan.stages) {
    if (s.base.kind == dockerfile::SourceRef::Kind::kImage) note(s.base.image);
    for (const dockerfile::FromRef& f : s.from_refs) {
      if (f.ref.kind == dockerfile::SourceRef::Kind::kImage) note(f.ref.image);
    }
  }
  return out;
}

// Opens every destination's repository once. As Kaniko does (unless told not to), checks that each
// takes our credentials before building anything, so a typo in a destination or a dead registry
// costs seconds, not a whole build.
Status OpenDestinations(const BuildOptions& options, PreparedBuild& b) {
  if (options.no_push) return OkStatus();
  registry::Client& c = b.access->push_client();
  for (const Reference& ref : options.destinations) {
    if (b.destinations.count(ref.ToString())) continue;
    Result<std::unique_ptr<registry::Repository>> repo = c.Open(c.PushEndpoint(ref.registry()), ref.repository(), true);
    Status s = repo.status();
    if (s.ok() && !options.skip_push_permission_check) s = (*repo)->HeadManifest(ref.Identifier()).status();
    if (!s.ok()) return s.WithContext("checking the destination " + ref.ToString() + " before building");
    b.destinations[ref.ToString()] = std::move(repo).value();
  }
  return OkStatus();
}

// Stages whose base image has ONBUILD triggers: resolve the bases first (so a missing or unreachable
// one is reported at its FROM line), then plan again with their triggers.
Status ResolveOnbuildTriggers(PreparedBuild& b) {
  const dockerfile::Plan& plan = b.front.plan;
  bool pending = false;
  for (const dockerfile::PlannedStage& st : plan.stages) {
    if (!st.onbuild_pending || st.base.kind != dockerfile::SourceRef::Kind::kImage) continue;
    pending = true;
    Result<std::shared_ptr<const SourceImage>> img = b.fetcher->Resolve(st.base.image, st.platform);
    if (!img.ok()) {
      return img.status().WithMessage(
          plan.source.Format(st.loc, "pulling the base image " + st.base.image + ": " + img.status().message()));
    }
  }
  if (!pending) return OkStatus();
  ImageFetcher* fetcher = b.fetcher.get();
  return ReplanWithTriggers(b.front, [fetcher](const std::string& image, const Platform& p)
                                         -> Result<std::vector<std::string>> {
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<const SourceImage> img, fetcher->Resolve(image, p));
    return img->config.config.on_build;
  });
}

}  // namespace

std::string ContextDirectory(const std::string& spec) {
  std::string s = spec.rfind("dir://", 0) == 0 ? spec.substr(6) : spec;
  struct stat st;
  if (::stat(s.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return s;
  return "";
}

FrontEndOptions FrontEndOptionsOf(const BuildOptions& options) {
  FrontEndOptions fo;
  fo.dockerfile = options.dockerfile;
  fo.build_args = options.build_args;
  fo.environ = options.environ;
  fo.target = options.target;
  fo.platform = options.platform;
  return fo;
}

WorkDirRemover::~WorkDirRemover() {
  Start();
  if (remover_.joinable()) remover_.join();
}

void WorkDirRemover::Start() {
  if (keep_ || remover_.joinable()) return;
  remover_ = std::thread([this] {
    Status s = RemoveTree(dir_);
    if (!s.ok()) log_->Warn("could not remove " + dir_ + ": " + s.message());
  });
}

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
  // directory under TMPDIR rather than fail, and say so (PrepareStateDir checks that it is ours).
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

namespace {

// The registry repository cache mounts go to: the layer cache's when that is a registry (--cache
// with --cache-repo REPO, or DESTINATION/cache), none for a local layer cache.
std::optional<std::string> CacheMountRepository(const BuildOptions& options) {
  if (!options.cache || options.cache_mount_max_bytes == 0) return std::nullopt;
  if (options.cache_repo.rfind("oci:", 0) == 0) return std::nullopt;
  if (options.cache_repo.empty() && !options.cache_dir.empty()) return std::nullopt;
  if (!options.cache_repo.empty()) return options.cache_repo;
  if (options.destinations.empty()) return std::nullopt;
  return options.destinations[0].Name() + "/cache";
}

}  // namespace

void ExportCacheMounts(PreparedBuild& b, BuildLog* log) {
  if (!b.cache_mount_remote || b.cache_mounts_used.empty()) return;
  // A work directory of its own (locked, so housekeeping leaves it alone while it is used, and removes
  // it if kiln is killed): the build's may be removed while the export runs beside the publishing.
  Result<WorkDirLease> scratch = CreateWorkDir(b.state_dir);
  if (!scratch.ok()) {
    log->Warn("cache mounts: not exported to " + b.cache_mount_remote->Describe() + ": " + scratch.status().message());
    return;
  }
  for (const CacheMountStore::Entry& e : b.cache_mounts->List()) {
    if (!b.cache_mounts_used.count(e.key)) continue;
    Result<UniqueFd> lock = b.cache_mounts->Lock(e.key);
    Status s = lock.ok() ? b.cache_mount_remote->Export(e.key, e.id, e.platform, e.dir, scratch->path) : lock.status();
    if (!s.ok()) log->Warn("cache mount " + e.id + ": not exported to " + b.cache_mount_remote->Describe() + ": " + s.message());
  }
  if (Status removed = RemoveTree(scratch->path); !removed.ok()) log->Warn(removed.message());
}

Result<std::unique_ptr<PreparedBuild>> Prepare(const BuildOptions& options, BuildDeps& deps,
                                               std::shared_ptr<RegistryAccess> access) {
  BuildLog* log = deps.log;
  auto b = std::make_unique<PreparedBuild>();
  KILN_RETURN_IF_ERROR(PrepareState(options, log, *b));
  GitRunnerFactory git =
      deps.git ? deps.git : CliGitRunnerFactory(options.environ, options.git.insecure_skip_tls);
  KILN_RETURN_IF_ERROR(PrepareContextAndPlan(options, git, log, *b));
  for (const std::string& w : b->front.dockerfile.warnings) log->Warn(w);
  if (!b->front.plan.syntax.empty()) {
    log->Info("# syntax=" + b->front.plan.syntax + ": noted; kiln builds with its own Dockerfile frontend and pulls no "
              "other");
  }
  for (const dockerfile::CheckFinding& f : b->front.checks) log->Warn(f.formatted);
  KILN_RETURN_IF_ERROR(ChecksVerdict(b->front));
  // Policy: on the plan, before any registry is asked anything.
  std::vector<std::string> label_keys;
  for (const auto& [key, value] : options.labels) label_keys.push_back(key);
  KILN_ASSIGN_OR_RETURN(std::vector<policy::PendingImage> policy_pending,
                        CheckPlanPolicy(options.policies, b->front, label_keys, log));
  b->secrets = std::make_unique<SecretStore>(options.secrets, options.environ);
  KILN_RETURN_IF_ERROR(b->secrets->Validate());
  b->ssh_agents = std::make_unique<SshAgents>(options.ssh, options.environ);
  b->cache_mounts = std::make_unique<CacheMountStore>(options.cache_dir.empty() ? b->state_dir : options.cache_dir);

  if (access) {
    b->access = std::move(access);
  } else {
    std::set<std::string> push_registries;
    for (const Reference& d : options.destinations) push_registries.insert(d.registry());
    KILN_ASSIGN_OR_RETURN(b->access, RegistryAccess::Create(options, PullRegistries(b->front.plan), push_registries,
                                                            std::move(deps.keychain), deps.registry_transport,
                                                            [log](std::string_view m) { log->Info(m); }));
  }
  KILN_RETURN_IF_ERROR(OpenDestinations(options, *b));
  if (std::optional<std::string> repo = CacheMountRepository(options)) {
    b->cache_mount_remote =
        std::make_unique<CacheMountRemote>(b->access->push_client(), *repo, options.cache_mount_max_bytes, log);
    b->cache_mounts->SetRemote(b->cache_mount_remote.get());
  }
  b->fetcher = std::make_unique<ImageFetcher>(&b->access->pull_client(), b->store.get(), log);
  if (!options.cache_dir.empty()) {
    // Base images warmed into the cache dir (`kiln warm`) are used without asking a registry.
    b->fetcher->UseCacheDir(options.cache_dir, options.cache_ttl);
  }
  KILN_RETURN_IF_ERROR(CheckResolvedPolicy(options.policies, b->front, *b->fetcher, policy_pending, log));
  KILN_RETURN_IF_ERROR(ResolveOnbuildTriggers(*b));
  KILN_RETURN_IF_ERROR(CheckOnbuildPolicy(options.policies, b->front, label_keys, log));
  KILN_RETURN_IF_ERROR(CheckInheritedPolicy(options.policies, b->front, *b->fetcher, label_keys, log));
  if (!b->front.plan.unused_build_args.empty()) {
    log->Warn("one or more build args were not consumed: " + UnusedBuildArgs(b->front.plan));
  }
  return b;
}

}  // namespace kiln::executor
