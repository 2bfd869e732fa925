// Content digests ("sha256:<64 hex>") and a streaming SHA-256 hasher over OpenSSL.
//
// kiln verifies everything it reads by digest and names everything it writes by digest, so this is the
// one place that knows the digest grammar of the OCI image spec:
//   digest    := algorithm ":" encoded
//   algorithm := [a-z0-9]+ ([+._-] [a-z0-9]+)*
// Only sha256 is computed; sha512 digests parse (so manifests that mention them are understood) but
// cannot be verified.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kiln {

/// An immutable, validated content digest.
class Digest {
 public:
  Digest() = default;  // empty; valid() is false

  /// Parses and validates "sha256:<64 lowercase hex>" (or sha512 with 128). Errors name the input.
  static Result<Digest> Parse(std::string_view text);
  /// Builds "sha256:<hex>" from 32 raw bytes.
  static Digest FromSha256(const std::array<uint8_t, 32>& bytes);

  bool valid() const { return !algorithm_.empty(); }
  const std::string& algorithm() const { return algorithm_; }
  /// The part after the colon (lowercase hex for sha256).
  const std::string& hex() const { return hex_; }
  /// "sha256:<hex>".
  std::string ToString() const { return algorithm_ + ":" + hex_; }
  /// First 12 hex characters, for logs: "sha256:ab12cd34ef56".
  std::string Short() const { return algorithm_ + ":" + hex_.substr(0, 12); }

  friend bool operator==(const Digest& a, const Digest& b) = default;
  friend auto operator<=>(const Digest& a, const Digest& b) = default;

 private:
  std::string algorithm_;
  std::string hex_;
};

/// Streaming SHA-256. Not thread-safe; one instance per stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  /// Returns the digest of everything passed to Update. The hasher may not be used afterwards.
  Digest Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// SHA-256 of a byte string.
Digest Sha256Of(std::string_view data);

}  // namespace kiln
