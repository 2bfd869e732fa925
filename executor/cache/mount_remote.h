// Cache mounts in a registry, for CI runners that start empty: after a build, each cache mount it
// used is exported to the cache repository (--cache-repo, else DESTINATION/cache); before a step
// first uses a cache that is missing locally, it is imported from there. BuildKit keeps cache mounts
// on the builder only; this is kiln's extension.
//
// One cache = one image manifest tagged `kiln-mount-<key>` (CacheMountStore::KeyOf: id and
// platform): a single zstd tar layer of the directory, and a config in the OCI image config format
// (the platform, the layer's diff_id) labelled with the id, so skopeo, crane and registries' garbage
// collection treat it as an ordinary image. The layer blob and the config are uploaded before the
// manifest PUT, so the tag never names a missing blob; an unchanged cache (same layer digest as the
// tag already has) is not sent again. Directories larger than the cap are not exported (logged).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/image_model.h"
#include "core/status.h"
#include "executor/log/build_log.h"
#include "registry/client.h"

namespace kiln::executor {

inline constexpr char kCacheMountIdLabel[] = "dev.kiln.cache-mount.id";

class CacheMountRemote {
 public:
  /// `repository_reference`: "registry/repo". `client` and `log` must outlive this object.
  /// `max_bytes`: caches larger than this (file bytes) are not exported; 0 = never export.
  CacheMountRemote(registry::Client& client, std::string repository_reference, uint64_t max_bytes, BuildLog* log);

  std::string Describe() const { return repository_reference_; }
  static std::string TagOf(const std::string& key) { return "kiln-mount-" + key; }

  /// Fills the empty directory `dir` with the exported cache of `key` when the repository has one.
  /// Returns whether it did. Never fails a build: a missing tag is false; any other problem is a
  /// warning in the log, `dir` is emptied again and the result is false.
  bool Import(const std::string& key, const std::string& id, const std::string& dir);
  /// Exports directory `dir` (the cache of `key`), unless it is over the cap or unchanged. The caller
  /// holds the cache's lock. `scratch_dir`: a directory of the caller's where the compressed tar is
  /// written before its upload (removed again). An error is the caller's to report (as a warning:
  /// the build is done).
  Status Export(const std::string& key, const std::string& id, const Platform& platform, const std::string& dir,
                const std::string& scratch_dir);

 private:
  Result<registry::Repository*> Repo();

  registry::Client& client_;
  std::string repository_reference_;
  uint64_t max_bytes_;
  BuildLog* log_;
  std::unique_ptr<registry::Repository> repo_;
};

}  // namespace kiln::executor
