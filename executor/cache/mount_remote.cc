#include "executor/cache/mount_remote.h"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include "core/io.h"
#include "core/media_types.h"
#include "core/reference.h"
#include "layers/extract.h"
#include "layers/layer_writer.h"

namespace kiln::executor {
namespace {

// File bytes below `dir`, stopping early once past `limit`.
uint64_t TreeBytes(const std::string& dir, uint64_t limit) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           dir, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += static_cast<uint64_t>(st.st_size);
    if (total > limit) break;
  }
  return total;
}

void EmptyDirectory(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) std::filesystem::remove_all(e.path(), ec);
}

}  // namespace

CacheMountRemote::CacheMountRemote(registry::Client& client, std::string repository_reference, uint64_t max_bytes,
                                   BuildLog* log)
    : client_(client),
      repository_reference_(std::move(repository_reference)),
      max_bytes_(max_bytes),
      log_(log) {}

Result<registry::Repository*> CacheMountRemote::Repo() {
  if (repo_) return repo_.get();
  KILN_ASSIGN_OR_RETURN(Reference ref, Reference::Parse(repository_reference_));
  KILN_ASSIGN_OR_RETURN(repo_, client_.Open(client_.PushEndpoint(ref.registry()), ref.repository(), true));
  return repo_.get();
}

bool CacheMountRemote::Import(const std::string& key, const std::string& id, const std::string& dir) {
  const auto start = std::chrono::steady_clock::now();
  auto fail = [&](const Status& s) {
    log_->Warn("cache mount " + id + ": not imported from " + repository_reference_ + ": " + s.message());
    EmptyDirectory(dir);
    return false;
  };
  Result<registry::Repository*> repo = Repo();
  if (!repo.ok()) return fail(repo.status());
  Result<RawManifest> raw = (*repo)->GetManifest(TagOf(key));
  if (!raw.ok()) {
    if (raw.status().code() == ErrorCode::kNotFound) return false;
    return fail(raw.status());
  }
  Result<Manifest> m = ParseManifest(raw->bytes);
  if (!m.ok()) return fail(m.status());
  if (m->layers.size() != 1 || m->annotations[kCacheMountIdLabel] != id) {
    return fail(FailedPrecondition(TagOf(key) + " is not a kiln cache mount of id " + id));
  }
  const Descriptor& layer = m->layers[0];
  Result<std::unique_ptr<Reader>> blob = (*repo)->GetBlob(layer.digest, layer.size);
  if (!blob.ok()) return fail(blob.status());
  layers::LayerExpectation expect;
  expect.digest = layer.digest;
  expect.size = static_cast<uint64_t>(layer.size);
  expect.verified_by_source = true;
  layers::ExtractOptions eo;
  eo.create_device_nodes = false;
  eo.warn = [this](std::string_view w) { log_->Debug(std::string(w)); };
  Result<layers::ExtractResult> r = layers::ExtractLayer(**blob, expect, dir, eo);
  if (!r.ok()) return fail(r.status());
  log_->Info("cache mount " + id + ": imported " + FormatBytes(r->uncompressed_bytes) + " (" +
             FormatBytes(r->compressed_bytes) + " compressed) from " + repository_reference_ + ":" + TagOf(key) +
             " in " + FormatDuration(std::chrono::steady_clock::now() - start));
  return true;
}

Status CacheMountRemote::Export(const std::string& key, const std::string& id, const Platform& platform,
                                const std::string& dir, const std::string& scratch_dir) {
  const auto start = std::chrono::steady_clock::now();
  const std::string where = repository_reference_ + ":" + TagOf(key);
  if (max_bytes_ == 0) return OkStatus();
  uint64_t bytes = TreeBytes(dir, max_bytes_);
  if (bytes > max_bytes_) {
    log_->Info("cache mount " + id + ": over " + FormatBytes(max_bytes_) +
               " (--cache-mount-max-size), not exported to " + where);
    return OkStatus();
  }
  KILN_ASSIGN_OR_RETURN(layers::LayerChanges changes, layers::ChangesForTree(dir));
  layers::LayerOptions lo;
  lo.compression.algorithm = media_type::Compression::kZstd;
  KILN_ASSIGN_OR_RETURN(layers::LayerInfo info, layers::WriteLayerToBlobDir(dir, changes, lo, scratch_dir));
  const std::string blob_path = scratch_dir + "/sha256/" + info.digest.hex();
  struct Remove {
    std::string path;
    ~Remove() { ::unlink(path.c_str()); }
  } remove_blob{blob_path};

  KILN_ASSIGN_OR_RETURN(registry::Repository * repo, Repo());
  Result<RawManifest> current = repo->GetManifest(TagOf(key));
  if (current.ok()) {
    Result<Manifest> m = ParseManifest(current->bytes);
    if (m.ok() && m->layers.size() == 1 && m->layers[0].digest == info.digest) {
      log_->Info("cache mount " + id + ": unchanged since " + where + ", not exported again");
      return OkStatus();
    }
  } else if (current.status().code() != ErrorCode::kNotFound) {
    return current.status();
  }
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> have, repo->HeadBlob(info.digest));
  if (!have) {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Reader> in, OpenFileReader(blob_path));
    KILN_RETURN_IF_ERROR(repo->UploadBlob(*in, info.digest, static_cast<int64_t>(info.size)).status());
  }
  ImageConfig config;
  config.os = platform.os;
  config.architecture = platform.architecture;
  config.variant = platform.variant;
  config.diff_ids = {info.diff_id};
  config.config.labels[kCacheMountIdLabel] = id;
  std::string config_bytes = SerializeImageConfig(config);
  Digest config_digest = Sha256Of(config_bytes);
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> have_config, repo->HeadBlob(config_digest));
  if (!have_config) {
    StringReader in(config_bytes);
    KILN_RETURN_IF_ERROR(repo->UploadBlob(in, config_digest, static_cast<int64_t>(config_bytes.size())).status());
  }
  Manifest m;
  m.media_type = std::string(media_type::kOciManifest);
  m.config.media_type = std::string(media_type::kOciConfig);
  m.config.digest = config_digest;
  m.config.size = static_cast<int64_t>(config_bytes.size());
  Descriptor layer;
  layer.media_type = info.media_type;
  layer.digest = info.digest;
  layer.size = static_cast<int64_t>(info.size);
  m.layers = {layer};
  m.annotations[kCacheMountIdLabel] = id;
  std::string manifest = SerializeManifest(m);
  KILN_RETURN_IF_ERROR(repo->PutManifest(TagOf(key), manifest, media_type::kOciManifest).status());
  log_->Info("cache mount " + id + ": exported " + FormatBytes(info.tar_size) + " (" + FormatBytes(info.size) +
             " compressed) to " + where + " in " + FormatDuration(std::chrono::steady_clock::now() - start));
  return OkStatus();
}

}  // namespace kiln::executor
