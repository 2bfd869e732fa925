#include "executor/pipeline/stage_builder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <variant>

#include "executor/steps/copy_step.h"
#include "executor/dockerfile/parser.h"
#include "executor/dockerfile/shell_lex.h"
#include "executor/steps/metadata.h"
#include "executor/steps/user_db.h"
#include "layers/extract.h"
#include "layers/rootless.h"
#include "layers/safe_path.h"
#include "snapshot/snapshotter.h"

namespace kiln::executor {
namespace {

using namespace kiln::dockerfile;
using Clock = std::chrono::steady_clock;

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus("creating " + path, errno);
  return OkStatus();
}

class Stage {
 public:
  Stage(BuildServices& svc, size_t position)
      : svc_(svc),
        ps_(svc.plan->stages[position]),
        position_(position),
        scope_(&svc.plan->global_args, svc.build_args) {}

  Result<StageResult> Build() {
    steps_ = static_cast<int>(ps_.instructions.size()) + 1;
    KILN_RETURN_IF_ERROR(From());
    for (size_t i = 0; i < ps_.instructions.size(); ++i) {
      const Instruction& inst = ps_.instructions[i];
      auto start = Clock::now();
      svc_.log->StepStart(static_cast<int>(position_) + 1, static_cast<int>(svc_.plan->stages.size()),
                          static_cast<int>(i) + 2, steps_, StepText(inst));
      note_.clear();
      Status s = Step(i, inst);
      if (!s.ok()) return s.WithMessage(svc_.plan->source.Format(inst.loc, s.message()));
      svc_.log->StepDone(Clock::now() - start, note_);
    }
    if (svc_.single_snapshot && snap_) {
      auto t = Clock::now();
      KILN_ASSIGN_OR_RETURN(snapshot::ChangeSet cs, snap_->Changes());
      svc_.times->snapshot += Clock::now() - t;
      KILN_RETURN_IF_ERROR(AddSnapshotLayer(cs, "kiln --single-snapshot: the whole stage as one layer"));
    }
    if (svc_.rootfs_wanted.count(ps_.index)) KILN_RETURN_IF_ERROR(EnsureRootfs());
    StageResult r;
    r.image = std::move(image_);
    r.cache_key = key_;
    r.rootfs = rootfs_;
    r.env = scope_.env();
    r.shell = meta_.shell;
    return r;
  }

 private:
  // --- FROM ---

  Status From() {
    auto start = Clock::now();
    std::string what;
    svc_.log->StepStart(static_cast<int>(position_) + 1, static_cast<int>(svc_.plan->stages.size()), 1, steps_,
                        ps_.original.empty() ? "FROM" : ps_.original);
    switch (ps_.base.kind) {
      case SourceRef::Kind::kScratch:
        image_.config.os = svc_.platform.os;
        image_.config.architecture = svc_.platform.architecture;
        image_.config.variant = svc_.platform.variant;
        what = "scratch";
        break;
      case SourceRef::Kind::kImage: {
        Result<std::shared_ptr<const SourceImage>> base = svc_.fetcher->Resolve(ps_.base.image, ps_.platform);
        if (!base.ok()) return base.status().WithMessage(svc_.plan->source.Format(ps_.loc, base.status().message()));
        base_ = *base;
        image_.base = base_;
        image_.config = base_->config;
        image_.config.config.on_build.clear();  // triggers run once, in the child (already in the plan)
        for (size_t i = 0; i < base_->manifest.layers.size(); ++i) {
          image_.layers.push_back(ImageLayer{base_->manifest.layers[i], base_->config.diff_ids[i], base_});
        }
        what = base_->canonical;
        break;
      }
      case SourceRef::Kind::kStage: {
        auto it = svc_.done->find(ps_.base.stage);
        if (it == svc_.done->end()) return InternalError("stage " + std::to_string(ps_.base.stage) + " was not built");
        image_ = it->second.image;
        meta_.shell = it->second.shell;
        what = "stage " + std::to_string(ps_.base.stage) + (ps_.base.image.empty() ? "" : " (" + ps_.base.image + ")");
        break;
      }
    }
    image_.config.created = svc_.created;
    // BuildKit makes sure every stage has a PATH.
    if (!FindEnv(image_.config.config.env, "PATH")) {
      image_.config.config.env.push_back(std::string("PATH=") + kDefaultPath);
    }
    if (ps_.base.kind == SourceRef::Kind::kStage) {
      scope_.SeedEnv(svc_.done->at(ps_.base.stage).env);
    } else {
      scope_.SeedEnv(image_.config.config.env);
    }
    if (!image_.config.config.shell.empty()) meta_.shell = image_.config.config.shell;
    meta_.image = &image_.config;
    meta_.scope = &scope_;
    if (svc_.cache) {
      if (ps_.base.kind == SourceRef::Kind::kStage) {
        key_ = svc_.done->at(ps_.base.stage).cache_key;
      } else {
        key_ = StageBaseKey(base_ ? std::optional<Digest>(base_->manifest_raw.digest) : std::nullopt, svc_.layer_format);
      }
    }
    svc_.log->StepDone(Clock::now() - start, what);
    return OkStatus();
  }

