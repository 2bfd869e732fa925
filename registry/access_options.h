// How kiln reaches registries, as the user describes it on the command line (the flags Kaniko and
// skopeo use), turned into the transport and client settings. One struct the CLI fills, so every
// command that talks to a registry accepts the same flags with the same meaning:
//   --insecure-registry HOST           plain HTTP for HOST (and only HOST)
//   --skip-tls-verify-registry HOST    HTTPS without certificate verification for HOST only
//   --registry-certificate HOST=PATH   extra CA for HOST: a PEM file, or a certs.d-style directory
//   --registry-mirror HOST             mirror for docker.io, origin tried after it
// plus the system store ($SSL_CERT_FILE / $SSL_CERT_DIR) and /etc/docker/certs.d/HOST/.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "registry/client.h"
#include "registry/curl_transport.h"

namespace kiln::registry {

struct RegistryAccessOptions {
  /// Registries reached over plain HTTP ("host:port" as in references).
  std::set<std::string> insecure_registries;
  /// Registries whose certificate is not verified.
  std::set<std::string> skip_verify_registries;
  /// Registry → CA file or certs.d-style directory (*.crt CAs, NAME.cert + NAME.key client cert).
  std::map<std::string, std::vector<std::string>> registry_certificates;
  /// certs.d roots read for every HTTPS registry (Docker's and podman's defaults).
  std::vector<std::string> certs_d_roots = {"/etc/docker/certs.d", "/etc/containers/certs.d"};
  /// The system trust store; empty: libcurl's default. FromEnvironment fills them from
  /// $SSL_CERT_FILE and $SSL_CERT_DIR (colon-separated, as Go reads it).
  std::string system_ca_file, system_ca_dir;
  /// Directories trusted in addition to system_ca_dir, every file in them (Kaniko's image keeps
  /// its CAs, and GitLab's recipe appends private ones, in /kaniko/ssl/certs).
  std::vector<std::string> extra_ca_dirs = {"/kaniko/ssl/certs"};
  /// docker.io mirrors ("host[:port]" or a URL), tried in order before docker.io itself.
  std::vector<std::string> mirrors;
  /// Kaniko's --registry-client-cert: registry → (certificate, key) PEM files for mutual TLS.
  std::map<std::string, std::pair<std::string, std::string>> client_certificates;
  /// Parses one --registry-client-cert value as Kaniko writes it: "REGISTRY=CERT,KEY".
  Status AddRegistryClientCert(std::string_view value);

  /// Kaniko's --registry-map: registry → replacements "host[:port][/path]", tried in order for pulls.
  std::map<std::string, std::vector<std::string>> registry_maps;
  /// Try the registry itself after its mirrors / mapped registries failed.
  bool mirror_fallback = true;

  /// Parses one --registry-map value (or $KANIKO_REGISTRY_MAP) as Kaniko does:
  /// "REGISTRY=HOST[/PATH]", several separated by ';'. Registry names are normalised
  /// (index.docker.io → docker.io). Fails with kInvalidArgument naming the malformed pair.
  Status AddRegistryMap(std::string_view value);
  /// Attempts per request (including the first) for temporary failures.
  int retry_attempts = 5;

  /// Defaults with the system store taken from the environment.
  static RegistryAccessOptions FromEnvironment();

  /// Parses one --registry-certificate value "HOST=PATH" into registry_certificates; fails with
  /// kInvalidArgument naming the flag when it has no '=' or an empty side.
  Status AddRegistryCertificate(std::string_view host_equals_path);

  /// The libcurl settings: per-host skip-verify / CAs / client certificates, for the host as named
  /// and (for docker.io) its API host. Fails when a named certificate path does not exist.
  Result<CurlTransportOptions> TransportOptions() const;
  /// The client settings: insecure registries, mirrors, retry policy.
  ClientOptions ClientSettings() const;
};

}  // namespace kiln::registry
