// The package databases an SBOM is made from, parsed from their bytes (no I/O): dpkg's status file
// (and distroless images' status.d/ files, same format), apk's installed database, and npm's
// package-lock.json (lockfileVersion 2 and 3, whose "packages" map lists every installed package).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kiln::executor {

/// One installed package, as its database records it.
struct Package {
  std::string type;  ///< purl type: "deb", "apk", "npm"
  std::string name;
  std::string version;
  std::string arch;     ///< "amd64", "x86_64"; "" when the database does not say (npm)
  std::string license;  ///< as recorded ("" when not: dpkg keeps licenses in copyright files)
  /// Where it was found: the file ("/var/lib/dpkg/status"), or for a package taken from a base
  /// image's own SBOM, "the SBOM attached to REG/REPO@sha256:…" (never starting with '/').
  std::string source;
  std::string purl;     ///< "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64"
};

/// The packages dpkg's status file `text` (from `source`) marks installed, named by `distro` in
/// their purls ("debian", "ubuntu"). Entries without a Status field count as installed (distroless
/// status.d/ files have none).
std::vector<Package> ParseDpkgStatus(std::string_view text, const std::string& source, const std::string& distro);
/// Every package of apk's /lib/apk/db/installed.
std::vector<Package> ParseApkInstalled(std::string_view text, const std::string& source, const std::string& distro);
/// The packages of an npm package-lock.json (v2/v3 "packages"; links and the root project itself
/// are left out). kInvalidArgument for malformed JSON or a lockfile without "packages" (v1).
Result<std::vector<Package>> ParseNpmLock(std::string_view text, const std::string& source);

/// The packages of an SPDX 2.x JSON document (a base image's own SBOM): each package with a purl
/// external reference, except what the document DESCRIBES (the image itself). Name and version from
/// the package, type from the purl. kInvalidArgument for malformed JSON or a document that is not SPDX.
Result<std::vector<Package>> ParseSpdxPackages(std::string_view text, const std::string& source);

/// The ID= of an os-release file ("debian", "alpine"), or "" when it has none.
std::string OsReleaseId(std::string_view text);

/// Percent-encodes a purl component: letters, digits and ".-_~" stay, every other byte is %XX.
std::string PurlEncode(std::string_view s);

}  // namespace kiln::executor
