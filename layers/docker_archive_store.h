// A docker-archive tar (`docker save`, layers/docker_archive.h) as an ImageSource and an ImageSink
// (core/image_store.h), for `kiln copy`'s docker-archive:PATH[:REF] and `kiln build --tar-path`.
//
// A docker-archive keeps layers and config, but its manifest.json is not a manifest: reading one that
// kiln or Docker 25+ wrote uses the OCI manifest stored inside it (digest kept); reading a classic
// archive builds a Docker v2s2 manifest, which is necessarily a new digest. An archive holds single
// images only, not an index.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/image_store.h"
#include "core/reference.h"

namespace kiln::layers {

/// A docker-archive as a source: the image whose RepoTags hold `ref`, image #`index`, or the only one.
Result<std::unique_ptr<ImageSource>> OpenArchiveSource(const std::string& path, const std::optional<Reference>& ref,
                                                       std::optional<size_t> index);
/// A docker-archive as a destination, its image listed under `repo_tags` ("r/a:1"; may be empty).
/// Blobs the source offers as local files are read from there; others are spooled to a scratch
/// directory beside `path` (removed when the sink is destroyed). The tar is written atomically
/// when the root arrives.
Result<std::unique_ptr<ImageSink>> OpenArchiveSink(const std::string& path, std::vector<std::string> repo_tags);

}  // namespace kiln::layers
