// --cache-repo: the layer cache in a registry repository, in Kaniko's layout, so every CI runner
// shares it through the registry it already pushes to.
//
// Each entry is an image manifest tagged with the key's hex in the cache repository: one layer (the
// step's layer, media type as built) or none for a step that changed nothing. Its config records the
// step's history entry (created_by, empty_layer), the diff_id, the platform and `created` (the time
// of storing, for --cache-ttl); an OCI manifest also carries the key as the annotation
// "dev.kiln.cache.key". Store uploads the layer blob (HEAD first: layers already there are not sent
// again) and the config before the manifest PUT, so the tag, the only thing Lookup reads, never names a
// missing blob. Lookup is GET manifest by tag (404 → miss) and the config blob. The entries are
// ordinary images: skopeo, crane and registries' garbage collection handle them.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/image_model.h"
#include "core/status.h"
#include "executor/cache/cache_store.h"
#include "registry/client.h"

namespace kiln::executor {

inline constexpr char kCacheKeyAnnotation[] = "dev.kiln.cache.key";

struct RegistryCacheOptions {
  /// Written into each entry's config (os/architecture/variant) so tools show a sensible image.
  Platform platform = Platform::Host();
  /// Entry ages are read from its wall time; nullptr: the system clock. Must outlive the cache.
  registry::Clock* clock = nullptr;
};

/// A cache in `repository_reference` ("registry/repo", no tag or digest), reached through `client`
/// (which must outlive the cache) at the registry's push endpoint (never a mirror). Nothing is
/// contacted until the first Lookup or Store. `ttl` <= 0: entries never expire.
Result<std::unique_ptr<LayerCache>> OpenRegistryCache(registry::Client& client, const std::string& repository_reference,
                                                      std::chrono::seconds ttl, RegistryCacheOptions options = {});

}  // namespace kiln::executor
