#include "executor/image/cache_warm.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/media_types.h"
#include "executor/cache/cache_dir.h"
#include "layers/oci_layout.h"
#include "registry/registry_image.h"
#include "core/reference.h"

namespace kiln::executor {
namespace {

std::string RecordPath(const std::string& cache_dir, const Reference& ref, const Platform& platform) {
  return cache_dir + "/kiln-cache/images/" + Sha256Of(ref.ToString() + "\n" + platform.ToString()).hex() + ".json";
}

// The media type a stored manifest declares, or the one its shape implies.
Result<std::string> MediaTypeOf(std::string_view bytes) {
  KILN_ASSIGN_OR_RETURN(ManifestKind kind, DetectManifestKind(bytes, ""));
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()) return j["mediaType"].get<std::string>();
  return std::string(kind == ManifestKind::kIndex ? media_type::kOciIndex : media_type::kOciManifest);
}

// Streams blob `d` from `src` into the store unless it is there; verified by BlobWriter::Commit.
Status StoreBlob(ImageSource& src, const Descriptor& d, const layers::OciLayout& store, WarmStats* stats) {
  if (store.HasBlob(d.digest)) {
    stats->blobs_present++;
    return OkStatus();
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> r, src.OpenBlob(d));
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<layers::BlobWriter> w, store.NewBlob());
  KILN_ASSIGN_OR_RETURN(uint64_t n, Copy(*r, *w));
  KILN_RETURN_IF_ERROR(w->Commit(d.digest).status());
  stats->blobs_fetched++;
  stats->bytes_fetched += n;
  return OkStatus();
}

Status StoreManifest(const RawManifest& m, const layers::OciLayout& store) {
  KILN_ASSIGN_OR_RETURN(Digest d, store.PutBlob(m.bytes));
  if (d != m.digest) return DigestMismatch("manifest " + m.digest.ToString() + " hashes to " + d.ToString());
  return OkStatus();
}

// Blobs of a looked-up base image, from the cache dir.
class CacheDirSource : public ImageSource {
 public:
  CacheDirSource(layers::OciLayout store, RawManifest root, std::optional<Reference> ref,
                 std::string dir)
      : store_(std::move(store)), root_(std::move(root)), ref_(std::move(ref)), dir_(std::move(dir)) {}
  std::string Describe() const override {
    return "cache dir " + dir_ + " (" + (ref_ ? ref_->ToString() : root_.digest.ToString()) + ")";
  }
  Result<RawManifest> RootManifest() override { return root_; }
  Result<RawManifest> GetManifest(const Descriptor& d) override {
    RawManifest m;
    KILN_ASSIGN_OR_RETURN(m.bytes, store_.ReadBlob(d.digest));
    m.digest = d.digest;
    m.media_type = d.media_type;
    return m;
  }
  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) override {
    return store_.OpenBlob(d.digest, d.size > 0 ? d.size : -1);
  }
  std::optional<std::pair<std::string, std::string>> RegistryLocation() const override {
    if (!ref_) return std::nullopt;
    return std::make_pair(ref_->registry(), ref_->repository());
  }

 private:
  layers::OciLayout store_;
  RawManifest root_;
  std::optional<Reference> ref_;
  std::string dir_;
};

}  // namespace

Status WarmBaseImage(registry::Client& client, const std::string& reference, const Platform& platform,
                     const std::string& cache_dir, WarmStats* stats) {
  WarmStats local;
  if (!stats) stats = &local;
  std::string what = "warming " + reference;
  Result<Reference> ref = Reference::Parse(reference);
  if (!ref.ok()) return ref.status();
  KILN_RETURN_IF_ERROR(PrepareCacheDir(cache_dir).WithContext(what));
  KILN_ASSIGN_OR_RETURN(layers::OciLayout store, layers::OciLayout::Open(cache_dir));
  Result<std::unique_ptr<ImageSource>> src = registry::OpenRegistrySource(client, *ref);
  if (!src.ok()) return src.status().WithContext(what);
  Result<RawManifest> root = (*src)->RootManifest();
  if (!root.ok()) return root.status().WithContext(what);
  KILN_ASSIGN_OR_RETURN(ManifestKind kind, DetectManifestKind(root->bytes, root->media_type));
  RawManifest image = *root;
  if (kind == ManifestKind::kIndex) {
    KILN_ASSIGN_OR_RETURN(Index index, ParseIndex(root->bytes));
    Result<Descriptor> chosen = SelectPlatform(index, platform);
    if (!chosen.ok()) return chosen.status().WithContext(what);
    Result<RawManifest> child = (*src)->GetManifest(*chosen);
    if (!child.ok()) return child.status().WithContext(what);
    image = std::move(child).value();
  }
  Result<Manifest> m = ParseManifest(image.bytes);
  if (!m.ok()) return m.status().WithContext(what);
  // Config and layers first, manifests after: a manifest in the store means its blobs are there.
  Status s = StoreBlob(**src, m->config, store, stats);
  for (size_t i = 0; s.ok() && i < m->layers.size(); ++i) s = StoreBlob(**src, m->layers[i], store, stats);
  if (s.ok()) s = StoreManifest(image, store);
  if (s.ok() && kind == ManifestKind::kIndex) s = StoreManifest(*root, store);
  if (!s.ok()) return s.WithContext(what);

  nlohmann::json rec;
  rec["reference"] = ref->ToString();
  rec["platform"] = platform.ToString();
  rec["root"] = {{"mediaType", root->media_type}, {"digest", root->digest.ToString()}};
  rec["manifest"] = {{"mediaType", image.media_type}, {"digest", image.digest.ToString()}};
  rec["warmed"] = registry::RealClock::Get()->UnixSeconds();
  KILN_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::Create(RecordPath(cache_dir, *ref, platform)));
  KILN_RETURN_IF_ERROR(w->Write(rec.dump()));
  KILN_RETURN_IF_ERROR(w->Close().WithContext(what));
  stats->canonical = ref->Name() + "@" + image.digest.ToString();
  return OkStatus();
}