  layers::ExtractOptions ExtractOpts() {
    layers::ExtractOptions o;
    BuildLog* log = svc_.log;
    o.warn = [log](std::string_view m) { log->Warn(m); };
    return o;
  }

  // Brings the stage's rootfs up to date with image_.layers: on first use it is created and the base
  // image is unpacked (fetching its layers in parallel); layers added since without touching the
  // rootfs (taken from a cache) are extracted in order. Steps that change the rootfs themselves add
  // their layer with `materialized_` kept in step.
  Status EnsureRootfs() {
    auto start = Clock::now();
    if (rootfs_.empty()) {
      std::string dir = svc_.work_dir + "/stage-" + std::to_string(ps_.index);
      KILN_RETURN_IF_ERROR(MakeDir(dir));
      rootfs_ = dir;
      materialized_ = 0;
      snap_stale_ = true;
      if (base_ && image_.layers.size() >= base_->manifest.layers.size() && !base_->manifest.layers.empty()) {
        KILN_ASSIGN_OR_RETURN(UnpackStats st, svc_.fetcher->Unpack(*base_, rootfs_, ExtractOpts()));
        svc_.log->Info("unpacked " + base_->name + ": " + std::to_string(st.layers) + " layers, " +
                       FormatBytes(st.extracted_bytes) + " (" + std::to_string(st.fetched_layers) + " fetched, " +
                       FormatBytes(st.fetched_bytes) + ") in " + FormatDuration(st.took));
        materialized_ = base_->manifest.layers.size();
      }
    }
    for (; materialized_ < image_.layers.size(); ++materialized_) {
      const ImageLayer& l = image_.layers[materialized_];
      KILN_ASSIGN_OR_RETURN(auto blob, OpenLayerBlob(l, *svc_.store));
      layers::LayerExpectation expect{l.desc.digest, static_cast<uint64_t>(l.desc.size), l.diff_id};
      Result<layers::ExtractResult> r = layers::ExtractLayer(*blob, expect, rootfs_, ExtractOpts());
      if (!r.ok()) return r.status().WithContext("extracting layer " + l.desc.digest.ToString() + " into the rootfs");
      snap_stale_ = true;
    }
    svc_.times->base += Clock::now() - start;
    if (svc_.single_snapshot && !snap_) KILN_RETURN_IF_ERROR(FreshSnapshot());
    return OkStatus();
  }

  snapshot::WalkOptions WalkOpts() const {
    snapshot::WalkOptions w;
    w.ignore_paths = snapshot::DefaultIgnorePaths();
    for (const std::string& p : svc_.ignore_paths) w.ignore_paths.push_back(p);
    return w;
  }

  Status FreshSnapshot() {
    auto t = Clock::now();
    Result<snapshot::Snapshotter> s = snapshot::Snapshotter::Create(rootfs_, WalkOpts());
    if (!s.ok()) return s.status().WithContext("indexing the rootfs");
    snap_.emplace(std::move(s).value());
    snap_stale_ = false;
    svc_.times->snapshot += Clock::now() - t;
    return OkStatus();
  }

  // --- steps ---

  std::string StepText(const Instruction& inst) const {
    std::string s = inst.original;
    size_t nl = s.find('\n');
    if (nl != std::string::npos) s = s.substr(0, nl) + " …";
    return s;
  }

  Vars Vars_() const { return scope_.ExpansionVars(); }
  Result<std::string> Expand(const std::string& w) const { return ExpandWord(w, Vars_(), svc_.plan->escape); }

