#include "executor/image/image_fetcher.h"

#include <atomic>
#include <condition_variable>
#include <thread>
#include <vector>

#include "core/media_types.h"
#include "executor/image/cache_warm.h"
#include "core/reference.h"
#include "layers/oci_layout_store.h"

namespace kiln::executor {

ImageFetcher::ImageFetcher(registry::Client* client, const layers::OciLayout* store, BuildLog* log, int parallel)
    : client_(client), store_(store), log_(log), parallel_(parallel < 1 ? 1 : parallel) {}

std::vector<std::shared_ptr<const SourceImage>> ImageFetcher::Resolved() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const SourceImage>> out;
  for (const auto& [key, image] : cache_) out.push_back(image);
  return out;
}

Result<std::shared_ptr<const SourceImage>> ImageFetcher::Resolve(const std::string& reference,
                                                                 const Platform& platform) {
  std::string key = reference + "|" + platform.ToString();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
  }
  std::unique_ptr<ImageSource> src;
  std::string shown, name;  // for messages; the canonical name before "@digest"
  std::optional<Digest> want;
  if (IsOciLayoutRef(reference)) {
    KILN_ASSIGN_OR_RETURN(OciLayoutRef layout, ParseOciLayoutRef(reference));
    Result<std::unique_ptr<ImageSource>> opened = layers::OpenLayoutSource(layout.dir, layout.tag);
    if (!opened.ok()) return opened.status().WithContext(reference);
    src = std::move(opened).value();
    shown = reference;
    name = "oci-layout://" + layout.dir;
    want = layout.digest;
  } else {
    KILN_ASSIGN_OR_RETURN(Reference ref, Reference::Parse(reference));
    shown = ref.ToString();
    name = ref.Name();
    if (!cache_dir_.empty()) {
      Result<std::optional<std::shared_ptr<const SourceImage>>> warmed =
          LookupBaseImage(cache_dir_, reference, platform, cache_ttl_);
      if (!warmed.ok()) {
        log_->Warn("base image cache " + cache_dir_ + ": " + warmed.status().message());
      } else if (*warmed) {
        log_->Info("base image " + reference + " from the cache dir " + cache_dir_ + " (" + (**warmed)->canonical + ")");
        std::lock_guard<std::mutex> lock(mu_);
        cache_[key] = **warmed;
        return **warmed;
      }
    }
    KILN_ASSIGN_OR_RETURN(src, registry::OpenRegistrySource(*client_, ref));
  }
  auto img = std::make_shared<SourceImage>();
  img->name = reference;
  KILN_ASSIGN_OR_RETURN(RawManifest root, src->RootManifest());
  KILN_ASSIGN_OR_RETURN(ManifestKind kind, DetectManifestKind(root.bytes, root.media_type));
  if (kind == ManifestKind::kIndex) {
    KILN_ASSIGN_OR_RETURN(Index index, ParseIndex(root.bytes));
    Result<Descriptor> chosen = SelectPlatform(index, platform);
    if (!chosen.ok()) return chosen.status().WithContext("base image " + shown);
    KILN_ASSIGN_OR_RETURN(img->manifest_raw, src->GetManifest(*chosen));
  } else {
    img->manifest_raw = root;
  }
  Result<Manifest> m = ParseManifest(img->manifest_raw.bytes);
  if (!m.ok()) return m.status().WithContext("image manifest of " + shown);
  img->manifest = std::move(m).value();
  {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> r, src->OpenBlob(img->manifest.config));
    KILN_ASSIGN_OR_RETURN(img->config_bytes, ReadAll(*r, 16 << 20));
  }
  Result<ImageConfig> cfg = ParseImageConfig(img->config_bytes);
  if (!cfg.ok()) return cfg.status().WithContext("image config of " + shown);
  img->config = std::move(cfg).value();
  if (img->config.diff_ids.size() != img->manifest.layers.size()) {
    return InvalidArgument("image " + shown + " is inconsistent: its manifest has " +
                           std::to_string(img->manifest.layers.size()) + " layers but its config lists " +
                           std::to_string(img->config.diff_ids.size()) + " diff_ids");
  }
  if (!img->config.os.empty() && !img->config.architecture.empty() && kind != ManifestKind::kIndex &&
      !img->config.platform().Satisfies(platform)) {
    log_->Warn("base image " + shown + " is " + img->config.platform().ToString() +
               ", not the requested " + platform.ToString());
  }
  if (want && *want != root.digest && *want != img->manifest_raw.digest) {
    return DigestMismatch(shown + ": the layout's image is " + root.digest.ToString() + ", not " + want->ToString());
  }
  img->canonical = name + "@" + img->manifest_raw.digest.ToString();
  img->source = std::move(src);
  std::shared_ptr<const SourceImage> result = img;
  std::lock_guard<std::mutex> lock(mu_);
  cache_[key] = result;
  return result;
}

bool IsOciLayoutRef(const std::string& reference) { return reference.rfind("oci-layout://", 0) == 0; }

Result<OciLayoutRef> ParseOciLayoutRef(const std::string& reference) {
  OciLayoutRef out;
  std::string rest = reference.substr(13);
  if (size_t at = rest.rfind('@'); at != std::string::npos && rest.find('/', at) == std::string::npos) {
    Result<Digest> d = Digest::Parse(rest.substr(at + 1));
    if (!d.ok()) return InvalidArgument(reference + ": " + d.status().message());
    out.digest = *d;
    rest.resize(at);
  }
  size_t slash = rest.rfind('/');
  if (size_t colon = rest.rfind(':'); colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    out.tag = rest.substr(colon + 1);
    rest.resize(colon);
  }
  if (rest.empty()) return InvalidArgument(reference + ": no layout directory after oci-layout://");
  out.dir = rest;
  return out;
}

