// --cache-dir: a layer cache (and base-image cache) in a local directory or a mounted volume, usable
// without any registry and shareable by concurrent builds, also across machines on a shared volume.
//
// Layout: the directory is an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`)
// holding every blob — cached layers, and warmed base images' manifests, configs and layers — plus
//   kiln-cache/layers/<key hex>.json   one entry per step key (CacheEntry as JSON)
//   kiln-cache/images/<hex>.json        warmed base images by reference and platform (cache_warm.h)
//   kiln-cache/inputs/<slot hex>.json   the last key inputs per step place (RememberInputs)
// Every file is written to a unique temporary name and renamed into place, blobs only once their
// digest verified, and an entry only after its blob: a crash leaves at most an unreferenced blob or a
// temporary file, never an entry that Lookup returns with its layer missing.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "executor/cache/cache_store.h"

namespace kiln::registry {
class Clock;
}  // namespace kiln::registry

namespace kiln::executor {

/// Opens (creating when missing) the cache at `dir`. `ttl` <= 0 means entries never expire; entry
/// ages are read from `clock`'s wall time (nullptr: the system's). `clock` must outlive the cache.
Result<std::unique_ptr<LayerCache>> OpenDirCache(const std::string& dir, std::chrono::seconds ttl,
                                                 registry::Clock* clock = nullptr);

/// Creates the cache layout at `dir` if missing (the OCI layout and the kiln-cache directories).
Status PrepareCacheDir(const std::string& dir);

}  // namespace kiln::executor