  Status Step(size_t index, const Instruction& inst) {
    if (const auto* run = std::get_if<RunInst>(&inst.cmd)) return Run(index, inst, *run);
    if (const auto* copy = std::get_if<CopyInst>(&inst.cmd)) return CopyOrAdd(index, inst, *copy, false, copy->from, copy->parents, "");
    if (const auto* add = std::get_if<AddInst>(&inst.cmd)) return CopyOrAdd(index, inst, *add, true, "", false, add->checksum);
    if (const auto* wd = std::get_if<WorkdirInst>(&inst.cmd)) return Workdir(index, inst, *wd);
    if (const auto* vol = std::get_if<VolumeInst>(&inst.cmd)) return Volume(index, inst, *vol);
    KILN_ASSIGN_OR_RETURN(bool handled, ApplyMetadata(inst, svc_.plan->escape, meta_));
    if (!handled) return Unsupported(inst.keyword + " is not supported here");
    if (!std::holds_alternative<ArgInst>(inst.cmd)) {
      AddHistory(meta_.created_by.empty() ? inst.original : meta_.created_by, true);
    }
    ChainKey(inst.original, ConfigFingerprint());
    note_ = "config";
    return OkStatus();
  }

  void AddHistory(const std::string& created_by, bool empty) {
    History h;
    h.created = svc_.created;
    h.created_by = created_by;
    h.comment = "kiln";
    h.empty_layer = empty;
    image_.config.history.push_back(std::move(h));
  }

  Status AddLayerFromChanges(const layers::LayerChanges& changes, const std::string& created_by) {
    auto t = Clock::now();
    // When pushing, the layer streams to the first destination while it is compressed; the push at
    // the end then finds it there. A failed stream costs nothing: the blob is in the store.
    registry::Repository* stream_to = svc_.stream_push ? svc_.stream_push() : nullptr;
    BackgroundUpload* upload = nullptr;
    if (stream_to) upload = svc_.uploads->Start(stream_to, svc_.log);  // nullptr after a failed one
    // A big layer (a 1 GB COPY) takes seconds to tar and compress: a progress line every few seconds
    // says the build is alive (nothing is printed for a short one).
    ProgressMeter meter(svc_.log, "writing the layer", 0);
    layers::LayerOptions layer_options = svc_.layer_options;
    layer_options.tar.on_file_bytes = [&meter](uint64_t n) { meter.Add(n); };
    Result<layers::LayerInfo> info = layers::WriteLayerToBlobDir(rootfs_, changes, layer_options,
                                                                 svc_.store->dir() + "/blobs",
                                                                 upload ? &upload->pipe.writer() : nullptr);
    if (upload) {
      if (info.ok()) {
        upload->pipe.writer().Close().IgnoreError();  // the upload drains the rest in the background
      } else {
        upload->pipe.Abort(info.status());
      }
    }
    if (!info.ok()) return info.status().WithContext("writing the layer");
    svc_.times->layer += Clock::now() - t;
    svc_.times->layers++;
    svc_.times->layer_bytes += info->size;
    Descriptor d;
    d.media_type = info->media_type;
    d.digest = info->digest;
    d.size = static_cast<int64_t>(info->size);
    image_.layers.push_back(ImageLayer{d, info->diff_id, nullptr});
    if (materialized_ + 1 == image_.layers.size()) materialized_ = image_.layers.size();  // made from the rootfs
    AddHistory(created_by, false);
    note_ = "layer " + info->digest.ToString().substr(7, 12) + ", " + FormatBytes(info->size) + ", " +
            std::to_string(info->stats.entries) + " entries";
    return OkStatus();
  }

  Status AddSnapshotLayer(const snapshot::ChangeSet& cs, const std::string& created_by) {
    if (cs.empty()) {
      AddHistory(created_by, true);
      note_ = "no changes";
      return OkStatus();
    }
    layers::LayerChanges lc;
    lc.paths = cs.added_or_modified;
    lc.deletions = cs.deleted;
    lc.opaque_dirs = cs.opaque_dirs;
    return AddLayerFromChanges(lc, created_by);
  }

  // A step that wrote known paths: its layer, unless the whole stage is one snapshot.
  Status AddPathsLayer(std::vector<std::string> paths, const std::string& created_by) {
    snap_stale_ = true;
    if (svc_.single_snapshot) {
      AddHistory(created_by, true);
      return OkStatus();
    }
    if (paths.empty()) {
      AddHistory(created_by, true);
      note_ = "no changes";
      return OkStatus();
    }
    layers::LayerChanges lc;
    lc.paths = std::move(paths);
    return AddLayerFromChanges(lc, created_by);
  }