Status ImageFetcher::Fetch(const SourceImage& image, const Descriptor& d) {
  if (store_->HasBlob(d.digest)) return OkStatus();
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> r, image.source->OpenBlob(d));
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<layers::BlobWriter> w, store_->NewBlob());
  KILN_RETURN_IF_ERROR(Copy(*r, *w).status());
  return w->Commit(d.digest).status();
}

namespace {

// Per-layer progress shared by the extracting thread and the download workers.
struct LayerSlot {
  enum State { kPending, kFetching, kStored, kFailed, kStreamed } state = kPending;
  Status error;
};

}  // namespace

Result<UnpackStats> ImageFetcher::Unpack(const SourceImage& image, const std::string& rootfs,
                                         const layers::ExtractOptions& options) {
  auto start = std::chrono::steady_clock::now();
  const std::vector<Descriptor>& layers_ = image.manifest.layers;
  UnpackStats stats;
  stats.layers = layers_.size();
  std::vector<LayerSlot> slots(layers_.size());
  uint64_t total = 0;
  for (const Descriptor& d : layers_) total += static_cast<uint64_t>(std::max<int64_t>(d.size, 0));
  ProgressMeter meter(log_, "pulling " + image.name, total);
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (store_->HasBlob(layers_[i].digest)) slots[i].state = LayerSlot::kStored;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> fetched_bytes{0}, fetched_layers{0};

  // Workers take pending layers from the back: the extracting thread streams from the front, so the
  // two meet in the middle instead of racing for the same layer.
  auto worker = [&] {
    for (;;) {
      size_t pick = layers_.size();
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop) return;
        for (size_t i = layers_.size(); i-- > 0;) {
          if (slots[i].state == LayerSlot::kPending) {
            pick = i;
            slots[i].state = LayerSlot::kFetching;
            break;
          }
        }
      }
      if (pick == layers_.size()) return;
      Status s = Fetch(image, layers_[pick]);
      {
        std::lock_guard<std::mutex> lock(mu);
        slots[pick].state = s.ok() ? LayerSlot::kStored : LayerSlot::kFailed;
        slots[pick].error = s;
        if (s.ok()) {
          fetched_layers++;
          fetched_bytes += static_cast<uint64_t>(layers_[pick].size);
        }
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> workers;
  int n_workers = std::min<int>(parallel_ - 1, static_cast<int>(layers_.size()) - 1);
  for (int i = 0; i < n_workers; ++i) workers.emplace_back(worker);
  auto join = [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    for (std::thread& t : workers) t.join();
    workers.clear();
  };

  Status failure;
  for (size_t i = 0; i < layers_.size() && failure.ok(); ++i) {
    const Descriptor& d = layers_[i];
    layers::LayerExpectation expect;
    expect.digest = d.digest;
    if (d.size > 0) expect.size = static_cast<uint64_t>(d.size);
    expect.diff_id = image.config.diff_ids[i];
    // Both streams below verify themselves (an ImageSource blob, a store blob): hashed once.
    expect.verified_by_source = true;
    bool stream_it = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      if (slots[i].state == LayerSlot::kPending) {
        slots[i].state = LayerSlot::kStreamed;
        stream_it = true;
      } else {
        cv.wait(lock, [&] { return slots[i].state != LayerSlot::kFetching; });
        if (slots[i].state == LayerSlot::kFailed) {
          failure = slots[i].error;
          break;
        }
      }
    }
    std::string what = "layer " + std::to_string(i + 1) + "/" + std::to_string(layers_.size()) + " (" +
                       d.digest.ToString().substr(0, 19) + ", " + FormatBytes(static_cast<uint64_t>(d.size)) +
                       ") of " + image.name;
    Result<layers::ExtractResult> r = InvalidArgument("unreachable");
    if (stream_it) {
      // Download, store and extract in one pass. The store only keeps the blob if it verified.
      Result<std::unique_ptr<Reader>> blob = image.source->OpenBlob(d);
      if (!blob.ok()) {
        failure = blob.status().WithContext("fetching " + what);
        break;
      }
      blob = std::unique_ptr<Reader>(std::make_unique<MeteredReader>(std::move(blob).value(), &meter));
      // Stored unhashed: ExtractLayer reads the verifying source stream to its end before Commit.
      Result<std::unique_ptr<layers::BlobWriter>> w = store_->NewBlob(layers::BlobWriter::Hashing::kVerifiedBySource);
      if (!w.ok()) {
        failure = w.status();
        break;
      }
      TeeReader tee(blob->get(), w->get());
      r = layers::ExtractLayer(tee, expect, rootfs, options);
      if (r.ok()) {
        Status c = (*w)->Commit(d.digest).status();
        if (!c.ok()) r = c;
        fetched_layers++;
        fetched_bytes += static_cast<uint64_t>(d.size);
      }
    } else {
      Result<std::unique_ptr<Reader>> blob = store_->OpenBlob(d.digest, d.size > 0 ? d.size : -1);
      if (!blob.ok()) {
        failure = blob.status();
        break;
      }
      r = layers::ExtractLayer(**blob, expect, rootfs, options);
    }
    if (!r.ok()) {
      failure = r.status().WithContext("extracting " + what);
      break;
    }
    stats.extracted_bytes += r->uncompressed_bytes;
    log_->Debug("extracted " + what);
  }
  join();
  KILN_RETURN_IF_ERROR(failure);
  stats.fetched_layers = fetched_layers;
  stats.fetched_bytes = fetched_bytes;
  stats.took = std::chrono::steady_clock::now() - start;
  return stats;
}

}  // namespace kiln::executor
