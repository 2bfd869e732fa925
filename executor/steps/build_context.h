// The build context (a directory, or a tarball unpacked safely) with its .dockerignore, and the
// small helpers for reading files inside a root directory that COPY, ADD and USER share.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "executor/dockerfile/dockerignore.h"
#include "layers/extract.h"

namespace kiln::executor {

/// The build context: a directory on disk plus the .dockerignore matcher. Immutable once open.
class BuildContext {
 public:
  /// `spec`: a directory path, "dir://PATH", "tar://PATH", a PATH ending .tar/.tar.gz/.tgz, or "-" or
  /// "tar://stdin" (a tar on stdin, plain or compressed). Git contexts are fetched into a directory
  /// first (executor/pipeline/contexts.h). A tarball is extracted safely (layers::ExtractLayer, no device nodes) into
  /// `scratch_dir` (an existing, empty directory the caller owns and removes). `dockerfile_path` is
  /// the Dockerfile's host path, for `<Dockerfile>.dockerignore`, which wins over `.dockerignore`
  /// ("" when there is none). Other schemes (git://, s3://, gs://, https://, ...) fail with
  /// kUnsupported naming the scheme.
  static Result<std::unique_ptr<BuildContext>> Open(const std::string& spec, const std::string& dockerfile_path,
                                                    const std::string& scratch_dir);

  const std::string& root() const { return root_; }  // absolute directory
  const dockerfile::IgnoreMatcher& ignore() const { return ignore_; }
  /// The ignore file that was read ("" when none).
  const std::string& ignore_file() const { return ignore_file_; }

 private:
  BuildContext(std::string root, dockerfile::IgnoreMatcher ignore, std::string ignore_file)
      : root_(std::move(root)), ignore_(std::move(ignore)), ignore_file_(std::move(ignore_file)) {}
  std::string root_;
  dockerfile::IgnoreMatcher ignore_;
  std::string ignore_file_;
};

/// Reads the file at `rel` below `root_fd` (symlinks resolved inside it). nullopt when it does not
/// exist; kInvalidArgument when larger than `max_bytes` or not a regular file.
Result<std::optional<std::string>> ReadFileInRoot(int root_fd, std::string_view rel, size_t max_bytes);

/// Extracts the tar archive file `archive` (plain, gzip, bzip2, xz or zstd: libarchive detects the
/// compression from the bytes) with layers::ExtractLayer into the directory that `dest_dir` returns
/// (called once the file is known to be a tar; the directory is treated as the root). Returns the
/// cleaned entry names (whiteouts excluded), or nullopt when `archive` is not a tar archive, in
/// which case `dest_dir` was not called. Reads the archive twice (digest, then extraction).
Result<std::optional<std::vector<std::string>>> ExtractTarball(const std::string& archive,
                                                               const std::function<Result<std::string>()>& dest_dir,
                                                               const layers::ExtractOptions& options);

}  // namespace kiln::executor
