#include "layers/docker_archive_store.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/media_types.h"
#include "layers/docker_archive.h"
#include "layers/oci_layout.h"

namespace kiln::layers {
namespace {

// The OCI manifest an archive written by kiln or Docker 25+ carries for image `img`, if any: an
// index.json entry whose manifest names exactly the config and layer entries manifest.json lists.
std::optional<RawManifest> EmbeddedManifest(const DockerArchiveReader& archive,
                                            const DockerArchiveReader::Image& img) {
  auto index_bytes = archive.ReadEntry("index.json");
  if (!index_bytes.ok()) return std::nullopt;
  auto index = ParseIndex(*index_bytes);
  if (!index.ok()) return std::nullopt;
  auto blob_name = [](const Digest& d) { return "blobs/" + d.algorithm() + "/" + d.hex(); };
  for (const Descriptor& d : index->manifests) {
    if (!media_type::IsImageManifest(d.media_type)) continue;
    auto bytes = archive.ReadEntry(blob_name(d.digest));
    if (!bytes.ok() || Sha256Of(*bytes) != d.digest) continue;
    auto m = ParseManifest(*bytes);
    if (!m.ok() || blob_name(m->config.digest) != img.config_path || m->layers.size() != img.layer_paths.size()) continue;
    bool same = true;
    for (size_t i = 0; i < m->layers.size() && same; ++i) same = blob_name(m->layers[i].digest) == img.layer_paths[i];
    if (same) return RawManifest{*bytes, m->media_type.empty() ? d.media_type : m->media_type, d.digest};
  }
  return std::nullopt;
}

class ArchiveSource : public ImageSource {
 public:
  static Result<std::unique_ptr<ImageSource>> Open(const std::string& path, const std::optional<Reference>& ref,
                                                   std::optional<size_t> index) {
    KILN_ASSIGN_OR_RETURN(DockerArchiveReader archive, DockerArchiveReader::Open(path));
    const auto& images = archive.images();
    size_t pick = images.size();
    std::string name = "docker-archive:" + path;
    if (index) {
      if (*index >= images.size()) {
        return NotFound(name + ": no image @" + std::to_string(*index) + " (the archive holds " +
                        std::to_string(images.size()) + ")");
      }
      pick = *index;
    } else if (ref) {
      for (size_t i = 0; i < images.size() && pick == images.size(); ++i) {
        for (const std::string& t : images[i].repo_tags) {
          auto r = Reference::Parse(t);
          if (r.ok() && r->Name() == ref->Name() && r->TagOrDefault() == ref->TagOrDefault()) pick = i;
        }
      }
      if (pick == images.size()) return NotFound(name + ": no image tagged " + ref->FamiliarString());
    } else if (images.size() == 1) {
      pick = 0;
    } else {
      return InvalidArgument(name + ": the archive holds " + std::to_string(images.size()) +
                             " images; name one with docker-archive:PATH:REF or :@N");
    }
    auto src = std::unique_ptr<ArchiveSource>(new ArchiveSource(std::move(archive), path, ref, index));
    KILN_RETURN_IF_ERROR(src->Load(pick).WithContext("reading " + name));
    return std::unique_ptr<ImageSource>(std::move(src));
  }

  std::string Describe() const override {
    std::string s = "docker-archive:" + path_;
    if (index_) return s + ":@" + std::to_string(*index_);
    return ref_ ? s + ":" + ref_->FamiliarString() : s;
  }
  Result<RawManifest> RootManifest() override { return root_; }
  Result<RawManifest> GetManifest(const Descriptor& d) override {
    return NotFound(Describe() + ": a docker-archive holds no manifest " + d.digest.ToString());
  }
  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) override {
    auto it = entries_.find(d.digest);
    if (it == entries_.end()) return NotFound(Describe() + ": no blob " + d.digest.ToString());
    auto r = archive_.OpenEntry(it->second);
    if (!r.ok()) return r.status().WithContext("reading " + Describe());
    std::optional<uint64_t> size;
    if (d.size >= 0) size = static_cast<uint64_t>(d.size);
    return NewVerifyingReader(std::move(r).value(), d.digest, size, it->second + " in " + Describe());
  }

 private:
  ArchiveSource(DockerArchiveReader archive, std::string path, std::optional<Reference> ref,
                std::optional<size_t> index)
      : archive_(std::move(archive)), path_(std::move(path)), ref_(std::move(ref)), index_(index) {}

