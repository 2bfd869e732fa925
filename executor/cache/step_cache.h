// StepCache: the layer cache as one stage's steps see it — the chain of step keys, the lookup before
// a step and the store after it.
//
// A stage keeps one StepCache. Every step moves the key chain (Chain for metadata steps, Lookup and
// then Store for a cached step, ChainAfterStep for a step keyed but not cached), so a later step's key
// covers everything before it. Without a cache (null LayerCache) every call is a no-op and On() is
// false. Cache failures never fail the build: a lookup that cannot read the cache is a miss and a
// store that fails is a warning, both in the build log. Not thread-safe; nothing is owned.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "core/image_model.h"
#include "core/io.h"
#include "core/status.h"
#include "executor/cache/cache_key.h"
#include "executor/cache/cache_store.h"
#include "executor/log/build_log.h"

namespace kiln::executor {

class StepCache {
 public:
  /// `cache` may be null (no --cache). `slot_prefix` names the stage among all builds (Dockerfile id
  /// and stage index): a step's slot, where its last key inputs are remembered, is prefix + index.
  StepCache(LayerCache* cache, BuildLog* log, Platform platform, std::string slot_prefix);

  /// True when steps of a kind enabled for caching (`kind_enabled`) are looked up: a cache is set
  /// and no earlier step was unkeyable.
  bool On(bool kind_enabled) const { return cache_ != nullptr && kind_enabled && !broken_; }
  /// A step that cannot be keyed (ADD of a URL without --checksum): nothing after it is looked up.
  void MarkUnkeyable() { broken_ = true; }

  /// The key after the last step (a later stage's parent key, or a COPY --from's source key).
  const Digest& key() const { return key_; }
  /// Starts the chain at a stage's base key. No-op without a cache.
  void Start(const Digest& base_key);
  /// Moves the chain over a step that is never cached (a metadata step). No-op without a cache.
  void Chain(const std::string& what, const std::optional<Digest>& extra);
  /// Moves the chain over a keyed step that is not cached (COPY with --cache-copy-layers=false),
  /// once StepSucceeded is called.
  void ChainAfterStep(const std::string& what, const std::optional<Digest>& sources);

  /// REQUIRES: On(...). Looks the step at instruction `index` up. On a hit returns the entry (the
  /// caller adds its layer or empty history entry) and moves the chain to the step's key; on a miss
  /// returns nullopt and remembers the key until StepSucceeded/Store, with the reason for the log.
  std::optional<CacheEntry> Lookup(size_t index, const std::string& what, const CacheVars& visible,
                                   const std::optional<Digest>& sources);

  /// REQUIRES: On(...). Lookup for a step whose layer does not depend on the steps before it (COPY
  /// --link): its key starts from a fixed root instead of the chain, so its cached layer is found
  /// after any earlier change. The chain still moves on over it (to a key of the previous key and
  /// this one), on a hit here and after StepSucceeded on a miss.
  std::optional<CacheEntry> LookupIndependent(size_t index, const std::string& what,
                                              const std::optional<Digest>& sources);

  /// After any step ran: applies a ChainAfterStep key; when the step missed in Lookup, moves the chain
  /// to its key and returns true: the caller then calls Store with what the step made.
  bool StepSucceeded();
  /// Stores what the step that missed made (`blob`: its layer, null for an empty layer), and appends
  /// "cache miss: <why>" to `note`. A failed store is a warning.
  void Store(const CacheEntry& made, Reader* blob, std::string* note);

 private:
  struct Pending {
    StepKeyInputs inputs;
    Digest slot;
  };
  Digest Slot(size_t index) const;

  LayerCache* cache_;
  BuildLog* log_;
  Platform platform_;
  std::string slot_prefix_;
  Digest key_;
  std::optional<Pending> pending_;
  std::optional<Digest> chain_after_;  // the key of an uncached step, applied once it succeeded
  std::optional<Digest> link_parent_;  // LookupIndependent missed: the chain key before the step
  std::string miss_reason_;
  bool broken_ = false;
};

}  // namespace kiln::executor
