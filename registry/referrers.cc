#include "registry/referrers.h"

#include <algorithm>

#include "core/media_types.h"

namespace kiln::registry {
namespace {

constexpr std::string_view kEmptyConfig = "{}";

Result<Descriptor> EnsureBlob(Repository& repo, std::string_view bytes) {
  Digest digest = Sha256Of(bytes);
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> have, repo.HeadBlob(digest));
  Descriptor d;
  d.digest = digest;
  d.size = static_cast<int64_t>(bytes.size());
  if (have) return d;
  StringReader reader{std::string(bytes)};
  KILN_ASSIGN_OR_RETURN(Descriptor up, repo.UploadBlob(reader, digest, d.size));
  return up;
}

// Adds `entry` to the index tagged ReferrersTag(subject), creating it when the tag is missing.
Status UpdateFallbackIndex(Repository& repo, const Digest& subject, const Descriptor& entry) {
  std::string tag = ReferrersTag(subject);
  Index index;
  index.media_type = std::string(media_type::kOciIndex);
  KILN_ASSIGN_OR_RETURN(std::optional<Descriptor> existing, repo.HeadManifest(tag));
  if (existing) {
    KILN_ASSIGN_OR_RETURN(RawManifest raw, repo.GetManifest(tag));
    auto parsed = ParseIndex(raw.bytes);
    // Something else under that tag (not an index): the spec's fallback cannot use it.
    if (!parsed.ok()) return parsed.status().WithContext("reading the referrers index " + repo.Describe() + ":" + tag);
    index = std::move(parsed).value();
    index.media_type = std::string(media_type::kOciIndex);
  }
  bool present = std::any_of(index.manifests.begin(), index.manifests.end(),
                             [&](const Descriptor& d) { return d.digest == entry.digest; });
  if (present && existing) return OkStatus();
  if (!present) index.manifests.push_back(entry);
  KILN_ASSIGN_OR_RETURN(Digest put, repo.PutManifest(tag, SerializeIndex(index), media_type::kOciIndex));
  (void)put;
  return OkStatus();
}

}  // namespace

std::string ReferrersTag(const Digest& subject) {
  std::string tag = subject.algorithm() + "-" + subject.hex();
  if (tag.size() > 128) tag.resize(128);
  return tag;
}

std::string ArtifactManifest(const Artifact& artifact, const Descriptor& subject) {
  Manifest m;
  m.media_type = std::string(media_type::kOciManifest);
  m.artifact_type = artifact.artifact_type;
  m.config.media_type = std::string(media_type::kOciEmpty);
  m.config.digest = Sha256Of(kEmptyConfig);
  m.config.size = static_cast<int64_t>(kEmptyConfig.size());
  Descriptor layer;
  layer.media_type = artifact.artifact_type;
  layer.digest = Sha256Of(artifact.content);
  layer.size = static_cast<int64_t>(artifact.content.size());
  m.layers.push_back(layer);
  Descriptor s;
  s.media_type = subject.media_type;
  s.digest = subject.digest;
  s.size = subject.size;
  m.subject = s;
  m.annotations = artifact.annotations;
  return SerializeManifest(m);
}

Result<Descriptor> PushReferrer(Repository& repo, const Descriptor& subject, const Artifact& artifact) {
  std::string what = "attaching " + artifact.artifact_type + " to " + repo.Describe() + "@" + subject.digest.ToString();
  auto fail = [&what](const Status& s) { return s.WithContext(what); };
  if (auto s = EnsureBlob(repo, kEmptyConfig); !s.ok()) return fail(s.status());
  if (auto s = EnsureBlob(repo, artifact.content); !s.ok()) return fail(s.status());
  std::string bytes = ArtifactManifest(artifact, subject);
  Descriptor entry;
  entry.media_type = std::string(media_type::kOciManifest);
  entry.digest = Sha256Of(bytes);
  entry.size = static_cast<int64_t>(bytes.size());
  entry.artifact_type = artifact.artifact_type;
  entry.annotations = artifact.annotations;
  if (auto put = repo.PutManifest(entry.digest.ToString(), bytes, media_type::kOciManifest); !put.ok()) {
    return fail(put.status());
  }
  auto api = repo.GetReferrers(subject.digest);
  if (!api.ok()) return fail(api.status());
  if (!*api) {
    if (Status s = UpdateFallbackIndex(repo, subject.digest, entry); !s.ok()) return fail(s);
  }
  return entry;
}

Result<std::vector<Descriptor>> FindReferrers(Repository& repo, const Digest& subject, std::string_view artifact_type) {
  std::string what = "looking for " + std::string(artifact_type) + " referrers of " + repo.Describe() + "@" +
                     subject.ToString();
  auto api = repo.GetReferrers(subject);
  if (!api.ok()) return api.status().WithContext(what);
  std::string bytes;
  if (*api) {
    bytes = std::move(**api);
  } else {
    std::string tag = ReferrersTag(subject);
    auto head = repo.HeadManifest(tag);
    if (!head.ok()) return head.status().WithContext(what);
    if (!*head) return std::vector<Descriptor>{};
    auto raw = repo.GetManifest(tag);
    if (!raw.ok()) return raw.status().WithContext(what);
    bytes = std::move(raw->bytes);
  }
  auto index = ParseIndex(bytes);
  if (!index.ok()) return index.status().WithContext(what);
  std::vector<Descriptor> out;
  for (Descriptor& d : index->manifests) {
    if (d.artifact_type == artifact_type) out.push_back(std::move(d));
  }
  return out;
}

}  // namespace kiln::registry
