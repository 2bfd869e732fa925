// The SBOM of a built image: its packages, read from the package databases in its layers
// (image_files.h, package_db.h), as an SPDX 2.3 JSON document whose root package is the image.
#pragma once

#include <string>
#include <vector>

#include "core/digest.h"
#include "core/status.h"
#include "executor/image/built_image.h"
#include "executor/image/package_db.h"
#include "layers/oci_layout.h"

namespace kiln::executor {

/// The package databases found in an image, parsed; `warnings` name the files that could not be.
struct ImagePackages {
  std::vector<Package> packages;  ///< sorted by type, name, version, source
  std::vector<std::string> warnings;
};

/// Sorts packages in the SBOM's order: by type, name, version, source.
void SortPackages(std::vector<Package>& packages);

/// Reads /var/lib/dpkg/status, /var/lib/dpkg/status.d/*, /lib/apk/db/installed, os-release (for the
/// distro in purls) and every package-lock.json outside node_modules/ from the image's layers.
Result<ImagePackages> ReadImagePackages(const std::vector<ImageLayer>& layers, const layers::OciLayout& store);

/// What the SBOM says about the image itself.
struct SbomSubject {
  std::string name;     ///< "registry/repo" (the first destination), or "image" when there is none
  Digest digest;        ///< the image manifest's digest
  std::string created;  ///< RFC 3339; the image config's creation time, so reproducible builds agree
  std::string tool;     ///< "kiln-0.1.0"
};

/// The SPDX 2.3 JSON document (fixed field order; the same inputs give the same bytes): the image
/// as the root package (checksum = manifest digest, purl pkg:oci), each package with its purl,
/// DESCRIBES image, image CONTAINS each package.
std::string SpdxDocument(const SbomSubject& subject, const std::vector<Package>& packages);

}  // namespace kiln::executor