  Result<ResolvedUser> CurrentUser() {
    const std::string& u = image_.config.config.user;
    Result<ResolvedUser> r = ResolveUser(rootfs_, u.empty() ? "0" : u);
    if (!r.ok()) return r.status().WithContext("USER " + u);
    return r;
  }

  Status Workdir(size_t index, const Instruction& inst, const WorkdirInst& wd) {
    KILN_ASSIGN_OR_RETURN(std::string path, Expand(wd.path));
    std::string dir = ResolveWorkdir(image_.config.config.working_dir, path);
    image_.config.config.working_dir = WorkdirAsConfigured(image_.config.config.working_dir, path);
    if (CacheOn(true)) {
      KILN_ASSIGN_OR_RETURN(bool hit, TryCache(index, "WORKDIR " + dir + "\nuser=" + image_.config.config.user, {},
                                               std::nullopt));
      if (hit) return OkStatus();
    }
    KILN_RETURN_IF_ERROR(EnsureRootfs());
    std::vector<std::string> created;
    KILN_RETURN_IF_ERROR(CreateDirs(dir, true, &created));
    KILN_RETURN_IF_ERROR(AddPathsLayer(created, inst.original));
    return StoreInCache();
  }

  // VOLUME records its paths in the config and, as Docker's classic builder, Buildah and Kaniko do,
  // creates those missing from the rootfs (owned by root, whatever USER says) in a layer, so that a
  // later RUN can use them. BuildKit only records them; what a RUN writes there is kept either way.
  Status Volume(size_t index, const Instruction& inst, const VolumeInst& vol) {
    KILN_RETURN_IF_ERROR(ApplyMetadata(inst, svc_.plan->escape, meta_).status());
    std::string created_by = meta_.created_by.empty() ? inst.original : meta_.created_by;
    std::vector<std::string> dirs;
    std::string what = "VOLUME";
    for (const std::string& p : vol.paths) {
      KILN_ASSIGN_OR_RETURN(std::string v, Expand(p));
      dirs.push_back(ResolveWorkdir("/", v));
      what += " " + dirs.back();
    }
    ChainKey(inst.original, ConfigFingerprint());
    if (CacheOn(true)) {
      KILN_ASSIGN_OR_RETURN(bool hit, TryCache(index, what, {}, std::nullopt));
      if (hit) return OkStatus();
    }
    KILN_RETURN_IF_ERROR(EnsureRootfs());
    std::vector<std::string> created;
    for (const std::string& d : dirs) KILN_RETURN_IF_ERROR(CreateDirs(d, false, &created));
    KILN_RETURN_IF_ERROR(AddPathsLayer(created, created_by));
    return StoreInCache();
  }

  // Creates `dir` and its missing parents inside the rootfs, owned by the stage's USER when
  // `as_user` (as BuildKit does for WORKDIR), else by root.
  Status CreateDirs(const std::string& dir, bool as_user, std::vector<std::string>* created) {
    KILN_ASSIGN_OR_RETURN(layers::RootDir root, layers::RootDir::Open(rootfs_, layers::ResolveMode::kAuto, false));
    KILN_ASSIGN_OR_RETURN(layers::UniqueFd fd, root.OpenDir(dir.substr(1), true, created));
    if (as_user && !created->empty() && !image_.config.config.user.empty()) {
      KILN_ASSIGN_OR_RETURN(ResolvedUser u, CurrentUser());
      for (const std::string& rel : *created) {
        KILN_ASSIGN_OR_RETURN(layers::UniqueFd d, root.OpenDir(rel, false));
        if (::geteuid() == 0) {
          if (::fchownat(d.get(), "", u.uid, u.gid, AT_EMPTY_PATH) == 0) continue;
          if (errno != EPERM && errno != EINVAL) return ErrnoStatus("chown " + rel, errno);  // EINVAL: unmapped id
        }
        // Without root (even when USER is kiln's own uid, which the layer writer reads as root), the
        // owner goes where rootless extraction keeps image owners, as COPY does.
        std::string owner = layers::EncodeRootlessOwner({u.uid, u.gid});
        std::string via = "/proc/self/fd/" + std::to_string(d.get());  // d is an O_PATH descriptor
        if (::setxattr(via.c_str(), layers::kRootlessXattr, owner.data(), owner.size(), 0) != 0) {
          return ErrnoStatus("recording the owner of " + rel + " in " + layers::kRootlessXattr, errno);
        }
      }
    }
    return OkStatus();
  }

