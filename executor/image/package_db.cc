#include "executor/image/package_db.h"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/json_fields.h"

namespace kiln::executor {
namespace {

// The paragraphs of a deb822-style file (dpkg status): field → value, continuation lines appended.
std::vector<std::map<std::string, std::string>> Deb822(std::string_view text) {
  std::vector<std::map<std::string, std::string>> out;
  std::map<std::string, std::string> cur;
  std::string last;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
      last.clear();
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      if (!last.empty()) cur[last] += "\n" + std::string(line.substr(1));
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    last = std::string(line.substr(0, colon));
    cur[last] = std::string(value);
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::string Get(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? std::string() : it->second;
}

}  // namespace

std::string PurlEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::vector<Package> ParseDpkgStatus(std::string_view text, const std::string& source, const std::string& distro) {
  std::vector<Package> out;
  for (const auto& p : Deb822(text)) {
    std::string status = Get(p, "Status");
    // "install ok installed"; "deinstall ok config-files" and "not-installed" leave only traces.
    if (!status.empty() && (status.size() < 9 || status.compare(status.size() - 9, 9, "installed") != 0 ||
                            status.find("not-installed") != std::string::npos)) {
      continue;
    }
    Package pkg;
    pkg.type = "deb";
    pkg.name = Get(p, "Package");
    pkg.version = Get(p, "Version");
    pkg.arch = Get(p, "Architecture");
    pkg.source = source;
    if (pkg.name.empty()) continue;
    pkg.purl = "pkg:deb/" + PurlEncode(distro) + "/" + PurlEncode(pkg.name) + "@" + PurlEncode(pkg.version) +
               (pkg.arch.empty() ? "" : "?arch=" + PurlEncode(pkg.arch));
    out.push_back(std::move(pkg));
  }
  return out;
}

std::vector<Package> ParseApkInstalled(std::string_view text, const std::string& source, const std::string& distro) {
  std::vector<Package> out;
  Package cur;
  auto flush = [&] {
    if (!cur.name.empty()) {
      cur.type = "apk";
      cur.source = source;
      cur.purl = "pkg:apk/" + PurlEncode(distro) + "/" + PurlEncode(cur.name) + "@" + PurlEncode(cur.version) +
                 (cur.arch.empty() ? "" : "?arch=" + PurlEncode(cur.arch));
      out.push_back(std::move(cur));
    }
    cur = Package();
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.empty()) {
      flush();
      continue;
    }
    if (line.size() < 2 || line[1] != ':') continue;
    std::string value(line.substr(2));
    switch (line[0]) {
      case 'P': cur.name = value; break;
      case 'V': cur.version = value; break;
      case 'A': cur.arch = value; break;
      case 'L': cur.license = value; break;
      default: break;
    }
  }
  flush();
  return out;
}

Result<std::vector<Package>> ParseNpmLock(std::string_view text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return InvalidArgument(source + ": not JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("packages") || !j["packages"].is_object()) {
    return InvalidArgument(source + ": no \"packages\" map (lockfileVersion 1 is not read; npm 7 and later write 2 or 3)");
  }
  std::vector<Package> out;
  static const std::string kNodeModules = "node_modules/";
  for (const auto& [key, entry] : j["packages"].items()) {
    if (key.empty() || !entry.is_object()) continue;  // "" is the project itself
    if (JsonTrueField(entry, "link")) continue;         // a workspace link: its target is listed too
    size_t at = key.rfind(kNodeModules);
    if (at == std::string::npos) continue;  // a workspace folder, not an installed package
    Package pkg;
    pkg.type = "npm";
    pkg.name = entry.contains("name") && entry["name"].is_string() ? entry["name"].get<std::string>()
                                                                    : key.substr(at + kNodeModules.size());
    pkg.version = JsonStringField(entry, "version");
    pkg.license = JsonStringField(entry, "license");
    pkg.source = source;
    std::string ns, name = pkg.name;
    if (!name.empty() && name[0] == '@' && name.find('/') != std::string::npos) {
      ns = name.substr(0, name.find('/'));
      name = name.substr(name.find('/') + 1);
    }
    pkg.purl = "pkg:npm/" + (ns.empty() ? "" : PurlEncode(ns) + "/") + PurlEncode(name) +
               (pkg.version.empty() ? "" : "@" + PurlEncode(pkg.version));
    out.push_back(std::move(pkg));
  }
  return out;
}

std::string OsReleaseId(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.substr(0, 3) != "ID=") continue;
    std::string_view v = line.substr(3);
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) v = v.substr(1, v.size() - 2);
    return std::string(v);
  }
  return "";
}

Result<std::vector<Package>> ParseSpdxPackages(std::string_view text, const std::string& source) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgument(source + ": not JSON");
  if (!doc.contains("spdxVersion") || !doc["spdxVersion"].is_string() ||
      doc["spdxVersion"].get<std::string>().rfind("SPDX-2.", 0) != 0) {
    return InvalidArgument(source + ": not an SPDX 2 document");
  }
  std::set<std::string> described;
  if (doc.contains("documentDescribes") && doc["documentDescribes"].is_array()) {
    for (const auto& d : doc["documentDescribes"]) {
      if (d.is_string()) described.insert(d.get<std::string>());
    }
  }
  if (doc.contains("relationships") && doc["relationships"].is_array()) {
    for (const auto& r : doc["relationships"]) {
      if (r.is_object() && JsonStringField(r, "relationshipType") == "DESCRIBES") {
        if (std::string id = JsonStringField(r, "relatedSpdxElement"); !id.empty()) described.insert(id);
      }
    }
  }
  std::vector<Package> out;
  if (!doc.contains("packages") || !doc["packages"].is_array()) return out;
  for (const auto& p : doc["packages"]) {
    if (!p.is_object() || described.count(JsonStringField(p, "SPDXID"))) continue;
    if (!p.contains("externalRefs") || !p["externalRefs"].is_array()) continue;
    std::string purl;
    for (const auto& ref : p["externalRefs"]) {
      if (ref.is_object() && JsonStringField(ref, "referenceType") == "purl") purl = JsonStringField(ref, "referenceLocator");
    }
    size_t slash = purl.find('/');
    if (purl.rfind("pkg:", 0) != 0 || slash == std::string::npos || slash <= 4) continue;
    Package pkg;
    pkg.type = purl.substr(4, slash - 4);
    if (pkg.type == "oci" || pkg.type == "docker") continue;  // another image, not a package in this one
    pkg.name = JsonStringField(p, "name");
    pkg.version = JsonStringField(p, "versionInfo");
    pkg.source = source;
    pkg.purl = purl;
    if (!pkg.name.empty()) out.push_back(std::move(pkg));
  }
  return out;
}

}  // namespace kiln::executor
