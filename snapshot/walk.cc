// Baseline::Take: the walk.
//
// One getdents64 pass per directory, one statx per entry, an openat per subdirectory. Each
// directory's children are statted and appended as one sorted block before any of them is entered,
// which gives the block layout Baseline and Diff rely on without ever sorting whole paths. Blocks may
// sit anywhere in the entry vector, so several workers can each fill their own part of it: a worker
// hands a subdirectory (as an open fd) to an idle one through a short queue, otherwise it descends
// itself; the parts are concatenated and the block references fixed up at the end.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/path.h"
#include "core/unique_fd.h"
#include "snapshot/baseline.h"
#include "snapshot/fingerprint.h"

namespace kiln::snapshot {
namespace internal {
namespace {

constexpr unsigned kStatxMask = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_GID | STATX_MTIME |
                                STATX_CTIME | STATX_INO | STATX_SIZE | STATX_MNT_ID | STATX_BTIME;
// DONT_SYNC: a network filesystem need not refetch attributes; AT_NO_AUTOMOUNT: never trigger one.
constexpr int kStatxFlags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC;


int64_t Nanos(const struct statx_timestamp& t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

// 16 bits of the birth time, never 0 (0 means "unknown"). A directory removed and made again within
// the same nanosecond-resolution birth time and hash bucket is not told apart: its children are then
// whited out one by one instead of an opaque marker, which extracts to the same tree.
uint16_t BirthHash(const struct statx_timestamp& t) {
  uint64_t x = static_cast<uint64_t>(Nanos(t)) * 0x9E3779B97F4A7C15ull;
  uint16_t h = static_cast<uint16_t>(x >> 48);
  return h == 0 ? 1 : h;
}

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
  for (std::string_view comp : PathComponents(p)) {
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
  using Entry = Baseline::Entry;
  static constexpr uint32_t kNoBlock = UINT32_MAX;  // a directory that vanished before we entered it
  static constexpr size_t kMaxQueued = 8;           // bounds the directory fds held by the queue

  // What one worker produced; entry indexes are local until Assemble.
  struct Part {
    std::vector<Entry> entries;
    std::string arena;
    std::vector<std::pair<uint32_t, std::string>> racy_candidates;
    std::vector<std::pair<uint32_t, uint64_t>> dir_xattrs;
    std::vector<std::string> mount_points, ignored;
    bool saw_subsecond_ctime = false;
    std::string dents;  // getdents64 buffer
    uint32_t index = 0;
  };
  struct Task {
    uint32_t id;  // the directory's block id
    int fd;       // owned
    std::string path;
  };
  struct Block {
    uint32_t part = 0, first = 0, count = 0;
  };

  void Work(Part& part);
  // Lists directory `fd` into a block of `part`, then enters or hands off its subdirectories.
  Status ListDir(Part& part, int fd, uint32_t id, const std::string& path);
  uint32_t NewBlockId();
  bool IsMount(const struct statx& st) const;

  // Read-only while workers run.
  std::unordered_set<std::string> ignore_;          // normalized relative paths
  std::unordered_set<std::string> ignore_parents_;  // directories that contain an ignored path
  uint32_t root_dev_major_ = 0, root_dev_minor_ = 0;
  uint64_t root_mnt_id_ = 0;
  bool have_mnt_id_ = false;
  int64_t wide_threshold_ns_ = 0;
  unsigned threads_ = 1;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;  // guarded by mu_
  unsigned busy_ = 0;       // guarded by mu_: workers holding a task
  Status error_;            // guarded by mu_: the first failure stops everyone
  std::deque<Block> blocks_;  // guarded by mu_ (ids are handed out under it); deque: stable refs
};

bool Walker::IsMount(const struct statx& st) const {
  if (st.stx_dev_major != root_dev_major_ || st.stx_dev_minor != root_dev_minor_) return true;
  // A bind mount from the same filesystem keeps st_dev; its mount id tells it apart.
  if (have_mnt_id_ && (st.stx_mask & STATX_MNT_ID) && st.stx_mnt_id != root_mnt_id_) return true;
  return (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (st.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

uint32_t Walker::NewBlockId() {
  std::lock_guard<std::mutex> lock(mu_);
  blocks_.emplace_back();
  return static_cast<uint32_t>(blocks_.size() - 1);
}

Status Walker::ListDir(Part& part, int fd, uint32_t id, const std::string& path) {
  // Read every name first: the block of children must be complete before recursing.
  std::string names;
  std::vector<std::pair<uint32_t, uint16_t>> spans;  // offset, length into `names`
  for (;;) {
    long n = ::syscall(SYS_getdents64, fd, part.dents.data(), part.dents.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading directory /" + path, errno);
    if (n == 0) break;
    for (long off = 0; off < n;) {
      // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
      const char* rec = part.dents.data() + off;
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

  const bool check_ignores = ignore_parents_.count(path) != 0;
  const size_t first = part.entries.size();
  char target[PATH_MAX + 1];
  std::string cname;
  for (const auto& span : spans) {
    std::string_view name = view(span);
    if (check_ignores) {
      std::string child = JoinPath(path, name);
      if (ignore_.count(child)) {
        part.ignored.push_back(std::move(child));
        continue;
      }
    }
    cname.assign(name);
    struct statx st;
    if (::statx(fd, cname.c_str(), kStatxFlags, kStatxMask, &st) != 0) {
      if (errno == ENOENT) continue;  // removed while we walked
      return ErrnoStatus("stat /" + JoinPath(path, name), errno);
    }
    if (IsMount(st)) {
      part.mount_points.push_back(JoinPath(path, name));
      continue;
    }
    auto type = TypeOf(st.stx_mode);
    if (!type.ok()) return type.status().WithContext("/" + JoinPath(path, name));
    Entry e{};
    e.name_off = static_cast<uint32_t>(part.arena.size());
    e.name_len = static_cast<uint8_t>(name.size());
    e.type = *type;
    e.mode = static_cast<uint16_t>(st.stx_mode & 07777);
    e.nlink = st.stx_nlink;
    e.uid = st.stx_uid;
    e.gid = st.stx_gid;
    e.mtime_ns = Nanos(st.stx_mtime);
    e.ctime_ns = Nanos(st.stx_ctime);
    e.ino = st.stx_ino;
    if (e.type == FileType::kDirectory && (st.stx_mask & STATX_BTIME)) e.birth = BirthHash(st.stx_btime);
    if (st.stx_ctime.tv_nsec != 0) part.saw_subsecond_ctime = true;
    part.arena.append(name);
    switch (e.type) {
      case FileType::kRegular: e.extra = st.stx_size; break;
      case FileType::kCharDevice:
      case FileType::kBlockDevice: e.extra = makedev(st.stx_rdev_major, st.stx_rdev_minor); break;
      case FileType::kDirectory: e.extra = kNoBlock; break;
      case FileType::kSymlink: {
        ssize_t n = ::readlinkat(fd, cname.c_str(), target, sizeof target);
        if (n < 0) return ErrnoStatus("reading symlink /" + JoinPath(path, name), errno);
        if (static_cast<size_t>(n) >= sizeof target) return IoError("symlink target too long: /" + JoinPath(path, name));
        e.target_len = static_cast<uint16_t>(n);
        e.extra = static_cast<uint64_t>(n);
        part.arena.append(target, static_cast<size_t>(n));
        break;
      }
      default: break;
    }
    if (e.type != FileType::kDirectory && e.ctime_ns >= wide_threshold_ns_) {
      part.racy_candidates.emplace_back(static_cast<uint32_t>(part.entries.size()), JoinPath(path, name));
    }
    part.entries.push_back(e);
  }
  const size_t count = part.entries.size() - first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Block& b = blocks_[id];
    b.part = part.index;
    b.first = static_cast<uint32_t>(first);
    b.count = static_cast<uint32_t>(count);
  }

  for (size_t i = first; i < first + count; ++i) {
    if (part.entries[i].type != FileType::kDirectory) continue;
    cname.assign(part.arena, part.entries[i].name_off, part.entries[i].name_len);
    int child = ::openat(fd, cname.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child < 0) {
      // Gone or no longer a directory since the stat: index it without children, as it was seen.
      if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;
      return ErrnoStatus("opening directory /" + JoinPath(path, cname), errno);
    }
    UniqueFd owned(child);
    struct stat st;
    if (::fstat(child, &st) != 0) return ErrnoStatus("stat /" + JoinPath(path, cname), errno);
    if (st.st_ino != part.entries[i].ino) {
      return FailedPrecondition("/" + JoinPath(path, cname) + " was replaced while the rootfs was being snapshotted");
    }
    auto xattrs = XattrHash(child, false);
    if (!xattrs.ok()) return xattrs.status().WithContext("/" + JoinPath(path, cname));
    if (*xattrs != 0) part.dir_xattrs.emplace_back(static_cast<uint32_t>(i), *xattrs);
    uint32_t child_id = NewBlockId();
    part.entries[i].extra = child_id;
    std::string child_path = JoinPath(path, cname);
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!error_.ok()) return OkStatus();  // someone failed; stop quietly
      if (busy_ < threads_ && queue_.size() < kMaxQueued) {
        queue_.push_back(Task{child_id, owned.Release(), std::move(child_path)});
        cv_.notify_one();
        continue;
      }
    }
    KILN_RETURN_IF_ERROR(ListDir(part, child, child_id, child_path));
  }
  return OkStatus();
}

void Walker::Work(Part& part) {
  part.dents.resize(64 * 1024);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return !queue_.empty() || busy_ == 0 || !error_.ok(); });
    if (!error_.ok() || queue_.empty()) break;  // failed, or nothing queued and nobody busy: done
    Task task = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    Status s = ListDir(part, task.fd, task.id, task.path);
    ::close(task.fd);
    lock.lock();
    --busy_;
    if (!s.ok() && error_.ok()) error_ = s;
    cv_.notify_all();
  }
  cv_.notify_all();
}

Result<Baseline> Walker::Run(const std::string& rootfs, const WalkOptions& options) {
  for (const std::string& p : options.ignore_paths) {
    KILN_ASSIGN_OR_RETURN(std::string norm, NormalizeIgnorePath(p));
    for (std::string_view parent : PathAncestors(norm)) ignore_parents_.emplace(parent);
    ignore_parents_.insert("");
    ignore_.insert(std::move(norm));
  }
  threads_ = std::max(1u, options.threads);

  // Timestamps come from the kernel's coarse clock, so a file changed up to one tick after this
  // instant can carry a ctime just below it; the racy window therefore reaches back by ticks.
  const int64_t start_ns = NowNanos(CLOCK_REALTIME);
  struct timespec res;
  int64_t tick_ns = ::clock_getres(CLOCK_REALTIME_COARSE, &res) == 0 ? res.tv_sec * 1000000000LL + res.tv_nsec : 10000000;
  // Candidates are gathered for the widest window (a filesystem with whole-second timestamps) and
  // narrowed once the walk has shown whether this one stores nanoseconds.
  wide_threshold_ns_ = start_ns - 1000000000LL - 2 * tick_ns;

  UniqueFd root(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) return ErrnoStatus("opening rootfs " + rootfs, errno);
  struct statx st;
  if (::statx(root.get(), "", AT_EMPTY_PATH | kStatxFlags, kStatxMask, &st) != 0) {
    return ErrnoStatus("stat rootfs " + rootfs, errno);
  }
  root_dev_major_ = st.stx_dev_major;
  root_dev_minor_ = st.stx_dev_minor;
  have_mnt_id_ = (st.stx_mask & STATX_MNT_ID) != 0;
  root_mnt_id_ = st.stx_mnt_id;

  int root_for_walk = ::fcntl(root.get(), F_DUPFD_CLOEXEC, 0);
  if (root_for_walk < 0) return ErrnoStatus("duplicating rootfs descriptor", errno);
  queue_.push_back(Task{NewBlockId(), root_for_walk, ""});
  std::vector<Part> parts(threads_);
  for (unsigned i = 0; i < threads_; ++i) parts[i].index = i;
  std::vector<std::thread> helpers;
  for (unsigned i = 1; i < threads_; ++i) helpers.emplace_back([this, &parts, i] { Work(parts[i]); });
  Work(parts[0]);
  for (auto& t : helpers) t.join();
  for (Task& t : queue_) ::close(t.fd);  // left only after a failure
  if (!error_.ok()) return error_.WithContext("snapshot of " + rootfs);

  // Assemble: the root, then each part; block ids become (first index, count).
  Baseline b;
  b.rootfs_ = rootfs;
  b.dev_ = makedev(st.stx_dev_major, st.stx_dev_minor);
  size_t total = 1, arena = 0;
  for (const Part& p : parts) total += p.entries.size(), arena += p.arena.size();
  b.entries_.reserve(total);
  b.arena_.reserve(arena);
  Entry r{};
  r.type = FileType::kDirectory;
  r.mode = static_cast<uint16_t>(st.stx_mode & 07777);
  r.nlink = st.stx_nlink;
  r.uid = st.stx_uid;
  r.gid = st.stx_gid;
  r.mtime_ns = Nanos(st.stx_mtime);
  r.ctime_ns = Nanos(st.stx_ctime);
  r.ino = st.stx_ino;
  r.extra = 0;  // block id of the root
  b.entries_.push_back(r);
  std::vector<uint32_t> part_offset(parts.size());
  bool saw_subsecond_ctime = st.stx_ctime.tv_nsec != 0;
  std::vector<std::pair<uint32_t, std::string>> candidates;
  for (Part& p : parts) {
    const uint32_t offset = static_cast<uint32_t>(b.entries_.size());
    const uint32_t arena_offset = static_cast<uint32_t>(b.arena_.size());
    part_offset[p.index] = offset;
    for (Entry e : p.entries) {
      e.name_off += arena_offset;
      b.entries_.push_back(e);
    }
    b.arena_ += p.arena;
    for (auto& [i, rel] : p.racy_candidates) candidates.emplace_back(i + offset, std::move(rel));
    for (auto& [i, h] : p.dir_xattrs) b.dir_xattrs_.emplace_back(i + offset, h);
    for (auto& m : p.mount_points) b.mount_points_.push_back(std::move(m));
    for (auto& m : p.ignored) b.ignored_.push_back(std::move(m));
    saw_subsecond_ctime = saw_subsecond_ctime || p.saw_subsecond_ctime;
    p = Part{};  // release as we go: peak memory stays near one copy
  }
  for (Entry& e : b.entries_) {
    if (e.type != FileType::kDirectory) continue;
    if (e.extra == kNoBlock) {
      e.extra = 0;
      continue;
    }
    const Block& blk = blocks_[e.extra];
    e.extra = (static_cast<uint64_t>(part_offset[blk.part] + blk.first) << 32) | blk.count;
  }
  std::sort(b.dir_xattrs_.begin(), b.dir_xattrs_.end());
  std::sort(b.mount_points_.begin(), b.mount_points_.end());
  std::sort(b.ignored_.begin(), b.ignored_.end());

  const int64_t granularity_ns = (saw_subsecond_ctime ? 0 : 1000000000LL) + 2 * tick_ns;
  b.racy_threshold_ns_ = start_ns - granularity_ns;
  for (const auto& [index, rel] : candidates) {
    const Entry& e = b.entries_[index];
    if (e.ctime_ns < b.racy_threshold_ns_) continue;
    auto digest = Fingerprint(root.get(), rel, e.type);
    if (!digest.ok()) {
      if (digest.status().code() == ErrorCode::kNotFound) continue;
      return digest.status().WithContext("snapshot of " + rootfs);
    }
    b.racy_.emplace_back(index, std::move(*digest));
  }
  std::sort(b.racy_.begin(), b.racy_.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  return b;
}

}  // namespace internal

Result<Baseline> Baseline::Take(const std::string& rootfs, const WalkOptions& options) {
  internal::Walker walker;
  return walker.Run(rootfs, options);
}

}  // namespace kiln::snapshot