  Status Run(size_t index, const Instruction& inst, const RunInst& run) {
    if (!run.mounts.empty()) {
      return Unsupported("RUN --mount (" + run.mounts[0].raw + ") is not supported by kiln yet");
    }
    if (run.security == "insecure") return Unsupported("RUN --security=insecure is not supported: kiln runs steps unprivileged");
    std::vector<std::string> argv;
    if (run.cmd.exec_form) {
      argv = run.cmd.args;
    } else {
      argv = meta_.shell;
      argv.push_back(RunScriptWithHeredocs(run.cmd));
    }
    if (argv.empty() || argv[0].empty()) return InvalidArgument("RUN has no command");
    // History as Docker writes it: the build args the step saw, then the command.
    std::string created_by = "RUN ";
    std::vector<std::string> args;
    for (const auto& [k, v] : scope_.args()) {
      if (!IsProxyArg(k)) args.push_back(k + "=" + v);
    }
    if (!args.empty()) created_by += "|" + std::to_string(args.size()) + " " + JoinArgv(args) + " ";
    created_by += JoinArgv(argv);
    Vars env = scope_.RunEnvironment();
    const std::string workdir = ResolveWorkdir("/", image_.config.config.working_dir);

    if (CacheOn(svc_.cache_run)) {
      CacheVars visible;
      for (const auto& [k, v] : env) {
        if (!IsProxyArg(k)) visible.emplace(k, v);  // proxies never change what a step makes
      }
      std::string what = created_by + "\nuser=" + image_.config.config.user + "\nworkdir=" + workdir +
                         "\nnetwork=" + run.network;
      KILN_ASSIGN_OR_RETURN(bool hit, TryCache(index, what, visible, std::nullopt));
      if (hit) return OkStatus();
    }

    KILN_RETURN_IF_ERROR(EnsureRootfs());
    KILN_ASSIGN_OR_RETURN(sandbox::CommandRunner * runner, svc_.runner());
    if (!svc_.single_snapshot && (!snap_ || snap_stale_)) KILN_RETURN_IF_ERROR(FreshSnapshot());

    sandbox::RunSpec spec;
    spec.rootfs = rootfs_;
    spec.argv = argv;
    KILN_ASSIGN_OR_RETURN(ResolvedUser user, CurrentUser());
    spec.uid = user.uid;
    spec.gid = user.gid;
    spec.supplementary_groups.assign(user.supplementary_groups.begin(), user.supplementary_groups.end());
    if (!env.count("PATH")) env["PATH"] = kDefaultPath;
    if (!env.count("HOME")) env["HOME"] = user.home.empty() ? "/" : user.home;
    for (const auto& [k, v] : env) spec.env.push_back(k + "=" + v);
    spec.workdir = workdir;
    if (spec.workdir != "/") {
      std::vector<std::string> created;
      KILN_RETURN_IF_ERROR(CreateDirs(spec.workdir, true, &created));
    }
    spec.network = run.network == "none" ? sandbox::NetworkMode::kNone : sandbox::NetworkMode::kHost;
    spec.output = svc_.log->StepOutput();

    // No layer upload runs while the sandbox forks. A rootless RUN hung once in 8 runs with an upload
    // in flight (the sandbox child is written to be async-signal-safe, so the exact cause is not
    // pinned down); since uploads finish first, it has not recurred.
    if (svc_.uploads) svc_.uploads->Wait();
    auto t = Clock::now();
    Result<sandbox::RunResult> rr = runner->Run(spec);
    svc_.times->run += Clock::now() - t;
    if (!rr.ok()) return rr.status().WithContext("RUN could not start");
    if (!rr->success()) {
      return Status(ErrorCode::kFailedPrecondition, "RUN " + JoinArgv(spec.argv) + " failed: " + rr->Describe())
          .WithStepExitCode(rr->exit_code != 0 ? rr->exit_code : 1);
    }
    if (svc_.single_snapshot) {
      AddHistory(created_by, true);
      return OkStatus();
    }
    auto ts = Clock::now();
    Result<snapshot::ChangeSet> cs = snap_->Changes();
    svc_.times->snapshot += Clock::now() - ts;
    if (!cs.ok()) return cs.status().WithContext("finding what RUN changed");
    if (rr->creator_ids_not_on_disk) KILN_RETURN_IF_ERROR(RecordCreator(cs->created, spec.uid, spec.gid));
    KILN_RETURN_IF_ERROR(AddSnapshotLayer(*cs, created_by));
    return StoreInCache();
  }

