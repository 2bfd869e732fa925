// A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1, optionally
// behind TLS with a private CA, htpasswd basic auth or bearer tokens from tests/testing/token_server.py,
// and tests/testing/fault_proxy.py in front to inject network and server faults.
//
// Fault grammar (RegistryOptions::faults, RegistryServer::SetFaults):
//
//   spec    := rule { ";" rule }              an empty spec removes every rule
//   rule    := [METHODS " "] GLOB ": " param { " " param }
//   METHODS := "*" | METHOD { "," METHOD }    e.g. GET  or  GET,HEAD; omitted means any method
//   GLOB    := fnmatch pattern over the request path without the query string; "*" also matches "/"
//              (the colon ending the matcher must be followed by a space, so "sha256:ab*" is fine)
//   param   := one effect, optionally delay=, plus times=/skip=:
//     status=CODE           answer CODE without forwarding (the request body is read and discarded;
//                           JSON error body; the connection stays open)
//     retry-after=SECONDS   with status=: add a Retry-After header
//     reset                 close the connection with a TCP reset before forwarding anything
//     drop-request-after=N  forward the request head and N bytes of its body, then reset both sides
//     drop-after=N          forward; send the response head (with the full Content-Length) and N body
//                           bytes, then reset: the client sees a transport error
//     truncate=N            forward; send only N body bytes with Content-Length rewritten to match, so
//                           the transfer looks complete and only a digest check can notice
//     flip-byte=N           forward; XOR the body byte at offset N with 0x01 (length unchanged)
//     delay=SECONDS         sleep (fractions allowed) before sending the response head
//     times=N               fire N times, then the rule is spent (default: fire on every match)
//     skip=N                let the first N matching requests through untouched first
//   Rules are tried in order; the first live rule whose METHODS and GLOB match decides (a skipped
//   request is passed through without looking at later rules).
//   Example: "GET /v2/*/blobs/*: drop-after=1000 times=1; PUT */manifests/*: status=500 times=2;
//             *: status=429 retry-after=1 times=1; GET */blobs/sha256:*: flip-byte=100 times=1"
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace kiln::testing {

struct RegistryOptions {
  /// Serve HTTPS with a server certificate for 127.0.0.1/localhost signed by a fresh test CA.
  bool tls = false;
  /// Non-empty `user`: the registry requires these credentials. Without token_auth that is htpasswd
  /// basic auth; with token_auth the token server checks them.
  std::string user, password;
  /// Bearer-token auth: the registry sends clients to token_server.py (realm http://127.0.0.1:PORT/token,
  /// service "kiln-test-registry"), which grants every requested action to `user`.
  bool token_auth = false;
  /// token_auth: anonymous clients get pull-only tokens (as on public registries); otherwise tokens
  /// with no access, so the registry answers 401 again.
  bool anonymous_pull = false;
  /// token_auth: the registry rejects a token this many seconds after it was issued (the answer's
  /// expires_in says the same), so refresh can be tested with short values such as 2.
  int token_expires_in = 300;
  /// token_auth: if set, POST /token with grant_type=refresh_token and this refresh_token (a docker
  /// config "identitytoken") acts as `user`; grant_type=password&access_type=offline returns it.
  std::string refresh_token;
  /// Put fault_proxy.py in front; host() is then the proxy. With tls the proxy serves HTTPS too.
  bool fault_proxy = false;
  /// fault_proxy: the initial fault spec (grammar above).
  std::string faults;
};

/// One running registry (and its token server and proxy). Not thread-safe; the methods that talk to
/// the proxy or token server may be called while other threads use the registry.
/// The child processes get PR_SET_PDEATHSIG, which fires when the *thread* that called Start() ends:
/// start servers from the test's main thread or from a thread that outlives them.
class RegistryServer {
 public:
  /// Starts everything and waits until GET /v2/ answers. On failure prints what went wrong with the
  /// children's logs to stderr and aborts the test binary.
  static std::unique_ptr<RegistryServer> Start(const RegistryOptions& options = {});
  /// Stops the children (SIGTERM, then SIGKILL after 2 s), reaps them and removes the temp dir.
  ~RegistryServer();
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  /// "127.0.0.1:PORT" clients should use: the proxy when fault_proxy, else the registry.
  std::string host() const;
  /// "127.0.0.1:PORT" of the registry itself, bypassing the proxy.
  std::string direct_host() const { return "127.0.0.1:" + std::to_string(registry_port_); }
  /// "http" or "https".
  std::string scheme() const { return options_.tls ? "https" : "http"; }
  /// scheme() + "://" + host().
  std::string url() const { return scheme() + "://" + host(); }
  /// PEM of the CA that signed the server certificate (TLS only, else empty).
  std::string ca_cert_path() const { return ca_cert_; }
  /// A directory holding only ca.crt, for skopeo's --cert-dir and docker's certs.d layout (TLS only).
  std::string ca_cert_dir() const { return ca_dir_; }
  /// The registry's filesystem storage root (docker/registry/v2/... below it).
  std::string storage_dir() const { return dir_.Sub("storage"); }
  /// Where the registry stores the blob `digest` ("sha256:<hex>"); it need not exist.
  std::string BlobPath(const std::string& digest) const;
  /// The per-server temp dir; its path appears in every child's command line.
  std::string dir() const { return dir_.path(); }
  /// The token endpoint (token_auth only, else empty).
  std::string token_realm() const;
  /// The registry's log so far (for diagnosing a failed test).
  std::string RegistryLog() const;

  /// fault_proxy only: replaces all fault rules. Aborts with the proxy's message on a bad spec.
  void SetFaults(const std::string& spec);
  /// fault_proxy only: how many firings the finite (times=N) rules still have left.
  int PendingFaults() const;
  /// fault_proxy only: the proxy's request log in completion order, one "METHOD PATH STATUS" entry
  /// per request (PATH without query), with " FAULT" appended (e.g. " flip-byte") when a rule fired;
  /// STATUS is what the client saw, "000" when the connection was dropped before a response head.
  std::vector<std::string> Requests() const;
  /// fault_proxy only: empties the request log.
  void ClearRequests();
  /// The proxy's counters: {"request_body_bytes": N, "faults": N} since the last ClearRequests().
  std::string ProxyStats() const;
  /// token_auth only: one entry per token request: "GET basic|anonymous ACCOUNT SCOPE..." or
  /// "POST GRANT_TYPE ACCOUNT SCOPE..." (ACCOUNT "-" when none was authenticated). No secrets.
  std::vector<std::string> TokenRequests() const;
  /// token_auth only: empties the token request log.
  void ClearTokenRequests();

 private:
  struct Child {
    std::string name;
    std::string log;
    int pid = -1;
  };

  explicit RegistryServer(const RegistryOptions& options) : options_(options) {}
  void StartTokenServer();
  void StartRegistry();
  void StartProxy();
  void WriteRegistryConfig(int port) const;
  int SpawnPythonServer(Child& child, const std::string& script, std::vector<std::string> args);
  [[noreturn]] void Fail(const std::string& message);
  std::string Control(const std::string& method, const std::string& base, const std::string& path,
                      const std::string& body = "") const;
  void StopAll();

  RegistryOptions options_;
  TempDir dir_;
  std::string ca_cert_, ca_dir_, server_cert_, server_key_;
  Child token_, registry_, proxy_;
  int token_port_ = 0, registry_port_ = 0, proxy_port_ = 0;
};

/// A port on 127.0.0.1 that was free a moment ago (bound, then closed): nothing listens there, so a
/// connection is refused (an unreachable registry), or a server can be started on it. Aborts when
/// no socket can be bound.
int UnusedLoopbackPort();

/// Writes dir/config.json with an `auths` entry for `host` holding base64(user:password), the form
/// `docker login` writes. Returns the file's path. Aborts on failure.
std::string WriteDockerConfig(const std::string& dir, const std::string& host, const std::string& user,
                              const std::string& password);

}  // namespace kiln::testing
