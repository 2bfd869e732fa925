// BuildOptions: everything `kiln build` (and Kaniko's `executor`) is told on its command line, as
// typed values. cmd/ parses each flag once and fills it (references, locations, the platform, the
// compression and the registry settings arrive parsed); the executor never reads flags or parses
// their strings again, and tests build one directly.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/image_location.h"
#include "core/image_model.h"
#include "core/media_types.h"
#include "core/reference.h"
#include "executor/log/build_log.h"
#include "executor/policy/policy.h"
#include "executor/steps/secrets.h"
#include "executor/steps/ssh_forward.h"
#include "registry/access_options.h"

namespace kiln::executor {


/// Which RUN sandbox tier to use (see executor/sandbox/tier_detection.h).
enum class SandboxChoice { kAuto, kRootless, kChroot, kPtrace, kInPlace };

struct BuildOptions {
  // --- Inputs ---
  /// --context: a directory, "dir://DIR", "tar://FILE", "tar://stdin", a .tar/.tar.gz file, or a git
  /// repository ("git://HOST/PATH#REF#COMMIT" as Kaniko, or any git URL of git_url.h).
  std::string context = ".";
  /// --context-sub-path of a git context (applied after the fetch; cmd/ folds it into a directory
  /// context itself).
  std::string context_sub_path;
  /// Kaniko's --git options for a git context.
  struct GitContextOptions {
    std::string branch;               ///< branch=: the ref when the URL names none
    bool single_branch = false;       ///< single-branch=: kiln always fetches the one ref
    bool recurse_submodules = false;  ///< recurse-submodules=
    bool insecure_skip_tls = false;   ///< insecure-skip-tls=
  } git;
  /// --build-context NAME=VALUE (BuildKit's named contexts), in order: VALUE is a directory,
  /// docker-image://REF or a git URL. FROM NAME and COPY --from=NAME read them.
  std::vector<std::pair<std::string, std::string>> build_contexts;
  /// --dockerfile: path; relative paths are taken relative to the context directory first (Kaniko),
  /// then to the current directory. "" = CONTEXT/Dockerfile.
  std::string dockerfile;
  /// --build-arg, as given ("K=V" or "K" for the environment's value).
  std::vector<std::string> build_args;
  /// The process environment, for `--build-arg K` without a value.
  std::map<std::string, std::string> environ;
  /// --target: the stage to build ("" = the last).
  std::string target;
  /// --custom-platform (unset = this machine's).
  std::optional<Platform> platform;
  /// --custom-platform with several platforms (comma-separated or repeated): one image per platform,
  /// built in turn, and an image index over them published to every output. Empty or one: a single
  /// image for `platform`.
  std::vector<Platform> platforms;
  /// --secret id=ID,src=FILE|env=VAR (BuildKit's syntax): values RUN --mount=type=secret may read.
  std::vector<SecretSource> secrets;
  /// --ssh default|ID=PATH[,PATH]: agents RUN --mount=type=ssh may reach.
  std::vector<SshSource> ssh;
  /// --label K=V, added to the image config after the Dockerfile's labels.
  std::vector<std::pair<std::string, std::string>> labels;

  // --- Outputs ---
  /// --destination (repeatable): where the image is pushed (unless no_push), and its names in the
  /// digest files and the docker-archive.
  std::vector<Reference> destinations;
  bool no_push = false;
  /// Written before any push, in order: --tar-path (a docker-archive tagged with the destinations),
  /// --oci-layout-path (DIR[:TAG]).
  std::vector<ImageLocation> local_outputs;
  std::string digest_file;
  std::string image_name_with_digest_file;
  std::string image_name_tag_with_digest_file;
  /// Skip the check, before building, that every destination answers and takes our credentials.
  bool skip_push_permission_check = false;

  // --- Supply chain (docs/supply-chain.md) ---
  /// --sbom[=FILE]: an SPDX 2.3 SBOM of the image, attached to each pushed destination as an OCI
  /// referrer and, with FILE, written there.
  bool sbom = false;
  std::string sbom_file;
  /// --provenance[=FILE]: a SLSA v1 provenance statement, attached and written the same way.
  bool provenance = false;
  std::string provenance_file;
  /// kiln's version, for the SBOM's creator and the provenance's builder id (set by cmd/).
  std::string builder_version;

