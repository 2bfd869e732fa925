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

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

}  // namespace kiln::layers
