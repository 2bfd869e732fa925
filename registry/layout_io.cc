#include "registry/layout_io.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/media_types.h"
#include "layers/docker_archive.h"
#include "layers/oci_layout.h"

namespace kiln::registry {
namespace {

std::string MediaTypeOf(std::string_view bytes, const std::string& fallback) {
  try {
    auto j = nlohmann::json::parse(bytes);
    if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()) return j["mediaType"];
  } catch (const nlohmann::json::exception&) {
  }
  return fallback;
}

// A Reader that owns the reader it verifies.
class OwningVerifier : public Reader {
 public:
  OwningVerifier(std::unique_ptr<Reader> raw, const Descriptor& d, std::string what)
      : raw_(std::move(raw)),
        verify_(raw_.get(), d.digest, d.size >= 0 ? std::optional<uint64_t>(d.size) : std::nullopt, std::move(what)) {}
  Result<size_t> Read(void* buf, size_t n) override { return verify_.Read(buf, n); }

 private:
  std::unique_ptr<Reader> raw_;
  VerifyingReader verify_;
};

// --- OCI layout ---------------------------------------------------------------------------------

class LayoutSource : public ImageSource {
 public:
  LayoutSource(layers::OciLayout layout, std::string tag, RawManifest root)
      : layout_(std::move(layout)), tag_(std::move(tag)), root_(std::move(root)) {}

  std::string Describe() const override { return "oci:" + layout_.dir() + (tag_.empty() ? "" : ":" + tag_); }
  Result<RawManifest> RootManifest() override { return root_; }
  Result<RawManifest> GetManifest(const Descriptor& d) override {
    auto bytes = layout_.ReadBlob(d.digest);
    if (!bytes.ok()) return bytes.status().WithContext("reading manifest from " + Describe());
    if (d.size > 0 && static_cast<int64_t>(bytes->size()) != d.size) {
      return DigestMismatch(Describe() + ": manifest " + d.digest.ToString() + " is " +
                            std::to_string(bytes->size()) + " bytes, its descriptor says " + std::to_string(d.size));
    }
    return RawManifest{*bytes, d.media_type.empty() ? MediaTypeOf(*bytes, "") : d.media_type, d.digest};
  }
  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) override {
    auto r = layout_.OpenBlob(d.digest, d.size > 0 ? d.size : -1);
    if (!r.ok()) return r.status().WithContext("reading blob from " + Describe());
    return r;
  }

 private:
  layers::OciLayout layout_;
  std::string tag_;
  RawManifest root_;
};

class LayoutSink : public ImageSink {
 public:
  LayoutSink(layers::OciLayout layout, std::string tag) : layout_(std::move(layout)), tag_(std::move(tag)) {}

  std::string Describe() const override { return "oci:" + layout_.dir() + (tag_.empty() ? "" : ":" + tag_); }
  Result<BlobPresence> HasBlob(const Descriptor& d, const ImageSource&) override {
    return layout_.HasBlob(d.digest) ? BlobPresence::kPresent : BlobPresence::kAbsent;
  }
  Status PutBlob(const Descriptor& d, Reader& content) override {
    KILN_ASSIGN_OR_RETURN(auto w, layout_.NewBlob());
    KILN_RETURN_IF_ERROR(Copy(content, *w).status().WithContext("writing blob " + d.digest.Short() + " to " + Describe()));
    return w->Commit(d.digest).status().WithContext("writing blob to " + Describe());
  }
  Status PutManifest(const RawManifest& m) override { return Store(m).status(); }
  Status PutRoot(const RawManifest& m) override {
    KILN_ASSIGN_OR_RETURN(Descriptor d, Store(m));
    return layout_.AddToIndex(d, tag_).WithContext("updating " + layout_.dir() + "/index.json");
  }

 private:
  Result<Descriptor> Store(const RawManifest& m) {
    KILN_ASSIGN_OR_RETURN(Digest got, layout_.PutBlob(m.bytes));
    if (got != m.digest) return InternalError("manifest bytes hash to " + got.ToString() + ", not " + m.digest.ToString());
    return m.ToDescriptor();
  }

  layers::OciLayout layout_;
  std::string tag_;
};

// --- docker-archive -----------------------------------------------------------------------------