Result<std::optional<std::shared_ptr<const SourceImage>>> LookupBaseImage(const std::string& cache_dir,
                                                                          const std::string& reference,
                                                                          const Platform& platform,
                                                                          std::chrono::seconds ttl, registry::Clock* clock) {
  using Miss = std::optional<std::shared_ptr<const SourceImage>>;
  Result<layers::OciLayout> opened = layers::OciLayout::Open(cache_dir);
  if (!opened.ok()) return Miss();  // no cache there yet
  const layers::OciLayout& store = *opened;

  // "sha256:…" alone names content only; a reference keeps its name for messages and mounts.
  std::optional<Reference> ref;
  Digest root_digest;
  if (Result<Digest> bare = Digest::Parse(reference); bare.ok()) {
    root_digest = *bare;
  } else {
    Result<Reference> r = Reference::Parse(reference);
    if (!r.ok()) return r.status();
    ref = *r;
    if (ref->digest()) {
      root_digest = *ref->digest();
    } else {
      int fd = ::open(RecordPath(cache_dir, *ref, platform).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Miss();
      FdReader file(fd, true);
      KILN_ASSIGN_OR_RETURN(std::string text, ReadAll(file, 1 << 20));
      auto rec = nlohmann::json::parse(text, nullptr, false);
      if (!rec.is_object() || !rec.contains("root") || !rec.contains("warmed")) return Miss();
      try {
        int64_t now = (clock != nullptr ? clock : registry::RealClock::Get())->UnixSeconds();
        if (ttl.count() > 0 && now - rec["warmed"].get<int64_t>() > ttl.count()) return Miss();
        Result<Digest> d = Digest::Parse(rec["root"]["digest"].get<std::string>());
        if (!d.ok()) return Miss();
        root_digest = *d;
      } catch (const nlohmann::json::exception&) {
        return Miss();
      }
    }
  }
  if (!store.HasBlob(root_digest)) return Miss();
  std::string what = "base image " + reference + " in cache dir " + cache_dir;
  RawManifest root;
  Result<std::string> root_bytes = store.ReadBlob(root_digest);
  if (!root_bytes.ok()) return root_bytes.status().WithContext(what);
  root.bytes = std::move(root_bytes).value();
  root.digest = root_digest;
  KILN_ASSIGN_OR_RETURN(root.media_type, MediaTypeOf(root.bytes));
  KILN_ASSIGN_OR_RETURN(ManifestKind kind, DetectManifestKind(root.bytes, root.media_type));
  auto img = std::make_shared<SourceImage>();
  img->name = reference;
  if (kind == ManifestKind::kIndex) {
    KILN_ASSIGN_OR_RETURN(Index index, ParseIndex(root.bytes));
    Result<Descriptor> chosen = SelectPlatform(index, platform);
    if (!chosen.ok()) return chosen.status().WithContext(what);
    if (!store.HasBlob(chosen->digest)) return Miss();
    Result<std::string> bytes = store.ReadBlob(chosen->digest);
    if (!bytes.ok()) return bytes.status().WithContext(what);
    img->manifest_raw.bytes = std::move(bytes).value();
    img->manifest_raw.digest = chosen->digest;
    img->manifest_raw.media_type = chosen->media_type;
  } else {
    img->manifest_raw = root;
  }
  Result<Manifest> m = ParseManifest(img->manifest_raw.bytes);
  if (!m.ok()) return m.status().WithContext(what);
  img->manifest = std::move(m).value();
  if (!store.HasBlob(img->manifest.config.digest)) return Miss();
  for (const Descriptor& l : img->manifest.layers) {
    if (!store.HasBlob(l.digest)) return Miss();
  }
  Result<std::string> config_bytes = store.ReadBlob(img->manifest.config.digest);
  if (!config_bytes.ok()) return config_bytes.status().WithContext(what);
  img->config_bytes = std::move(config_bytes).value();
  Result<ImageConfig> cfg = ParseImageConfig(img->config_bytes);
  if (!cfg.ok()) return cfg.status().WithContext(what);
  img->config = std::move(cfg).value();
  if (img->config.diff_ids.size() != img->manifest.layers.size()) {
    return InvalidArgument(what + " is inconsistent: its manifest and config disagree on the number of layers");
  }
  img->canonical = (ref ? ref->Name() + "@" : std::string()) + img->manifest_raw.digest.ToString();
  img->source = std::make_shared<CacheDirSource>(store, root, ref, cache_dir);
  return Miss(std::shared_ptr<const SourceImage>(std::move(img)));
}

}  // namespace kiln::executor
