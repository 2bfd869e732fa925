// Prepare: everything a build does before its first stage, in this order — the state directory and
// blob store, this build's work directory (stale ones of killed builds removed), the build context,
// the Dockerfile and its plan (front_end.h), the registry clients, a check that every destination
// takes our credentials, and the base images' ONBUILD triggers. Nothing is pulled except base
// images with pending triggers; nothing is written outside the state directory.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "core/status.h"
#include "executor/image/image_fetcher.h"
#include "executor/pipeline/build_deps.h"
#include "executor/pipeline/build_options.h"
#include "executor/pipeline/front_end.h"
#include "executor/pipeline/registry_access.h"
#include "executor/pipeline/work_dirs.h"
#include "executor/steps/build_context.h"
#include "executor/steps/secrets.h"
#include "executor/steps/ssh_forward.h"
#include "executor/cache/mount_cache.h"
#include "executor/cache/mount_remote.h"
#include "layers/oci_layout.h"

namespace kiln::executor {

/// Removes a work directory when the build is over: Start() begins on a thread of its own (once
/// every layer is written, while the image is pushed); the destructor starts it if needed and waits.
class WorkDirRemover {
 public:
  WorkDirRemover(std::string dir, bool keep, BuildLog* log) : dir_(std::move(dir)), keep_(keep), log_(log) {}
  ~WorkDirRemover();
  void Start();

 private:
  std::string dir_;
  bool keep_;
  BuildLog* log_;
  std::thread remover_;
};

struct PreparedBuild {
  std::string state_dir;  ///< absolute (rootfs paths handed to the sandbox must be)
  std::unique_ptr<layers::OciLayout> store;  ///< STATE/store, shared by builds
  WorkDirLease lease;                        ///< this build's STATE/work/build-XXXXXX
  std::unique_ptr<WorkDirRemover> remover;
  std::unique_ptr<BuildContext> context;
  FrontEnd front;
  std::shared_ptr<RegistryAccess> access;  ///< shared by the builds of a multi-platform build
  /// Each destination's repository, opened (and checked) once: by Reference::ToString().
  std::map<std::string, std::shared_ptr<registry::Repository>> destinations;
  std::unique_ptr<ImageFetcher> fetcher;
  /// RUN --mount: the --secret values' sources (checked to exist), and the cache mounts' directories
  /// (under --cache-dir, else the state directory) with the keys this build used.
  std::unique_ptr<SecretStore> secrets;
  std::unique_ptr<SshAgents> ssh_agents;
  std::unique_ptr<CacheMountStore> cache_mounts;
  std::set<std::string> cache_mounts_used;
  /// With --cache and a registry cache repository: where cache mounts are imported from and exported to.
  std::unique_ptr<CacheMountRemote> cache_mount_remote;
};

/// After the stages: exports every cache mount the build used to the registry (when there is a
/// remote). Problems are warnings: the image is built.
void ExportCacheMounts(PreparedBuild& build, BuildLog* log);

/// `access`: the registry clients of an earlier Prepare of the same build (a multi-platform build
/// prepares once per platform); null: made here from the options and deps.
/// The directory of a --context as written ("DIR" or "dir://DIR"), for finding the Dockerfile; ""
/// when the context is not a directory (a tarball).
std::string ContextDirectory(const std::string& spec);

/// The front end's part of the options (front_end.h).
FrontEndOptions FrontEndOptionsOf(const BuildOptions& options);

Result<std::unique_ptr<PreparedBuild>> Prepare(const BuildOptions& options, BuildDeps& deps,
                                               std::shared_ptr<RegistryAccess> access = nullptr);

/// The state directory for `options` (see BuildOptions::state_dir). Not root and with no directory
/// named: $XDG_CACHE_HOME/kiln or ~/.cache/kiln when kiln can write there, else $TMPDIR/kiln-UID
/// (/tmp by default), and then `note` (when given) says why, for the log.
std::string ResolveStateDir(const BuildOptions& options, std::string* note = nullptr);
/// ResolveStateDir, with the log told why when it fell back; creates the directory (0700) and, when
/// --state-dir was not given, fails with kPermissionDenied if another uid owns it.
Result<std::string> PrepareStateDir(const BuildOptions& options, BuildLog* log);

}  // namespace kiln::executor
