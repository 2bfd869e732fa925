// Where a built image goes: registries (every destination), a docker-archive tar, an OCI layout
// directory, and the digest files CI jobs read afterwards.
//
// Pushes go through registry::Copy, so every blob is present and verified in the destination before
// the manifest is put, and the tag goes up last: an interrupted push never leaves a tag pointing at a
// missing blob. Blobs the registry has are skipped (HEAD), blobs of the base image's repository on the
// same registry are mounted instead of uploaded.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "executor/build_log.h"
#include "executor/built_image.h"
#include "registry/client.h"

namespace kiln::executor {

/// A read-only ImageSource over an assembled image (for registry::Copy).
std::unique_ptr<registry::ImageSource> NewBuiltImageSource(const AssembledImage& image, const layers::OciLayout* store,
                                                           std::shared_ptr<const SourceImage> base);

/// Pushes to each destination in turn; `attempts` whole-push attempts per destination on a temporary
/// failure. Logs one line per destination with the digest.
Status PushImage(const AssembledImage& image, const layers::OciLayout& store, std::shared_ptr<const SourceImage> base,
                 registry::Client& client, const std::vector<std::string>& destinations, int attempts, BuildLog* log);

/// Writes a docker-archive tar (docker load / skopeo docker-archive:) tagged with `tags`.
Status WriteTarOutput(const AssembledImage& image, const layers::OciLayout& store, const std::vector<std::string>& tags,
                      const std::string& path);

/// Writes (or adds to) an OCI image layout at `path`; `path` may end in ":TAG" for the ref name.
Status WriteOciLayoutOutput(const AssembledImage& image, const layers::OciLayout& store, const std::string& path);

/// Kaniko's digest files: --digest-file (the digest), --image-name-with-digest-file
/// ("registry/repo@sha256:…" per destination, one per line) and --image-name-tag-with-digest-file
/// ("registry/repo:tag@sha256:…"). Empty paths are skipped.
Status WriteDigestFiles(const Digest& digest, const std::vector<std::string>& destinations,
                        const std::string& digest_file, const std::string& name_with_digest_file,
                        const std::string& name_tag_with_digest_file);

}  // namespace kiln::executor
