// Baseline::Take: the walk.
//
// One getdents64 pass per directory, one statx per entry, an openat per subdirectory. Each
// directory's children are statted and appended as one sorted block before any of them is entered,
// which gives the block layout Baseline and Diff rely on without ever sorting whole paths.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "snapshot/baseline.h"
#include "snapshot/fingerprint.h"

namespace kiln::snapshot {
namespace internal {
namespace {

constexpr unsigned kStatxMask = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_GID | STATX_MTIME |
                                STATX_CTIME | STATX_INO | STATX_SIZE | STATX_MNT_ID;
// DONT_SYNC: a network filesystem need not refetch attributes; AT_NO_AUTOMOUNT: never trigger one.
constexpr int kStatxFlags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int64_t Nanos(const struct statx_timestamp& t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int64_t NowNanos(clockid_t clock) {
  struct timespec ts;
  ::clock_gettime(clock, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

Result<FileType> TypeOf(uint16_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return FileType::kRegular;
    case S_IFDIR: return FileType::kDirectory;
    case S_IFLNK: return FileType::kSymlink;
    case S_IFCHR: return FileType::kCharDevice;
    case S_IFBLK: return FileType::kBlockDevice;
    case S_IFIFO: return FileType::kFifo;
    case S_IFSOCK: return FileType::kSocket;
  }
  return Unsupported("unknown file type");
}

// "/var//run/" -> "var/run". Refuses "." and ".." so an ignore entry cannot name a path outside the
// rootfs or the rootfs itself.
Result<std::string> NormalizeIgnorePath(std::string_view p) {
  std::string out;
  size_t pos = 0;
  while (pos < p.size()) {
    size_t slash = p.find('/', pos);
    std::string_view comp = p.substr(pos, slash == std::string_view::npos ? slash : slash - pos);
    pos = slash == std::string_view::npos ? p.size() : slash + 1;
    if (comp.empty()) continue;
    if (comp == "." || comp == "..") return InvalidArgument("ignore path may not contain '.' or '..': " + std::string(p));
    if (!out.empty()) out += '/';
    out += comp;
  }
  if (out.empty()) return InvalidArgument("ignore path names the whole rootfs: \"" + std::string(p) + "\"");
  return out;
}

}  // namespace

class Walker {
 public:
  Result<Baseline> Run(const std::string& rootfs, const WalkOptions& options);

 private:
  Status WalkDir(int fd, uint32_t index);
  std::string ChildPath(std::string_view name) const {
    return path_.empty() ? std::string(name) : path_ + "/" + std::string(name);
  }
  bool IsMount(const struct statx& st) const;

  Baseline b_;
  std::unordered_set<std::string> ignore_;          // normalized relative paths
  std::unordered_set<std::string> ignore_parents_;  // directories that contain an ignored path
  std::string path_;                                // relative path of the directory being walked
  std::string dents_;                               // getdents64 buffer
  uint32_t root_dev_major_ = 0, root_dev_minor_ = 0;
  uint64_t root_mnt_id_ = 0;
  bool have_mnt_id_ = false;
  int64_t wide_threshold_ns_ = 0;
  bool saw_subsecond_ctime_ = false;
  std::vector<std::pair<uint32_t, std::string>> racy_candidates_;
};

bool Walker::IsMount(const struct statx& st) const {
  if (st.stx_dev_major != root_dev_major_ || st.stx_dev_minor != root_dev_minor_) return true;
  // A bind mount from the same filesystem keeps st_dev; its mount id tells it apart.
  if (have_mnt_id_ && (st.stx_mask & STATX_MNT_ID) && st.stx_mnt_id != root_mnt_id_) return true;
  return (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (st.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

Status Walker::WalkDir(int fd, uint32_t index) {
  const std::string where = path_.empty() ? std::string("/") : "/" + path_;
  // Read every name first: the block of children must be complete before recursing.
  std::string names;
  std::vector<std::pair<uint32_t, uint16_t>> spans;  // offset, length into `names`
  for (;;) {
    long n = ::syscall(SYS_getdents64, fd, dents_.data(), dents_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading directory " + where, errno);
    if (n == 0) break;
    for (long off = 0; off < n;) {
      // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
      const char* rec = dents_.data() + off;
      uint16_t reclen;
      std::memcpy(&reclen, rec + 16, sizeof reclen);
      const char* name = rec + 19;
      size_t len = ::strnlen(name, reclen - 19);
      off += reclen;
      if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) continue;
      spans.emplace_back(static_cast<uint32_t>(names.size()), static_cast<uint16_t>(len));
      names.append(name, len);
    }
  }
  auto view = [&names](const std::pair<uint32_t, uint16_t>& s) { return std::string_view(names).substr(s.first, s.second); };
  std::sort(spans.begin(), spans.end(), [&view](const auto& a, const auto& b) { return view(a) < view(b); });

  const bool check_ignores = ignore_parents_.count(path_) != 0;
  const size_t first = b_.entries_.size();
  char target[PATH_MAX + 1];
  for (const auto& span : spans) {
    std::string_view name = view(span);
    if (check_ignores) {
      std::string child = ChildPath(name);
      if (ignore_.count(child)) {
        b_.ignored_.push_back(std::move(child));
        continue;
      }
    }
    std::string cname(name);
    struct statx st;
    if (::statx(fd, cname.c_str(), kStatxFlags, kStatxMask, &st) != 0) {
      if (errno == ENOENT) continue;  // removed while we walked
      return ErrnoStatus("stat " + ChildPath(name), errno);
    }
    if (IsMount(st)) {
      b_.mount_points_.push_back(ChildPath(name));
      continue;
    }
    auto type = TypeOf(st.stx_mode);
    if (!type.ok()) return type.status().WithContext(ChildPath(name));
    Baseline::Entry e{};
    e.name_off = static_cast<uint32_t>(b_.arena_.size());
    e.name_len = static_cast<uint8_t>(name.size());
    e.type = *type;
    e.mode = static_cast<uint16_t>(st.stx_mode & 07777);
    e.nlink = st.stx_nlink;
    e.uid = st.stx_uid;
    e.gid = st.stx_gid;
    e.mtime_ns = Nanos(st.stx_mtime);
    e.ctime_ns = Nanos(st.stx_ctime);
    e.ino = st.stx_ino;
    if (st.stx_ctime.tv_nsec != 0) saw_subsecond_ctime_ = true;
    b_.arena_.append(name);
    switch (e.type) {
      case FileType::kRegular: e.extra = st.stx_size; break;
      case FileType::kCharDevice:
      case FileType::kBlockDevice: e.extra = makedev(st.stx_rdev_major, st.stx_rdev_minor); break;
      case FileType::kSymlink: {
        ssize_t n = ::readlinkat(fd, cname.c_str(), target, sizeof target);
        if (n < 0) return ErrnoStatus("reading symlink " + ChildPath(name), errno);
        if (static_cast<size_t>(n) >= sizeof target) return IoError("symlink target too long: " + ChildPath(name));
        e.target_len = static_cast<uint16_t>(n);
        e.extra = static_cast<uint64_t>(n);
        b_.arena_.append(target, static_cast<size_t>(n));
        break;
      }
      default: break;
    }
    if (e.type != FileType::kDirectory && e.ctime_ns >= wide_threshold_ns_) {
      racy_candidates_.emplace_back(static_cast<uint32_t>(b_.entries_.size()), ChildPath(name));
    }
    b_.entries_.push_back(e);
  }
  const size_t count = b_.entries_.size() - first;
  b_.entries_[index].extra = (static_cast<uint64_t>(first) << 32) | count;

  for (size_t i = first; i < first + count; ++i) {
    if (b_.entries_[i].type != FileType::kDirectory) continue;
    std::string cname(b_.NameOf(b_.entries_[i]));
    Fd child(::openat(fd, cname.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (child.get() < 0) {
      // Gone or no longer a directory since the stat: index it without children, as it was seen.
      if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;
      return ErrnoStatus("opening directory " + ChildPath(cname), errno);
    }
    struct stat st;
    if (::fstat(child.get(), &st) != 0) return ErrnoStatus("stat " + ChildPath(cname), errno);
    if (st.st_ino != b_.entries_[i].ino) {
      return FailedPrecondition("/" + ChildPath(cname) + " was replaced while the rootfs was being snapshotted");
    }
    KILN_ASSIGN_OR_RETURN(uint64_t xattrs, XattrHash(child.get(), false));
    if (xattrs != 0) b_.dir_xattrs_.emplace_back(static_cast<uint32_t>(i), xattrs);
    size_t mark = path_.size();
    if (!path_.empty()) path_ += '/';
    path_ += cname;
    Status s = WalkDir(child.get(), static_cast<uint32_t>(i));
    path_.resize(mark);
    KILN_RETURN_IF_ERROR(s);
  }
  return OkStatus();
}

Result<Baseline> Walker::Run(const std::string& rootfs, const WalkOptions& options) {
  for (const std::string& p : options.ignore_paths) {
    KILN_ASSIGN_OR_RETURN(std::string norm, NormalizeIgnorePath(p));
    for (size_t slash = norm.rfind('/'); slash != std::string::npos; slash = norm.rfind('/', slash - 1)) {
      ignore_parents_.insert(norm.substr(0, slash));
      if (slash == 0) break;
    }
    ignore_parents_.insert("");
    ignore_.insert(std::move(norm));
  }

  // Timestamps come from the kernel's coarse clock, so a file changed up to one tick after this
  // instant can carry a ctime just below it; the racy window therefore reaches back by ticks.
  const int64_t start_ns = NowNanos(CLOCK_REALTIME);
  struct timespec res;
  int64_t tick_ns = ::clock_getres(CLOCK_REALTIME_COARSE, &res) == 0 ? res.tv_sec * 1000000000LL + res.tv_nsec : 10000000;
  // Candidates are gathered for the widest window (a filesystem with whole-second timestamps) and
  // narrowed once the walk has shown whether this one stores nanoseconds.
  wide_threshold_ns_ = start_ns - 1000000000LL - 2 * tick_ns;

  Fd root(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) return ErrnoStatus("opening rootfs " + rootfs, errno);
  struct statx st;
  if (::statx(root.get(), "", AT_EMPTY_PATH | kStatxFlags, kStatxMask, &st) != 0) {
    return ErrnoStatus("stat rootfs " + rootfs, errno);
  }
  root_dev_major_ = st.stx_dev_major;
  root_dev_minor_ = st.stx_dev_minor;
  have_mnt_id_ = (st.stx_mask & STATX_MNT_ID) != 0;
  root_mnt_id_ = st.stx_mnt_id;

  b_.rootfs_ = rootfs;
  b_.dev_ = makedev(st.stx_dev_major, st.stx_dev_minor);
  b_.entries_.reserve(4096);
  Baseline::Entry r{};
  r.type = FileType::kDirectory;
  r.mode = static_cast<uint16_t>(st.stx_mode & 07777);
  r.nlink = st.stx_nlink;
  r.uid = st.stx_uid;
  r.gid = st.stx_gid;
  r.mtime_ns = Nanos(st.stx_mtime);
  r.ctime_ns = Nanos(st.stx_ctime);
  r.ino = st.stx_ino;
  b_.entries_.push_back(r);
  dents_.resize(64 * 1024);
  Status s = WalkDir(root.get(), 0);
  if (!s.ok()) return s.WithContext("snapshot of " + rootfs);

  if (st.stx_ctime.tv_nsec != 0) saw_subsecond_ctime_ = true;
  const int64_t granularity_ns = (saw_subsecond_ctime_ ? 0 : 1000000000LL) + 2 * tick_ns;
  b_.racy_threshold_ns_ = start_ns - granularity_ns;
  for (const auto& [index, rel] : racy_candidates_) {
    const Baseline::Entry& e = b_.entries_[index];
    if (e.ctime_ns < b_.racy_threshold_ns_) continue;
    auto digest = Fingerprint(root.get(), rel, e.type);
    if (!digest.ok()) {
      if (digest.status().code() == ErrorCode::kNotFound) continue;
      return digest.status().WithContext("snapshot of " + rootfs);
    }
    b_.racy_.emplace_back(index, std::move(*digest));
  }
  b_.entries_.shrink_to_fit();
  b_.arena_.shrink_to_fit();
  std::sort(b_.mount_points_.begin(), b_.mount_points_.end());
  std::sort(b_.ignored_.begin(), b_.ignored_.end());
  return std::move(b_);
}

}  // namespace internal

Result<Baseline> Baseline::Take(const std::string& rootfs, const WalkOptions& options) {
  internal::Walker walker;
  return walker.Run(rootfs, options);
}

}  // namespace kiln::snapshot
