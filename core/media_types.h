// Media types of the OCI image spec and Docker's image manifest v2 schema 2, and predicates over them.
#pragma once

#include <string_view>

namespace kiln::media_type {

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayerNondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view kOciLayerNondistributableGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kOciLayerNondistributableZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
inline constexpr std::string_view kOciEmpty = "application/vnd.oci.empty.v1+json";

inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd";
inline constexpr std::string_view kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kDockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
inline constexpr std::string_view kDockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// OCI image manifest or Docker v2s2 manifest.
bool IsImageManifest(std::string_view mt);
/// OCI image index or Docker manifest list.
bool IsIndex(std::string_view mt);
/// Docker schema 1 (signed or not), which kiln refuses.
bool IsSchema1(std::string_view mt);
/// OCI or Docker image config.
bool IsConfig(std::string_view mt);
/// Any known layer media type (OCI, Docker, foreign, nondistributable).
bool IsLayer(std::string_view mt);
/// Layers whose content must not be pushed to another registry (foreign / nondistributable).
bool IsNondistributable(std::string_view mt);

enum class Compression { kNone, kGzip, kZstd };
/// Compression implied by a layer media type. REQUIRES: IsLayer(mt).
Compression LayerCompression(std::string_view mt);
/// Layer media type for a compression in the OCI or Docker family (Docker has no official
/// uncompressed or zstd type; the de-facto names are used).
std::string_view LayerMediaType(Compression c, bool docker);

}  // namespace kiln::media_type
