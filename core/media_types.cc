#include "core/media_types.h"

namespace kiln::media_type {

bool IsImageManifest(std::string_view mt) { return mt == kOciManifest || mt == kDockerManifest; }
bool IsIndex(std::string_view mt) { return mt == kOciIndex || mt == kDockerManifestList; }
bool IsSchema1(std::string_view mt) { return mt == kDockerSchema1 || mt == kDockerSchema1Signed; }
bool IsConfig(std::string_view mt) { return mt == kOciConfig || mt == kDockerConfig; }

bool IsLayer(std::string_view mt) {
  return mt == kOciLayer || mt == kOciLayerGzip || mt == kOciLayerZstd || mt == kOciLayerNondistributable ||
         mt == kOciLayerNondistributableGzip || mt == kOciLayerNondistributableZstd || mt == kDockerLayerGzip ||
         mt == kDockerLayerZstd || mt == kDockerLayer || mt == kDockerForeignLayerGzip;
}

bool IsNondistributable(std::string_view mt) {
  return mt == kOciLayerNondistributable || mt == kOciLayerNondistributableGzip ||
         mt == kOciLayerNondistributableZstd || mt == kDockerForeignLayerGzip;
}

Compression LayerCompression(std::string_view mt) {
  if (mt.ends_with("+gzip") || mt.ends_with(".gzip")) return Compression::kGzip;
  if (mt.ends_with("+zstd") || mt.ends_with(".zstd")) return Compression::kZstd;
  return Compression::kNone;
}

std::string_view LayerMediaType(Compression c, bool docker) {
  switch (c) {
    case Compression::kGzip: return docker ? kDockerLayerGzip : kOciLayerGzip;
    case Compression::kZstd: return docker ? kDockerLayerZstd : kOciLayerZstd;
    case Compression::kNone: return docker ? kDockerLayer : kOciLayer;
  }
  return kOciLayer;
}

}  // namespace kiln::media_type
