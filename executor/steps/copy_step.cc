#include "executor/steps/copy_step.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>

#include "core/io.h"
#include "executor/dockerfile/glob.h"
#include "executor/steps/build_context.h"
#include "executor/steps/copy_sources.h"
#include "layers/rootless.h"
#include "layers/safe_path.h"

namespace kiln::executor {
namespace {

using layers::RootDir;
using layers::UniqueFd;
using Ownership = layers::ExtractOptions::Ownership;

struct Owner {
  uint32_t uid = 0, gid = 0;
};

std::string ProcFd(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

using Item = copy_internal::CopyItem;
using copy_internal::CleanRel;
using copy_internal::CompileExcludes;
using copy_internal::Display;
using copy_internal::IgnoredByContext;
using copy_internal::IncludedChildren;
using copy_internal::JoinRel;
using copy_internal::SelectSources;
using copy_internal::SourceChild;

class Copier {
 public:
  Copier(const CopySource& source, const CopyRequest& req, RootDir src, RootDir dst, UrlFetcher* fetcher)
      : source_(source), req_(req), src_(std::move(src)), dst_(std::move(dst)), fetcher_(fetcher) {
    chown_ = req.ownership == Ownership::kChown || (req.ownership == Ownership::kAuto && ::geteuid() == 0);
  }

  Result<CopyResult> Run();
  const std::vector<std::pair<std::string, mode_t>>& unlocked() const { return dst_.unlocked(); }

 private:
  bool Ignored(const std::string& src_rel, bool is_dir) const { return IgnoredByContext(source_, src_rel, is_dir); }

  Status CopyItem(const Item& item, const std::string& dest_rel, bool dir_syntax);
  Status CopyUrl(const Item& item, const std::string& dest_rel, bool dir_syntax);
  Status CopyInline(const Item& item, const std::string& dest_rel, bool dir_syntax);
  Status ChownExtracted(int dest_dir, const std::vector<std::string>& names, const std::string& dest_rel);
  /// Extracts the tar archive open at `archive` into directory `resolved` (made when missing) when it
  /// is one; false when it is not an archive (nothing written).
  Result<bool> ExtractArchive(int archive, const std::string& written, const std::string& resolved, uint64_t size);
  // Where a single file goes: (parent dir, name) per Docker's rules.
  Result<std::pair<std::string, std::string>> FileTarget(const std::string& dest_rel, bool dir_syntax,
                                                         const std::string& base);
  /// Opens directory `rel`, creating what is missing; `*created_last` (when given) says whether
  /// `rel` itself was created.
  Result<UniqueFd> MkdirAll(const std::string& rel, bool* created_last = nullptr);
  Status ClearForFile(int dirfd, const std::string& name, const std::string& rel);

  Result<bool> CopyDirContents(int src_dir, int dst_dir, const std::string& src_rel, const std::string& ex_rel,
                               const std::string& dst_rel);
  Result<bool> CopyEntry(int src_dir, const std::string& name, const struct stat& st, int dst_dir,
                         const std::string& dst_name, const std::string& src_rel, const std::string& ex_rel,
                         const std::string& dst_rel, bool lazy);
  Status CopyFile(int src_dir, const std::string& name, const struct stat& st, int dst_dir,
                  const std::string& dst_name, const std::string& dst_rel);
  Status CopyData(int in, int out, const std::string& what);

  Owner OwnerFor(int fd, int dirfd, const char* name, const struct stat& st) const;
  Status Own(int fd, int dirfd, const char* name, const std::string& rel, Owner o);
  mode_t ModeFor(mode_t source_mode) const {
    mode_t m = source_mode & 07777;
    return req_.chmod ? static_cast<mode_t>((m & ~0777u) | (*req_.chmod & 0777u)) : m;
  }

  const CopySource& source_;
  const CopyRequest& req_;
  RootDir src_, dst_;
  UrlFetcher* fetcher_;
  std::optional<dockerfile::IgnoreMatcher> exclude_;
  bool chown_;
  bool copy_file_range_ok_ = true;
  std::vector<char> buf_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // source inode → destination path (hardlinks)
  CopyResult result_;
};

Owner Copier::OwnerFor(int fd, int dirfd, const char* name, const struct stat& st) const {
  if (req_.chown) return {req_.chown->first, req_.chown->second};
  if (!source_.from_stage) return {0, 0};
  // A stage extracted without privileges keeps the image's owners in the rootless xattr.
  layers::RootlessOwner o = layers::ImageOwner(fd, dirfd, name, st);
  return {o.uid, o.gid};
}

Status Copier::Own(int fd, int dirfd, const char* name, const std::string& rel, Owner o) {
  if (chown_) {
    int rc = fd >= 0 ? ::fchown(fd, o.uid, o.gid) : ::fchownat(dirfd, name, o.uid, o.gid, AT_SYMLINK_NOFOLLOW);
    if (rc == 0) return OkStatus();
    // EINVAL: an id kiln's user namespace does not map (rootless.h): recorded for this file only.
    bool unmapped = errno == EINVAL && req_.ownership == Ownership::kAuto;
    if (!unmapped && (errno != EPERM || req_.ownership != Ownership::kAuto)) {
      return ErrnoStatus("setting owner of " + Display(rel), errno);
    }
    if (!unmapped) chown_ = false;  // not permitted here: record owners in the xattr from now on
  }
  // The kernel keeps user.* xattrs only on regular files and directories; symlinks and special
  // files copied without privileges keep the copying user as owner.
  if (fd < 0) return OkStatus();
  return layers::WriteRootlessOwner(fd, {o.uid, o.gid}, Display(rel));
}

Result<UniqueFd> Copier::MkdirAll(const std::string& rel, bool* created_last) {
  std::vector<std::string> created;
  KILN_ASSIGN_OR_RETURN(UniqueFd dir, dst_.OpenDir(rel, true, &created));
  if (created_last != nullptr) *created_last = !created.empty() && created.back() == rel;
  // BuildKit creates missing destination directories 0755, owned by --chown's owner (else root).
  Owner o = req_.chown ? Owner{req_.chown->first, req_.chown->second} : Owner{0, 0};
  for (const auto& c : created) {
    int fd = ::openat(dst_.fd(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("opening created directory " + Display(c), errno);
    UniqueFd d(fd);
    KILN_RETURN_IF_ERROR(Own(d.get(), -1, nullptr, c, o));
    if (::fchmod(d.get(), 0755) != 0) return ErrnoStatus("setting mode of " + Display(c), errno);
    result_.changed.push_back(c);
  }
  return dir;
}

Status Copier::ClearForFile(int dirfd, const std::string& name, const std::string& rel) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return OkStatus();
    return ErrnoStatus("inspecting " + Display(rel), errno);
  }
  if (S_ISDIR(st.st_mode)) return FailedPrecondition("cannot replace directory " + Display(rel) + " with a file");
  if (::unlinkat(dirfd, name.c_str(), 0) != 0) return ErrnoStatus("replacing " + Display(rel), errno);
  return OkStatus();
}

Status Copier::CopyData(int in, int out, const std::string& what) {
  bool started = false;
  while (copy_file_range_ok_) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
    if (n > 0) {
      started = true;
      result_.bytes += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) return OkStatus();
    if (errno == EINTR) continue;
    // Across filesystems (before Linux 5.19 and on some since), or unsupported: plain copying works.
    if (!started && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EBADF)) {
      copy_file_range_ok_ = false;
      break;
    }
    return ErrnoStatus("copying " + what, errno);
  }
  if (buf_.empty()) buf_.resize(1 << 20);
  for (;;) {
    ssize_t n = ::read(in, buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("reading " + what, errno);
    }
    if (n == 0) return OkStatus();
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out, buf_.data() + off, static_cast<size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("writing " + what, errno);
      }
      off += w;
    }
    result_.bytes += static_cast<uint64_t>(n);
  }
}

