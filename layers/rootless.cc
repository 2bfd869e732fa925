#include "layers/rootless.h"

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

}  // namespace

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

}  // namespace kiln::layers
