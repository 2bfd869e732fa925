#include "executor/pipeline/stage_builder.h"

#include <sys/stat.h>

#include <variant>

#include "executor/dockerfile/shell_lex.h"
#include "executor/pipeline/stage_build.h"
#include "executor/steps/metadata.h"

namespace kiln::executor {

using namespace kiln::dockerfile;
using Clock = std::chrono::steady_clock;

StageBuild::StageBuild(BuildServices& svc, size_t position)
    : svc_(svc),
      ps_(svc.plan->stages[position]),
      position_(position),
      scope_(&svc.plan->global_args, svc.build_args),
      cache_(svc.cache, svc.log, svc.platform, svc.dockerfile_id + "|" + std::to_string(ps_.index) + "|" + svc.platform.ToString()) {}

Status StageBuild::MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus("creating " + path, errno);
  return OkStatus();
}

Result<StageResult> StageBuild::Build() {
  steps_ = static_cast<int>(ps_.instructions.size()) + 1;
  KILN_RETURN_IF_ERROR(From());
  for (size_t i = 0; i < ps_.instructions.size(); ++i) {
    const Instruction& inst = ps_.instructions[i];
    if (svc_.cancelled && *svc_.cancelled) return Status(ErrorCode::kCancelled, "stopped: another stage failed");
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
  r.cache_key = cache_.key();
  r.rootfs = rootfs_;
  r.env = scope_.env();
  r.shell = meta_.shell;
  return r;
}

Status StageBuild::From() {
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
        image_.layers.push_back(ImageLayer{base_->manifest.layers[i], base_->config.diff_ids[i], base_, {}});
      }
      what = base_->canonical;
      break;
    }
    case SourceRef::Kind::kContext:
      image_.config.os = svc_.platform.os;
      image_.config.architecture = svc_.platform.architecture;
      image_.config.variant = svc_.platform.variant;
      what = "build context " + ps_.base.image;
      break;
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
      cache_.Start(svc_.done->at(ps_.base.stage).cache_key);
    } else {
      cache_.Start(StageBaseKey(base_ ? std::optional<Digest>(base_->manifest_raw.digest) : std::nullopt, svc_.layer_format));
    }
  }
  if (ps_.base.kind == SourceRef::Kind::kContext) {
    Status s = FromContextDir();
    if (!s.ok()) return s.WithMessage(svc_.plan->source.Format(ps_.loc, s.message()));
  }
  if (ps_.replaced_by_context) what += "; --build-context " + ps_.name + " replaces the stage";
  svc_.log->StepDone(Clock::now() - start, what);
  return OkStatus();
}

layers::ExtractOptions StageBuild::ExtractOpts() {
  layers::ExtractOptions o;
  BuildLog* log = svc_.log;
  o.warn = [log](std::string_view m) { log->Warn(m); };
  o.limits = svc_.layer_limits;
  // A base image's device nodes are not made in the build's rootfs: kiln has no device cgroup, so a
  // node planted by an image (the host's disk, /dev/kmsg) would let a RUN step in the root and ptrace
  // tiers reach the host's device. The image's own layers still carry them; RUN steps get kiln's /dev.
  o.create_device_nodes = false;
  return o;
}

// Brings the stage's rootfs up to date with image_.layers: on first use it is created and the base
// image is unpacked (fetching its layers in parallel); layers added since without touching the
// rootfs (taken from a cache) are extracted in order. Steps that change the rootfs themselves add
// their layer with `materialized_` kept in step.
Status StageBuild::EnsureRootfs() {
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

snapshot::WalkOptions StageBuild::WalkOpts() const {
  snapshot::WalkOptions w;
  w.ignore_paths = snapshot::DefaultIgnorePaths();
  for (const std::string& p : svc_.ignore_paths) w.ignore_paths.push_back(p);
  return w;
}

Status StageBuild::FreshSnapshot() {
  auto t = Clock::now();
  Result<snapshot::Snapshotter> s = snapshot::Snapshotter::Create(rootfs_, WalkOpts());
  if (!s.ok()) return s.status().WithContext("indexing the rootfs");
  snap_.emplace(std::move(s).value());
  snap_stale_ = false;
  svc_.times->snapshot += Clock::now() - t;
  return OkStatus();
}

std::string StageBuild::StepText(const Instruction& inst) const {
  std::string s = inst.original;
  size_t nl = s.find('\n');
  if (nl != std::string::npos) s = s.substr(0, nl) + " …";
  return s;
}

Result<std::string> StageBuild::Expand(const std::string& w) const { return ExpandWord(w, Vars_(), svc_.plan->escape); }

Status StageBuild::Step(size_t index, const Instruction& inst) {
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
  cache_.Chain(inst.original, ConfigFingerprint());
  note_ = "config";
  return OkStatus();
}

void StageBuild::AddHistory(const std::string& created_by, bool empty) {
  History h;
  h.created = svc_.created;
  h.created_by = created_by;
  h.comment = "kiln";
  h.empty_layer = empty;
  image_.config.history.push_back(std::move(h));
}

// The config as far as later steps can tell (no timestamps, no history).
Digest StageBuild::ConfigFingerprint() const {
  ImageConfig c = image_.config;
  c.created.clear();
  c.history.clear();
  c.diff_ids.clear();
  std::string shell;
  for (const std::string& s : meta_.shell) shell += s + '\0';
  return Sha256Of(SerializeImageConfig(c) + "\n" + shell + (meta_.cmd_set ? "\ncmd_set" : ""));
}

Result<bool> StageBuild::TryCopyCache(size_t index, const std::string& what, const Digest& sources, bool independent) {
  if (!svc_.cache_copy) {
    cache_.ChainAfterStep(what, sources);
    return false;
  }
  return TryCache(index, what, {}, sources, independent);
}

Result<bool> StageBuild::TryCache(size_t index, const std::string& what, const CacheVars& visible,
                                  const std::optional<Digest>& sources, bool independent) {
  std::optional<CacheEntry> hit =
      independent ? cache_.LookupIndependent(index, what, sources) : cache_.Lookup(index, what, visible, sources);
  if (!hit) return false;
  const CacheEntry& e = *hit;
  if (e.empty_layer) {
    AddHistory(e.created_by, true);
  } else {
    LayerCache* cache = svc_.cache;
    CacheEntry entry = e;
    image_.layers.push_back(ImageLayer{e.layer, e.diff_id, nullptr, [cache, entry] { return cache->OpenLayer(entry); }});
    AddHistory(e.created_by, false);
  }
  note_ = "cache hit" + std::string(e.empty_layer ? "" : ", layer " + e.layer.digest.ToString().substr(7, 12));
  return true;
}

Status StageBuild::StoreInCache() {
  if (!cache_.StepSucceeded()) return OkStatus();
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
  cache_.Store(e, blob.get(), &note_);
  return OkStatus();
}

std::string PhaseTimes::Summary() const {
  return "base images " + FormatDuration(base) + ", RUN " + FormatDuration(run) + ", snapshots " +
         FormatDuration(snapshot) + ", COPY/ADD " + FormatDuration(copy) + ", layers " + FormatDuration(layer) + " (" +
         std::to_string(layers) + ", " + FormatBytes(layer_bytes) + "), outputs " + FormatDuration(outputs) +
         ", push " + FormatDuration(push);
}

Result<StageResult> BuildStage(BuildServices& services, size_t position) {
  StageBuild stage(services, position);
  return stage.Build();
}

}  // namespace kiln::executor
