// docker-archive tarballs: what `docker save` writes and `docker load`, `podman load` and
// `skopeo copy docker-archive:` read.
//
// kiln writes the layout Docker 25+ writes: an OCI layout (oci-layout, index.json, blobs/sha256/…)
// whose blobs manifest.json also points at, so the same file is both a docker-archive and an OCI
// archive. Layers are stored as given (compressed or not; loaders detect the compression). Each tar
// entry is streamed; nothing is held in memory but manifests and configs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/image_model.h"
#include "core/io.h"
#include "core/status.h"

namespace kiln::layers {

/// Opens a fresh Reader over a blob's bytes (called once per blob while writing).
using BlobOpener = std::function<Result<std::unique_ptr<Reader>>(const Descriptor&)>;

struct ArchiveImage {
  std::string manifest_bytes;         // the image manifest, exactly as its digest names it
  std::string config_bytes;           // the image config
  std::vector<std::string> repo_tags; // "registry/repo:tag", may be empty
};

/// Writes one or more images as a docker-archive tar to `out`. Layer bytes come from `open_blob`,
/// and are checked against their descriptor size (a short or long blob fails the write). Does not
/// Close `out`. Entries are written in a fixed order with fixed metadata, so equal inputs give
/// byte-identical archives.
Status WriteDockerArchive(const std::vector<ArchiveImage>& images, const BlobOpener& open_blob, Writer& out);

/// A docker-archive tar file opened for reading (plain tar; Docker's classic and OCI-hybrid layouts).
class DockerArchiveReader {
 public:
  struct Image {
    std::string config_path;
    std::vector<std::string> repo_tags;
    std::vector<std::string> layer_paths;
  };

  /// Reads manifest.json. Fails clearly when the file is not a docker-archive.
  static Result<DockerArchiveReader> Open(const std::string& path);

  const std::vector<Image>& images() const { return images_; }
  /// Reads a small entry (config, manifest) whole; limited to 16 MiB.
  Result<std::string> ReadEntry(const std::string& name) const;
  /// Streams an entry's content. The Reader owns its own handle on the archive.
  Result<std::unique_ptr<Reader>> OpenEntry(const std::string& name) const;
  /// Size in bytes of an entry.
  Result<int64_t> EntrySize(const std::string& name) const;

  /// Builds an image manifest for image `i`: config and layer descriptors with digests (hashing a
  /// layer only when its digest is not already known from the config's diff_ids, i.e. when it is
  /// compressed) and media types from the detected compression (OCI types when `oci`, else Docker).
  Result<std::string> BuildManifest(size_t i, bool oci) const;

 private:
  explicit DockerArchiveReader(std::string path) : path_(std::move(path)) {}
  std::string path_;
  std::vector<Image> images_;
};

}  // namespace kiln::layers
