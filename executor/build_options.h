// BuildOptions: everything `kiln build` (and Kaniko's `executor`) is told on its command line, as
// plain values. cmd/ fills it from flags; the executor never reads flags or the environment itself,
// so tests build one directly.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kiln::executor {

enum class LogFormat { kText, kColor, kJson, kPlain };

/// Which RUN sandbox tier to use (see executor/sandbox/tier_detection.h).
enum class SandboxChoice { kAuto, kRootless, kChroot, kPtrace, kInPlace };

struct BuildOptions {
  // --- Inputs ---
  /// --context: a directory, "dir://DIR", "tar://FILE" or a .tar/.tar.gz file.
  std::string context = ".";
  /// --dockerfile: path; relative paths are taken relative to the context directory first (Kaniko),
  /// then to the current directory. "" = CONTEXT/Dockerfile.
  std::string dockerfile;
  /// --build-arg, as given ("K=V" or "K" for the environment's value).
  std::vector<std::string> build_args;
  /// The process environment, for `--build-arg K` without a value.
  std::map<std::string, std::string> environ;
  /// --target: the stage to build ("" = the last).
  std::string target;
  /// --custom-platform: "os/arch[/variant]" ("" = this machine's).
  std::string platform;
  /// --label K=V, added to the image config after the Dockerfile's labels.
  std::vector<std::string> labels;

  // --- Outputs ---
  /// --destination (repeatable): references to push the image to.
  std::vector<std::string> destinations;
  bool no_push = false;
  /// --tar-path: write a docker-archive tar (tagged with the destinations).
  std::string tar_path;
  /// --oci-layout-path: write an OCI image layout directory.
  std::string oci_layout_path;
  std::string digest_file;
  std::string image_name_with_digest_file;
  std::string image_name_tag_with_digest_file;
  /// Skip the check, before building, that every destination answers and takes our credentials.
  bool skip_push_permission_check = false;

  // --- Registry access ---
  /// Registries reached over plain HTTP (--insecure-registry; --insecure and --insecure-pull add the
  /// destinations' and base images' registries).
  std::set<std::string> insecure_registries;
  bool insecure_push = false;  // --insecure: every destination registry over HTTP
  bool insecure_pull = false;  // --insecure-pull: every pulled registry over HTTP
  bool skip_tls_verify_push = false;  // --skip-tls-verify
  bool skip_tls_verify_pull = false;  // --skip-tls-verify-pull
  std::set<std::string> skip_tls_verify_registries;  // --skip-tls-verify-registry
  std::map<std::string, std::string> registry_certificates;  // --registry-certificate HOST=PATH
  std::vector<std::string> registry_mirrors;  // --registry-mirror (and $KANIKO_REGISTRY_MIRROR)
  std::vector<std::string> registry_client_certs;  // --registry-client-cert REG=CERT,KEY
  std::vector<std::string> registry_maps;     // --registry-map REG=MIRROR[/PATH][;...] (and $KANIKO_REGISTRY_MAP)
  bool skip_default_registry_fallback = false;
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
  std::string compression = "gzip";
  int compression_level = 0;
  /// --ignore-path (repeatable): paths excluded from RUN snapshots.
  std::vector<std::string> ignore_paths;
  SandboxChoice sandbox = SandboxChoice::kAuto;

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
  /// --cache-ttl in hours (Kaniko's default: two weeks).
  int64_t cache_ttl_hours = 336;
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
  /// panic|fatal|error|warn|info|debug|trace (Kaniko's levels).
  std::string verbosity = "info";
  /// Print the plan as JSON and stop.
  bool print_plan = false;
};

}  // namespace kiln::executor
