#include "layers/layer_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "core/media_types.h"
#include "layers/oci_layout.h"

namespace kiln::layers {
namespace {

// Lets the pipeline's Close() cascade flush every stage without finishing the caller's destination.
class NoCloseWriter : public Writer {
 public:
  explicit NoCloseWriter(Writer* next) : next_(next) {}
  Status Write(const void* data, size_t n) override { return next_->Write(data, n); }
  using Writer::Write;
  Status Close() override { return OkStatus(); }

 private:
  Writer* next_;
};

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus("creating " + path, errno);
  return OkStatus();
}

Status Walk(int dirfd, const std::string& prefix, std::vector<std::string>* out) {
  DIR* dir = ::fdopendir(dirfd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dirfd);
    return ErrnoStatus("listing " + (prefix.empty() ? std::string(".") : prefix), err);
  }
  std::vector<std::pair<std::string, bool>> children;
  errno = 0;
  while (struct dirent* e = ::readdir(dir)) {
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) is_dir = S_ISDIR(st.st_mode);
    }
    children.emplace_back(std::string(name), is_dir);
  }
  Status status = errno != 0 ? ErrnoStatus("listing " + prefix, errno) : OkStatus();
  for (const auto& [name, is_dir] : children) {
    if (!status.ok()) break;
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    out->push_back(rel);
    if (!is_dir) continue;
    int fd = ::openat(::dirfd(dir), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      status = ErrnoStatus("opening " + rel, errno);
      break;
    }
    status = Walk(fd, rel, out);
  }
  ::closedir(dir);
  return status;
}

}  // namespace

Result<LayerInfo> WriteLayer(const std::string& rootfs, const LayerChanges& changes, const LayerOptions& options,
                             Writer* dest) {
  const bool plain = options.compression.algorithm == media_type::Compression::kNone;
  NoCloseWriter sink(dest);
  HashingWriter blob(&sink);
  // An uncompressed blob is the tar itself: hashing it twice would cost a second sha256 pass.
  Writer* after_compression = plain ? static_cast<Writer*>(&sink) : &blob;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Compressor> compressor,
                        Compressor::Create(options.compression, after_compression));
  HashingWriter tar(compressor.get());
  LayerInfo info;
  KILN_ASSIGN_OR_RETURN(info.stats, WriteLayerTar(rootfs, changes, options.tar, &tar));
  KILN_RETURN_IF_ERROR(tar.Close());  // flushes the compressor into `blob`
  info.diff_id = tar.Finish();
  info.tar_size = tar.size();
  info.digest = plain ? info.diff_id : blob.Finish();
  info.size = plain ? info.tar_size : blob.size();
  info.media_type = std::string(media_type::LayerMediaType(options.compression.algorithm, /*docker=*/false));
  return info;
}

namespace {

// Writes to the blob file and, best effort, to a second sink (a streamed upload). A failing second
// sink is dropped: the blob on disk is what matters, the upload can be done again from it.
class BestEffortTee : public Writer {
 public:
  BestEffortTee(Writer* main, Writer* extra) : main_(main), extra_(extra) {}
  Status Write(const void* data, size_t n) override {
    KILN_RETURN_IF_ERROR(main_->Write(data, n));
    if (extra_ && !extra_->Write(data, n).ok()) extra_ = nullptr;
    return OkStatus();
  }
  using Writer::Write;
  Status Close() override { return main_->Close(); }

 private:
  Writer* main_;
  Writer* extra_;
};

}  // namespace

Result<LayerInfo> WriteLayerToBlobDir(const std::string& rootfs, const LayerChanges& changes,
                                      const LayerOptions& options, const std::string& blobs_dir, Writer* tee) {
  const std::string dir = blobs_dir + "/sha256";
  KILN_RETURN_IF_ERROR(MakeDir(blobs_dir));
  KILN_RETURN_IF_ERROR(MakeDir(dir));
  // The layer writer computes the blob's digest as it compresses: the store need not hash it again.
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> file, BlobWriter::Create(dir, BlobWriter::Hashing::kVerifiedBySource));
  BestEffortTee out(file.get(), tee);
  KILN_ASSIGN_OR_RETURN(LayerInfo info, WriteLayer(rootfs, changes, options, &out));
  KILN_RETURN_IF_ERROR(file->Commit(info.digest).status().WithContext("storing the layer blob"));
  return info;
}

Result<LayerChanges> ChangesForTree(const std::string& rootfs) {
  int fd = ::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening " + rootfs, errno);
  LayerChanges changes;
  KILN_RETURN_IF_ERROR(Walk(fd, "", &changes.paths).WithContext("walking " + rootfs));
  return changes;
}

}  // namespace kiln::layers