  // The files a step created belong to it: where the sandbox could not make that so on disk (kiln
  // owns them), the step's ids go where rootless extraction keeps image owners, for the layer writer.
  // Symlinks cannot carry user xattrs; they keep the owner kiln's own files get (root).
  Status RecordCreator(const std::vector<std::string>& created, uid_t uid, gid_t gid) {
    std::string value = layers::EncodeRootlessOwner({uid, gid});
    for (const std::string& rel : created) {
      std::string path = rootfs_ + "/" + rel;
      if (::lsetxattr(path.c_str(), layers::kRootlessXattr, value.data(), value.size(), 0) == 0) continue;
      if (errno == EPERM || errno == ENOENT) continue;  // a symlink (or gone): nothing to record
      return ErrnoStatus("recording the owner of " + rel + " (created by RUN as " + std::to_string(uid) + ")", errno);
    }
    return OkStatus();
  }

  // --- the layer cache ---

  bool CacheOn(bool kind_enabled) const {
    return svc_.cache != nullptr && kind_enabled && !svc_.single_snapshot && !cache_broken_;
  }

  // Looks the step up. On a hit the cached layer (or empty history entry) is taken and the rootfs is
  // left alone (EnsureRootfs catches up if a later step needs files); on a miss the key is kept for
  // StoreInCache, and the log says what changed when the cache remembers this step's last inputs.
  Result<bool> TryCache(size_t index, const std::string& what, const CacheVars& visible,
                        const std::optional<Digest>& sources) {
    StepKeyInputs in = StepKeyWithInputs(key_, what, visible, svc_.platform, sources);
    Digest slot = Sha256Of(svc_.dockerfile_id + "|" + std::to_string(ps_.index) + "|" + std::to_string(index));
    Result<std::optional<CacheEntry>> hit = svc_.cache->Lookup(in.key);
    if (!hit.ok()) {
      svc_.log->Warn("layer cache lookup failed, building the step: " + hit.status().message());
      hit = std::optional<CacheEntry>();
    }
    if (*hit) {
      const CacheEntry& e = **hit;
      if (e.empty_layer) {
        AddHistory(e.created_by, true);
      } else {
        LayerCache* cache = svc_.cache;
        CacheEntry entry = e;
        image_.layers.push_back(ImageLayer{e.layer, e.diff_id, nullptr, [cache, entry] { return cache->OpenLayer(entry); }});
        AddHistory(e.created_by, false);
      }
      key_ = in.key;
      svc_.cache->RememberInputs(slot, in).IgnoreError();
      note_ = "cache hit" + std::string(e.empty_layer ? "" : ", layer " + e.layer.digest.ToString().substr(7, 12));
      return true;
    }
    std::string reason = "not cached yet";
    Result<std::optional<StepKeyInputs>> before = svc_.cache->RecallInputs(slot);
    if (before.ok() && *before) {
      std::string changed = DescribeKeyChange(**before, in);
      reason = changed.empty() ? "the entry expired or was removed" : changed;
    }
    miss_reason_ = reason;
    pending_ = PendingStore{in, slot};
    return false;
  }

  // After a step that missed: stores what it made under its key, and moves the chain on.
  Status StoreInCache() {
    if (chain_after_) {
      key_ = *chain_after_;
      chain_after_.reset();
    }
    if (!pending_) return OkStatus();
    PendingStore p = *pending_;
    pending_.reset();
    key_ = p.inputs.key;
    CacheEntry e;
    const History& h = image_.config.history.back();
    e.created_by = h.created_by;
    e.empty_layer = h.empty_layer;
    std::unique_ptr<Reader> blob;
    if (!e.empty_layer) {
      const ImageLayer& l = image_.layers.back();
      e.layer = l.desc;
      e.diff_id = l.diff_id;
      KILN_ASSIGN_OR_RETURN(blob, svc_.store->OpenBlob(l.desc.digest, l.desc.size));
    }
    Status s = svc_.cache->Store(p.inputs.key, e, blob.get());
    if (!s.ok()) svc_.log->Warn("could not store the step in the layer cache: " + s.message());
    svc_.cache->RememberInputs(p.slot, p.inputs).IgnoreError();
    note_ += (note_.empty() ? "" : "; ") + std::string("cache miss: ") + miss_reason_;
    return OkStatus();
  }

  // Metadata steps and uncached steps still move the key chain, so later steps see what they did.
  void ChainKey(const std::string& what, const std::optional<Digest>& extra) {
    if (!svc_.cache) return;
    key_ = StepKey(key_, what, {}, svc_.platform, extra);
  }