// The OCI manifest an archive written by kiln or Docker 25+ carries for image `img`, if any: an
// index.json entry whose manifest names exactly the config and layer entries manifest.json lists.
std::optional<RawManifest> EmbeddedManifest(const layers::DockerArchiveReader& archive,
                                            const layers::DockerArchiveReader::Image& img) {
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
    KILN_ASSIGN_OR_RETURN(layers::DockerArchiveReader archive, layers::DockerArchiveReader::Open(path));
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
    return std::unique_ptr<Reader>(std::make_unique<OwningVerifier>(std::move(r).value(), d, it->second + " in " + Describe()));
  }

 private:
  ArchiveSource(layers::DockerArchiveReader archive, std::string path, std::optional<Reference> ref,
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

  layers::DockerArchiveReader archive_;
  std::string path_;
  std::optional<Reference> ref_;
  std::optional<size_t> index_;
  RawManifest root_;
  std::map<Digest, std::string> entries_;  // blob digest → tar entry
};

class ArchiveSink : public ImageSink {
 public:
  static Result<std::unique_ptr<ImageSink>> Open(const std::string& path, const std::optional<Reference>& ref) {
    std::string tmpl = path + ".kiln-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return ErrnoStatus("creating a scratch directory beside " + path, errno);
    }
    auto sink = std::unique_ptr<ArchiveSink>(new ArchiveSink(path, ref, tmpl));
    KILN_ASSIGN_OR_RETURN(layers::OciLayout spool, layers::OciLayout::OpenOrCreate(tmpl));
    sink->spool_ = std::make_unique<layers::OciLayout>(std::move(spool));
    return std::unique_ptr<ImageSink>(std::move(sink));
  }
  ~ArchiveSink() override {
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
  }

  std::string Describe() const override {
    return "docker-archive:" + path_ + (ref_ ? ":" + ref_->FamiliarString() : "");
  }
  bool AcceptsIndex() const override { return false; }
  Result<BlobPresence> HasBlob(const Descriptor&, const ImageSource&) override { return BlobPresence::kAbsent; }
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
    KILN_ASSIGN_OR_RETURN(std::string config, spool_->ReadBlob(man.config.digest));
    layers::ArchiveImage img{m.bytes, config, {}};
    if (ref_) img.repo_tags.push_back(ref_->FamiliarString());
    KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(path_));
    KILN_RETURN_IF_ERROR(layers::WriteDockerArchive(
                             {img}, [&](const Descriptor& d) { return spool_->OpenBlob(d.digest, d.size); }, *out)
                             .WithContext("writing " + Describe()));
    return out->Close().WithContext("writing " + Describe());
  }

 private:
  ArchiveSink(std::string path, std::optional<Reference> ref, std::string scratch)
      : path_(std::move(path)), ref_(std::move(ref)), scratch_(std::move(scratch)) {}

  std::string path_;
  std::optional<Reference> ref_;
  std::string scratch_;
  std::unique_ptr<layers::OciLayout> spool_;
};

}  // namespace

// --- names --------------------------------------------------------------------------------------

std::string ImageLocation::ToString() const {
  switch (kind) {
    case Kind::kRegistry:
      return "docker://" + (reference ? reference->ToString() : std::string());
    case Kind::kOciLayout:
      return "oci:" + path + (tag.empty() ? "" : ":" + tag);
    case Kind::kDockerArchive:
      if (archive_index) return "docker-archive:" + path + ":@" + std::to_string(*archive_index);
      return "docker-archive:" + path + (reference ? ":" + reference->FamiliarString() : "");
  }
  return "";
}