  // --- Registry access ---
  /// What applies to every registry: --insecure-registry, --skip-tls-verify-registry,
  /// --registry-certificate, --registry-client-cert, --registry-mirror / --registry-map (and their
  /// KANIKO_* variables), --skip-default-registry-fallback, the system CA store.
  registry::RegistryAccessOptions registry;
  bool insecure_push = false;  // --insecure: every destination registry over HTTP
  bool insecure_pull = false;  // --insecure-pull: every pulled registry over HTTP
  bool skip_tls_verify_push = false;  // --skip-tls-verify
  bool skip_tls_verify_pull = false;  // --skip-tls-verify-pull
  int push_retry = 0;            // extra attempts for a push
  int image_download_retry = 0;  // extra attempts for a pull

  // --- Build behaviour ---
  bool single_snapshot = false;
  /// --snapshot-mode: "full" (default), "redo", "time". kiln's stat-tuple index serves all three.
  std::string snapshot_mode = "full";
  /// --reproducible: timestamps 0 (unless source_date_epoch is set) and no build-host metadata.
  bool reproducible = false;
  /// SOURCE_DATE_EPOCH (from the environment or --build-arg SOURCE_DATE_EPOCH).
  std::optional<int64_t> source_date_epoch;
  /// --compression gzip|zstd|uncompressed, --compression-level (0 = the algorithm's default).
  media_type::Compression compression = media_type::Compression::kGzip;
  int compression_level = 0;
  /// --ignore-path (repeatable): paths excluded from RUN snapshots.
  std::vector<std::string> ignore_paths;
  SandboxChoice sandbox = SandboxChoice::kAuto;
  /// Against decompression bombs in pulled layers (layers/decompress.h): --max-layer-size (bytes one
  /// layer may decompress to), --max-decompression-ratio (uncompressed/compressed, checked past
  /// --decompression-ratio-min-size). 0 turns a limit off.
  uint64_t max_layer_bytes = uint64_t{64} << 30;
  uint64_t max_decompression_ratio = 1000;
  uint64_t decompression_ratio_min_bytes = uint64_t{1} << 30;
  /// --jobs: how many stages may be built at once (those that do not depend on each other); 0 = the
  /// number of cores, 1 = one after the other.
  int jobs = 0;

  // --- Layer cache (Kaniko's names) ---
  bool cache = false;
  /// --cache-repo: a registry repository for cached layers ("" = DESTINATION-REPO/cache), or
  /// "oci:DIR" for a local OCI layout, as Kaniko takes it.
  std::string cache_repo;
  /// --cache-dir: Kaniko's base-image cache (what `kiln warm` fills). Also the layer cache when no
  /// --cache-repo is given (kiln's extension: a cache without any registry).
  std::string cache_dir;
  /// --no-push-cache: the layer cache is read, nothing new is stored.
  bool cache_read_only = false;
  /// --cache-mount-max-size: RUN --mount=type=cache directories up to this many bytes are exported
  /// to the registry cache repository after the build (with --cache and a registry cache); 0 = never.
  uint64_t cache_mount_max_bytes = uint64_t{1} << 30;
  /// --cache-ttl (Kaniko's default: two weeks).
  std::chrono::seconds cache_ttl{336 * 3600};
  bool cache_run_layers = true;
  /// kiln caches COPY/ADD layers by default (Kaniko does not); --cache-copy-layers=false turns it off.
  bool cache_copy_layers = true;

  // --- Where kiln works ---
  /// Holds the blob store (shared by builds; also the base-image cache) and per-build rootfs
  /// directories. "" = $KILN_DIR, else /var/lib/kiln as root, else $XDG_CACHE_HOME/kiln.
  std::string state_dir;
  /// --cleanup: remove the build's rootfs directories at the end (kiln always removes them unless
  /// keep_work is set; the flag exists for Kaniko compatibility).
  bool cleanup = true;
  bool keep_work = false;

  // --- Logging ---
  LogFormat log_format = LogFormat::kText;
  bool log_timestamp = false;
  LogLevel log_level = LogLevel::kInfo;
  /// Print the plan as JSON and stop.
  bool print_plan = false;
  /// --check: run the build checks (dockerfile/checks.h) and stop, as `docker build --check`.
  bool check_only = false;

  // --- Policy ---
  /// $KILN_POLICY and every --policy file, parsed (executor/policy/policy.h); all of them apply.
  std::vector<policy::Policy> policies;
};

}  // namespace kiln::executor