Status Copier::CopyFile(int src_dir, const std::string& name, const struct stat& st, int dst_dir,
                        const std::string& dst_name, const std::string& dst_rel) {
  KILN_RETURN_IF_ERROR(ClearForFile(dst_dir, dst_name, dst_rel));
  if (st.st_nlink > 1) {
    auto it = links_.find({st.st_dev, st.st_ino});
    if (it != links_.end()) {
      if (::linkat(dst_.fd(), it->second.c_str(), dst_dir, dst_name.c_str(), 0) != 0) {
        return ErrnoStatus("linking " + Display(dst_rel) + " to " + Display(it->second), errno);
      }
      result_.changed.push_back(dst_rel);
      ++result_.files;
      return OkStatus();
    }
  }
  int in_fd = ::openat(src_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (in_fd < 0) return ErrnoStatus("opening source " + name, errno);
  UniqueFd in(in_fd);
  int out_fd = ::openat(dst_dir, dst_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out_fd < 0) return ErrnoStatus("creating " + Display(dst_rel), errno);
  UniqueFd out(out_fd);
  KILN_RETURN_IF_ERROR(CopyData(in.get(), out.get(), Display(dst_rel)));
  // Owner first: chown clears setuid/setgid, which the mode then restores.
  KILN_RETURN_IF_ERROR(Own(out.get(), -1, nullptr, dst_rel, OwnerFor(in.get(), -1, nullptr, st)));
  if (::fchmod(out.get(), ModeFor(st.st_mode)) != 0) return ErrnoStatus("setting mode of " + Display(dst_rel), errno);
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  if (::futimens(out.get(), ts) != 0) return ErrnoStatus("setting times of " + Display(dst_rel), errno);
  if (st.st_nlink > 1) links_[{st.st_dev, st.st_ino}] = dst_rel;
  result_.changed.push_back(dst_rel);
  ++result_.files;
  return OkStatus();
}

Result<bool> Copier::CopyEntry(int src_dir, const std::string& name, const struct stat& st, int dst_dir,
                               const std::string& dst_name, const std::string& src_rel, const std::string& ex_rel,
                               const std::string& dst_rel, bool lazy) {
  const char* dn = dst_name.c_str();
  if (S_ISREG(st.st_mode)) {
    KILN_RETURN_IF_ERROR(CopyFile(src_dir, name, st, dst_dir, dst_name, dst_rel));
    return true;
  }
  if (S_ISDIR(st.st_mode)) {
    bool created = false;
    struct stat dst_st;
    if (::fstatat(dst_dir, dn, &dst_st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return ErrnoStatus("inspecting " + Display(dst_rel), errno);
      // u+rwx while it is filled; the real mode is applied once its entries are in.
      if (::mkdirat(dst_dir, dn, 0700) != 0) return ErrnoStatus("creating directory " + Display(dst_rel), errno);
      created = true;
    } else if (!S_ISDIR(dst_st.st_mode)) {
      return FailedPrecondition("cannot copy to non-directory: " + Display(dst_rel));
    }
    int sfd = ::openat(src_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0) return ErrnoStatus("opening source directory " + Display(src_rel), errno);
    UniqueFd sub_src(sfd);
    int dfd = ::openat(dst_dir, dn, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return ErrnoStatus("opening " + Display(dst_rel), errno);
    UniqueFd sub_dst(dfd);
    KILN_ASSIGN_OR_RETURN(bool any, CopyDirContents(sub_src.get(), sub_dst.get(), src_rel, ex_rel, dst_rel));
    if (lazy && !any) {
      // Excluded, and no exception inside matched: the directory is not part of the copy.
      if (created) ::unlinkat(dst_dir, dn, AT_REMOVEDIR);
      return false;
    }
    KILN_RETURN_IF_ERROR(Own(sub_dst.get(), -1, nullptr, dst_rel, OwnerFor(sub_src.get(), -1, nullptr, st)));
    if (::fchmod(sub_dst.get(), ModeFor(st.st_mode)) != 0) {
      return ErrnoStatus("setting mode of " + Display(dst_rel), errno);
    }
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::futimens(sub_dst.get(), ts) != 0) return ErrnoStatus("setting times of " + Display(dst_rel), errno);
    result_.changed.push_back(dst_rel);
    return true;
  }
  if (S_ISSOCK(st.st_mode)) return false;  // sockets cannot be copied (and Docker skips them)
  KILN_RETURN_IF_ERROR(ClearForFile(dst_dir, dst_name, dst_rel));
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlinkat(src_dir, name.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoStatus("reading symlink " + Display(src_rel), errno);
    target.resize(static_cast<size_t>(n));
    if (::symlinkat(target.c_str(), dst_dir, dn) != 0) return ErrnoStatus("creating symlink " + Display(dst_rel), errno);
    KILN_RETURN_IF_ERROR(Own(-1, dst_dir, dn, dst_rel, OwnerFor(-1, src_dir, name.c_str(), st)));
  } else {
    // FIFOs and device nodes (the latter only where mknod is permitted).
    if (::mknodat(dst_dir, dn, (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
      return ErrnoStatus("creating special file " + Display(dst_rel), errno);
    }
    KILN_RETURN_IF_ERROR(Own(-1, dst_dir, dn, dst_rel, OwnerFor(-1, src_dir, name.c_str(), st)));
    // mknodat just made a non-symlink under this name: following it is harmless.
    if (::fchmodat(dst_dir, dn, ModeFor(st.st_mode), 0) != 0) return ErrnoStatus("setting mode of " + Display(dst_rel), errno);
  }
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(dst_dir, dn, ts, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("setting times of " + Display(dst_rel), errno);
  }
  result_.changed.push_back(dst_rel);
  ++result_.files;
  return true;
}

Result<bool> Copier::CopyDirContents(int src_dir, int dst_dir, const std::string& src_rel, const std::string& ex_rel,
                                     const std::string& dst_rel) {
  KILN_ASSIGN_OR_RETURN(auto children,
                        IncludedChildren(source_, exclude_ ? &*exclude_ : nullptr, src_dir, src_rel, ex_rel));
  bool any = false;
  for (const SourceChild& c : children) {
    KILN_ASSIGN_OR_RETURN(bool copied, CopyEntry(src_dir, c.name, c.st, dst_dir, c.name, c.src_rel, c.ex_rel,
                                                 JoinRel(dst_rel, c.name), c.lazy));
    any = any || copied;
  }
  return any;
}

Result<std::pair<std::string, std::string>> Copier::FileTarget(const std::string& dest_rel, bool dir_syntax,
                                                                const std::string& base) {
  KILN_ASSIGN_OR_RETURN(std::string resolved, dst_.Resolve(dest_rel));
  struct stat st;
  bool is_dir = ::fstatat(dst_.fd(), resolved.empty() ? "." : resolved.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISDIR(st.st_mode);
  if (dir_syntax || is_dir || resolved.empty()) {
    if (base.empty()) return InvalidArgument("cannot determine a file name for " + Display(dest_rel));
    return std::make_pair(resolved, base);
  }
  auto [parent, name] = layers::SplitParent(resolved);
  return std::make_pair(std::string(parent), std::string(name));
}

Status Copier::CopyItem(const Item& item, const std::string& dest_rel, bool dir_syntax) {
  std::string base(layers::SplitParent(item.written).second);
  if (S_ISDIR(item.st.st_mode)) {
    KILN_ASSIGN_OR_RETURN(std::string resolved, dst_.Resolve(dest_rel));
    struct stat st;
    if (::fstatat(dst_.fd(), resolved.empty() ? "." : resolved.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISDIR(st.st_mode)) {
      return FailedPrecondition("cannot copy to non-directory: " + Display(resolved));
    }
    bool created_dest = false;
    KILN_ASSIGN_OR_RETURN(UniqueFd dst_path, MkdirAll(resolved, &created_dest));
    int dfd = ::openat(dst_path.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return ErrnoStatus("opening " + Display(resolved), errno);
    UniqueFd dst_dir(dfd);
    KILN_ASSIGN_OR_RETURN(UniqueFd src_path, src_.OpenDir(item.resolved, false));
    int sfd = ::openat(src_path.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0) return ErrnoStatus("opening source " + Display(item.written), errno);
    UniqueFd src_dir(sfd);
    auto copied = CopyDirContents(src_dir.get(), dst_dir.get(), item.resolved, "", resolved);
    if (!copied.ok()) return copied.status();
    // BuildKit (fsutil's copyFileInfo on a directory it creates) and Kaniko give the destination
    // directory of a directory source the --chmod mode too; an existing one is left alone.
    if (req_.chmod && created_dest && ::fchmod(dst_dir.get(), ModeFor(item.st.st_mode)) != 0) {
      return ErrnoStatus("setting mode of " + Display(resolved), errno);
    }
    return OkStatus();
  }
  auto [src_parent_rel, src_name] = layers::SplitParent(item.resolved);
  KILN_ASSIGN_OR_RETURN(UniqueFd src_parent, src_.OpenDir(src_parent_rel, false));
  if (req_.add && req_.unpack.value_or(true) && S_ISREG(item.st.st_mode)) {
    // ADD extracts local tar archives into the destination directory (BuildKit's unpack), which is
    // created only once the file is known to be an archive.
    int fd = ::openat(src_parent.get(), std::string(src_name).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("opening " + Display(item.written), errno);
    UniqueFd archive(fd);
    KILN_ASSIGN_OR_RETURN(std::string resolved, dst_.Resolve(dest_rel));
    KILN_ASSIGN_OR_RETURN(bool extracted, ExtractArchive(archive.get(), item.written, resolved,
                                                         static_cast<uint64_t>(item.st.st_size)));
    if (extracted) return OkStatus();
  }
  KILN_ASSIGN_OR_RETURN(auto target, FileTarget(dest_rel, dir_syntax, base));
  KILN_ASSIGN_OR_RETURN(UniqueFd parent_path, MkdirAll(target.first));
  auto copied = CopyEntry(src_parent.get(), std::string(src_name), item.st, parent_path.get(), target.second,
                          item.resolved, "", JoinRel(target.first, target.second), false);
  return copied.status();
}

Result<bool> Copier::ExtractArchive(int archive, const std::string& written, const std::string& resolved,
                                    uint64_t size) {
  UniqueFd dest_dir;
  auto make_dest = [&]() -> Result<std::string> {
    struct stat st;
    if (::fstatat(dst_.fd(), resolved.empty() ? "." : resolved.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISDIR(st.st_mode)) {
      return FailedPrecondition("cannot extract " + written + " into non-directory " + Display(resolved));
    }
    KILN_ASSIGN_OR_RETURN(dest_dir, MkdirAll(resolved));
    return ProcFd(dest_dir.get());
  };
  layers::ExtractOptions options;
  options.ownership = req_.ownership;
  options.create_device_nodes = ::geteuid() == 0;
  KILN_ASSIGN_OR_RETURN(auto names, ExtractTarball(ProcFd(archive), make_dest, options));
  if (!names) return false;
  for (const auto& n : *names) result_.changed.push_back(JoinRel(resolved, n));
  result_.files += names->size();
  result_.bytes += size;
  if (req_.chown) KILN_RETURN_IF_ERROR(ChownExtracted(dest_dir.get(), *names, resolved));
  return true;
}

Status Copier::ChownExtracted(int dest_dir, const std::vector<std::string>& names, const std::string& dest_rel) {
  // BuildKit applies --chown to every extracted entry; the archive's own owners are dropped.
  KILN_ASSIGN_OR_RETURN(RootDir tar_root, RootDir::Open(ProcFd(dest_dir), layers::ResolveMode::kAuto, false));
  Owner o{req_.chown->first, req_.chown->second};
  for (const auto& name : names) {
    auto [parent, base] = layers::SplitParent(name);
    auto pd = tar_root.OpenDir(parent, false);
    if (!pd.ok()) continue;  // replaced by a later entry
    std::string b(base);
    std::string rel = JoinRel(dest_rel, name);
    struct stat st;
    if (::fstatat(pd->get(), b.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
      int fd = ::openat(pd->get(), b.c_str(),
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
      if (fd < 0) return ErrnoStatus("opening " + Display(rel), errno);
      UniqueFd f(fd);
      KILN_RETURN_IF_ERROR(Own(f.get(), -1, nullptr, rel, o));
      if (::fchmod(f.get(), st.st_mode & 07777) != 0) return ErrnoStatus("setting mode of " + Display(rel), errno);
    } else {
      KILN_RETURN_IF_ERROR(Own(-1, pd->get(), b.c_str(), rel, o));
    }
  }
  return OkStatus();
}

Status Copier::CopyUrl(const Item& item, const std::string& dest_rel, bool dir_syntax) {
  const std::string shown = RedactUrl(item.written);
  if (!fetcher_) return FailedPrecondition("ADD " + shown + ": no URL fetcher was configured");
  std::optional<Digest> expected;
  if (!req_.checksum.empty()) {
    auto d = Digest::Parse(req_.checksum);
    if (!d.ok()) return d.status().WithContext("ADD --checksum");
    expected = *d;
  }
  KILN_ASSIGN_OR_RETURN(std::string resolved, dst_.Resolve(dest_rel));
  struct stat st;
  bool is_dir = ::fstatat(dst_.fd(), resolved.empty() ? "." : resolved.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISDIR(st.st_mode);
  // The file name comes from the download when the destination is a directory.
  bool into_dir = dir_syntax || is_dir || resolved.empty();
  std::string dir_rel = into_dir ? resolved : std::string(layers::SplitParent(resolved).first);
  std::string name = into_dir ? std::string() : std::string(layers::SplitParent(resolved).second);
  KILN_ASSIGN_OR_RETURN(UniqueFd parent, MkdirAll(dir_rel));
  static std::atomic<uint64_t> counter{0};
  std::string tmp = ".kiln-add-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  int fd = ::openat(parent.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("creating a file in " + Display(dir_rel), errno);
  UniqueFd out(fd);
  auto discard = [&](const Status& s) {
    ::unlinkat(parent.get(), tmp.c_str(), 0);
    return s;
  };
  FdWriter file(out.get(), false, Display(dir_rel));
  HashingWriter hashed(&file);
  auto fetched = fetcher_->Fetch(item.written, &hashed);
  if (!fetched.ok()) return discard(fetched.status().WithContext("ADD " + shown));
  Digest got = hashed.Finish();
  if (expected && got != *expected) {
    return discard(DigestMismatch("ADD " + shown + ": checksum mismatch: the download hashes to " + got.ToString() +
                                  ", expected " + expected->ToString()));
  }
  if (req_.unpack.value_or(false)) {
    // ADD --unpack=true: a downloaded archive is extracted into the destination as a local one is
    // (BuildKit); anything else is kept as the file it is.
    Result<bool> extracted = ExtractArchive(out.get(), shown, resolved, hashed.size());
    if (!extracted.ok()) return discard(extracted.status().WithContext("ADD " + shown));
    if (*extracted) {
      ::unlinkat(parent.get(), tmp.c_str(), 0);
      return OkStatus();
    }
  }
  if (name.empty()) name = fetched->filename;
  if (name.empty()) {
    return discard(InvalidArgument("ADD " + shown + ": cannot determine a file name from the URL; give the destination a file name"));
  }
  std::string rel = JoinRel(dir_rel, name);
  Owner o = req_.chown ? Owner{req_.chown->first, req_.chown->second} : Owner{0, 0};
  Status s = Own(out.get(), -1, nullptr, rel, o);
  if (!s.ok()) return discard(s);
  // Docker gives downloaded files mode 0600 unless --chmod says otherwise.
  if (::fchmod(out.get(), req_.chmod ? (*req_.chmod & 07777) : 0600) != 0) {
    return discard(ErrnoStatus("setting mode of " + Display(rel), errno));
  }
  struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  if (fetched->last_modified) ts[0] = ts[1] = {*fetched->last_modified, 0};
  if (::futimens(out.get(), ts) != 0) return discard(ErrnoStatus("setting times of " + Display(rel), errno));
  s = ClearForFile(parent.get(), name, rel);
  if (!s.ok()) return discard(s);
  if (::renameat(parent.get(), tmp.c_str(), parent.get(), name.c_str()) != 0) {
    return discard(ErrnoStatus("creating " + Display(rel), errno));
  }
  result_.changed.push_back(rel);
  ++result_.files;
  result_.bytes += hashed.size();
  return OkStatus();
}

Status Copier::CopyInline(const Item& item, const std::string& dest_rel, bool dir_syntax) {
  std::string base(layers::SplitParent(CleanRel(item.written)).second);
  KILN_ASSIGN_OR_RETURN(auto target, FileTarget(dest_rel, dir_syntax, base));
  KILN_ASSIGN_OR_RETURN(UniqueFd parent, MkdirAll(target.first));
  std::string rel = JoinRel(target.first, target.second);
  KILN_RETURN_IF_ERROR(ClearForFile(parent.get(), target.second, rel));
  int fd = ::openat(parent.get(), target.second.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("creating " + Display(rel), errno);
  UniqueFd out(fd);
  FdWriter w(out.get(), false, Display(rel));
  KILN_RETURN_IF_ERROR(w.Write(item.inline_source->data));
  Owner o = req_.chown ? Owner{req_.chown->first, req_.chown->second} : Owner{0, 0};
  KILN_RETURN_IF_ERROR(Own(out.get(), -1, nullptr, rel, o));
  if (::fchmod(out.get(), ModeFor(0644)) != 0) return ErrnoStatus("setting mode of " + Display(rel), errno);
  result_.changed.push_back(rel);
  ++result_.files;
  result_.bytes += item.inline_source->data.size();
  return OkStatus();
}

Result<CopyResult> Copier::Run() {
  const char* op = req_.add ? "ADD" : "COPY";
  KILN_ASSIGN_OR_RETURN(exclude_, CompileExcludes(req_.excludes));
  KILN_ASSIGN_OR_RETURN(std::vector<Item> items, SelectSources(source_, req_, src_, exclude_ ? &*exclude_ : nullptr));
  if (!req_.checksum.empty()) {
    for (const auto& item : items) {
      if (item.kind != Item::Kind::kUrl) {
        return InvalidArgument("--checksum is only supported for HTTP(S) sources, not " + item.written);
      }
    }
  }
  std::string dest = req_.dest;
  bool dir_syntax = dest.empty() || dest.back() == '/' || dest == "." || dest.ends_with("/.");
  if (dest.empty() || dest[0] != '/') dest = (req_.workdir.empty() ? std::string("/") : req_.workdir) + "/" + dest;
  std::string dest_rel = CleanRel(dest);
  if (items.size() > 1 && !dir_syntax) {
    return InvalidArgument("When using " + std::string(op) +
                           " with more than one source file, the destination must be a directory and end with a /");
  }
  for (const auto& item : items) {
    Status s;
    switch (item.kind) {
      case Item::Kind::kUrl: s = CopyUrl(item, dest_rel, dir_syntax); break;
      case Item::Kind::kInline: s = CopyInline(item, dest_rel, dir_syntax); break;
      case Item::Kind::kLocal:
        if (req_.parents) {
          // --parents: the source's path (below a `/./` pivot, when given) is kept under dest.
          std::string kept = item.written;
          if (!item.pivot.empty() && kept.starts_with(item.pivot + "/")) kept = kept.substr(item.pivot.size() + 1);
          s = CopyItem(item, JoinRel(dest_rel, kept), false);
        } else {
          s = CopyItem(item, dest_rel, dir_syntax);
        }
        break;
    }
    if (!s.ok()) return s;
  }
  return std::move(result_);
}

}  // namespace

Result<CopyResult> ExecuteCopy(const CopySource& source, const std::string& rootfs, const CopyRequest& req,
                               UrlFetcher* fetcher) {
  // Without privileges, directories of a rootless rootfs may lack u+w (their image mode); they are
  // opened up while written and restored afterwards.
  bool unprivileged = ::geteuid() != 0;
  KILN_ASSIGN_OR_RETURN(RootDir dst, RootDir::Open(rootfs, layers::ResolveMode::kAuto, unprivileged));
  KILN_ASSIGN_OR_RETURN(RootDir src, RootDir::Open(source.root.empty() ? rootfs : source.root,
                                                   layers::ResolveMode::kAuto, false));
  int dst_fd = ::fcntl(dst.fd(), F_DUPFD_CLOEXEC, 0);
  if (dst_fd < 0) return ErrnoStatus("duplicating the rootfs fd", errno);
  UniqueFd dst_dup(dst_fd);
  Copier copier(source, req, std::move(src), std::move(dst), fetcher);
  auto result = copier.Run();
  for (const auto& [rel, mode] : copier.unlocked()) {
    ::fchmodat(dst_dup.get(), rel.empty() ? "." : rel.c_str(), mode, 0);
  }
  return result;
}

Result<uint32_t> ParseChmod(std::string_view text) {
  if (text.empty()) return InvalidArgument("--chmod needs a mode");
  uint32_t mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') {
      return Unsupported("--chmod=" + std::string(text) + ": only octal modes (like 0755) are supported");
    }
    mode = mode * 8 + static_cast<uint32_t>(c - '0');
    if (mode > 07777) return InvalidArgument("--chmod=" + std::string(text) + ": mode out of range");
  }
  return mode;
}

bool GlobMatch(std::string_view pattern, std::string_view name) { return dockerfile::GlobMatch(pattern, name); }

}  // namespace kiln::executor
