#include "executor/cache/cache_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "layers/oci_layout.h"
#include "registry/clock.h"

namespace kiln::executor {
namespace {

// Reads a small file; nullopt when it does not exist.
Result<std::optional<std::string>> ReadIfExists(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return ErrnoStatus("reading " + path, errno);
  }
  FdReader r(fd, /*owned=*/true, path);
  KILN_ASSIGN_OR_RETURN(std::string data, ReadAll(r, 1 << 20));
  return std::optional<std::string>(std::move(data));
}

Status WriteAtomically(const std::string& path, std::string_view data) {
  // A unique temporary name per writer and rename(2): readers see the old file or the new one.
  KILN_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::Create(path, 0644, /*durable=*/false));
  KILN_RETURN_IF_ERROR(w->Write(data));
  return w->Close();
}

std::string EntryToJson(const Digest& key, const CacheEntry& e) {
  nlohmann::json j;
  j["schemaVersion"] = 1;
  j["key"] = key.ToString();
  j["emptyLayer"] = e.empty_layer;
  if (!e.empty_layer) {
    j["layer"] = {{"mediaType", e.layer.media_type}, {"digest", e.layer.digest.ToString()}, {"size", e.layer.size}};
    j["diffID"] = e.diff_id.ToString();
  }
  j["createdBy"] = e.created_by;
  j["created"] = e.created_unix;
  return j.dump();
}

Result<CacheEntry> EntryFromJson(const Digest& key, std::string_view text) {
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (j.at("schemaVersion").get<int>() != 1) return Unsupported("cache entry of an unknown version");
    if (j.at("key").get<std::string>() != key.ToString()) return InvalidArgument("cache entry of another key");
    CacheEntry e;
    e.empty_layer = j.at("emptyLayer").get<bool>();
    if (!e.empty_layer) {
      const auto& l = j.at("layer");
      e.layer.media_type = l.at("mediaType").get<std::string>();
      KILN_ASSIGN_OR_RETURN(e.layer.digest, Digest::Parse(l.at("digest").get<std::string>()));
      e.layer.size = l.at("size").get<int64_t>();
      KILN_ASSIGN_OR_RETURN(e.diff_id, Digest::Parse(j.at("diffID").get<std::string>()));
    }
    e.created_by = j.at("createdBy").get<std::string>();
    e.created_unix = j.at("created").get<int64_t>();
    return e;
  } catch (const nlohmann::json::exception& ex) {
    return InvalidArgument(std::string("malformed cache entry: ") + ex.what());
  }
}

class DirCache : public LayerCache {
 public:
  DirCache(std::string dir, layers::OciLayout layout, std::chrono::seconds ttl, registry::Clock* clock)
      : dir_(std::move(dir)), layout_(std::move(layout)), ttl_(ttl), clock_(clock) {}

  std::string Describe() const override { return "cache dir " + dir_; }

  Result<std::optional<CacheEntry>> Lookup(const Digest& key) override {
    KILN_ASSIGN_OR_RETURN(auto text, ReadIfExists(EntryPath(key)));
    if (!text) return std::optional<CacheEntry>();
    Result<CacheEntry> e = EntryFromJson(key, *text);
    // An entry that cannot be understood (another version, damaged by hand) is a miss; the next
    // Store replaces it.
    if (!e.ok()) return std::optional<CacheEntry>();
    if (ttl_.count() > 0 && clock_->UnixSeconds() - e->created_unix > ttl_.count()) return std::optional<CacheEntry>();
    if (!e->empty_layer && !layout_.HasBlob(e->layer.digest)) return std::optional<CacheEntry>();
    return std::optional<CacheEntry>(std::move(e).value());
  }

