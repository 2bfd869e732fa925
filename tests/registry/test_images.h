// In-memory images for the registry tests: an ImageSource built from bytes and an ImageSink that
// keeps what it is given, both verifying digests like the real ones.
#pragma once

#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "core/media_types.h"
#include "core/image_store.h"

namespace kiln::registry::testing {

struct TestImage {
  std::string config;
  std::vector<std::string> layers;
  std::string manifest;
  std::string media_type;
  Digest digest;
};

inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t k = 0; k < 8 && i + k < n; ++k) s[i + k] = static_cast<char>(v >> (8 * k));
  }
  return s;
}

/// A manifest over random layer bytes (registries do not look inside layers).
inline TestImage MakeImage(int nlayers, size_t layer_size, uint64_t seed, bool docker = false,
                           const std::string& arch = "amd64") {
  TestImage img;
  std::string diff_ids;
  for (int i = 0; i < nlayers; ++i) {
    img.layers.push_back(RandomBytes(layer_size + i, seed * 1000 + i));
    diff_ids += std::string(i ? "," : "") + "\"" + Sha256Of(img.layers.back()).ToString() + "\"";
  }
  img.config = "{\"architecture\":\"" + arch + "\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" +
               diff_ids + "]},\"created\":\"2024-01-01T00:00:00Z\",\"seed\":" + std::to_string(seed) + "}";
  std::string layer_mt(docker ? media_type::kDockerLayerGzip : media_type::kOciLayerGzip);
  img.media_type = std::string(docker ? media_type::kDockerManifest : media_type::kOciManifest);
  std::string m = "{\"schemaVersion\":2,\"mediaType\":\"" + img.media_type + "\",\"config\":{\"mediaType\":\"" +
                  std::string(docker ? media_type::kDockerConfig : media_type::kOciConfig) + "\",\"digest\":\"" +
                  Sha256Of(img.config).ToString() + "\",\"size\":" + std::to_string(img.config.size()) +
                  "},\"layers\":[";
  for (size_t i = 0; i < img.layers.size(); ++i) {
    m += std::string(i ? "," : "") + "{\"mediaType\":\"" + layer_mt + "\",\"digest\":\"" +
         Sha256Of(img.layers[i]).ToString() + "\",\"size\":" + std::to_string(img.layers[i].size()) + "}";
  }
  m += "]}";
  img.manifest = m;
  img.digest = Sha256Of(m);
  return img;
}

inline std::string MakeIndex(const std::vector<std::pair<TestImage, std::string>>& images) {
  std::string s = "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(media_type::kOciIndex) + "\",\"manifests\":[";
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& [img, arch] = images[i];
    s += std::string(i ? "," : "") + "{\"mediaType\":\"" + img.media_type + "\",\"digest\":\"" + img.digest.ToString() +
         "\",\"size\":" + std::to_string(img.manifest.size()) + ",\"platform\":{\"architecture\":\"" + arch +
         "\",\"os\":\"linux\"}}";
  }
  return s + "]}";
}

/// Serves manifests and blobs from memory.
class MemorySource : public ImageSource {
 public:
  MemorySource() = default;
  void AddImage(const TestImage& img) {
    manifests_[img.digest] = RawManifest{img.manifest, img.media_type, img.digest};
    blobs_[Sha256Of(img.config)] = img.config;
    for (const auto& l : img.layers) blobs_[Sha256Of(l)] = l;
  }
  void SetRoot(RawManifest m) {
    manifests_[m.digest] = m;
    root_ = std::move(m);
  }
  void SetRoot(const TestImage& img) {
    AddImage(img);
    root_ = RawManifest{img.manifest, img.media_type, img.digest};
  }
  std::string Describe() const override { return "memory"; }
  Result<RawManifest> RootManifest() override { return root_; }
  Result<RawManifest> GetManifest(const Descriptor& d) override {
    auto it = manifests_.find(d.digest);
    if (it == manifests_.end()) return NotFound("no manifest " + d.digest.ToString());
    return it->second;
  }
  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) override {
    auto it = blobs_.find(d.digest);
    if (it == blobs_.end()) return NotFound("no blob " + d.digest.ToString());
    return std::unique_ptr<Reader>(std::make_unique<StringReader>(it->second));
  }

 private:
  RawManifest root_;
  std::map<Digest, RawManifest> manifests_;
  std::map<Digest, std::string> blobs_;
};

/// Keeps everything; verifies blob digests; records the order of calls.
class MemorySink : public ImageSink {
 public:
  std::string Describe() const override { return "memory"; }
  Result<BlobPresence> HasBlob(const Descriptor& d, const ImageSource&) override {
    std::lock_guard<std::mutex> lock(mu_);
    return blobs.count(d.digest) > 0 ? BlobPresence::kPresent : BlobPresence::kAbsent;
  }
  Status PutBlob(const Descriptor& d, Reader& content) override {
    KILN_ASSIGN_OR_RETURN(std::string bytes, ReadAll(content, 1 << 30));
    if (Sha256Of(bytes) != d.digest) return DigestMismatch("memory sink: wrong content for " + d.digest.ToString());
    std::lock_guard<std::mutex> lock(mu_);
    blobs[d.digest] = bytes;
    log.push_back("blob " + d.digest.ToString());
    return OkStatus();
  }
  Status PutManifest(const RawManifest& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    manifests[m.digest] = m;
    log.push_back("manifest " + m.digest.ToString());
    return OkStatus();
  }
  Status PutRoot(const RawManifest& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    root = m;
    log.push_back("root " + m.digest.ToString());
    return OkStatus();
  }

  std::mutex mu_;
  std::map<Digest, std::string> blobs;
  std::map<Digest, RawManifest> manifests;
  RawManifest root;
  std::vector<std::string> log;
};

}  // namespace kiln::registry::testing
