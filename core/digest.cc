#include "core/digest.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace kiln {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsLowerHex(char c) { return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'); }

bool ValidAlgorithm(std::string_view a) {
  if (a.empty() || !IsLowerAlnum(a.front()) || !IsLowerAlnum(a.back())) return false;
  bool prev_sep = false;
  for (char c : a) {
    bool sep = c == '+' || c == '.' || c == '_' || c == '-';
    if (!sep && !IsLowerAlnum(c)) return false;
    if (sep && prev_sep) return false;
    prev_sep = sep;
  }
  return true;
}

}  // namespace

Result<Digest> Digest::Parse(std::string_view text) {
  auto quoted = [&] { return "invalid digest \"" + std::string(text.substr(0, 160)) + "\""; };
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return InvalidArgument(quoted() + ": expected ALGORITHM:HEX");
  std::string_view alg = text.substr(0, colon), enc = text.substr(colon + 1);
  if (!ValidAlgorithm(alg)) return InvalidArgument(quoted() + ": malformed algorithm");
  size_t want = 0;
  if (alg == "sha256") want = 64;
  else if (alg == "sha512") want = 128;
  else return Unsupported(quoted() + ": unsupported algorithm \"" + std::string(alg) + "\"");
  if (enc.size() != want) {
    return InvalidArgument(quoted() + ": " + std::string(alg) + " needs " + std::to_string(want) +
                           " hex characters, got " + std::to_string(enc.size()));
  }
  for (char c : enc) {
    if (!IsLowerHex(c)) return InvalidArgument(quoted() + ": not lowercase hex");
  }
  Digest d;
  d.algorithm_ = std::string(alg);
  d.hex_ = std::string(enc);
  return d;
}

Digest Digest::FromSha256(const std::array<uint8_t, 32>& bytes) {
  static const char kHex[] = "0123456789abcdef";
  Digest d;
  d.algorithm_ = "sha256";
  d.hex_.resize(64);
  for (size_t i = 0; i < 32; ++i) {
    d.hex_[2 * i] = kHex[bytes[i] >> 4];
    d.hex_[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return d;
}

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) std::abort();
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::Update(const void* data, size_t n) {
  if (n > 0) EVP_DigestUpdate(impl_->ctx, data, n);
}

Digest Sha256::Finish() {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out.data(), &len);
  return Digest::FromSha256(out);
}

Digest Sha256Of(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

}  // namespace kiln
