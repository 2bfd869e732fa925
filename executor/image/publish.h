// Publishing a built image: every output of `kiln build` — each --destination, --tar-path,
// --oci-layout-path — is CopyImage() of the built image (an ImageSource over the blob store) into
// that output's sink (locations.h). So every output gets the same guarantees: blobs present and
// verified before the manifest, the tag last (an interrupted push never leaves a tag pointing at a
// missing blob), blobs the destination has skipped, blobs of the base image's repository on the
// same registry mounted, local files hard-linked or referenced instead of copied.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/image_copy.h"
#include "core/image_location.h"
#include "core/reference.h"
#include "core/status.h"
#include "executor/image/built_image.h"
#include "executor/log/build_log.h"

namespace kiln::executor {

/// A read-only ImageSource over an assembled image whose new blobs are in `store` (for CopyImage).
/// Offers store files by path (LocalBlobPath); counts layer bytes read into `meter` when given.
std::unique_ptr<ImageSource> NewBuiltImageSource(const AssembledImage& image, const layers::OciLayout* store,
                                                 std::shared_ptr<const SourceImage> base,
                                                 ProgressMeter* meter = nullptr);

/// Opens the sink of one output (normally OpenImageSink with the push client).
using SinkOpener = std::function<Result<std::unique_ptr<ImageSink>>(const ImageLocation&)>;

/// What one output received.
struct PublishedOutput {
  ImageLocation location;
  kiln::CopyResult copy;
  std::chrono::nanoseconds time{0};
};

/// What is published: a fresh source for each attempt (its layer reads counted into `meter`, which
/// may be null), the digest of its root, and the bytes of its layers (for progress lines).
struct Publication {
  std::function<Result<std::unique_ptr<ImageSource>>(ProgressMeter* meter)> open;
  Digest digest;
  uint64_t layer_bytes = 0;
};

/// The built image as a Publication.
Publication PublicationOf(const AssembledImage& image, const layers::OciLayout& store,
                          std::shared_ptr<const SourceImage> base);

/// Copies the publication into each output in order. A temporary failure retries the whole copy
/// into that output up to `attempts` times (blobs already there are skipped). Logs one line per
/// output.
Result<std::vector<PublishedOutput>> Publish(const Publication& what, const std::vector<ImageLocation>& outputs,
                                             const SinkOpener& open_sink, int attempts, BuildLog* log);

/// Kaniko's digest files: --digest-file (the digest), --image-name-with-digest-file
/// ("registry/repo@sha256:…" per destination, one per line) and --image-name-tag-with-digest-file
/// ("registry/repo:tag@sha256:…"). Empty paths are skipped.
Status WriteDigestFiles(const Digest& digest, const std::vector<Reference>& destinations,
                        const std::string& digest_file, const std::string& name_with_digest_file,
                        const std::string& name_tag_with_digest_file);

}  // namespace kiln::executor
