#include "executor/image/publish.h"

namespace kiln::executor {
namespace {

class BuiltImageSource : public ImageSource {
 public:
  BuiltImageSource(const AssembledImage* image, const layers::OciLayout* store, std::shared_ptr<const SourceImage> base,
                   ProgressMeter* meter)
      : image_(image), store_(store), base_(std::move(base)), meter_(meter) {}

  std::string Describe() const override { return "the built image"; }
  Result<RawManifest> RootManifest() override {
    RawManifest m;
    m.bytes = image_->manifest_bytes;
    m.media_type = image_->manifest.media_type;
    m.digest = image_->manifest.digest;
    return m;
  }
  Result<RawManifest> GetManifest(const Descriptor& d) override {
    return NotFound("the built image has no manifest " + d.digest.ToString());
  }
  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) override {
    if (d.digest == image_->config.digest) return store_->OpenBlob(d.digest, d.size);
    for (const ImageLayer& l : image_->layers) {
      if (l.desc.digest != d.digest) continue;
      KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> r, OpenLayerBlob(l, *store_));
      if (!meter_) return r;
      return std::unique_ptr<Reader>(std::make_unique<MeteredReader>(std::move(r), meter_));
    }
    return NotFound("the built image has no blob " + d.digest.ToString());
  }
  std::optional<std::pair<std::string, std::string>> RegistryLocation() const override {
    if (!base_) return std::nullopt;
    return base_->source->RegistryLocation();
  }
  std::optional<std::string> LocalBlobPath(const Descriptor& d) const override {
    // Files in the store were verified when they were written (BlobWriter names a blob by its hash).
    if (!store_->HasBlob(d.digest)) return std::nullopt;
    return store_->BlobPath(d.digest);
  }

 private:
  const AssembledImage* image_;
  const layers::OciLayout* store_;
  std::shared_ptr<const SourceImage> base_;
  ProgressMeter* meter_;
};

Status WriteSmallFile(const std::string& path, const std::string& content) {
  KILN_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::Create(path, 0644));
  KILN_RETURN_IF_ERROR(w->Write(content.data(), content.size()));
  return w->Close();
}

// The log line for a finished output; registries as Kaniko users know it.
std::string Done(const ImageLocation& loc, const Digest& digest, const kiln::CopyResult& r, std::chrono::nanoseconds took) {
  switch (loc.kind) {
    case ImageLocation::Kind::kDockerArchive:
      return "wrote docker-archive " + loc.path;
    case ImageLocation::Kind::kOciLayout:
      return "wrote OCI layout " + loc.path + (loc.tag.empty() ? "" : ":" + loc.tag);
    case ImageLocation::Kind::kRegistry:
      break;
  }
  return "pushed " + loc.reference->ToString() + "@" + digest.ToString() + " (" + std::to_string(r.blobs_copied) +
         " blobs uploaded, " + FormatBytes(r.bytes_copied) + ", " + std::to_string(r.blobs_mounted) + " mounted, " +
         std::to_string(r.blobs_skipped) + " already there) in " + FormatDuration(took);
}

}  // namespace

std::unique_ptr<ImageSource> NewBuiltImageSource(const AssembledImage& image, const layers::OciLayout* store,
                                                 std::shared_ptr<const SourceImage> base, ProgressMeter* meter) {
  return std::make_unique<BuiltImageSource>(&image, store, std::move(base), meter);
}

Publication PublicationOf(const AssembledImage& image, const layers::OciLayout& store,
                          std::shared_ptr<const SourceImage> base) {
  Publication p;
  p.digest = image.manifest.digest;
  for (const ImageLayer& l : image.layers) p.layer_bytes += static_cast<uint64_t>(std::max<int64_t>(l.desc.size, 0));
  p.open = [&image, &store, base](ProgressMeter* meter) -> Result<std::unique_ptr<ImageSource>> {
    return NewBuiltImageSource(image, &store, base, meter);
  };
  return p;
}

Result<std::vector<PublishedOutput>> Publish(const Publication& what, const std::vector<ImageLocation>& outputs,
                                             const SinkOpener& open_sink, int attempts, BuildLog* log) {
  std::vector<PublishedOutput> published;
  const uint64_t total = what.layer_bytes;
  for (const ImageLocation& out : outputs) {
    const bool registry = out.kind == ImageLocation::Kind::kRegistry;
    if (registry && out.reference->digest() && *out.reference->digest() != what.digest) {
      return InvalidArgument("destination " + out.reference->ToString() + " names digest " +
                             out.reference->digest()->ToString() + " but the built image is " +
                             what.digest.ToString());
    }
    const std::string name = registry ? out.reference->FamiliarString() : out.ToString();
    auto start = std::chrono::steady_clock::now();
    Status last;
    kiln::CopyResult result;
    for (int attempt = 1; attempt <= std::max(1, attempts); ++attempt) {
      Result<std::unique_ptr<ImageSink>> sink = open_sink(out);
      if (!sink.ok()) {
        last = sink.status();
      } else {
        // Progress lines for the network; a local output takes seconds at most.
        std::unique_ptr<ProgressMeter> meter;
        if (registry) meter = std::make_unique<ProgressMeter>(log, "pushing " + name, total);
        Result<std::unique_ptr<ImageSource>> src = what.open(meter.get());
        if (!src.ok()) return src.status();
        kiln::CopyOptions copts;
        copts.on_blob = [log, &name](const BlobEvent& e) {
          const char* what = e.action == BlobEvent::Action::kCopied    ? "copied"
                             : e.action == BlobEvent::Action::kMounted ? "mounted"
                                                                       : "already there";
          log->Debug(name + ": " + e.blob.digest.ToString().substr(0, 19) + " " +
                     FormatBytes(static_cast<uint64_t>(e.blob.size)) + " " + what);
        };
        Result<kiln::CopyResult> r = CopyImage(**src, **sink, copts);
        if (r.ok()) {
          result = *r;
          last = OkStatus();
          break;
        }
        last = r.status();
      }
      if (!last.temporary()) break;
      if (attempt < attempts) log->Warn("writing " + out.Display() + " failed, retrying: " + last.message());
    }
    if (!last.ok()) {
      return last.WithContext(registry ? "pushing to " + out.reference->ToString() : "writing " + out.ToString());
    }
    auto took = std::chrono::steady_clock::now() - start;
    log->Info(Done(out, result.root.digest, result, took));
    published.push_back({out, result, took});
  }
  return published;
}

Status WriteDigestFiles(const Digest& digest, const std::vector<Reference>& destinations,
                        const std::string& digest_file, const std::string& name_with_digest_file,
                        const std::string& name_tag_with_digest_file) {
  if (!digest_file.empty()) KILN_RETURN_IF_ERROR(WriteSmallFile(digest_file, digest.ToString()));
  std::string with_digest, with_tag;
  for (const Reference& ref : destinations) {
    with_digest += ref.Name() + "@" + digest.ToString() + "\n";
    std::string tag = ref.TagOrDefault();
    with_tag += ref.Name() + (tag.empty() ? "" : ":" + tag) + "@" + digest.ToString() + "\n";
  }
  if (!name_with_digest_file.empty()) KILN_RETURN_IF_ERROR(WriteSmallFile(name_with_digest_file, with_digest));
  if (!name_tag_with_digest_file.empty()) KILN_RETURN_IF_ERROR(WriteSmallFile(name_tag_with_digest_file, with_tag));
  return OkStatus();
}

}  // namespace kiln::executor
