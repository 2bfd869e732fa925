// StageBuild: the state of one stage while BuildStage (stage_builder.h) runs it. Internal to
// executor/pipeline; its methods are spread over files by job:
//   stage_builder.cc   the stage from FROM to its result: base image, rootfs, metadata steps, cache lookups
//   stage_layers.cc    layers from changed paths, and the steps that create directories (WORKDIR, VOLUME)
//   run_step.cc        RUN: the sandbox, the snapshot of what it changed, the owner of what it created
//   copy_instruction.cc COPY/ADD: sources (context, stage, image), cache key, the copy itself
// Not thread-safe; one StageBuild per stage, used once.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "executor/cache/step_cache.h"
#include "executor/dockerfile/args.h"
#include "executor/dockerfile/instructions.h"
#include "executor/dockerfile/mount.h"
#include "executor/cache/mount_cache.h"
#include "executor/steps/ssh_forward.h"
#include "executor/dockerfile/plan.h"
#include "executor/image/built_image.h"
#include "executor/pipeline/stage_builder.h"
#include "executor/steps/copy_step.h"
#include "executor/steps/metadata.h"
#include "executor/steps/user_db.h"
#include "layers/extract.h"
#include "layers/layer_writer.h"
#include "snapshot/snapshotter.h"

namespace kiln::executor {

struct CopyRequest;

/// What a RUN step's mounts hold while it runs: cache locks, and the private directory of its
/// secrets' copies (removed with this object, whatever happens to the step).
struct StepMountsHeld {
  std::vector<CacheMountLease> leases;
  std::vector<std::unique_ptr<SshAgentRelay>> relays;  // stopped before private_dir goes
  std::string private_dir;
  StepMountsHeld() = default;
  StepMountsHeld(const StepMountsHeld&) = delete;
  StepMountsHeld& operator=(const StepMountsHeld&) = delete;
  ~StepMountsHeld();
};

class StageBuild {
 public:
  StageBuild(BuildServices& svc, size_t position);
  Result<StageResult> Build();

 private:
  // stage_builder.cc
  Status From();
  layers::ExtractOptions ExtractOpts();
  Status EnsureRootfs();
  snapshot::WalkOptions WalkOpts() const;
  Status FreshSnapshot();
  std::string StepText(const dockerfile::Instruction& inst) const;
  dockerfile::Vars Vars_() const { return scope_.ExpansionVars(); }
  Result<std::string> Expand(const std::string& w) const;
  Status Step(size_t index, const dockerfile::Instruction& inst);
  void AddHistory(const std::string& created_by, bool empty);
  Digest ConfigFingerprint() const;
  bool CacheOn(bool kind_enabled) const { return !svc_.single_snapshot && cache_.On(kind_enabled); }
  // Looks the step up. On a hit the cached layer (or empty history entry) is taken and the rootfs is
  // left alone (EnsureRootfs catches up if a later step needs files); on a miss StoreInCache stores
  // what the step made, and the log says what changed when the cache remembers this step's last inputs.
  // `independent`: the step's layer does not depend on the layers below (COPY --link, see
  // StepCache::LookupIndependent).
  Result<bool> TryCache(size_t index, const std::string& what, const CacheVars& visible,
                        const std::optional<Digest>& sources, bool independent = false);
  // A COPY/ADD step's lookup: TryCache when COPY layers are cached (--cache-copy-layers), else the key
  // only moves the chain (so later RUN steps stay cacheable) and the step runs: false.
  Result<bool> TryCopyCache(size_t index, const std::string& what, const Digest& sources, bool independent = false);
  // After a step that missed: stores what it made under its key, and moves the chain on.
  Status StoreInCache();
  static Status MakeDir(const std::string& path);

  // stage_layers.cc
  // `root`: where the changed paths are ("" = the rootfs; another tree's layer is applied to the
  // rootfs later, when a step needs its files).
  Status AddLayerFromChanges(const layers::LayerChanges& changes, const std::string& created_by,
                             const std::string& root = "");
  Status AddSnapshotLayer(const snapshot::ChangeSet& cs, const std::string& created_by);
  Status AddPathsLayer(std::vector<std::string> paths, const std::string& created_by);
  Result<ResolvedUser> CurrentUser();
  Status Workdir(size_t index, const dockerfile::Instruction& inst, const dockerfile::WorkdirInst& wd);
  Status Volume(size_t index, const dockerfile::Instruction& inst, const dockerfile::VolumeInst& vol);
  Status CreateDirs(const std::string& dir, bool as_user, std::vector<std::string>* created);

  // run_step.cc
  Status Run(size_t index, const dockerfile::Instruction& inst, const dockerfile::RunInst& run);
  Status CheckArchitecture();
  Status RecordCreator(const std::vector<std::string>& created, uid_t uid, gid_t gid);

  // run_mounts.cc
  Result<std::vector<dockerfile::Mount>> ResolveRunMounts(const dockerfile::RunInst& run, const std::string& workdir);
  Result<std::string> MountsKeyText(size_t index, const std::vector<dockerfile::Mount>& mounts);
  Result<std::string> MountSource(size_t index, const dockerfile::Mount& m);
  Status PrepareMounts(size_t index, const std::vector<dockerfile::Mount>& mounts, sandbox::RunSpec* spec,
                       StepMountsHeld* held);

  // copy_instruction.cc
  // `name`: only the reference written so (a RUN may mount from several); "" = the instruction's first.
  std::optional<Digest> FromKey(size_t index, const std::string& name = "");
  Result<std::string> FromRoot(size_t index, const std::string& from_text, bool match_name = false);
  Result<std::optional<Digest>> CopySourcesKey(size_t index, const CopySource& src, const CopyRequest& req);
  Status CopyOrAdd(size_t index, const dockerfile::Instruction& inst, const dockerfile::CopyCommon& c, bool add,
                   const std::string& from, bool parents, const std::string& checksum);

  Status FromContextDir();

  // add_git.cc: ADD of a git repository (`req` expanded, its one source a git URL).
  Status AddGit(size_t index, const dockerfile::Instruction& inst, CopyRequest req, const std::string& chown,
                const std::string& chmod);

  // copy_link.cc
  Status CopyLinked(size_t index, const dockerfile::Instruction& inst, const CopySource& src, CopyRequest req,
                    const std::string& chown, const std::string& chmod, const std::string& from);

  BuildServices& svc_;
  const dockerfile::PlannedStage& ps_;
  size_t position_;
  dockerfile::StageScope scope_;
  StageMetadata meta_;
  BuiltImage image_;
  std::shared_ptr<const SourceImage> base_;
  std::string rootfs_;
  std::optional<snapshot::Snapshotter> snap_;
  bool snap_stale_ = true;
  bool foreign_checked_ = false;  // RUN for another architecture: emulation looked for once
  Status foreign_status_;         // ... and why it is missing (every RUN of the stage fails so)
  sandbox::RunSpec::Emulation emulation_;  // ... and qemu under the ptrace tracer when that is the way
  size_t materialized_ = 0;  // how many of image_.layers the rootfs reflects
  StepCache cache_;          // the layer cache: the key chain, the step waiting to be stored after a miss
  int steps_ = 0;
  std::string note_;
};

}  // namespace kiln::executor