  Status Store(const Digest& key, const CacheEntry& entry, Reader* blob) override {
    std::string what = "storing cache entry " + key.Short() + " in " + dir_;
    if (!entry.empty_layer) {
      if (!entry.layer.digest.valid() || !entry.diff_id.valid()) {
        return InvalidArgument(what + ": the entry names no layer digest or diff_id");
      }
      if (!layout_.HasBlob(entry.layer.digest)) {
        if (!blob) return FailedPrecondition(what + ": the layer blob is not in the cache and none was given");
        Result<std::unique_ptr<layers::BlobWriter>> w = layout_.NewBlob();
        if (!w.ok()) return w.status().WithContext(what);
        Result<uint64_t> n = Copy(*blob, **w);
        if (!n.ok()) return n.status().WithContext(what);
        if (entry.layer.size >= 0 && *n != static_cast<uint64_t>(entry.layer.size)) {
          return DigestMismatch(what + ": the layer blob is " + std::to_string(*n) + " bytes, the entry says " +
                                std::to_string(entry.layer.size));
        }
        Result<Digest> d = (*w)->Commit(entry.layer.digest);
        if (!d.ok()) return d.status().WithContext(what);
      }
    }
    CacheEntry stamped = entry;
    stamped.created_unix = clock_->UnixSeconds();
    Status s = WriteAtomically(EntryPath(key), EntryToJson(key, stamped));
    return s.WithContext(what);
  }

  Result<std::unique_ptr<Reader>> OpenLayer(const CacheEntry& entry) override {
    if (entry.empty_layer) return FailedPrecondition("the cache entry has no layer");
    Result<std::unique_ptr<Reader>> r = layout_.OpenBlob(entry.layer.digest, entry.layer.size);
    if (!r.ok()) return r.status().WithContext("opening cached layer " + entry.layer.digest.Short() + " in " + dir_);
    return r;
  }

  Status RememberInputs(const Digest& slot, const StepKeyInputs& inputs) override {
    return WriteAtomically(dir_ + "/kiln-cache/inputs/" + slot.hex() + ".json", StepKeyInputsToJson(inputs));
  }

  Result<std::optional<StepKeyInputs>> RecallInputs(const Digest& slot) override {
    KILN_ASSIGN_OR_RETURN(auto text, ReadIfExists(dir_ + "/kiln-cache/inputs/" + slot.hex() + ".json"));
    if (!text) return std::optional<StepKeyInputs>();
    Result<StepKeyInputs> in = StepKeyInputsFromJson(*text);
    if (!in.ok()) return std::optional<StepKeyInputs>();
    return std::optional<StepKeyInputs>(std::move(in).value());
  }

 private:
  std::string EntryPath(const Digest& key) const { return dir_ + "/kiln-cache/layers/" + key.hex() + ".json"; }

  std::string dir_;
  layers::OciLayout layout_;
  std::chrono::seconds ttl_;
  registry::Clock* clock_;
};

}  // namespace

Status PrepareCacheDir(const std::string& dir) {
  KILN_RETURN_IF_ERROR(MakeDirs(dir));
  // Two builds creating the same cache at once can see `oci-layout` before `index.json` exists:
  // the loser of that race just looks again.
  Result<layers::OciLayout> layout = layers::OciLayout::OpenOrCreate(dir);
  for (int attempt = 0; !layout.ok() && attempt < 20; ++attempt) {
    ::usleep(20'000);
    layout = layers::OciLayout::OpenOrCreate(dir);
  }
  if (!layout.ok()) return layout.status().WithContext("cache dir " + dir);
  for (const char* sub : {"/kiln-cache/layers", "/kiln-cache/images", "/kiln-cache/inputs"}) {
    KILN_RETURN_IF_ERROR(MakeDirs(dir + sub));
  }
  return OkStatus();
}

Result<std::unique_ptr<LayerCache>> OpenDirCache(const std::string& dir, std::chrono::seconds ttl, registry::Clock* clock) {
  if (dir.empty()) return InvalidArgument("--cache-dir is empty");
  KILN_RETURN_IF_ERROR(PrepareCacheDir(dir));
  KILN_ASSIGN_OR_RETURN(layers::OciLayout layout, layers::OciLayout::Open(dir));
  if (clock == nullptr) clock = registry::RealClock::Get();
  return std::unique_ptr<LayerCache>(new DirCache(dir, std::move(layout), ttl, clock));
}

}  // namespace kiln::executor
