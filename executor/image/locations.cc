#include "executor/image/locations.h"

#include "layers/docker_archive_store.h"
#include "layers/oci_layout_store.h"
#include "registry/registry_image.h"

namespace kiln::executor {

Result<std::unique_ptr<ImageSource>> OpenImageSource(registry::Client& client, const ImageLocation& loc) {
  switch (loc.kind) {
    case ImageLocation::Kind::kRegistry:
      return registry::OpenRegistrySource(client, *loc.reference);
    case ImageLocation::Kind::kOciLayout:
      return layers::OpenLayoutSource(loc.path, loc.tag);
    case ImageLocation::Kind::kDockerArchive:
      return layers::OpenArchiveSource(loc.path, loc.reference, loc.archive_index);
  }
  return InternalError("unknown image location");
}

Result<std::unique_ptr<ImageSink>> OpenImageSink(registry::Client& client, const ImageLocation& loc) {
  switch (loc.kind) {
    case ImageLocation::Kind::kRegistry:
      return registry::OpenRegistrySink(client, *loc.reference);
    case ImageLocation::Kind::kOciLayout:
      return layers::OpenLayoutSink(loc.path, loc.tag);
    case ImageLocation::Kind::kDockerArchive: {
      if (loc.archive_index) return InvalidArgument("docker-archive:PATH:@N names an image to read, not to write");
      std::vector<std::string> tags = loc.repo_tags;
      if (tags.empty() && loc.reference) tags.push_back(loc.reference->FamiliarString());
      return layers::OpenArchiveSink(loc.path, std::move(tags));
    }
  }
  return InternalError("unknown image location");
}

}  // namespace kiln::executor
