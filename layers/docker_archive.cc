#include "layers/docker_archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <map>
#include <nlohmann/json.hpp>

#include "core/media_types.h"
#include "layers/decompress.h"

namespace kiln::layers {
namespace {

using ojson = nlohmann::ordered_json;

// libarchive write callbacks into a kiln Writer.
struct WriteCtx {
  Writer* out;
  Status status;
};

la_ssize_t WriteCallback(struct archive*, void* client, const void* buf, size_t n) {
  auto* ctx = static_cast<WriteCtx*>(client);
  Status s = ctx->out->Write(buf, n);
  if (!s.ok()) {
    ctx->status = s;
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

struct ArchiveWriter {
  struct archive* a = archive_write_new();
  WriteCtx ctx;
  ~ArchiveWriter() { archive_write_free(a); }

  Status Error(const std::string& what) {
    if (!ctx.status.ok()) return ctx.status.WithContext(what);
    return IoError(what + ": " + (archive_error_string(a) ? archive_error_string(a) : "tar error"));
  }

  Status Header(const std::string& name, int64_t size, mode_t type) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, type == AE_IFDIR ? 0 : size);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_mtime(e, 0, 0);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK) return Error("writing tar header for " + name);
    return OkStatus();
  }

  Status Data(const std::string& name, const void* data, size_t n) {
    if (archive_write_data(a, data, n) != static_cast<la_ssize_t>(n)) return Error("writing " + name);
    return OkStatus();
  }

  Status SmallFile(const std::string& name, std::string_view bytes) {
    KILN_RETURN_IF_ERROR(Header(name, static_cast<int64_t>(bytes.size()), AE_IFREG));
    return Data(name, bytes.data(), bytes.size());
  }
};

std::string BlobName(const Digest& d) { return "blobs/" + d.algorithm() + "/" + d.hex(); }

// Reads a plain tar file's entries through libarchive (seekable, so skipping data is cheap).
class ArchiveFile {
 public:
  ~ArchiveFile() {
    if (a_) archive_read_free(a_);
  }
  Status Open(const std::string& path) {
    a_ = archive_read_new();
    archive_read_support_format_tar(a_);
    archive_read_support_format_gnutar(a_);
    if (archive_read_open_filename(a_, path.c_str(), 1 << 16) != ARCHIVE_OK) {
      return IoError("opening " + path + ": " + archive_error_string(a_));
    }
    path_ = path;
    return OkStatus();
  }
  // Advances to the entry `name`; NotFound at the end of the archive.
  Status Seek(const std::string& name, int64_t* size) {
    struct archive_entry* e;
    for (;;) {
      int r = archive_read_next_header(a_, &e);
      if (r == ARCHIVE_EOF) return NotFound(path_ + ": no entry \"" + name + "\"");
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return IoError(path_ + ": " + archive_error_string(a_));
      std::string n = archive_entry_pathname(e);
      if (n.rfind("./", 0) == 0) n = n.substr(2);
      if (n == name) {
        if (size) *size = archive_entry_size(e);
        return OkStatus();
      }
    }
  }
  Result<size_t> Read(void* buf, size_t n) {
    la_ssize_t r = archive_read_data(a_, buf, n);
    if (r < 0) return IoError(path_ + ": " + archive_error_string(a_));
    return static_cast<size_t>(r);
  }

 private:
  struct archive* a_ = nullptr;
  std::string path_;
};

class EntryReader : public Reader {
 public:
  explicit EntryReader(std::unique_ptr<ArchiveFile> f) : f_(std::move(f)) {}
  Result<size_t> Read(void* buf, size_t n) override { return f_->Read(buf, n); }

 private:
  std::unique_ptr<ArchiveFile> f_;
};

}  // namespace

