#include "executor/cache/cache_registry.h"

#include <mutex>

#include "core/media_types.h"
#include "core/reference.h"

namespace kiln::executor {
namespace {

bool IsDockerLayer(std::string_view mt) { return mt.starts_with("application/vnd.docker."); }

class RegistryCache : public LayerCache {
 public:
  RegistryCache(registry::Client& client, Reference ref, std::chrono::seconds ttl, RegistryCacheOptions o)
      : client_(client), ref_(std::move(ref)), ttl_(ttl), options_(std::move(o)) {}

  std::string Describe() const override { return "cache repo " + ref_.Name(); }

  std::optional<std::pair<std::string, std::string>> RegistryLocation() const override {
    return std::make_pair(ref_.registry(), ref_.repository());
  }

  Result<std::optional<CacheEntry>> Lookup(const Digest& key) override {
    std::string what = "looking up cache entry " + key.Short() + " in " + ref_.Name();
    KILN_ASSIGN_OR_RETURN(registry::Repository * repo, Repo(false));
    Result<RawManifest> raw = repo->GetManifest(key.hex());
    if (!raw.ok()) {
      if (raw.status().code() == ErrorCode::kNotFound) return std::optional<CacheEntry>();
      return raw.status().WithContext(what);
    }
    // Something other than a cache entry under the tag (pushed by hand, another tool) is a miss.
    Result<ManifestKind> kind = DetectManifestKind(raw->bytes, raw->media_type);
    if (!kind.ok() || *kind != ManifestKind::kImageManifest) return std::optional<CacheEntry>();
    Result<Manifest> m = ParseManifest(raw->bytes);
    if (!m.ok() || m->layers.size() > 1) return std::optional<CacheEntry>();
    auto ann = m->annotations.find(kCacheKeyAnnotation);
    if (ann != m->annotations.end() && ann->second != key.ToString()) return std::optional<CacheEntry>();
    Result<std::unique_ptr<Reader>> cr = repo->GetBlob(m->config.digest, m->config.size);
    if (!cr.ok()) return cr.status().WithContext(what + ": config");
    Result<std::string> config_bytes = ReadAll(**cr, 4 << 20);
    if (!config_bytes.ok()) return config_bytes.status().WithContext(what + ": config");
    Result<ImageConfig> config = ParseImageConfig(*config_bytes);
    if (!config.ok() || config->history.empty() || config->diff_ids.size() != m->layers.size()) {
      return std::optional<CacheEntry>();
    }
    Result<int64_t> created = ParseRfc3339(config->created);
    if (!created.ok()) return std::optional<CacheEntry>();
    if (ttl_.count() > 0 && Now() - *created > ttl_.count()) return std::optional<CacheEntry>();
    CacheEntry e;
    e.created_unix = *created;
    e.created_by = config->history.back().created_by;
    e.empty_layer = m->layers.empty();
    if (!e.empty_layer) {
      e.layer = m->layers[0];
      e.diff_id = config->diff_ids[0];
    }
    return std::optional<CacheEntry>(std::move(e));
  }

