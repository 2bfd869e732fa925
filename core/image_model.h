// The image model: descriptors, manifests, indexes and image configs, in OCI and Docker flavours.
//
// Parse* validate strictly and say what is wrong (unknown media type, malformed digest, missing field);
// Serialize* produce canonical bytes (fixed field order, empty optional fields omitted, no whitespace),
// so the same model always has the same digest. Copying an image must never re-serialise what it
// pulled: keep the original bytes, whose digest is the manifest's identity. Plain value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/status.h"

namespace kiln {

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // "amd64", "arm64", ...
  std::string variant;       // "v8", "v7", ...; may be empty
  std::string os_version;
  std::vector<std::string> os_features;

  /// "os/arch[/variant]".
  std::string ToString() const;
  /// Parses "os/arch[/variant]" (also "arch" alone is refused: os is required), each component
  /// [A-Za-z0-9_.-]+ (so "linux/amd64,linux/arm64" is an error, not arch "amd64,linux"). Normalises
  /// the way containerd does: aarch64→arm64 (variant v8 implied), x86_64/x86-64→amd64, armhf→arm/v7, armel→arm/v6.
  static Result<Platform> Parse(std::string_view text);
  /// The machine kiln runs on, e.g. linux/amd64.
  static Platform Host();
  /// True when an index entry `this` satisfies the wanted platform: os and architecture equal, and
  /// the variant equal or unset in `want` (arm64 with no variant matches v8).
  bool Satisfies(const Platform& want) const;

  friend bool operator==(const Platform&, const Platform&) = default;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;  // only in index entries
  std::string artifact_type;

  friend bool operator==(const Descriptor&, const Descriptor&) = default;
};

/// A manifest document exactly as it was stored (its digest is its identity): what image stores
/// hand around, so copies keep the original bytes.
struct RawManifest {
  std::string bytes;
  std::string media_type;
  Digest digest;

  /// A descriptor of this manifest (media type, digest, size).
  Descriptor ToDescriptor() const;
};

/// OCI image manifest or Docker v2 schema 2 manifest (same shape; media_type tells which).
struct Manifest {
  int schema_version = 2;
  std::string media_type;  // may be empty only for OCI manifests that omit it
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  bool is_docker() const;
};

/// OCI image index or Docker manifest list.
struct Index {
  int schema_version = 2;
  std::string media_type;
  std::string artifact_type;
  std::vector<Descriptor> manifests;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
};

/// Docker's HEALTHCHECK settings; durations in nanoseconds as Docker stores them.
struct HealthConfig {
  std::vector<std::string> test;  // {"NONE"} | {"CMD", ...} | {"CMD-SHELL", "cmd"}
  int64_t interval = 0, timeout = 0, start_period = 0, start_interval = 0;
  int retries = 0;
  friend bool operator==(const HealthConfig&, const HealthConfig&) = default;
};

/// The runtime defaults of an image ("config" inside the image config).
struct ContainerConfig {
  std::string user;
  std::set<std::string> exposed_ports;  // "80/tcp"
  std::vector<std::string> env;         // "K=V", order kept
  std::optional<std::vector<std::string>> entrypoint;  // unset vs [] matter to Docker
  std::optional<std::vector<std::string>> cmd;
  std::set<std::string> volumes;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  bool args_escaped = false;  // Docker, Windows-only meaning; kept for round trips
  std::optional<HealthConfig> healthcheck;
  std::vector<std::string> on_build;
  std::vector<std::string> shell;

  friend bool operator==(const ContainerConfig&, const ContainerConfig&) = default;
};

struct History {
  std::string created;  // RFC 3339
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;
  friend bool operator==(const History&, const History&) = default;
};

struct ImageConfig {
  std::string created;  // RFC 3339, may be empty
  std::string author;
  std::string architecture;
  std::string os;
  std::string os_version;
  std::vector<std::string> os_features;
  std::string variant;
  ContainerConfig config;
  std::vector<Digest> diff_ids;  // rootfs.diff_ids; rootfs.type is always "layers"
  std::vector<History> history;

  Platform platform() const;
};

/// What a manifest document is, from its mediaType field or, failing that, its shape.
enum class ManifestKind { kImageManifest, kIndex };

/// Classifies manifest bytes served with `content_type` (may be empty). Schema 1 and unknown types
/// fail with kUnsupported and a message saying what to do.
Result<ManifestKind> DetectManifestKind(std::string_view json, std::string_view content_type);

Result<Manifest> ParseManifest(std::string_view json);
Result<Index> ParseIndex(std::string_view json);
Result<ImageConfig> ParseImageConfig(std::string_view json);

std::string SerializeManifest(const Manifest& m);
std::string SerializeIndex(const Index& idx);
std::string SerializeImageConfig(const ImageConfig& c);

/// RFC 3339 UTC timestamp with seconds ("2024-01-02T03:04:05Z") for a Unix time.
std::string FormatRfc3339(int64_t unix_seconds);

/// The index entry for `want` (Platform::Satisfies); lists the available platforms when none fits.
Result<Descriptor> SelectPlatform(const Index& index, const Platform& want);

}  // namespace kiln
