#include "executor/image/built_image.h"

#include "core/media_types.h"

namespace kiln::executor {

MediaTypeFamily ChooseFamily(const BuiltImage& image, bool zstd) {
  if (zstd) return MediaTypeFamily::kOci;
  if (image.base && image.base->manifest.is_docker()) return MediaTypeFamily::kDocker;
  return MediaTypeFamily::kOci;
}

Result<AssembledImage> Assemble(const BuiltImage& image, MediaTypeFamily family, const layers::OciLayout& store) {
  const bool docker = family == MediaTypeFamily::kDocker;
  AssembledImage out;
  ImageConfig config = image.config;
  config.diff_ids.clear();
  Manifest m;
  m.schema_version = 2;
  m.media_type = std::string(docker ? media_type::kDockerManifest : media_type::kOciManifest);
  for (const ImageLayer& l : image.layers) {
    config.diff_ids.push_back(l.diff_id);
    ImageLayer mapped = l;
    if (media_type::IsLayer(l.desc.media_type) && !media_type::IsNondistributable(l.desc.media_type)) {
      media_type::Compression c = media_type::LayerCompression(l.desc.media_type);
      if (docker && c == media_type::Compression::kZstd) {
        return InvalidArgument("zstd layers need OCI media types, but the image uses Docker's");
      }
      mapped.desc.media_type = std::string(media_type::LayerMediaType(c, docker));
    }
    mapped.desc.platform.reset();
    m.layers.push_back(mapped.desc);
    out.layers.push_back(std::move(mapped));
  }
  out.config_bytes = SerializeImageConfig(config);
  KILN_ASSIGN_OR_RETURN(Digest cd, store.PutBlob(out.config_bytes));
  out.config.media_type = std::string(docker ? media_type::kDockerConfig : media_type::kOciConfig);
  out.config.digest = cd;
  out.config.size = static_cast<int64_t>(out.config_bytes.size());
  m.config = out.config;
  out.manifest_bytes = SerializeManifest(m);
  KILN_ASSIGN_OR_RETURN(Digest md, store.PutBlob(out.manifest_bytes));
  out.manifest.media_type = m.media_type;
  out.manifest.digest = md;
  out.manifest.size = static_cast<int64_t>(out.manifest_bytes.size());
  return out;
}

Result<std::unique_ptr<Reader>> OpenLayerBlob(const ImageLayer& layer, const layers::OciLayout& store) {
  if (store.HasBlob(layer.desc.digest)) return store.OpenBlob(layer.desc.digest, layer.desc.size);
  if (layer.open) return layer.open();
  if (!layer.origin) {
    return NotFound("layer " + layer.desc.digest.ToString() + " is missing from kiln's blob store " + store.dir());
  }
  return layer.origin->source->OpenBlob(layer.desc);
}

}  // namespace kiln::executor
