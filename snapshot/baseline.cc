#include "snapshot/baseline.h"

#include <algorithm>

#include "core/path.h"

namespace kiln::snapshot {

std::vector<std::string> DefaultIgnorePaths() { return {"/proc", "/sys", "/dev", "/run/secrets"}; }

EntryInfo Baseline::Info(const Entry& e) const {
  EntryInfo info;
  info.name = NameOf(e);
  info.type = e.type;
  info.mode = e.mode;
  info.uid = e.uid;
  info.gid = e.gid;
  info.nlink = e.nlink;
  if (e.type == FileType::kRegular || e.type == FileType::kSymlink) info.size = e.extra;
  if (e.type == FileType::kCharDevice || e.type == FileType::kBlockDevice) info.rdev = e.extra;
  info.mtime_ns = e.mtime_ns;
  info.ctime_ns = e.ctime_ns;
  info.inode = e.ino;
  if (e.type == FileType::kSymlink) info.symlink_target = TargetOf(e);
  return info;
}

std::optional<EntryInfo> Baseline::Find(std::string_view rel_path) const {
  if (entries_.empty()) return std::nullopt;
  uint32_t cur = 0;
  for (std::string_view comp : PathComponents(rel_path)) {
    const Entry& dir = entries_[cur];
    if (dir.type != FileType::kDirectory) return std::nullopt;
    auto first = entries_.begin() + FirstChild(dir);
    auto last = first + ChildCount(dir);
    auto it = std::lower_bound(first, last, comp,
                               [this](const Entry& e, std::string_view n) { return NameOf(e) < n; });
    if (it == last || NameOf(*it) != comp) return std::nullopt;
    cur = static_cast<uint32_t>(it - entries_.begin());
  }
  return Info(entries_[cur]);
}

void Baseline::AppendPaths(uint32_t dir, std::string& prefix, std::vector<std::string>& out) const {
  const Entry& d = entries_[dir];
  for (uint32_t i = FirstChild(d), end = i + ChildCount(d); i < end; ++i) {
    size_t mark = prefix.size();
    if (!prefix.empty()) prefix += '/';
    prefix += NameOf(entries_[i]);
    out.push_back(prefix);
    if (entries_[i].type == FileType::kDirectory) AppendPaths(i, prefix, out);
    prefix.resize(mark);
  }
}

std::vector<std::string> Baseline::Paths() const {
  std::vector<std::string> out;
  if (entries_.empty()) return out;
  std::string prefix;
  AppendPaths(0, prefix, out);
  std::sort(out.begin(), out.end());
  return out;
}

const Digest* Baseline::RacyDigest(uint32_t index) const {
  auto it = std::lower_bound(racy_.begin(), racy_.end(), index,
                             [](const auto& p, uint32_t i) { return p.first < i; });
  return it != racy_.end() && it->first == index ? &it->second : nullptr;
}

uint64_t Baseline::DirXattrHash(uint32_t index) const {
  auto it = std::lower_bound(dir_xattrs_.begin(), dir_xattrs_.end(), index,
                             [](const auto& p, uint32_t i) { return p.first < i; });
  return it != dir_xattrs_.end() && it->first == index ? it->second : 0;
}

size_t Baseline::MemoryBytes() const {
  size_t n = entries_.capacity() * sizeof(Entry) + arena_.capacity() + rootfs_.capacity();
  for (const auto& [i, d] : racy_) n += sizeof(i) + sizeof(d) + d.algorithm().capacity() + d.hex().capacity();
  n += dir_xattrs_.capacity() * sizeof(dir_xattrs_[0]);
  for (const auto& s : mount_points_) n += sizeof(s) + s.capacity();
  for (const auto& s : ignored_) n += sizeof(s) + s.capacity();
  return n;
}

}  // namespace kiln::snapshot
