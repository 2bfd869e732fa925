// How kiln keeps image ownership that an unprivileged process cannot apply on disk.
//
// When kiln extracts a layer without the right to chown (rootless, or in a pod without CAP_CHOWN),
// the file on disk is owned by the extracting user. The image's real uid/gid is then stored on the
// file in the extended attribute `user.rootlesscontainers`, in the same encoding umoci uses (a
// protobuf message `Resource { uint32 uid = 1; uint32 gid = 2; }`), so umoci and kiln understand
// each other's rootfs. The layer writer reads the attribute back and puts the stored uid/gid into
// the tar header; the attribute itself never appears in a layer.
//
// Modes need no such trick: the owner of a file may set any of its mode bits, and the extractor
// applies them (making directories temporarily writable while filling them).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kiln::layers {

inline constexpr char kRootlessXattr[] = "user.rootlesscontainers";

struct RootlessOwner {
  uint32_t uid = 0;
  uint32_t gid = 0;
  friend bool operator==(const RootlessOwner&, const RootlessOwner&) = default;
};

/// Encodes the protobuf message (zero fields are omitted, as proto3 does).
std::string EncodeRootlessOwner(const RootlessOwner& owner);
/// Decodes the protobuf message; nullopt when the bytes are not a valid message.
std::optional<RootlessOwner> DecodeRootlessOwner(std::string_view bytes);

// Reading and writing the attribute. The kernel keeps user.* xattrs only on regular files and
// directories: a symlink or special file never has one.

/// The owner stored on the open file `fd` (an O_PATH descriptor too). nullopt when there is none,
/// the file cannot carry one, or the value is not a valid message.
std::optional<RootlessOwner> ReadRootlessOwner(int fd);
/// The owner stored on `name` inside the directory `dirfd`, without following `name` when it is a
/// symlink. nullopt as above.
std::optional<RootlessOwner> ReadRootlessOwner(int dirfd, const std::string& name);

/// The owner the image means for a file kiln has open (`fd` >= 0) or can name (`dirfd` + `name`),
/// whose lstat is `st`: the stored attribute when there is one, else the owner on disk. Symlinks
/// are never read through.
RootlessOwner ImageOwner(int fd, int dirfd, const char* name, const struct stat& st);

/// Stores `owner` on the open file `fd` (a regular file or directory; an O_PATH descriptor too).
/// Errors name `display`, the path as the user knows it ("recording the owner of /etc in
/// user.rootlesscontainers: ...").
[[nodiscard]] Status WriteRootlessOwner(int fd, const RootlessOwner& owner, std::string_view display);
/// Stores `owner` on `name` inside the directory `dirfd`, without following `name` when it is a
/// symlink. false (nothing stored) when the kernel refuses with EPERM: `name` cannot carry user
/// xattrs (a symlink or special file). Other errors name `display`.
[[nodiscard]] Result<bool> WriteRootlessOwner(int dirfd, const std::string& name, const RootlessOwner& owner,
                                              std::string_view display);

}  // namespace kiln::layers