Status WriteDockerArchive(const std::vector<ArchiveImage>& images, const BlobOpener& open_blob, Writer& out) {
  ArchiveWriter w;
  w.ctx.out = &out;
  archive_write_set_format_pax_restricted(w.a);
  archive_write_set_bytes_per_block(w.a, 10240);
  if (archive_write_open(w.a, &w.ctx, nullptr, WriteCallback, nullptr) != ARCHIVE_OK) {
    return w.Error("starting docker-archive");
  }

  ojson manifest_json = ojson::array();
  ojson repositories = ojson::object();
  Index index;
  index.media_type = std::string(media_type::kOciIndex);
  std::map<Digest, bool> written;

  KILN_RETURN_IF_ERROR(w.Header("blobs/", 0, AE_IFDIR));
  KILN_RETURN_IF_ERROR(w.Header("blobs/sha256/", 0, AE_IFDIR));
  for (const ArchiveImage& img : images) {
    auto m = ParseManifest(img.manifest_bytes);
    if (!m.ok()) return m.status().WithContext("writing docker-archive");
    Digest manifest_digest = Sha256Of(img.manifest_bytes);
    Digest config_digest = Sha256Of(img.config_bytes);
    if (config_digest != m->config.digest) {
      return DigestMismatch("writing docker-archive: config hashes to " + config_digest.ToString() +
                            " but the manifest names " + m->config.digest.ToString());
    }
    if (!written[config_digest]) {
      KILN_RETURN_IF_ERROR(w.SmallFile(BlobName(config_digest), img.config_bytes));
      written[config_digest] = true;
    }
    ojson layers = ojson::array();
    for (const Descriptor& l : m->layers) {
      layers.push_back(BlobName(l.digest));
      if (written[l.digest]) continue;
      written[l.digest] = true;
      KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> src, open_blob(l));
      VerifyingReader verified(src.get(), l.digest, static_cast<uint64_t>(l.size), "layer " + l.digest.Short());
      std::string name = BlobName(l.digest);
      KILN_RETURN_IF_ERROR(w.Header(name, l.size, AE_IFREG));
      std::vector<char> buf(1 << 20);
      for (;;) {
        auto n = verified.Read(buf.data(), buf.size());
        if (!n.ok()) return n.status().WithContext("writing docker-archive");
        if (*n == 0) break;
        KILN_RETURN_IF_ERROR(w.Data(name, buf.data(), *n));
      }
    }
    if (!written[manifest_digest]) {
      KILN_RETURN_IF_ERROR(w.SmallFile(BlobName(manifest_digest), img.manifest_bytes));
      written[manifest_digest] = true;
    }
    ojson entry;
    entry["Config"] = BlobName(config_digest);
    entry["RepoTags"] = img.repo_tags;
    entry["Layers"] = layers;
    manifest_json.push_back(entry);

    Descriptor d;
    d.media_type = m->media_type.empty() ? std::string(media_type::kOciManifest) : m->media_type;
    d.digest = manifest_digest;
    d.size = static_cast<int64_t>(img.manifest_bytes.size());
    for (const std::string& tag : img.repo_tags) {
      Descriptor named = d;
      named.annotations["io.containerd.image.name"] = tag;
      size_t colon = tag.rfind(':');
      if (colon != std::string::npos && tag.find('/', colon) == std::string::npos) {
        named.annotations["org.opencontainers.image.ref.name"] = tag.substr(colon + 1);
        repositories[tag.substr(0, colon)][tag.substr(colon + 1)] = manifest_digest.hex();
      }
      index.manifests.push_back(std::move(named));
    }
    if (img.repo_tags.empty()) index.manifests.push_back(d);
  }
  KILN_RETURN_IF_ERROR(w.SmallFile("index.json", SerializeIndex(index)));
  KILN_RETURN_IF_ERROR(w.SmallFile("manifest.json", manifest_json.dump()));
  KILN_RETURN_IF_ERROR(w.SmallFile("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  if (!repositories.empty()) KILN_RETURN_IF_ERROR(w.SmallFile("repositories", repositories.dump()));
  if (archive_write_close(w.a) != ARCHIVE_OK) return w.Error("finishing docker-archive");
  return OkStatus();
}

Result<DockerArchiveReader> DockerArchiveReader::Open(const std::string& path) {
  DockerArchiveReader reader(path);
  auto text = reader.ReadEntry("manifest.json");
  if (!text.ok()) {
    if (text.status().code() == ErrorCode::kNotFound) {
      return InvalidArgument(path + " is not a docker-archive (no manifest.json)");
    }
    return text.status();
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  auto bad = [&](const std::string& why) { return InvalidArgument(path + ": invalid manifest.json: " + why); };
  if (j.is_discarded() || !j.is_array()) return bad("expected a JSON array");
  for (const auto& e : j) {
    if (!e.is_object() || !e.contains("Config") || !e["Config"].is_string() || !e.contains("Layers") ||
        !e["Layers"].is_array()) {
      return bad("each entry needs Config and Layers");
    }
    Image img;
    img.config_path = e["Config"].get<std::string>();
    for (const auto& l : e["Layers"]) {
      if (!l.is_string()) return bad("Layers must be strings");
      img.layer_paths.push_back(l.get<std::string>());
    }
    if (e.contains("RepoTags") && e["RepoTags"].is_array()) {
      for (const auto& t : e["RepoTags"]) {
        if (t.is_string()) img.repo_tags.push_back(t.get<std::string>());
      }
    }
    reader.images_.push_back(std::move(img));
  }
  if (reader.images_.empty()) return bad("no images");
  return reader;
}

Result<std::unique_ptr<Reader>> DockerArchiveReader::OpenEntry(const std::string& name) const {
  auto f = std::make_unique<ArchiveFile>();
  KILN_RETURN_IF_ERROR(f->Open(path_));
  KILN_RETURN_IF_ERROR(f->Seek(name, nullptr));
  return std::unique_ptr<Reader>(std::make_unique<EntryReader>(std::move(f)));
}

Result<int64_t> DockerArchiveReader::EntrySize(const std::string& name) const {
  ArchiveFile f;
  KILN_RETURN_IF_ERROR(f.Open(path_));
  int64_t size = 0;
  KILN_RETURN_IF_ERROR(f.Seek(name, &size));
  return size;
}

Result<std::string> DockerArchiveReader::ReadEntry(const std::string& name) const {
  KILN_ASSIGN_OR_RETURN(auto r, OpenEntry(name));
  return ReadAll(*r, 16 << 20);
}

Result<std::string> DockerArchiveReader::BuildManifest(size_t i, bool oci) const {
  if (i >= images_.size()) return InvalidArgument(path_ + ": no image #" + std::to_string(i));
  const Image& img = images_[i];
  KILN_ASSIGN_OR_RETURN(std::string config_bytes, ReadEntry(img.config_path));
  auto config = ParseImageConfig(config_bytes);
  if (!config.ok()) return config.status().WithContext(path_ + ": " + img.config_path);
  if (config->diff_ids.size() != img.layer_paths.size()) {
    return InvalidArgument(path_ + ": manifest.json lists " + std::to_string(img.layer_paths.size()) +
                           " layers but the config has " + std::to_string(config->diff_ids.size()) + " diff_ids");
  }
  Manifest m;
  m.media_type = std::string(oci ? media_type::kOciManifest : media_type::kDockerManifest);
  m.config.media_type = std::string(oci ? media_type::kOciConfig : media_type::kDockerConfig);
  m.config.digest = Sha256Of(config_bytes);
  m.config.size = static_cast<int64_t>(config_bytes.size());
  for (size_t k = 0; k < img.layer_paths.size(); ++k) {
    KILN_ASSIGN_OR_RETURN(auto r, OpenEntry(img.layer_paths[k]));
    HashingReader hr(r.get());
    char head[8] = {};
    KILN_ASSIGN_OR_RETURN(size_t got, hr.Read(head, sizeof head));
    auto comp = DetectCompression(std::string_view(head, got));
    Descriptor d;
    d.media_type = std::string(media_type::LayerMediaType(comp, !oci));
    if (comp == media_type::Compression::kNone) {
      // An uncompressed layer's digest is its diff_id; whoever streams it later verifies it.
      KILN_ASSIGN_OR_RETURN(d.size, EntrySize(img.layer_paths[k]));
      d.digest = config->diff_ids[k];
    } else {
      NullWriter sink;
      KILN_RETURN_IF_ERROR(Copy(hr, sink).status());
      d.digest = hr.Finish();
      d.size = static_cast<int64_t>(hr.size());
    }
    m.layers.push_back(std::move(d));
  }
  return SerializeManifest(m);
}

}  // namespace kiln::layers
