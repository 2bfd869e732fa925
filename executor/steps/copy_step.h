// COPY and ADD: copying files from the build context, an earlier stage or an image into a rootfs,
// with Docker's (BuildKit's) rules, and nothing ever written or read outside the two roots.
//
// Rules (BuildKit's dockerfile frontend over fsutil's copy):
//  - Sources are cleaned and relative to the source root; `..` cannot climb out of it. Go
//    filepath.Match globs (`*`, `?`, `[...]`, `\` escapes); a source matching nothing is an error. A
//    top-level source that is a symlink is followed (inside the source root); below it, symlinks are
//    copied as symlinks. Paths excluded by the .dockerignore are invisible (its `!` exceptions kept).
//  - A directory source copies its contents. A file goes inside a destination ending in `/` or an
//    existing directory; otherwise it becomes the destination. More than one source requires a
//    destination ending in `/`. The destination is resolved in the rootfs with its symlinks followed
//    as if the rootfs were `/`; missing directories are created 0755, owned by --chown's owner.
//  - Owners: 0:0 from the context, the source's own from a stage or image, --chown's when given.
//    Modes are kept (--chmod replaces the permission bits), mtimes kept, hardlinks inside one step
//    kept. Without the right to chown, owners go into the user.rootlesscontainers xattr
//    (layers/rootless.h) of regular files and directories.
//  - ADD: http(s) URLs are downloaded (mode 0600, mtime from Last-Modified, --checksum verified); a
//    local tar archive (plain, gzip, bzip2, xz, zstd) is extracted into the destination directory
//    with the hardened layer extractor; --unpack=false copies it as a file, --unpack=true extracts a
//    downloaded archive the same way (a download that is not an archive stays a file). Git URLs are not fetched here: the pipeline fetches an ADD's
//    git source (pipeline/add_git.cc) and copies its checkout; here they are kInvalidArgument.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "executor/dockerfile/dockerignore.h"
#include "executor/dockerfile/instructions.h"
#include "executor/steps/url_fetcher.h"
#include "layers/extract.h"

namespace kiln::executor {

/// Where COPY reads from.
struct CopySource {
  std::string root;                                   // context root, or an earlier stage's / an image's rootfs
  const dockerfile::IgnoreMatcher* ignore = nullptr;  // the context's .dockerignore (nullptr for stages)
  /// True for --from (a stage or an image): files keep their owners (as recorded in the
  /// user.rootlesscontainers xattr when present) unless --chown is given. False: the context, whose
  /// files become 0:0.
  bool from_stage = false;
};

struct CopyRequest {
  std::vector<std::string> sources;                      // expanded; may be globs; for ADD may be URLs
  std::vector<dockerfile::InlineSource> inline_sources;  // heredoc files, data already expanded
  std::string dest;                                      // expanded, as written (relative to workdir if not absolute)
  std::string workdir = "/";                             // the stage's WORKDIR
  std::optional<std::pair<uint32_t, uint32_t>> chown;    // resolved; unset: see CopySource::from_stage
  std::optional<uint32_t> chmod;                         // parsed --chmod (permission bits)
  bool add = false;                                      // ADD semantics: URLs, local tar auto-extract
  bool parents = false;                                  // --parents
  std::vector<std::string> excludes;                     // --exclude patterns (.dockerignore syntax)
  std::string checksum;                                  // ADD --checksum=sha256:... for URLs
  /// ADD --unpack: unset = local archives extracted, downloads kept as files; true = downloaded
  /// archives extracted too; false = nothing extracted.
  std::optional<bool> unpack;
  /// How owners are applied (kAuto: chown as root, the xattr otherwise or when chown is refused).
  layers::ExtractOptions::Ownership ownership = layers::ExtractOptions::Ownership::kAuto;
};

struct CopyResult {
  /// Paths relative to the rootfs that the layer must contain: entries created or replaced,
  /// including directories created on the way. Destinations reached through symlinks are listed
  /// under their resolved paths.
  std::vector<std::string> changed;
  uint64_t files = 0, bytes = 0;
};

/// Performs COPY/ADD into `rootfs`. `fetcher` may be null when no source is a URL. On failure the
/// rootfs may hold part of the copy.
Result<CopyResult> ExecuteCopy(const CopySource& source, const std::string& rootfs, const CopyRequest& req,
                               UrlFetcher* fetcher);

/// Parses --chmod: octal only ("755", "0644"); symbolic modes are kUnsupported.
Result<uint32_t> ParseChmod(std::string_view text);

/// Go's filepath.Match on slash-separated names ('*' and '?' never match '/'). Malformed patterns
/// match nothing.
bool GlobMatch(std::string_view pattern, std::string_view name);

}  // namespace kiln::executor
