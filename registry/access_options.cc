#include "registry/access_options.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "core/reference.h"

namespace kiln::registry {
namespace {

// The non-empty parts of `list` between `sep` characters ("a;;b;" → a, b).
std::vector<std::string_view> NonEmptyParts(std::string_view list, char sep) {
  std::vector<std::string_view> out;
  for (size_t start = 0; start <= list.size();) {
    size_t end = list.find(sep, start);
    if (end == std::string_view::npos) end = list.size();
    if (end > start) out.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

RegistryAccessOptions RegistryAccessOptions::FromEnvironment() {
  RegistryAccessOptions o;
  if (const char* f = std::getenv("SSL_CERT_FILE"); f != nullptr) o.system_ca_file = f;
  if (const char* d = std::getenv("SSL_CERT_DIR"); d != nullptr) o.system_ca_dir = d;
  return o;
}

Status RegistryAccessOptions::AddRegistryCertificate(std::string_view value) {
  size_t eq = value.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == value.size()) {
    return InvalidArgument("--registry-certificate wants HOST=PATH, not \"" + std::string(value) + "\"");
  }
  registry_certificates[std::string(value.substr(0, eq))].emplace_back(value.substr(eq + 1));
  return OkStatus();
}

Status RegistryAccessOptions::AddRegistryClientCert(std::string_view value) {
  size_t eq = value.find('=');
  size_t comma = eq == std::string_view::npos ? eq : value.find(',', eq);
  if (eq == std::string_view::npos || eq == 0 || comma == std::string_view::npos || comma == eq + 1 ||
      comma + 1 == value.size()) {
    return InvalidArgument("--registry-client-cert wants REGISTRY=CERT_FILE,KEY_FILE, not \"" + std::string(value) + "\"");
  }
  client_certificates[std::string(value.substr(0, eq))] = {std::string(value.substr(eq + 1, comma - eq - 1)),
                                                           std::string(value.substr(comma + 1))};
  return OkStatus();
}

Status RegistryAccessOptions::AddRegistryMap(std::string_view value) {
  for (std::string_view pair : NonEmptyParts(value, ';')) {
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == pair.size()) {
      return InvalidArgument("--registry-map wants REGISTRY=MIRROR[/PATH] (several separated by ';'), not \"" +
                             std::string(pair) + "\"");
    }
    registry_maps[NormalizeRegistry(std::string(pair.substr(0, eq)))].emplace_back(pair.substr(eq + 1));
  }
  return OkStatus();
}

Result<CurlTransportOptions> RegistryAccessOptions::TransportOptions() const {
  CurlTransportOptions t;
  t.system_ca_file = system_ca_file;
  for (std::string_view dir : NonEmptyParts(system_ca_dir, ':')) t.system_ca_dirs.emplace_back(dir);
  for (const std::string& d : extra_ca_dirs) {
    if (std::find(t.system_ca_dirs.begin(), t.system_ca_dirs.end(), d) == t.system_ca_dirs.end()) {
      t.system_ca_dirs.push_back(d);
    }
  }
  t.certs_d_roots = certs_d_roots;
  // Requests go to the API host (registry-1.docker.io for docker.io); users name the registry.
  auto hosts_for = [](const std::string& registry) {
    std::vector<std::string> h{registry};
    if (std::string api = ApiHostFor(NormalizeRegistry(registry)); api != registry) h.push_back(api);
    return h;
  };
  for (const auto& r : skip_verify_registries) {
    for (const auto& h : hosts_for(r)) t.hosts[h].skip_verify = true;
  }
  for (const auto& [registry, paths] : registry_certificates) {
    for (const std::string& path : paths) {
      struct stat st;
      if (::stat(path.c_str(), &st) != 0) {
        return ErrnoStatus("--registry-certificate " + registry + "=" + path, errno);
      }
      for (const auto& h : hosts_for(registry)) {
        if (S_ISDIR(st.st_mode)) {
          KILN_RETURN_IF_ERROR(AddCertsDir(path, &t.hosts[h]));
        } else {
          t.hosts[h].ca_files.push_back(path);
        }
      }
    }
  }
  for (const auto& [registry, pair] : client_certificates) {
    for (const std::string& f : {pair.first, pair.second}) {
      struct stat st;
      if (::stat(f.c_str(), &st) != 0) return ErrnoStatus("--registry-client-cert " + registry + ": " + f, errno);
    }
    for (const auto& h : hosts_for(registry)) {
      t.hosts[h].client_cert = pair.first;
      t.hosts[h].client_key = pair.second;
    }
  }
  return t;
}

ClientOptions RegistryAccessOptions::ClientSettings() const {
  ClientOptions c;
  c.insecure_registries = insecure_registries;
  c.docker_io_mirrors = mirrors;
  c.registry_maps = registry_maps;
  c.mirror_fallback = mirror_fallback;
  c.retry.max_attempts = std::max(1, retry_attempts);
  return c;
}

}  // namespace kiln::registry
