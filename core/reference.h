// Image references in Docker's grammar (github.com/distribution/reference), normalised the way the
// docker CLI normalises them:
//   reference := name [":" tag] ["@" digest]
//   name      := [domain "/"] path          domain := host [":" port]
// The first path component is a registry when it contains '.' or ':', is "localhost", or has an
// upper-case letter; otherwise the registry is docker.io. Single-component Docker Hub names get
// "library/"; "index.docker.io" is an alias of "docker.io". Paths are lower case; name ≤ 255 chars;
// tags match [\w][\w.-]{0,127}; digests are validated (only sha256/sha512 are accepted).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/digest.h"
#include "core/status.h"

namespace kiln {

inline constexpr char kDockerHub[] = "docker.io";
/// The host that serves Docker Hub's distribution API.
inline constexpr char kDockerHubApiHost[] = "registry-1.docker.io";

/// Why a reference does not parse, in the terms distribution/reference (and so `docker build`) uses.
enum class ReferenceError { kNone, kFormat, kUppercase, kNameTooLong };

class Reference;
/// Reference::Parse, also saying (when `kind` is given) what kind of problem made it fail.
Result<Reference> ParseReference(std::string_view text, ReferenceError* kind);
/// kNone when `text` is a valid reference; otherwise the kind of problem Reference::Parse reports.
ReferenceError CheckReference(std::string_view text);

/// A parsed, normalised image reference. Immutable value type.
class Reference {
 public:
  /// Parses and normalises `text` ("ubuntu", "ghcr.io/a/b:1@sha256:…", "localhost:5000/x").
  /// Errors read `invalid reference "TEXT": REASON` with kInvalidArgument.
  static Result<Reference> Parse(std::string_view text);

  /// "docker.io", "localhost:5000", "[::1]:5000".
  const std::string& registry() const { return registry_; }
  /// "library/ubuntu".
  const std::string& repository() const { return repository_; }
  /// May be empty (no tag given).
  const std::string& tag() const { return tag_; }
  /// Set when the reference pins a digest.
  const std::optional<Digest>& digest() const { return digest_; }

  /// "registry/repository".
  std::string Name() const { return registry_ + "/" + repository_; }
  /// What to ask the registry for: the digest if pinned, else the tag, else "latest".
  std::string Identifier() const;
  /// The tag, or "latest" when neither tag nor digest was given, or "" for a digest-only reference.
  std::string TagOrDefault() const;
  /// Fully qualified: "docker.io/library/ubuntu:22.04", "r:5000/a@sha256:…".
  std::string ToString() const;
  /// Docker's short form: "ubuntu:22.04", "user/app", "r:5000/a".
  std::string FamiliarString() const;
  /// The host to open for the distribution API ("registry-1.docker.io" for docker.io).
  std::string ApiHost() const;

  Reference WithTag(std::string tag) const;
  Reference WithDigest(Digest d) const;

  friend bool operator==(const Reference&, const Reference&) = default;
  friend Result<Reference> ParseReference(std::string_view text, ReferenceError* kind);

 private:
  std::string registry_, repository_, tag_;
  std::optional<Digest> digest_;
};

/// Validates a tag against [\w][\w.-]{0,127}.
bool IsValidTag(std::string_view tag);
/// Normalises a registry name the way references do ("index.docker.io" → "docker.io").
std::string NormalizeRegistry(std::string_view host);
/// The API host for a (normalised) registry name: docker.io → registry-1.docker.io, else unchanged.
std::string ApiHostFor(std::string_view registry);

}  // namespace kiln
