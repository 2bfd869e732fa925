#include "layers/oci_layout_store.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "layers/oci_layout.h"

namespace kiln::layers {
namespace {

// The "mediaType" field of a JSON document, or `fallback` when it has none.
std::string MediaTypeOf(std::string_view bytes, const std::string& fallback) {
  try {
    auto j = nlohmann::json::parse(bytes);
    if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()) return j["mediaType"];
  } catch (const nlohmann::json::exception&) {
  }
  return fallback;
}

class LayoutSource : public ImageSource {
 public:
  LayoutSource(OciLayout layout, std::string tag, RawManifest root)
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
  std::optional<std::string> LocalBlobPath(const Descriptor& d) const override {
    if (!layout_.HasBlob(d.digest)) return std::nullopt;
    return layout_.BlobPath(d.digest);
  }

 private:
  OciLayout layout_;
  std::string tag_;
  RawManifest root_;
};

class LayoutSink : public ImageSink {
 public:
  LayoutSink(OciLayout layout, std::string tag) : layout_(std::move(layout)), tag_(std::move(tag)) {}

  std::string Describe() const override { return "oci:" + layout_.dir() + (tag_.empty() ? "" : ":" + tag_); }
  Result<BlobPresence> HasBlob(const Descriptor& d, const ImageSource& from) override {
    if (layout_.HasBlob(d.digest)) return BlobPresence::kPresent;
    // A verified file of the source on the same filesystem: a hard link costs nothing. Blob files
    // are never modified in place (a store replaces them by rename), so sharing the inode is safe.
    if (std::optional<std::string> file = from.LocalBlobPath(d)) {
      if (::link(file->c_str(), layout_.BlobPath(d.digest).c_str()) == 0) return BlobPresence::kMounted;
    }
    return BlobPresence::kAbsent;
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

  OciLayout layout_;
  std::string tag_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenLayoutSource(const std::string& dir, const std::string& tag) {
  std::string what = "opening oci:" + dir + (tag.empty() ? "" : ":" + tag);
  auto layout = OciLayout::Open(dir);
  if (!layout.ok()) return layout.status().WithContext(what);
  auto d = layout->Resolve(tag);
  if (!d.ok()) return d.status().WithContext(what);
  auto bytes = layout->ReadBlob(d->digest);
  if (!bytes.ok()) return bytes.status().WithContext(what);
  RawManifest root{*bytes, d->media_type.empty() ? MediaTypeOf(*bytes, "") : d->media_type, d->digest};
  return std::unique_ptr<ImageSource>(std::make_unique<LayoutSource>(std::move(layout).value(), tag, std::move(root)));
}

Result<std::unique_ptr<ImageSink>> OpenLayoutSink(const std::string& dir, const std::string& tag) {
  auto layout = OciLayout::OpenOrCreate(dir);
  if (!layout.ok()) return layout.status().WithContext("opening oci:" + dir);
  return std::unique_ptr<ImageSink>(std::make_unique<LayoutSink>(std::move(layout).value(), tag));
}

}  // namespace kiln::layers