  // The config as far as later steps can tell (no timestamps, no history).
  Digest ConfigFingerprint() const {
    ImageConfig c = image_.config;
    c.created.clear();
    c.history.clear();
    c.diff_ids.clear();
    std::string shell;
    for (const std::string& s : meta_.shell) shell += s + '\0';
    return Sha256Of(SerializeImageConfig(c) + "\n" + shell + (meta_.cmd_set ? "\ncmd_set" : ""));
  }

  // The cache key standing for what a COPY --from reads: a stage's last key, or an image's digest.
  std::optional<Digest> FromKey(size_t index) {
    for (const FromRef& fr : ps_.from_refs) {
      if (fr.instruction != index) continue;
      if (fr.ref.kind == SourceRef::Kind::kStage) {
        auto it = svc_.done->find(fr.ref.stage);
        if (it != svc_.done->end()) return it->second.cache_key;
      }
      if (fr.ref.kind == SourceRef::Kind::kImage) {
        Result<std::shared_ptr<const SourceImage>> img = svc_.fetcher->Resolve(fr.ref.image, ps_.platform);
        if (img.ok()) return StageBaseKey((*img)->manifest_raw.digest, "");
      }
    }
    return std::nullopt;
  }

  // The rootfs a COPY --from reads: a built stage's, or an image's unpacked for this build.
  Result<std::string> FromRoot(size_t index, const std::string& from_text) {
    for (const FromRef& fr : ps_.from_refs) {
      if (fr.instruction != index) continue;
      if (fr.ref.kind == SourceRef::Kind::kStage) {
        auto it = svc_.done->find(fr.ref.stage);
        if (it == svc_.done->end() || it->second.rootfs.empty()) {
          return InternalError("stage " + fr.name + " has no files to copy from");
        }
        return it->second.rootfs;
      }
      if (fr.ref.kind == SourceRef::Kind::kImage) {
        auto cached = svc_.image_roots->find(fr.ref.image);
        if (cached != svc_.image_roots->end()) return cached->second;
        KILN_ASSIGN_OR_RETURN(std::shared_ptr<const SourceImage> img, svc_.fetcher->Resolve(fr.ref.image, ps_.platform));
        std::string dir = svc_.work_dir + "/image-" + std::to_string(svc_.image_roots->size());
        KILN_RETURN_IF_ERROR(MakeDir(dir));
        auto t = Clock::now();
        KILN_RETURN_IF_ERROR(svc_.fetcher->Unpack(*img, dir, ExtractOpts()).status());
        svc_.times->base += Clock::now() - t;
        (*svc_.image_roots)[fr.ref.image] = dir;
        return dir;
      }
      return InvalidArgument("--from=" + from_text + " names scratch, which has no files");
    }
    return InternalError("--from=" + from_text + " was not resolved by the plan");
  }