  Status Store(const Digest& key, const CacheEntry& entry, Reader* blob) override {
    std::string what = "storing cache entry " + key.Short() + " in " + ref_.Name();
    KILN_ASSIGN_OR_RETURN(registry::Repository * repo, Repo(true));
    bool docker = !entry.empty_layer && IsDockerLayer(entry.layer.media_type);
    if (!entry.empty_layer) {
      if (!entry.layer.digest.valid() || !entry.diff_id.valid()) {
        return InvalidArgument(what + ": the entry names no layer digest or diff_id");
      }
      Result<std::optional<int64_t>> have = repo->HeadBlob(entry.layer.digest);
      if (!have.ok()) return have.status().WithContext(what);
      if (!have->has_value()) {
        if (!blob) return FailedPrecondition(what + ": the layer is not in the cache repository and no blob was given");
        Result<Descriptor> up = repo->UploadBlob(*blob, entry.layer.digest, entry.layer.size);
        if (!up.ok()) return up.status().WithContext(what + ": uploading the layer");
      }
    }
    ImageConfig c;
    c.os = options_.platform.os;
    c.architecture = options_.platform.architecture;
    c.variant = options_.platform.variant;
    c.created = FormatRfc3339(Now());
    if (!entry.empty_layer) c.diff_ids.push_back(entry.diff_id);
    History h;
    h.created = c.created;
    h.created_by = entry.created_by;
    h.comment = "kiln layer cache";
    h.empty_layer = entry.empty_layer;
    c.history.push_back(h);
    std::string config_bytes = SerializeImageConfig(c);
    Descriptor config;
    config.media_type = std::string(docker ? media_type::kDockerConfig : media_type::kOciConfig);
    config.digest = Sha256Of(config_bytes);
    config.size = static_cast<int64_t>(config_bytes.size());
    Result<std::optional<int64_t>> have_config = repo->HeadBlob(config.digest);
    if (!have_config.ok()) return have_config.status().WithContext(what);
    if (!have_config->has_value()) {
      StringReader r(config_bytes);
      Result<Descriptor> up = repo->UploadBlob(r, config.digest, config.size);
      if (!up.ok()) return up.status().WithContext(what + ": uploading the config");
    }
    Manifest m;
    m.media_type = std::string(docker ? media_type::kDockerManifest : media_type::kOciManifest);
    m.config = config;
    if (!entry.empty_layer) {
      Descriptor l;
      l.media_type = entry.layer.media_type;
      l.digest = entry.layer.digest;
      l.size = entry.layer.size;
      m.layers.push_back(l);
    }
    if (!docker) m.annotations[kCacheKeyAnnotation] = key.ToString();
    // The tag goes last: until it exists, Lookup misses; once it does, every blob it names is there.
    Result<Digest> put = repo->PutManifest(key.hex(), SerializeManifest(m), m.media_type);
    return put.status().WithContext(what);
  }

  Result<std::unique_ptr<Reader>> OpenLayer(const CacheEntry& entry) override {
    if (entry.empty_layer) return FailedPrecondition("the cache entry has no layer");
    KILN_ASSIGN_OR_RETURN(registry::Repository * repo, Repo(false));
    Result<std::unique_ptr<Reader>> r = repo->GetBlob(entry.layer.digest, entry.layer.size);
    if (!r.ok()) return r.status().WithContext("opening cached layer " + entry.layer.digest.Short() + " in " + ref_.Name());
    return r;
  }

 private:
  int64_t Now() const { return (options_.clock != nullptr ? options_.clock : registry::RealClock::Get())->UnixSeconds(); }

  // Pull-only access for reads, so a build that may only read the cache still hits; push access
  // is asked for on the first Store.
  Result<registry::Repository*> Repo(bool push) {
    std::lock_guard<std::mutex> lock(mu_);
    std::unique_ptr<registry::Repository>& slot = push ? push_ : pull_;
    if (!slot) {
      Result<std::unique_ptr<registry::Repository>> r =
          client_.Open(client_.PushEndpoint(ref_.registry()), ref_.repository(), push);
      if (!r.ok()) return r.status().WithContext("opening cache repo " + ref_.Name());
      slot = std::move(r).value();
    }
    return slot.get();
  }

  registry::Client& client_;
  Reference ref_;
  std::chrono::seconds ttl_;
  RegistryCacheOptions options_;
  std::mutex mu_;
  std::unique_ptr<registry::Repository> pull_, push_;
};

}  // namespace

Result<std::unique_ptr<LayerCache>> OpenRegistryCache(registry::Client& client, const std::string& repository_reference,
                                                      std::chrono::seconds ttl, RegistryCacheOptions options) {
  Result<Reference> ref = Reference::Parse(repository_reference);
  if (!ref.ok()) return ref.status().WithContext("--cache-repo");
  if (!ref->tag().empty() || ref->digest()) {
    return InvalidArgument("--cache-repo " + repository_reference +
                           ": name a repository without a tag or digest (entries are tagged by key)");
  }
  return std::unique_ptr<LayerCache>(new RegistryCache(client, std::move(ref).value(), ttl, std::move(options)));
}

}  // namespace kiln::executor
