#include "snapshot/fingerprint.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/unique_fd.h"

namespace kiln::snapshot::internal {
namespace {


// O_PATH descriptors do not support f*xattr(); the /proc/self/fd magic link resolves to exactly the
// inode the descriptor holds (a symlink stays a symlink), so the path variants are safe there.
std::string ProcFdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

ssize_t ListXattrs(int fd, bool path_only, char* buf, size_t n) {
  if (path_only) return ::listxattr(ProcFdPath(fd).c_str(), buf, n);
  return ::flistxattr(fd, buf, n);
}

ssize_t GetXattr(int fd, bool path_only, const char* name, void* buf, size_t n) {
  if (path_only) return ::getxattr(ProcFdPath(fd).c_str(), name, buf, n);
  return ::fgetxattr(fd, name, buf, n);
}

bool NoXattrSupport(int err) { return err == ENOTSUP || err == ENODATA || err == EBADF; }

// Feeds the sorted (name, value) pairs of `fd` to `hash`; returns how many there were.
Result<size_t> HashXattrs(int fd, bool path_only, Sha256& hash) {
  std::string names;
  for (;;) {
    ssize_t n = ListXattrs(fd, path_only, nullptr, 0);
    if (n < 0) {
      if (NoXattrSupport(errno)) return size_t{0};
      return ErrnoStatus("listing extended attributes", errno);
    }
    if (n == 0) return size_t{0};
    names.resize(static_cast<size_t>(n));
    n = ListXattrs(fd, path_only, names.data(), names.size());
    if (n >= 0) {
      names.resize(static_cast<size_t>(n));
      break;
    }
    if (errno != ERANGE) return ErrnoStatus("listing extended attributes", errno);  // ERANGE: grew
  }
  std::vector<std::string_view> list;
  for (size_t pos = 0; pos < names.size();) {
    size_t end = names.find('\0', pos);
    if (end == std::string::npos) end = names.size();
    if (end > pos) list.emplace_back(names.data() + pos, end - pos);
    pos = end + 1;
  }
  std::sort(list.begin(), list.end());
  std::string value;
  for (std::string_view name : list) {
    std::string cname(name);
    ssize_t n;
    for (;;) {
      n = GetXattr(fd, path_only, cname.c_str(), nullptr, 0);
      if (n < 0) break;
      value.resize(static_cast<size_t>(n));
      n = GetXattr(fd, path_only, cname.c_str(), value.data(), value.size());
      if (n >= 0 || errno != ERANGE) break;
    }
    if (n < 0) {
      if (errno == ENODATA) continue;  // removed between list and get
      return ErrnoStatus("reading extended attribute " + cname, errno);
    }
    value.resize(static_cast<size_t>(n));
    uint64_t len = value.size();
    hash.Update(cname.data(), cname.size() + 1);  // with its NUL: names cannot contain one
    hash.Update(&len, sizeof len);
    hash.Update(value);
  }
  return list.size();
}

}  // namespace

Result<int> OpenBeneath(int root_fd, std::string_view rel_path, int flags) {
  int dir = root_fd;
  std::string component;
  size_t pos = 0;
  for (;;) {
    size_t slash = rel_path.find('/', pos);
    bool last = slash == std::string_view::npos;
    component.assign(rel_path.substr(pos, last ? std::string_view::npos : slash - pos));
    if (component.empty() || component == "." || component == "..") {
      if (dir != root_fd) ::close(dir);
      return InvalidArgument("invalid path inside the rootfs: " + std::string(rel_path));
    }
    int fd = last ? ::openat(dir, component.c_str(), flags | O_NOFOLLOW | O_CLOEXEC)
                  : ::openat(dir, component.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    if (dir != root_fd) ::close(dir);
    if (fd < 0) return ErrnoStatus("opening " + std::string(rel_path), err);
    if (last) return fd;
    dir = fd;
    pos = slash + 1;
  }
}

Result<Digest> Fingerprint(int root_fd, std::string_view rel_path, FileType type) {
  bool path_only = type != FileType::kRegular && type != FileType::kDirectory;
  int flags = type == FileType::kRegular ? O_RDONLY : type == FileType::kDirectory ? O_RDONLY | O_DIRECTORY : O_PATH;
  KILN_ASSIGN_OR_RETURN(int fd, OpenBeneath(root_fd, rel_path, flags));
  UniqueFd closer(fd);
  Sha256 hash;
  uint64_t total = 0;
  if (type == FileType::kRegular) {
    std::string buf(256 * 1024, '\0');
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("reading " + std::string(rel_path), errno);
      if (n == 0) break;
      hash.Update(buf.data(), static_cast<size_t>(n));
      total += static_cast<uint64_t>(n);
    }
  }
  // The contents' length separates them from the xattrs that follow.
  hash.Update(&total, sizeof total);
  auto count = HashXattrs(fd, path_only, hash);
  if (!count.ok()) return count.status().WithContext(std::string(rel_path));
  return hash.Finish();
}

Result<uint64_t> XattrHash(int fd, bool path_only) {
  Sha256 hash;
  KILN_ASSIGN_OR_RETURN(size_t count, HashXattrs(fd, path_only, hash));
  if (count == 0) return uint64_t{0};
  std::string hex = hash.Finish().hex().substr(0, 16);
  uint64_t h = std::stoull(hex, nullptr, 16);
  return h == 0 ? 1 : h;
}

}  // namespace kiln::snapshot::internal