  Status CopyOrAdd(size_t index, const Instruction& inst, const CopyCommon& c, bool add, const std::string& from,
                   bool parents, const std::string& checksum) {
    CopySource src;
    if (from.empty()) {
      if (!svc_.context) return FailedPrecondition("no build context");
      src.root = svc_.context->root();
      src.ignore = &svc_.context->ignore();
    } else {
      KILN_ASSIGN_OR_RETURN(src.root, FromRoot(index, from));
      src.from_stage = true;
    }
    CopyRequest req;
    req.add = add;
    req.parents = parents;
    for (const std::string& s : c.sources) {
      KILN_ASSIGN_OR_RETURN(std::string e, Expand(s));
      req.sources.push_back(e);
    }
    for (const InlineSource& is : c.inline_sources) {
      InlineSource e = is;
      if (is.expand) {
        LexOptions lo;
        lo.escape = svc_.plan->escape;
        lo.raw_quotes = true;
        lo.raw_escapes = true;
        KILN_ASSIGN_OR_RETURN(e.data, ExpandWord(is.data, Vars_(), lo));
      }
      req.inline_sources.push_back(e);
    }
    KILN_ASSIGN_OR_RETURN(req.dest, Expand(c.dest));
    req.workdir = ResolveWorkdir("/", image_.config.config.working_dir);
    std::string chown, chmod;
    if (!c.chown.empty()) {
      KILN_ASSIGN_OR_RETURN(chown, Expand(c.chown));
    }
    if (!c.chmod.empty()) {
      KILN_ASSIGN_OR_RETURN(chmod, Expand(c.chmod));
      KILN_ASSIGN_OR_RETURN(req.chmod, ParseChmod(chmod));
    }
    for (const std::string& ex : c.excludes) {
      KILN_ASSIGN_OR_RETURN(std::string e, Expand(ex));
      req.excludes.push_back(e);
    }
    if (!checksum.empty()) {
      KILN_ASSIGN_OR_RETURN(req.checksum, Expand(checksum));
    }
    if (CacheOn(true)) {
      // The key covers the request as expanded and the content of every file it would read. With
      // COPY layers not cached (--cache-copy-layers=false) the key still moves the chain, so later
      // RUN steps stay cacheable.
      // From the context: the content of what it reads. From a stage: that stage's key, which
      // stands for its whole tree, so its files need not be read (nor even exist yet).
      Result<std::optional<Digest>> sources = std::optional<Digest>();
      std::optional<Digest> from_key = FromKey(index);
      if (from_key) {
        sources = std::optional<Digest>(CopyFromKeySources(*from_key, req));
      } else {
        sources = HashCopySources(src, req);
      }
      if (!sources.ok()) return sources.status().WithContext(inst.keyword + " failed");
      if (!*sources) {
        cache_broken_ = true;  // e.g. ADD of a URL without --checksum: nothing after it can be keyed
        svc_.log->Info("layer cache: " + inst.keyword + " of a URL without --checksum is not cached, nor what follows");
      } else {
        std::string what = inst.keyword + (add ? " add" : "") + "\nfrom=" + from;
        for (const std::string& x : req.sources) what += "\nsrc=" + x;
        for (const InlineSource& x : req.inline_sources) what += "\ninline=" + x.path;
        what += "\ndest=" + req.dest + "\nworkdir=" + req.workdir + "\nchown=" + chown + "\nchmod=" + chmod +
                "\nparents=" + (parents ? "1" : "0") + "\nchecksum=" + req.checksum;
        for (const std::string& x : req.excludes) what += "\nexclude=" + x;
        if (svc_.cache_copy) {
          KILN_ASSIGN_OR_RETURN(bool hit, TryCache(index, what, {}, *sources));
          if (hit) return OkStatus();
        } else {
          chain_after_ = StepKey(key_, what, {}, svc_.platform, *sources);
        }
      }
    }
    KILN_RETURN_IF_ERROR(EnsureRootfs());
    if (!chown.empty()) {
      KILN_ASSIGN_OR_RETURN(auto ids, ResolveChown(rootfs_, chown));
      req.chown = ids;
    }
    auto t = Clock::now();
    Result<CopyResult> r = ExecuteCopy(src, rootfs_, req, svc_.url_fetcher);
    svc_.times->copy += Clock::now() - t;
    if (!r.ok()) return r.status().WithContext(inst.keyword + " failed");
    KILN_RETURN_IF_ERROR(AddPathsLayer(r->changed, inst.original));
    note_ = std::to_string(r->files) + " files, " + FormatBytes(r->bytes) + (note_.empty() ? "" : "; " + note_);
    return StoreInCache();
  }

  BuildServices& svc_;
  const PlannedStage& ps_;
  size_t position_;
  StageScope scope_;
  StageMetadata meta_;
  BuiltImage image_;
  std::shared_ptr<const SourceImage> base_;
  std::string rootfs_;
  std::optional<snapshot::Snapshotter> snap_;
  bool snap_stale_ = true;
  size_t materialized_ = 0;  // how many of image_.layers the rootfs reflects
  // The layer cache: the key chain, and the step waiting to be stored after a miss.
  struct PendingStore {
    StepKeyInputs inputs;
    Digest slot;
  };
  Digest key_;
  std::optional<PendingStore> pending_;
  std::optional<Digest> chain_after_;  // the key of an uncached step, applied once it succeeded
  std::string miss_reason_;
  bool cache_broken_ = false;  // a step that cannot be keyed (ADD of a URL without --checksum)
  int steps_ = 0;
  std::string note_;
};

}  // namespace

std::string PhaseTimes::Summary() const {
  return "base images " + FormatDuration(base) + ", RUN " + FormatDuration(run) + ", snapshots " +
         FormatDuration(snapshot) + ", COPY/ADD " + FormatDuration(copy) + ", layers " + FormatDuration(layer) + " (" +
         std::to_string(layers) + ", " + FormatBytes(layer_bytes) + "), outputs " + FormatDuration(outputs) +
         ", push " + FormatDuration(push);
}

Result<StageResult> BuildStage(BuildServices& services, size_t position) {
  Stage stage(services, position);
  return stage.Build();
}

}  // namespace kiln::executor