  Status Load(size_t i) {
    const auto& img = archive_.images()[i];
    if (auto embedded = EmbeddedManifest(archive_, img)) {
      root_ = std::move(*embedded);
    } else {
      KILN_ASSIGN_OR_RETURN(std::string bytes, archive_.BuildManifest(i, /*oci=*/false));
      root_ = RawManifest{bytes, std::string(media_type::kDockerManifest), Sha256Of(bytes)};
    }
    KILN_ASSIGN_OR_RETURN(Manifest m, ParseManifest(root_.bytes));
    if (m.layers.size() != img.layer_paths.size()) return InternalError("manifest and archive disagree on layers");
    entries_[m.config.digest] = img.config_path;
    for (size_t k = 0; k < m.layers.size(); ++k) entries_[m.layers[k].digest] = img.layer_paths[k];
    return OkStatus();
  }

  DockerArchiveReader archive_;
  std::string path_;
  std::optional<Reference> ref_;
  std::optional<size_t> index_;
  RawManifest root_;
  std::map<Digest, std::string> entries_;  // blob digest → tar entry
};

class ArchiveSink : public ImageSink {
 public:
  static Result<std::unique_ptr<ImageSink>> Open(const std::string& path, std::vector<std::string> repo_tags) {
    std::string tmpl = path + ".kiln-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return ErrnoStatus("creating a scratch directory beside " + path, errno);
    }
    auto sink = std::unique_ptr<ArchiveSink>(new ArchiveSink(path, std::move(repo_tags), tmpl));
    KILN_ASSIGN_OR_RETURN(OciLayout spool, OciLayout::OpenOrCreate(tmpl));
    sink->spool_ = std::make_unique<OciLayout>(std::move(spool));
    return std::unique_ptr<ImageSink>(std::move(sink));
  }
  ~ArchiveSink() override {
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
  }

  std::string Describe() const override {
    return "docker-archive:" + path_ + (repo_tags_.size() == 1 ? ":" + repo_tags_[0] : "");
  }
  bool AcceptsIndex() const override { return false; }
  Result<BlobPresence> HasBlob(const Descriptor& d, const ImageSource& from) override {
    // A blob the source keeps as a verified file is read from there when the tar is written, not
    // spooled: the archive costs one pass over the layers.
    if (std::optional<std::string> file = from.LocalBlobPath(d)) {
      std::lock_guard<std::mutex> lock(mu_);
      local_[d.digest] = *file;
      return BlobPresence::kMounted;
    }
    return BlobPresence::kAbsent;
  }
  Status PutBlob(const Descriptor& d, Reader& content) override {
    KILN_ASSIGN_OR_RETURN(auto w, spool_->NewBlob());
    KILN_RETURN_IF_ERROR(Copy(content, *w).status().WithContext("spooling blob " + d.digest.Short() + " for " + Describe()));
    return w->Commit(d.digest).status();
  }
  Status PutManifest(const RawManifest&) override {
    return Unsupported(Describe() + ": a docker-archive holds single images, not an index; choose one with --platform");
  }
  Status PutRoot(const RawManifest& m) override {
    KILN_ASSIGN_OR_RETURN(ManifestKind kind, DetectManifestKind(m.bytes, m.media_type));
    if (kind != ManifestKind::kImageManifest) return PutManifest(m);
    KILN_ASSIGN_OR_RETURN(Manifest man, ParseManifest(m.bytes));
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> config_reader, OpenBlob(man.config));
    KILN_ASSIGN_OR_RETURN(std::string config, ReadAll(*config_reader, 16 << 20));
    ArchiveImage img{m.bytes, config, repo_tags_};
    KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(path_, 0644));
    KILN_RETURN_IF_ERROR(WriteDockerArchive({img}, [&](const Descriptor& d) { return OpenBlob(d); }, *out)
                             .WithContext("writing " + Describe()));
    return out->Close().WithContext("writing " + Describe());
  }

 private:
  ArchiveSink(std::string path, std::vector<std::string> repo_tags, std::string scratch)
      : path_(std::move(path)), repo_tags_(std::move(repo_tags)), scratch_(std::move(scratch)) {}

  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) {
    auto it = local_.find(d.digest);
    if (it == local_.end()) return spool_->OpenBlob(d.digest, d.size);
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> file, OpenFileReader(it->second));
    std::optional<uint64_t> size;
    if (d.size >= 0) size = static_cast<uint64_t>(d.size);
    return NewVerifyingReader(std::move(file), d.digest, size, it->second);
  }

  std::string path_;
  std::vector<std::string> repo_tags_;
  std::string scratch_;
  std::unique_ptr<OciLayout> spool_;
  std::mutex mu_;
  std::map<Digest, std::string> local_;  // blobs read from the source's files
};

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenArchiveSource(const std::string& path, const std::optional<Reference>& ref,
                                                       std::optional<size_t> index) {
  return ArchiveSource::Open(path, ref, index);
}

Result<std::unique_ptr<ImageSink>> OpenArchiveSink(const std::string& path, std::vector<std::string> repo_tags) {
  return ArchiveSink::Open(path, std::move(repo_tags));
}

}  // namespace kiln::layers
