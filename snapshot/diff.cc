#include "snapshot/diff.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "snapshot/fingerprint.h"

namespace kiln::snapshot {
namespace internal {

class Differ {
 public:
  Differ(const Baseline& a, const Baseline& b) : a_(a), b_(b) {}
  ~Differ() {
    if (root_fd_ >= 0) ::close(root_fd_);
  }
  Differ(const Differ&) = delete;
  Differ& operator=(const Differ&) = delete;

  Result<ChangeSet> Run();

 private:
  using Entry = Baseline::Entry;
  // Returns whether anything at or below the children of the two directories was reported.
  Result<bool> DiffDir(uint32_t ai, uint32_t bi);
  void AddTree(uint32_t bi);
  void AddTreeBelow(uint32_t bi);
  Result<bool> NonDirChanged(uint32_t ai, uint32_t bi);
  bool DirMetaChanged(uint32_t ai, uint32_t bi) const;
  void Push(std::vector<std::string>& list, std::string_view name) {
    list.push_back(path_.empty() ? std::string(name) : path_ + "/" + std::string(name));
  }

  const Baseline& a_;
  const Baseline& b_;
  ChangeSet out_;
  std::string path_;  // relative path of the directory pair being compared
  int root_fd_ = -1;  // after.rootfs(), opened on first re-hash
};

bool Differ::DirMetaChanged(uint32_t ai, uint32_t bi) const {
  const Entry& x = a_.entries_[ai];
  const Entry& y = b_.entries_[bi];
  return x.mode != y.mode || x.uid != y.uid || x.gid != y.gid || a_.DirXattrHash(ai) != b_.DirXattrHash(bi);
}

Result<bool> Differ::NonDirChanged(uint32_t ai, uint32_t bi) {
  const Entry& x = a_.entries_[ai];
  const Entry& y = b_.entries_[bi];
  if (x.type != y.type || x.mode != y.mode || x.uid != y.uid || x.gid != y.gid || x.nlink != y.nlink ||
      x.extra != y.extra || x.mtime_ns != y.mtime_ns || x.ctime_ns != y.ctime_ns || x.ino != y.ino ||
      a_.TargetOf(x) != b_.TargetOf(y)) {
    return true;
  }
  const Digest* before = a_.RacyDigest(ai);
  if (before == nullptr) return false;  // changed after the granule of `before`: ctime would differ
  if (const Digest* now = b_.RacyDigest(bi)) return *before != *now;
  if (root_fd_ < 0) {
    root_fd_ = ::open(b_.rootfs_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd_ < 0) return ErrnoStatus("opening rootfs " + b_.rootfs_, errno);
  }
  std::string rel = path_.empty() ? std::string(b_.NameOf(y)) : path_ + "/" + std::string(b_.NameOf(y));
  auto now = Fingerprint(root_fd_, rel, y.type);
  if (!now.ok()) {
    if (now.status().code() == ErrorCode::kNotFound) return true;  // gone since `after` was taken
    return now.status();
  }
  return *before != *now;
}

void Differ::AddTree(uint32_t bi) {
  const Entry& d = b_.entries_[bi];
  for (uint32_t i = Baseline::FirstChild(d), end = i + Baseline::ChildCount(d); i < end; ++i) {
    Push(out_.added_or_modified, b_.NameOf(b_.entries_[i]));
    out_.created.push_back(out_.added_or_modified.back());
    if (b_.entries_[i].type == FileType::kDirectory) AddTreeBelow(i);
  }
}

Result<bool> Differ::DiffDir(uint32_t ai, uint32_t bi) {
  const Entry& da = a_.entries_[ai];
  const Entry& db = b_.entries_[bi];
  uint32_t i = Baseline::FirstChild(da), iend = i + Baseline::ChildCount(da);
  uint32_t j = Baseline::FirstChild(db), jend = j + Baseline::ChildCount(db);
  bool any = false;
  while (i < iend || j < jend) {
    std::string_view na = i < iend ? a_.NameOf(a_.entries_[i]) : std::string_view();
    std::string_view nb = j < jend ? b_.NameOf(b_.entries_[j]) : std::string_view();
    int cmp = i >= iend ? 1 : j >= jend ? -1 : na.compare(nb);
    if (cmp < 0) {  // only before: deleted, and nothing below it is reported
      Push(out_.deleted, na);
      any = true;
      ++i;
      continue;
    }
    if (cmp > 0) {  // only after: added with its whole tree
      Push(out_.added_or_modified, nb);
      out_.created.push_back(out_.added_or_modified.back());
      if (b_.entries_[j].type == FileType::kDirectory) AddTreeBelow(j);
      any = true;
      ++j;
      continue;
    }
    const Entry& x = a_.entries_[i];
    const Entry& y = b_.entries_[j];
    if (y.type == FileType::kDirectory && x.type == FileType::kDirectory && x.ino == y.ino &&
        (x.birth == y.birth || x.birth == 0 || y.birth == 0)) {
      bool self = DirMetaChanged(i, j);
      size_t mark = path_.size();
      std::string child = path_.empty() ? std::string(nb) : path_ + "/" + std::string(nb);
      path_ = child;
      auto inner = DiffDir(i, j);
      path_.resize(mark);
      if (!inner.ok()) return inner.status();
      if (self || *inner) {
        out_.added_or_modified.push_back(std::move(child));
        any = true;
      }
    } else if (y.type == FileType::kDirectory) {  // removed and recreated, or a non-dir replaced
      Push(out_.opaque_dirs, nb);
      Push(out_.added_or_modified, nb);
      out_.created.push_back(out_.added_or_modified.back());
      AddTreeBelow(j);
      any = true;
    } else {
      KILN_ASSIGN_OR_RETURN(bool changed, NonDirChanged(i, j));
      if (changed) {
        Push(out_.added_or_modified, nb);
        if (x.ino != y.ino) out_.created.push_back(out_.added_or_modified.back());
        any = true;
      }
    }
    ++i;
    ++j;
  }
  return any;
}

// Adds everything below directory `bi` of `after`, whose path is the last one pushed.
void Differ::AddTreeBelow(uint32_t bi) {
  size_t mark = path_.size();
  path_ = out_.added_or_modified.back();
  AddTree(bi);
  path_.resize(mark);
}

Result<ChangeSet> Differ::Run() {
  if (a_.entries_.empty() || b_.entries_.empty()) return InvalidArgument("diff of an empty baseline");
  if (a_.dev_ != b_.dev_) {
    return FailedPrecondition("baselines of " + a_.rootfs_ + " and " + b_.rootfs_ +
                              " are on different filesystems; inode numbers cannot be compared");
  }
  KILN_ASSIGN_OR_RETURN(bool any, DiffDir(0, 0));
  (void)any;
  std::sort(out_.added_or_modified.begin(), out_.added_or_modified.end());
  std::sort(out_.deleted.begin(), out_.deleted.end());
  std::sort(out_.opaque_dirs.begin(), out_.opaque_dirs.end());
  std::sort(out_.created.begin(), out_.created.end());
  return std::move(out_);
}

}  // namespace internal

Result<ChangeSet> Diff(const Baseline& before, const Baseline& after) {
  internal::Differ differ(before, after);
  return differ.Run();
}

}  // namespace kiln::snapshot
