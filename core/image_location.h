// Where an image is, as a user names it: the transport-prefixed names skopeo uses.
//   docker://REF              a registry (a bare REF means the same)
//   oci:DIR[:TAG]             an OCI image layout; without TAG the layout's only image (source) or an
//                             untagged entry (destination)
//   docker-archive:PATH[:REF] a `docker save` tarball; as a source REF picks the image by RepoTags (or
//                             "@N" by position); as a destination it becomes the RepoTags entry
// Parsing only: executor/publish/locations.h opens a location as an ImageSource or ImageSink.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/reference.h"
#include "core/status.h"

namespace kiln {

/// A parsed transport-prefixed image name.
struct ImageLocation {
  enum class Kind { kRegistry, kOciLayout, kDockerArchive };
  Kind kind = Kind::kRegistry;
  /// kRegistry: the image. kDockerArchive: the image named inside the archive (optional).
  std::optional<Reference> reference;
  /// kOciLayout: the directory; kDockerArchive: the tar file.
  std::string path;
  /// kOciLayout: the ref name (may be empty).
  std::string tag;
  /// kDockerArchive source: "@N" picks the N-th image.
  std::optional<size_t> archive_index;
  /// kDockerArchive destination: the RepoTags entries to write, when more than `reference` (kiln
  /// build's --tar-path is tagged with every --destination). Empty: `reference`, if any.
  std::vector<std::string> repo_tags;

  static ImageLocation Registry(Reference ref);
  static ImageLocation OciLayout(std::string dir, std::string tag);
  static ImageLocation DockerArchive(std::string path, std::vector<std::string> repo_tags);

  /// Back to the prefixed form: "docker://r/a:1", "oci:/dir:tag", "docker-archive:/x.tar:r/a:1".
  std::string ToString() const;
  /// For log lines: "r/a:1" for a registry, else ToString().
  std::string Display() const;
};

/// Parses "docker://REF", "oci:DIR[:TAG]", "docker-archive:PATH[:REF|:@N]" or a bare reference.
/// Unknown transports ("dir:", "containers-storage:") fail with kInvalidArgument naming the known ones.
Result<ImageLocation> ParseImageLocation(std::string_view text);

}  // namespace kiln
