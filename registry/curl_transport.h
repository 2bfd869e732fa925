// Transport over libcurl. Bodies stream in both directions in bounded memory: the request body is
// pulled from its Reader by curl's read callback, and the response body is pulled by the caller
// (the transfer is driven through curl's multi interface from inside Response::body->Read, and
// paused when more than ~1 MiB is waiting), so a 10 GB layer never sits in memory.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "registry/transport.h"

namespace kiln::registry {

/// TLS settings for one registry host ("host:port" as in the reference).
struct HostTlsOptions {
  /// Accept any server certificate. Only for hosts the user named (e.g. --skip-tls-verify=HOST).
  bool skip_verify = false;
  /// PEM files trusted in addition to the system store for this host.
  std::vector<std::string> ca_files;
  /// A client certificate and its key (PEM) for registries that require mutual TLS.
  std::string client_cert, client_key;
};

/// Reads a Docker certs.d-style directory (/etc/docker/certs.d/HOST/): every *.crt is a CA, every
/// NAME.cert with a NAME.key beside it is a client certificate. Appends to `tls`. A missing directory
/// adds nothing; a .cert without its .key fails, as in Docker.
Status AddCertsDir(const std::string& dir, HostTlsOptions* tls);

struct CurlTransportOptions {
  std::chrono::seconds connect_timeout{30};
  /// Abort a transfer that moves less than 1 byte/s for this long (a whole-transfer timeout would
  /// kill large blobs on slow links).
  std::chrono::seconds stall_timeout{60};
  /// The system trust store (the CLI passes $SSL_CERT_FILE); empty: libcurl's default bundle.
  std::string system_ca_file;
  /// Directories whose every file is read for PEM certificates, all trusted, as Go's crypto/x509 reads
  /// $SSL_CERT_DIR (any file name, not only OpenSSL's hashed links). The CLI passes $SSL_CERT_DIR's
  /// colon-separated entries and Kaniko's /kaniko/ssl/certs. Missing directories are skipped.
  std::vector<std::string> system_ca_dirs;
  /// Per "host:port" (as in the URL) settings; hosts not listed use the system store only.
  std::map<std::string, HostTlsOptions> hosts;
  /// Roots of certs.d trees ("/etc/docker/certs.d"): ROOT/HOST[:PORT]/ is read with AddCertsDir the
  /// first time kiln talks to HOST over HTTPS, in addition to `hosts`.
  std::vector<std::string> certs_d_roots;
  std::string user_agent = "kiln/0.1";
};

/// Thread-safe; connections are kept in a small pool of curl multi handles and reused.
class CurlTransport : public Transport {
 public:
  explicit CurlTransport(CurlTransportOptions options = {});
  ~CurlTransport() override;
  Result<Response> RoundTrip(const Request& req) override;

  struct Handle;  // a multi + easy pair with its connection cache (internal)

 private:
  friend struct Transfer;
  std::unique_ptr<Handle> Acquire();
  void Release(std::unique_ptr<Handle> h);
  /// Reads the system trust once: the CA file (or the default bundle) followed by every certificate
  /// of `system_ca_dirs` not already in it; system_extra_ counts those. REQUIRES: mu_ held.
  Status LoadSystemTrustLocked();
  /// The CA bundle for `host`: the system trust followed by the host's extra CA files, built once
  /// and kept for the transport's life; nullptr when it would equal libcurl's default store.
  Result<const std::string*> CaBundleFor(const std::string& host, const HostTlsOptions& tls);
  /// `hosts[host]` merged with the host's certs.d directories (read once, then cached).
  Result<HostTlsOptions> TlsFor(const std::string& host);

  CurlTransportOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;
  std::map<std::string, std::string> ca_bundles_;
  bool system_loaded_ = false;
  std::string system_bundle_;
  size_t system_extra_ = 0;
  std::map<std::string, HostTlsOptions> tls_cache_;
};

}  // namespace kiln::registry
