#include "core/image_index.h"

#include <mutex>

#include "core/media_types.h"

namespace kiln {
namespace {

class IndexSource : public ImageSource {
 public:
  IndexSource(std::vector<std::unique_ptr<ImageSource>> sources, RawManifest root,
              std::map<Digest, size_t> manifest_owner)
      : sources_(std::move(sources)), root_(std::move(root)), manifest_owner_(std::move(manifest_owner)) {}

  std::string Describe() const override {
    std::string s = "an index of";
    for (const auto& src : sources_) s += " " + src->Describe();
    return s;
  }
  Result<RawManifest> RootManifest() override { return root_; }
  Result<RawManifest> GetManifest(const Descriptor& d) override {
    auto it = manifest_owner_.find(d.digest);
    if (it == manifest_owner_.end()) return NotFound(Describe() + " has no manifest " + d.digest.ToString());
    ImageSource& src = *sources_[it->second];
    KILN_ASSIGN_OR_RETURN(RawManifest root, src.RootManifest());
    RawManifest m = root;
    if (root.digest != d.digest) {
      KILN_ASSIGN_OR_RETURN(m, src.GetManifest(d));
    }
    // CopyImage reads every child manifest before any blob: remember which source serves its
    // blobs, so OpenBlob asks that one rather than every source in turn.
    if (Result<Manifest> parsed = ParseManifest(m.bytes); parsed.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      blob_owner_.emplace(parsed->config.digest, it->second);
      for (const Descriptor& l : parsed->layers) blob_owner_.emplace(l.digest, it->second);
    }
    return m;
  }
  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = blob_owner_.find(d.digest); it != blob_owner_.end()) return sources_[it->second]->OpenBlob(d);
    }
    // A blob of no manifest read yet: whichever source has it (a blob shared by two children, a
    // common base layer, is the same bytes wherever it is served from).
    Status last = NotFound(Describe() + " has no blob " + d.digest.ToString());
    for (const auto& src : sources_) {
      Result<std::unique_ptr<Reader>> r = src->OpenBlob(d);
      if (r.ok()) return r;
      last = r.status();
    }
    return last;
  }
  std::optional<std::pair<std::string, std::string>> RegistryLocation() const override {
    // Mounts need one repository: offer it when every source lives in the same one.
    std::optional<std::pair<std::string, std::string>> loc;
    for (const auto& src : sources_) {
      auto l = src->RegistryLocation();
      if (!l || (loc && *loc != *l)) return std::nullopt;
      loc = l;
    }
    return loc;
  }
  std::optional<std::string> LocalBlobPath(const Descriptor& d) const override {
    for (const auto& src : sources_) {
      if (auto p = src->LocalBlobPath(d)) return p;
    }
    return std::nullopt;
  }

 private:
  std::vector<std::unique_ptr<ImageSource>> sources_;
  RawManifest root_;
  std::map<Digest, size_t> manifest_owner_;  // child manifest → the source that serves it
  std::mutex mu_;
  std::map<Digest, size_t> blob_owner_;  // config and layer blobs of the manifests read so far
};

Result<Platform> PlatformOfImage(ImageSource& src, const RawManifest& m) {
  KILN_ASSIGN_OR_RETURN(Manifest man, ParseManifest(m.bytes));
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> r, src.OpenBlob(man.config));
  KILN_ASSIGN_OR_RETURN(std::string bytes, ReadAll(*r, 16 << 20));
  KILN_ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(bytes));
  if (config.os.empty() || config.architecture.empty()) {
    return InvalidArgument(src.Describe() + ": the image's config names no os or architecture, so it has no place in "
                           "an index");
  }
  return config.platform();
}

}  // namespace

Result<std::unique_ptr<ImageSource>> NewIndexSource(std::vector<std::unique_ptr<ImageSource>> sources,
                                                    const IndexOptions& options) {
  if (sources.empty()) return InvalidArgument("an index needs at least one image");
  Index idx;
  std::map<Digest, size_t> owner;
  std::map<std::string, std::string> platform_from;  // platform → the source that brought it
  bool all_docker = true;
  auto add = [&](size_t i, Descriptor d) -> Status {
    std::string key = d.platform ? d.platform->ToString() : std::string();
    if (!key.empty()) {
      auto [it, fresh] = platform_from.emplace(key, sources[i]->Describe());
      if (!fresh) {
        return InvalidArgument("two images for " + key + ": " + it->second + " and " + sources[i]->Describe());
      }
    }
    if (owner.count(d.digest)) return OkStatus();  // the same image named twice
    owner[d.digest] = i;
    all_docker = all_docker && d.media_type == media_type::kDockerManifest;
    idx.manifests.push_back(std::move(d));
    return OkStatus();
  };
  for (size_t i = 0; i < sources.size(); ++i) {
    ImageSource& src = *sources[i];
    KILN_ASSIGN_OR_RETURN(RawManifest root, src.RootManifest());
    KILN_ASSIGN_OR_RETURN(ManifestKind kind, DetectManifestKind(root.bytes, root.media_type));
    if (kind == ManifestKind::kIndex) {
      KILN_ASSIGN_OR_RETURN(Index children, ParseIndex(root.bytes));
      for (Descriptor& d : children.manifests) KILN_RETURN_IF_ERROR(add(i, std::move(d)));
      continue;
    }
    Descriptor d = root.ToDescriptor();
    Result<Platform> p = PlatformOfImage(src, root);
    if (!p.ok()) return p.status().WithContext("reading the platform of " + src.Describe());
    d.platform = *p;
    KILN_RETURN_IF_ERROR(add(i, std::move(d)));
  }
  // A Docker manifest list has no annotations: asking for them makes it an OCI index (as buildx
  // imagetools does), which may list Docker manifests.
  bool docker_list = all_docker && options.annotations.empty();
  idx.media_type = std::string(docker_list ? media_type::kDockerManifestList : media_type::kOciIndex);
  idx.annotations = options.annotations;
  RawManifest root;
  root.bytes = SerializeIndex(idx);
  root.media_type = idx.media_type;
  root.digest = Sha256Of(root.bytes);
  return std::unique_ptr<ImageSource>(std::make_unique<IndexSource>(std::move(sources), std::move(root), std::move(owner)));
}

}  // namespace kiln
