#include "core/image_location.h"

#include <cstdlib>
#include <tuple>

namespace kiln {

ImageLocation ImageLocation::Registry(Reference ref) {
  ImageLocation loc;
  loc.reference = std::move(ref);
  return loc;
}

ImageLocation ImageLocation::OciLayout(std::string dir, std::string tag) {
  ImageLocation loc;
  loc.kind = Kind::kOciLayout;
  loc.path = std::move(dir);
  loc.tag = std::move(tag);
  return loc;
}

ImageLocation ImageLocation::DockerArchive(std::string path, std::vector<std::string> repo_tags) {
  ImageLocation loc;
  loc.kind = Kind::kDockerArchive;
  loc.path = std::move(path);
  loc.repo_tags = std::move(repo_tags);
  return loc;
}

std::string ImageLocation::Display() const {
  if (kind == Kind::kRegistry && reference) return reference->ToString();
  return ToString();
}

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

}  // namespace kiln
