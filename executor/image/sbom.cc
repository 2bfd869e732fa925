#include "executor/image/sbom.h"

#include <cctype>

#include <algorithm>
#include <tuple>

#include <nlohmann/json.hpp>

#include "executor/image/image_files.h"
#include "executor/image/rpm_db.h"

namespace kiln::executor {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

constexpr std::string_view kDpkgStatus = "var/lib/dpkg/status";
constexpr std::string_view kDpkgStatusDir = "var/lib/dpkg/status.d/";
constexpr std::string_view kApkInstalled = "lib/apk/db/installed";
// RPM's SQLite database: /var/lib/rpm (RHEL/UBI 9, Amazon Linux 2023), /usr/lib/sysimage/rpm (Fedora
// ≥ 36, where /var/lib/rpm is a symbolic link to it).
constexpr std::string_view kRpmSqlite[] = {"var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"};

bool IsRpmSqlite(std::string_view path) { return path == kRpmSqlite[0] || path == kRpmSqlite[1]; }

bool IsNpmLock(std::string_view path) {
  return (path == "package-lock.json" || EndsWith(path, "/package-lock.json")) &&
         path.find("node_modules/") == std::string_view::npos;
}

bool Wanted(std::string_view path) {
  if (path == kDpkgStatus || path == kApkInstalled || path == "etc/os-release" || path == "usr/lib/os-release" ||
      IsRpmSqlite(path)) {
    return true;
  }
  if (path.substr(0, kDpkgStatusDir.size()) == kDpkgStatusDir) {
    std::string_view rest = path.substr(kDpkgStatusDir.size());
    return !rest.empty() && rest.find('/') == std::string_view::npos && !EndsWith(rest, ".md5sums");
  }
  return IsNpmLock(path);
}

}  // namespace

void SortPackages(std::vector<Package>& packages) {
  std::sort(packages.begin(), packages.end(), [](const Package& a, const Package& b) {
    return std::tie(a.type, a.name, a.version, a.source) < std::tie(b.type, b.name, b.version, b.source);
  });
}

Result<ImagePackages> ReadImagePackages(const std::vector<ImageLayer>& layers, const layers::OciLayout& store) {
  std::vector<std::string> oversized;
  KILN_ASSIGN_OR_RETURN(auto files, ReadImageFiles(layers, store, Wanted, 64u << 20, &oversized));
  std::string distro;
  for (const char* p : {"etc/os-release", "usr/lib/os-release"}) {
    auto it = files.find(p);
    if (distro.empty() && it != files.end()) distro = OsReleaseId(it->second);
  }
  ImagePackages out;
  for (const std::string& f : oversized) out.warnings.push_back("SBOM: " + f + " is too large to read; its packages are left out");
  auto add = [&out](std::vector<Package> pkgs) {
    for (Package& p : pkgs) out.packages.push_back(std::move(p));
  };
  for (auto& [path, content] : files) {
    std::string source = "/" + path;
    if (path == kDpkgStatus || path.compare(0, kDpkgStatusDir.size(), kDpkgStatusDir) == 0) {
      add(ParseDpkgStatus(content, source, distro.empty() || distro == "alpine" ? "debian" : distro));
    } else if (path == kApkInstalled) {
      add(ParseApkInstalled(content, source, distro.empty() ? "alpine" : distro));
    } else if (IsRpmSqlite(path)) {
      Result<std::vector<Package>> rpm = ParseRpmSqlite(std::move(content), source, distro.empty() || distro == "rhel" ? "redhat" : distro);
      if (rpm.ok()) {
        add(std::move(rpm).value());
      } else {
        out.warnings.push_back("SBOM: " + rpm.status().message());
      }
    } else if (IsNpmLock(path)) {
      Result<std::vector<Package>> npm = ParseNpmLock(content, source);
      if (npm.ok()) {
        add(std::move(npm).value());
      } else {
        out.warnings.push_back("SBOM: " + npm.status().message());
      }
    }
  }
  SortPackages(out.packages);
  return out;
}

std::string SpdxDocument(const SbomSubject& subject, const std::vector<Package>& packages) {
  using nlohmann::ordered_json;
  std::string name = subject.name.empty() ? "image" : subject.name;
  // The last path component names the image in its purl; the rest is where it lives.
  std::string short_name = name.substr(name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1);
  std::string image_purl = "pkg:oci/" + PurlEncode(short_name) + "@" + PurlEncode(subject.digest.ToString());
  if (short_name != name) image_purl += "?repository_url=" + PurlEncode(name);

  ordered_json doc;
  doc["spdxVersion"] = "SPDX-2.3";
  doc["dataLicense"] = "CC0-1.0";
  doc["SPDXID"] = "SPDXRef-DOCUMENT";
  doc["name"] = name + "@" + subject.digest.ToString();
  doc["documentNamespace"] = "https://spdx.org/spdxdocs/kiln/" + subject.digest.algorithm() + "-" + subject.digest.hex();
  doc["creationInfo"] = {{"created", subject.created}, {"creators", {"Tool: " + subject.tool}}};
  ordered_json pkgs = ordered_json::array();
  ordered_json image;
  image["name"] = name;
  image["SPDXID"] = "SPDXRef-Image";
  image["versionInfo"] = subject.digest.ToString();
  image["downloadLocation"] = "NOASSERTION";
  image["filesAnalyzed"] = false;
  image["primaryPackagePurpose"] = "CONTAINER";
  image["checksums"] = {{{"algorithm", "SHA256"}, {"checksumValue", subject.digest.hex()}}};
  image["externalRefs"] = {
      {{"referenceCategory", "PACKAGE-MANAGER"}, {"referenceType", "purl"}, {"referenceLocator", image_purl}}};
  pkgs.push_back(image);
  ordered_json rels = ordered_json::array();
  rels.push_back(
      {{"spdxElementId", "SPDXRef-DOCUMENT"}, {"relationshipType", "DESCRIBES"}, {"relatedSpdxElement", "SPDXRef-Image"}});
  for (size_t i = 0; i < packages.size(); ++i) {
    const Package& p = packages[i];
    std::string id = "SPDXRef-Package-" + p.type + "-" + std::to_string(i + 1);
    for (char& c : id) c = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '-';
    ordered_json j;
    j["name"] = p.name;
    j["SPDXID"] = id;
    j["versionInfo"] = p.version;
    j["downloadLocation"] = "NOASSERTION";
    j["filesAnalyzed"] = false;
    j["licenseConcluded"] = "NOASSERTION";
    // An npm or apk license field is an expression as written; SPDX wants a valid one, so it goes in
    // the comment, and licenseDeclared stays NOASSERTION rather than risk an invalid document.
    j["licenseDeclared"] = "NOASSERTION";
    if (!p.license.empty()) j["licenseComments"] = "recorded by the package database: " + p.license;
    j["sourceInfo"] = !p.source.empty() && p.source.front() == '/' ? "installed package database: " + p.source : p.source;
    j["externalRefs"] = {
        {{"referenceCategory", "PACKAGE-MANAGER"}, {"referenceType", "purl"}, {"referenceLocator", p.purl}}};
    pkgs.push_back(std::move(j));
    rels.push_back({{"spdxElementId", "SPDXRef-Image"}, {"relationshipType", "CONTAINS"}, {"relatedSpdxElement", id}});
  }
  doc["packages"] = std::move(pkgs);
  doc["relationships"] = std::move(rels);
  return doc.dump(2) + "\n";
}

}  // namespace kiln::executor
