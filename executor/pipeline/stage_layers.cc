#include <fcntl.h>
#include <unistd.h>

#include "executor/pipeline/stage_build.h"
#include "layers/rootless.h"
#include "layers/safe_path.h"

namespace kiln::executor {

using namespace kiln::dockerfile;
using Clock = std::chrono::steady_clock;

Status StageBuild::AddLayerFromChanges(const layers::LayerChanges& changes, const std::string& created_by,
                                       const std::string& root) {
  auto t = Clock::now();
  // When pushing, the layer streams to the first destination while it is compressed; the push at
  // the end then finds it there. A failed stream costs nothing: the blob is in the store.
  registry::Repository* stream_to = svc_.stream_push ? svc_.stream_push() : nullptr;
  BackgroundUpload* upload = nullptr;
  // The upload may outlive the stage (and its log lane): it reports to the build's log.
  if (stream_to) upload = svc_.uploads->Start(stream_to, svc_.build_log ? svc_.build_log : svc_.log);
  // A big layer (a 1 GB COPY) takes seconds to tar and compress: a progress line every few seconds
  // says the build is alive (nothing is printed for a short one).
  ProgressMeter meter(svc_.log, "writing the layer", 0);
  layers::LayerOptions layer_options = svc_.layer_options;
  layer_options.tar.on_file_bytes = [&meter](uint64_t n) { meter.Add(n); };
  Result<layers::LayerInfo> info = layers::WriteLayerToBlobDir(root.empty() ? rootfs_ : root, changes, layer_options,
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
  image_.layers.push_back(ImageLayer{d, info->diff_id, nullptr, {}});
  if (root.empty() && materialized_ + 1 == image_.layers.size()) {
    materialized_ = image_.layers.size();  // made from the rootfs
  }
  AddHistory(created_by, false);
  note_ = "layer " + info->digest.ToString().substr(7, 12) + ", " + FormatBytes(info->size) + ", " +
          std::to_string(info->stats.entries) + " entries";
  return OkStatus();
}

Status StageBuild::AddSnapshotLayer(const snapshot::ChangeSet& cs, const std::string& created_by) {
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
Status StageBuild::AddPathsLayer(std::vector<std::string> paths, const std::string& created_by) {
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

Result<ResolvedUser> StageBuild::CurrentUser() {
  const std::string& u = image_.config.config.user;
  Result<ResolvedUser> r = ResolveUser(rootfs_, u.empty() ? "0" : u);
  if (!r.ok()) return r.status().WithContext("USER " + u);
  return r;
}

Status StageBuild::Workdir(size_t index, const Instruction& inst, const WorkdirInst& wd) {
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
Status StageBuild::Volume(size_t index, const Instruction& inst, const VolumeInst& vol) {
  KILN_RETURN_IF_ERROR(ApplyMetadata(inst, svc_.plan->escape, meta_).status());
  std::string created_by = meta_.created_by.empty() ? inst.original : meta_.created_by;
  std::vector<std::string> dirs;
  std::string what = "VOLUME";
  for (const std::string& p : vol.paths) {
    KILN_ASSIGN_OR_RETURN(std::string v, Expand(p));
    dirs.push_back(ResolveWorkdir("/", v));
    what += " " + dirs.back();
  }
  cache_.Chain(inst.original, ConfigFingerprint());
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
Status StageBuild::CreateDirs(const std::string& dir, bool as_user, std::vector<std::string>* created) {
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
      KILN_RETURN_IF_ERROR(layers::WriteRootlessOwner(d.get(), {u.uid, u.gid}, rel));
    }
  }
  return OkStatus();
}

}  // namespace kiln::executor
