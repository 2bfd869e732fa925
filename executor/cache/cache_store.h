// The layer cache: what a step produced, stored under its key (cache_key.h), in a local directory
// (cache_dir.h, --cache-dir) or a registry repository (cache_registry.h, --cache-repo).
//
// Contract shared by both backends: Lookup never returns an entry whose layer is not fully stored
// (the layer goes in first, the entry that names it last, each atomically), so concurrent builds
// sharing one cache only ever see complete entries; storing the same key twice is harmless (the last
// writer wins and both entries are complete). Entries older than the TTL are misses.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/image_model.h"
#include "core/io.h"
#include "core/status.h"
#include "executor/cache/cache_key.h"

namespace kiln::executor {

struct CacheEntry {
  bool empty_layer = false;  ///< the step changed nothing
  Descriptor layer;          ///< media type, digest, size (when !empty_layer)
  Digest diff_id;            ///< when !empty_layer
  std::string created_by;    ///< the history entry of the step
  /// When the entry was stored (Unix seconds), for --cache-ttl. Set by Store from the cache's clock;
  /// the value passed to Store is ignored.
  int64_t created_unix = 0;
};

/// A layer cache. Implementations are thread-safe and safe with concurrent processes.
class LayerCache {
 public:
  virtual ~LayerCache() = default;
  /// For the log: "cache dir /cache", "cache repo r:5000/app/cache".
  virtual std::string Describe() const = 0;
  /// nullopt on a miss (no entry, an entry older than the TTL, or one whose layer is gone). Never
  /// returns a half-written entry. Errors only when the cache cannot be read at all.
  virtual Result<std::optional<CacheEntry>> Lookup(const Digest& key) = 0;
  /// Stores the entry. When !entry.empty_layer, the layer blob is read from `blob` (which may be null
  /// if the cache already has that blob) and verified against entry.layer.digest and size; nothing is
  /// stored on a mismatch. Safe with concurrent builds storing the same key.
  virtual Status Store(const Digest& key, const CacheEntry& entry, Reader* blob) = 0;
  /// Opens a cached layer blob, verified against entry.layer as it streams.
  virtual Result<std::unique_ptr<Reader>> OpenLayer(const CacheEntry& entry) = 0;
  /// For a registry cache: (registry, repository), so a push can cross-repo mount cached layers.
  virtual std::optional<std::pair<std::string, std::string>> RegistryLocation() const { return std::nullopt; }

  /// Remembers the key inputs of the step at `slot` (a stable name for the step's place, e.g.
  /// sha256 of Dockerfile path + stage + instruction index), so that a later miss there can say what
  /// changed (DescribeKeyChange). Best effort; the default keeps nothing.
  virtual Status RememberInputs(const Digest& slot, const StepKeyInputs& inputs) {
    (void)slot, (void)inputs;
    return OkStatus();
  }
  /// The inputs remembered for `slot`, or nullopt.
  virtual Result<std::optional<StepKeyInputs>> RecallInputs(const Digest& slot) {
    (void)slot;
    return std::optional<StepKeyInputs>();
  }
};

/// A view of `cache` that answers lookups and stores nothing (Kaniko's --no-push-cache).
std::unique_ptr<LayerCache> ReadOnlyLayerCache(std::unique_ptr<LayerCache> cache);

/// JSON for StepKeyInputs (used by backends that remember inputs).
std::string StepKeyInputsToJson(const StepKeyInputs& in);
Result<StepKeyInputs> StepKeyInputsFromJson(std::string_view json);

/// Parses an RFC 3339 timestamp ("2024-01-02T03:04:05Z", fractions and offsets allowed) to Unix seconds.
Result<int64_t> ParseRfc3339(std::string_view text);

}  // namespace kiln::executor