Result<ImageLocation> ParseImageLocation(std::string_view text) {
  ImageLocation loc;
  auto rest_after = [&](std::string_view prefix) { return text.substr(prefix.size()); };
  if (text.rfind("docker://", 0) == 0) {
    KILN_ASSIGN_OR_RETURN(Reference r, Reference::Parse(rest_after("docker://")));
    loc.reference = std::move(r);
    return loc;
  }
  // As containers/image: the path ends at the first ':'.
  auto split = [](std::string_view s) {
    size_t colon = s.find(':');
    if (colon == std::string_view::npos) return std::make_pair(std::string(s), std::string());
    return std::make_pair(std::string(s.substr(0, colon)), std::string(s.substr(colon + 1)));
  };
  if (text.rfind("oci:", 0) == 0) {
    loc.kind = ImageLocation::Kind::kOciLayout;
    std::tie(loc.path, loc.tag) = split(rest_after("oci:"));
    if (loc.path.empty()) return InvalidArgument("invalid image name \"" + std::string(text) + "\": oci:DIR[:TAG] needs a directory");
    if (text.back() == ':') return InvalidArgument("invalid image name \"" + std::string(text) + "\": empty tag after ':'");
    return loc;
  }
  if (text.rfind("docker-archive:", 0) == 0) {
    loc.kind = ImageLocation::Kind::kDockerArchive;
    std::string ref;
    std::tie(loc.path, ref) = split(rest_after("docker-archive:"));
    if (loc.path.empty()) {
      return InvalidArgument("invalid image name \"" + std::string(text) + "\": docker-archive:PATH[:REF] needs a path");
    }
    if (!ref.empty() && ref[0] == '@') {
      char* end = nullptr;
      unsigned long n = std::strtoul(ref.c_str() + 1, &end, 10);
      if (ref.size() < 2 || *end != '\0') {
        return InvalidArgument("invalid image name \"" + std::string(text) + "\": @N must be a number");
      }
      loc.archive_index = n;
    } else if (!ref.empty()) {
      KILN_ASSIGN_OR_RETURN(Reference r, Reference::Parse(ref));
      if (r.digest()) return InvalidArgument("invalid image name \"" + std::string(text) + "\": a docker-archive reference cannot name a digest");
      loc.reference = r.tag().empty() ? r.WithTag("latest") : r;
    }
    return loc;
  }
  if (size_t colon = text.find(':'); colon != std::string_view::npos) {
    std::string_view transport = text.substr(0, colon);
    if (transport == "dir" || transport == "containers-storage" || transport == "docker-daemon" ||
        transport == "oci-archive" || transport == "sif" || transport == "ostree") {
      return InvalidArgument("unsupported transport \"" + std::string(transport) +
                             ":\" (kiln knows docker://, oci: and docker-archive:)");
    }
  }
  KILN_ASSIGN_OR_RETURN(Reference r, Reference::Parse(text));
  loc.reference = std::move(r);
  return loc;
}

// --- opening ------------------------------------------------------------------------------------

Result<std::unique_ptr<ImageSource>> OpenLayoutSource(const std::string& dir, const std::string& tag) {
  std::string what = "opening oci:" + dir + (tag.empty() ? "" : ":" + tag);
  auto layout = layers::OciLayout::Open(dir);
  if (!layout.ok()) return layout.status().WithContext(what);
  auto d = layout->Resolve(tag);
  if (!d.ok()) return d.status().WithContext(what);
  auto bytes = layout->ReadBlob(d->digest);
  if (!bytes.ok()) return bytes.status().WithContext(what);
  RawManifest root{*bytes, d->media_type.empty() ? MediaTypeOf(*bytes, "") : d->media_type, d->digest};
  return std::unique_ptr<ImageSource>(std::make_unique<LayoutSource>(std::move(layout).value(), tag, std::move(root)));
}

Result<std::unique_ptr<ImageSink>> OpenLayoutSink(const std::string& dir, const std::string& tag) {
  auto layout = layers::OciLayout::OpenOrCreate(dir);
  if (!layout.ok()) return layout.status().WithContext("opening oci:" + dir);
  return std::unique_ptr<ImageSink>(std::make_unique<LayoutSink>(std::move(layout).value(), tag));
}

Result<std::unique_ptr<ImageSource>> OpenArchiveSource(const std::string& path, const std::optional<Reference>& ref,
                                                       std::optional<size_t> index) {
  return ArchiveSource::Open(path, ref, index);
}

Result<std::unique_ptr<ImageSink>> OpenArchiveSink(const std::string& path, const std::optional<Reference>& ref) {
  return ArchiveSink::Open(path, ref);
}

Result<std::unique_ptr<ImageSource>> OpenSource(Client& client, const ImageLocation& loc) {
  switch (loc.kind) {
    case ImageLocation::Kind::kRegistry:
      return OpenRegistrySource(client, *loc.reference);
    case ImageLocation::Kind::kOciLayout:
      return OpenLayoutSource(loc.path, loc.tag);
    case ImageLocation::Kind::kDockerArchive:
      return OpenArchiveSource(loc.path, loc.reference, loc.archive_index);
  }
  return InternalError("unknown image location");
}

Result<std::unique_ptr<ImageSink>> OpenSink(Client& client, const ImageLocation& loc) {
  switch (loc.kind) {
    case ImageLocation::Kind::kRegistry:
      return OpenRegistrySink(client, *loc.reference);
    case ImageLocation::Kind::kOciLayout:
      return OpenLayoutSink(loc.path, loc.tag);
    case ImageLocation::Kind::kDockerArchive:
      if (loc.archive_index) return InvalidArgument("docker-archive:PATH:@N names an image to read, not to write");
      return OpenArchiveSink(loc.path, loc.reference);
  }
  return InternalError("unknown image location");
}

}  // namespace kiln::registry
