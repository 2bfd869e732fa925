// Base images in the cache dir (Kaniko's warmer): `kiln warm IMAGE...` writes each image's
// manifests, config and layers into the cache dir's blob store, and a build with --cache-dir then
// takes its base image from there and pulls nothing for it.
//
// Blobs are content-addressed (so an image is found by digest), and each warmed reference is also
// recorded by reference and platform in kiln-cache/images/ with the time it was warmed, for offline
// lookups by tag. A tag can move on the registry: when the registry is reachable, resolve the tag's
// digest there (a manifest HEAD, as Kaniko does) and look the digest up; use the tag record only
// offline or within the TTL.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/image_model.h"
#include "core/status.h"
#include "executor/cache/cache_store.h"
#include "executor/image/image_fetcher.h"
#include "registry/client.h"

namespace kiln::executor {

struct WarmStats {
  std::string canonical;  ///< "registry/repo@sha256:…" of the platform manifest
  uint64_t blobs_fetched = 0, bytes_fetched = 0, blobs_present = 0;
};

/// Pulls `reference` (its `platform` image when it is an index; the index itself is kept too) into
/// the cache dir at `cache_dir` (created when missing). Every blob is verified against its digest
/// before it is stored; blobs already there are not fetched again. Safe with concurrent warms and
/// builds on the same directory.
Status WarmBaseImage(registry::Client& client, const std::string& reference, const Platform& platform,
                     const std::string& cache_dir, WarmStats* stats = nullptr);

/// The base image `reference` for `platform` from the cache dir, with every blob present: by digest
/// when the reference has one (or is a bare "sha256:…"), else by the warmer's record of the
/// reference, which counts only when younger than `ttl` (<= 0: any age) by `clock`'s wall time
/// (nullptr: the system's). nullopt on a miss. The
/// result's `source` reads blobs from the cache dir (verified), and names the reference's registry
/// repository as its RegistryLocation so a push to the same registry can mount its layers.
Result<std::optional<std::shared_ptr<const SourceImage>>> LookupBaseImage(
    const std::string& cache_dir, const std::string& reference, const Platform& platform,
    std::chrono::seconds ttl = std::chrono::seconds(0), registry::Clock* clock = nullptr);

}  // namespace kiln::executor
