// RunBuild: `kiln build` from start to finish.
//
//   read and parse the Dockerfile → plan the stages (--target, build args, ONBUILD triggers)
//   → open the build context → build each needed stage in order (stage_builder.h)
//   → assemble the target's config and manifest → docker-archive / OCI layout / push to every
//   destination → digest files.
//
// Work happens under the state directory: `store/` is a content-addressed blob store shared by
// builds (so base layers are fetched once per machine), `work/<build>/` holds this build's rootfs
// trees and is removed at the end, whatever happened. Nothing is pushed unless every stage built.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/status.h"
#include "executor/build_log.h"
#include "executor/build_options.h"
#include "executor/sandbox/command_runner.h"
#include "executor/sandbox/id_mapping.h"
#include "executor/stage_builder.h"
#include "executor/url_fetcher.h"
#include "registry/credentials.h"

namespace kiln::executor {

/// Replaceable parts (tests). Defaults: LinuxCommandRunner (created at the first RUN), credentials
/// from docker config files, libcurl for ADD URLs.
struct BuildDeps {
  BuildLog* log = nullptr;  ///< required
  sandbox::CommandRunner* runner = nullptr;
  std::unique_ptr<registry::Keychain> keychain;
  UrlFetcher* url_fetcher = nullptr;
  /// Set by RunInBuildNamespace when the build runs as root in kiln's own user namespace: the mapping
  /// it was entered with (for the log and for RUN's messages about unmapped ids).
  std::optional<sandbox::IdMapPlan> build_namespace;
  std::string build_namespace_note;
};

struct BuildResult {
  Digest digest;  ///< the image manifest's digest
  std::string manifest_bytes;
  std::string config_bytes;
  std::vector<std::string> pushed;  ///< destinations pushed
  PhaseTimes times;
  std::string plan_json;  ///< set when options.print_plan
};

Result<BuildResult> RunBuild(const BuildOptions& options, BuildDeps& deps);

/// Runs `body` (which calls RunBuild with `options` and `deps`) where the build belongs. When kiln is
/// not root and RUN would use the rootless tier (--sandbox auto or rootless, and a probe creates a
/// user namespace), that is as root inside one user namespace for the whole build
/// (sandbox/build_namespace.h); options.state_dir is resolved first, outside, so the build uses the
/// user's state directory and not root's. Otherwise `body` runs here, directly. Returns body's exit
/// code, or `failure_code` after logging why the namespace could not be entered.
/// REQUIRES: no thread started yet.
int RunInBuildNamespace(BuildOptions& options, BuildDeps& deps, const std::function<int()>& body, int failure_code);

/// The state directory for `options` (see BuildOptions::state_dir). Not root and with no directory
/// named: $XDG_CACHE_HOME/kiln or ~/.cache/kiln when kiln can write there, else $TMPDIR/kiln-UID
/// (/tmp by default), and then `note` (when given) says why, for the log.
std::string ResolveStateDir(const BuildOptions& options, std::string* note = nullptr);
/// ResolveStateDir, with the log told why when it fell back; creates the directory (0700) and, when
/// --state-dir was not given, fails with kPermissionDenied if another uid owns it.
Result<std::string> PrepareStateDir(const BuildOptions& options, BuildLog* log);

}  // namespace kiln::executor
