// Fuzz target: the image model's readers of registry JSON (core/image_model.h). The input is one
// document as a registry or an OCI layout would serve it; it is classified with each content type a
// registry may send, and parsed as a manifest, an index and an image config. What parses is
// serialised, and the serialisation must parse again to the same model (Serialize* promise canonical
// bytes for any model Parse* accepts).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/image_model.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "image_model_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  std::string_view json(reinterpret_cast<const char*>(data), size);
  for (std::string_view type : {"", "application/vnd.oci.image.manifest.v1+json",
                                "application/vnd.oci.image.index.v1+json",
                                "application/vnd.docker.distribution.manifest.v2+json",
                                "application/vnd.docker.distribution.manifest.list.v2+json",
                                "application/json"}) {
    (void)DetectManifestKind(json, type);
  }
  if (Result<Manifest> m = ParseManifest(json); m.ok()) {
    std::string out = SerializeManifest(*m);
    Result<Manifest> again = ParseManifest(out);
    Check(again.ok(), "a serialised manifest does not parse");
    Check(SerializeManifest(*again) == out, "manifest serialisation is not canonical");
  }
  if (Result<Index> idx = ParseIndex(json); idx.ok()) {
    std::string out = SerializeIndex(*idx);
    Result<Index> again = ParseIndex(out);
    Check(again.ok(), "a serialised index does not parse");
    Check(SerializeIndex(*again) == out, "index serialisation is not canonical");
    (void)SelectPlatform(*idx, Platform::Parse("linux/amd64").value());
    (void)SelectPlatform(*idx, Platform::Parse("linux/arm64/v8").value());
  }
  if (Result<ImageConfig> c = ParseImageConfig(json); c.ok()) {
    std::string out = SerializeImageConfig(*c);
    Result<ImageConfig> again = ParseImageConfig(out);
    Check(again.ok(), "a serialised image config does not parse");
    Check(SerializeImageConfig(*again) == out, "image config serialisation is not canonical");
    (void)c->platform().ToString();
  }
  if (size < 256) (void)Platform::Parse(json);
  return 0;
}
