#include "layers/rootless.h"

#include <sys/xattr.h>

#include <cerrno>

namespace kiln::layers {
namespace {

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    uint8_t b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// The attribute is a few bytes; a longer value is not ours (and fails to decode anyway).
constexpr size_t kMaxValue = 64;

std::string ProcFd(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// A name inside an already-resolved directory, for the calls that have no *at() form: the directory
// part is a magic link to exactly that directory; l*xattr does not follow the name.
std::string ProcPath(int dirfd, const std::string& name) { return ProcFd(dirfd) + "/" + name; }

std::optional<RootlessOwner> Decoded(const char* value, ssize_t n) {
  if (n < 0) return std::nullopt;
  return DecodeRootlessOwner(std::string_view(value, static_cast<size_t>(n)));
}

Status WriteError(std::string_view display, int err) {
  return ErrnoStatus("recording the owner of " + std::string(display) + " in " + kRootlessXattr, err);
}

}  // namespace

std::optional<RootlessOwner> ReadRootlessOwner(int fd) {
  char value[kMaxValue];
  ssize_t n = ::fgetxattr(fd, kRootlessXattr, value, sizeof value);
  // An O_PATH descriptor has no f*xattr: the magic link leads to exactly its file.
  if (n < 0 && errno == EBADF) n = ::getxattr(ProcFd(fd).c_str(), kRootlessXattr, value, sizeof value);
  return Decoded(value, n);
}

std::optional<RootlessOwner> ReadRootlessOwner(int dirfd, const std::string& name) {
  char value[kMaxValue];
  return Decoded(value, ::lgetxattr(ProcPath(dirfd, name).c_str(), kRootlessXattr, value, sizeof value));
}

Status WriteRootlessOwner(int fd, const RootlessOwner& owner, std::string_view display) {
  std::string value = EncodeRootlessOwner(owner);
  int rc = ::fsetxattr(fd, kRootlessXattr, value.data(), value.size(), 0);
  if (rc != 0 && errno == EBADF) rc = ::setxattr(ProcFd(fd).c_str(), kRootlessXattr, value.data(), value.size(), 0);
  if (rc != 0) return WriteError(display, errno);
  return OkStatus();
}

Result<bool> WriteRootlessOwner(int dirfd, const std::string& name, const RootlessOwner& owner,
                                std::string_view display) {
  std::string value = EncodeRootlessOwner(owner);
  if (::lsetxattr(ProcPath(dirfd, name).c_str(), kRootlessXattr, value.data(), value.size(), 0) == 0) return true;
  if (errno == EPERM) return false;
  return WriteError(display, errno);
}

std::string EncodeRootlessOwner(const RootlessOwner& owner) {
  std::string out;
  if (owner.uid != 0) {
    out.push_back(0x08);  // field 1, varint
    PutVarint(out, owner.uid);
  }
  if (owner.gid != 0) {
    out.push_back(0x10);  // field 2, varint
    PutVarint(out, owner.gid);
  }
  return out;
}

std::optional<RootlessOwner> DecodeRootlessOwner(std::string_view bytes) {
  RootlessOwner owner;
  while (!bytes.empty()) {
    uint64_t key, value;
    if (!GetVarint(bytes, &key)) return std::nullopt;
    if ((key & 7) != 0) return std::nullopt;  // only varint fields are defined
    if (!GetVarint(bytes, &value) || value > UINT32_MAX) return std::nullopt;
    if ((key >> 3) == 1) owner.uid = static_cast<uint32_t>(value);
    else if ((key >> 3) == 2) owner.gid = static_cast<uint32_t>(value);
    // unknown fields are skipped, as protobuf requires
  }
  return owner;
}

RootlessOwner ImageOwner(int fd, int dirfd, const char* name, const struct stat& st) {
  std::optional<RootlessOwner> o;
  if (fd >= 0) {
    o = ReadRootlessOwner(fd);
  } else if (!S_ISLNK(st.st_mode) && dirfd >= 0 && name != nullptr) {
    o = ReadRootlessOwner(dirfd, name);
  }
  if (o) return *o;
  return {st.st_uid, st.st_gid};
}

}  // namespace kiln::layers
