#include "executor/cache/step_cache.h"

#include <utility>

namespace kiln::executor {

StepCache::StepCache(LayerCache* cache, BuildLog* log, Platform platform, std::string slot_prefix)
    : cache_(cache), log_(log), platform_(std::move(platform)), slot_prefix_(std::move(slot_prefix)) {}

void StepCache::Start(const Digest& base_key) {
  if (cache_) key_ = base_key;
}

void StepCache::Chain(const std::string& what, const std::optional<Digest>& extra) {
  if (!cache_) return;
  key_ = StepKey(key_, what, {}, platform_, extra);
}

void StepCache::ChainAfterStep(const std::string& what, const std::optional<Digest>& sources) {
  chain_after_ = StepKey(key_, what, {}, platform_, sources);
}

Digest StepCache::Slot(size_t index) const { return Sha256Of(slot_prefix_ + "|" + std::to_string(index)); }

std::optional<CacheEntry> StepCache::Lookup(size_t index, const std::string& what, const CacheVars& visible,
                                            const std::optional<Digest>& sources) {
  StepKeyInputs in = StepKeyWithInputs(key_, what, visible, platform_, sources);
  Digest slot = Slot(index);
  Result<std::optional<CacheEntry>> hit = cache_->Lookup(in.key);
  if (!hit.ok()) {
    log_->Warn("layer cache lookup failed, building the step: " + hit.status().message());
    hit = std::optional<CacheEntry>();
  }
  if (*hit) {
    key_ = in.key;
    cache_->RememberInputs(slot, in).IgnoreError();
    return **hit;
  }
  std::string reason = "not cached yet";
  Result<std::optional<StepKeyInputs>> before = cache_->RecallInputs(slot);
  if (before.ok() && *before) {
    std::string changed = DescribeKeyChange(**before, in);
    reason = changed.empty() ? "the entry expired or was removed" : changed;
  }
  miss_reason_ = reason;
  pending_ = Pending{in, slot};
  return std::nullopt;
}

std::optional<CacheEntry> StepCache::LookupIndependent(size_t index, const std::string& what,
                                                       const std::optional<Digest>& sources) {
  const Digest parent = key_;
  key_ = Sha256Of("kiln: a step independent of the layers below it");
  std::optional<CacheEntry> hit = Lookup(index, what, {}, sources);
  if (hit) {
    key_ = StepKey(parent, "independent " + key_.ToString(), {}, platform_, std::nullopt);
  } else {
    key_ = parent;
    link_parent_ = parent;
  }
  return hit;
}

bool StepCache::StepSucceeded() {
  if (chain_after_) {
    key_ = *chain_after_;
    chain_after_.reset();
  }
  if (!pending_) return false;
  key_ = pending_->inputs.key;
  if (link_parent_) {
    key_ = StepKey(*link_parent_, "independent " + key_.ToString(), {}, platform_, std::nullopt);
    link_parent_.reset();
  }
  return true;
}

void StepCache::Store(const CacheEntry& made, Reader* blob, std::string* note) {
  if (!pending_) return;
  Pending p = std::move(*pending_);
  pending_.reset();
  Status s = cache_->Store(p.inputs.key, made, blob);
  if (!s.ok()) log_->Warn("could not store the step in the layer cache: " + s.message());
  cache_->RememberInputs(p.slot, p.inputs).IgnoreError();
  *note += (note->empty() ? "" : "; ") + std::string("cache miss: ") + miss_reason_;
}

}  // namespace kiln::executor
