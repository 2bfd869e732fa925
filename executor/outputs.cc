#include "executor/outputs.h"

#include <fcntl.h>
#include <unistd.h>

#include "layers/docker_archive.h"
#include "registry/copy.h"
#include "registry/image_source.h"
#include "registry/reference.h"

namespace kiln::executor {
namespace {

class BuiltImageSource : public registry::ImageSource {
 public:
  BuiltImageSource(const AssembledImage* image, const layers::OciLayout* store, std::shared_ptr<const SourceImage> base,
                   ProgressMeter* meter = nullptr)
      : image_(image), store_(store), base_(std::move(base)), meter_(meter) {}

  std::string Describe() const override { return "the built image"; }
  Result<registry::RawManifest> RootManifest() override {
    registry::RawManifest m;
    m.bytes = image_->manifest_bytes;
    m.media_type = image_->manifest.media_type;
    m.digest = image_->manifest.digest;
    return m;
  }
  Result<registry::RawManifest> GetManifest(const Descriptor& d) override {
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

}  // namespace

std::unique_ptr<registry::ImageSource> NewBuiltImageSource(const AssembledImage& image, const layers::OciLayout* store,
                                                           std::shared_ptr<const SourceImage> base) {
  return std::make_unique<BuiltImageSource>(&image, store, std::move(base));
}

Status PushImage(const AssembledImage& image, const layers::OciLayout& store, std::shared_ptr<const SourceImage> base,
                 registry::Client& client, const std::vector<std::string>& destinations, int attempts, BuildLog* log) {
  for (const std::string& dest : destinations) {
    KILN_ASSIGN_OR_RETURN(registry::Reference ref, registry::Reference::Parse(dest));
    if (ref.digest() && *ref.digest() != image.manifest.digest) {
      return InvalidArgument("destination " + dest + " names digest " + ref.digest()->ToString() +
                             " but the built image is " + image.manifest.digest.ToString());
    }
    auto start = std::chrono::steady_clock::now();
    Status last;
    registry::CopyResult result;
    for (int attempt = 1; attempt <= std::max(1, attempts); ++attempt) {
      Result<std::unique_ptr<registry::ImageSink>> sink = registry::OpenRegistrySink(client, ref);
      if (!sink.ok()) {
        last = sink.status();
      } else {
        uint64_t total = 0;
        for (const ImageLayer& l : image.layers) total += static_cast<uint64_t>(std::max<int64_t>(l.desc.size, 0));
        ProgressMeter meter(log, "pushing " + ref.FamiliarString(), total);
        BuiltImageSource src(&image, &store, base, &meter);
        registry::CopyOptions copts;
        copts.on_blob = [log, &ref](const registry::BlobEvent& e) {
          const char* what = e.action == registry::BlobEvent::Action::kCopied    ? "uploaded"
                             : e.action == registry::BlobEvent::Action::kMounted ? "mounted"
                                                                                 : "already there";
          log->Debug("push " + ref.FamiliarString() + ": " + e.blob.digest.ToString().substr(0, 19) + " " +
                     FormatBytes(static_cast<uint64_t>(e.blob.size)) + " " + what);
        };
        Result<registry::CopyResult> r = registry::Copy(src, **sink, copts);
        if (r.ok()) {
          result = *r;
          last = OkStatus();
          break;
        }
        last = r.status();
      }
      if (!last.temporary()) break;
      if (attempt < attempts) log->Warn("push to " + ref.ToString() + " failed, retrying: " + last.message());
    }
    if (!last.ok()) return last.WithContext("pushing to " + ref.ToString());
    log->Info("pushed " + ref.ToString() + "@" + image.manifest.digest.ToString() + " (" +
              std::to_string(result.blobs_copied) + " blobs uploaded, " + FormatBytes(result.bytes_copied) + ", " +
              std::to_string(result.blobs_mounted) + " mounted, " + std::to_string(result.blobs_skipped) +
              " already there) in " +
              FormatDuration(std::chrono::steady_clock::now() - start));
  }
  return OkStatus();
}

Status WriteTarOutput(const AssembledImage& image, const layers::OciLayout& store, const std::vector<std::string>& tags,
                      const std::string& path) {
  layers::ArchiveImage ai;
  ai.manifest_bytes = image.manifest_bytes;
  ai.config_bytes = image.config_bytes;
  for (const std::string& t : tags) {
    Result<registry::Reference> ref = registry::Reference::Parse(t);
    if (ref.ok() && !ref->TagOrDefault().empty()) ai.repo_tags.push_back(ref->Name() + ":" + ref->TagOrDefault());
  }
  KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(path, 0644));
  Status s = layers::WriteDockerArchive(
      {ai},
      [&](const Descriptor& d) -> Result<std::unique_ptr<Reader>> {
        for (const ImageLayer& l : image.layers) {
          if (l.desc.digest == d.digest) return OpenLayerBlob(l, store);
        }
        return store.OpenBlob(d.digest, d.size);
      },
      *out);
  if (!s.ok()) return s.WithContext("writing " + path);
  return out->Close();
}

Status WriteOciLayoutOutput(const AssembledImage& image, const layers::OciLayout& store, const std::string& path) {
  auto [dir, tag] = layers::SplitLayoutPath(path);
  KILN_ASSIGN_OR_RETURN(layers::OciLayout out, layers::OciLayout::OpenOrCreate(dir));
  auto copy_blob = [&](const Digest& d, std::unique_ptr<Reader> r) -> Status {
    if (out.HasBlob(d)) return OkStatus();
    KILN_ASSIGN_OR_RETURN(auto w, out.NewBlob());
    KILN_RETURN_IF_ERROR(Copy(*r, *w).status());
    return w->Commit(d).status();
  };
  for (const ImageLayer& l : image.layers) {
    if (out.HasBlob(l.desc.digest)) continue;
    // A hard link costs nothing when the layout is on the store's filesystem.
    if (store.HasBlob(l.desc.digest) &&
        ::link(store.BlobPath(l.desc.digest).c_str(), out.BlobPath(l.desc.digest).c_str()) == 0) {
      continue;
    }
    KILN_ASSIGN_OR_RETURN(auto r, OpenLayerBlob(l, store));
    KILN_RETURN_IF_ERROR(copy_blob(l.desc.digest, std::move(r)));
  }
  KILN_RETURN_IF_ERROR(out.PutBlob(image.config_bytes).status());
  KILN_RETURN_IF_ERROR(out.PutBlob(image.manifest_bytes).status());
  return out.AddToIndex(image.manifest, tag);
}

Status WriteDigestFiles(const Digest& digest, const std::vector<std::string>& destinations,
                        const std::string& digest_file, const std::string& name_with_digest_file,
                        const std::string& name_tag_with_digest_file) {
  if (!digest_file.empty()) KILN_RETURN_IF_ERROR(WriteSmallFile(digest_file, digest.ToString()));
  std::string with_digest, with_tag;
  for (const std::string& d : destinations) {
    KILN_ASSIGN_OR_RETURN(registry::Reference ref, registry::Reference::Parse(d));
    with_digest += ref.Name() + "@" + digest.ToString() + "\n";
    std::string tag = ref.TagOrDefault();
    with_tag += ref.Name() + (tag.empty() ? "" : ":" + tag) + "@" + digest.ToString() + "\n";
  }
  if (!name_with_digest_file.empty()) KILN_RETURN_IF_ERROR(WriteSmallFile(name_with_digest_file, with_digest));
  if (!name_tag_with_digest_file.empty()) KILN_RETURN_IF_ERROR(WriteSmallFile(name_tag_with_digest_file, with_tag));
  return OkStatus();
}

}  // namespace kiln::executor
