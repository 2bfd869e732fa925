// Attaching artifacts (an SBOM, a provenance statement) to an image in a registry, as the OCI
// distribution spec's referrers describe: an image manifest with `artifactType`, `subject` = the
// image's manifest, the empty config ({}) and the document as its one layer. Registries with the
// referrers API index it themselves; for those without (Debian's docker-registry 2.8), the spec's
// tag-schema fallback is kept too: an image index tagged `sha256-<hex of the subject digest>`
// listing every artifact, updated by read-modify-write.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/image_model.h"
#include "core/status.h"
#include "registry/client.h"

namespace kiln::registry {

/// One document to attach.
struct Artifact {
  std::string artifact_type;  ///< "application/spdx+json"; also the layer's media type
  std::string content;        ///< the document's bytes
  /// Manifest annotations ("org.opencontainers.image.created"); copied into the fallback index entry.
  std::map<std::string, std::string> annotations;
};

/// The referrers fallback tag of `subject`: "<algorithm>-<hex>", cut to 128 characters.
std::string ReferrersTag(const Digest& subject);

/// The artifact manifest (canonical bytes) for `artifact` about `subject`.
std::string ArtifactManifest(const Artifact& artifact, const Descriptor& subject);

/// Pushes `artifact` into `repo` (the empty config and the document as blobs, then the manifest by
/// digest) and, unless the registry answers the referrers API, adds it to the fallback index (an
/// entry with the same digest is not added twice). Returns the artifact manifest's descriptor.
/// Not safe against another client updating the same fallback tag at the same moment (the spec's
/// fallback has no locking; the last writer wins).
Result<Descriptor> PushReferrer(Repository& repo, const Descriptor& subject, const Artifact& artifact);

/// The artifact manifests attached to `subject` in `repo` whose artifactType is `artifact_type`: the
/// referrers API's answer when the registry has the API, else the fallback tag's index; empty when
/// neither lists any. Entries come as listed (each with its artifact_type set).
Result<std::vector<Descriptor>> FindReferrers(Repository& repo, const Digest& subject, std::string_view artifact_type);

}  // namespace kiln::registry
