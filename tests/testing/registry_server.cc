#include "tests/testing/registry_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "tests/testing/certs.h"

#ifndef KILN_TESTING_DIR
#error "KILN_TESTING_DIR must name the source directory of tests/testing"
#endif

namespace kiln::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStartTimeout = std::chrono::seconds(20);

}  // namespace

int UnusedLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("registry_server: picking a free port");
    std::abort();
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

namespace {

/// A port that was free a moment ago. docker-registry cannot be told to bind port 0 and report it,
/// so there is a window in which another process may take it; StartRegistry retries on EADDRINUSE.
int PickFreePort() { return UnusedLoopbackPort(); }

/// fork+exec with stdout/stderr appended to `log`, in its own process group, killed by the kernel
/// if the spawning thread dies (a crashed or killed test must not leave registries behind).
int Spawn(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("registry_server: fork");
    std::abort();
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the parent died before prctl took effect
    ::setpgid(0, 0);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execvp(args[0], args.data());
    const char msg[] = "registry_server: exec failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  return pid;
}

/// True if `pid` has exited (and reaps it); `status` gets the wait status.
bool Exited(int pid, int* status) { return ::waitpid(pid, status, WNOHANG) == pid; }

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

std::string ReadIfExists(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return "";
  return ReadFile(path);
}

size_t AppendToString(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

/// One HTTP exchange; returns the status (0 when there was no HTTP answer) and fills `body`.
long HttpCall(const std::string& method, const std::string& url, const std::string& ca,
              const std::string& send, std::string* body) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return 0;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
  if (!ca.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca.c_str());
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, send.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(send.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  long code = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  return code;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string Base64(const std::string& in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

/// /usr/bin/python3 (Debian's) when present: it starts faster than a version-manager shim.
std::string Python() { return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

}  // namespace

std::unique_ptr<RegistryServer> RegistryServer::Start(const RegistryOptions& options) {
  std::unique_ptr<RegistryServer> s(new RegistryServer(options));
  if (options.tls) {
    s->ca_dir_ = s->dir_.Sub("certs.d");
    std::filesystem::create_directories(s->ca_dir_);
    CertFiles ca = MakeTestCa(s->ca_dir_);
    // certs.d must hold only the CA certificate: skopeo reads every *.key there as a client key.
    CertFiles server = MakeServerCert(s->dir_.path(), ca);
    std::filesystem::rename(ca.key, s->dir_.Sub("ca.key"));
    s->ca_cert_ = ca.cert;
    s->server_cert_ = server.cert;
    s->server_key_ = server.key;
  }
  if (options.token_auth) s->StartTokenServer();
  s->StartRegistry();
  if (options.fault_proxy) s->StartProxy();
  return s;
}

RegistryServer::~RegistryServer() { StopAll(); }

void RegistryServer::StopAll() {
  std::vector<Child*> children = {&proxy_, &registry_, &token_};
  // Each child leads its own process group (see Spawn), which also holds whatever it started,
  // such as the token server's openssl runs.
  for (Child* c : children) {
    if (c->pid > 0 && ::kill(-c->pid, SIGTERM) != 0) ::kill(c->pid, SIGTERM);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  for (Child* c : children) {
    if (c->pid <= 0) continue;
    int status;
    while (!Exited(c->pid, &status)) {
      if (Clock::now() > deadline) {
        if (::kill(-c->pid, SIGKILL) != 0) ::kill(c->pid, SIGKILL);
        ::waitpid(c->pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    c->pid = -1;
  }
}

void RegistryServer::Fail(const std::string& message) {
  std::fprintf(stderr, "RegistryServer: %s\n", message.c_str());
  for (const Child* c : {&token_, &registry_, &proxy_}) {
    if (c->log.empty()) continue;
    std::fprintf(stderr, "---- %s log (%s) ----\n%s\n", c->name.c_str(), c->log.c_str(),
                 ReadIfExists(c->log).c_str());
  }
  StopAll();
  std::abort();
}

int RegistryServer::SpawnPythonServer(Child& child, const std::string& script,
                                      std::vector<std::string> args) {
  const std::string port_file = dir_.Sub(child.name + ".port");
  std::vector<std::string> argv = {Python(), std::string(KILN_TESTING_DIR) + "/" + script,
                                   "--port-file", port_file};
  argv.insert(argv.end(), args.begin(), args.end());
  child.pid = Spawn(argv, child.log);
  const auto deadline = Clock::now() + kStartTimeout;
  for (;;) {
    std::string port = ReadIfExists(port_file);
    if (!port.empty()) return std::atoi(port.c_str());
    int status;
    if (Exited(child.pid, &status)) {
      child.pid = -1;
      Fail(child.name + " " + DescribeExit(status) + " before listening");
    }
    if (Clock::now() > deadline) Fail(child.name + " did not start listening in time");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void RegistryServer::StartTokenServer() {
  token_ = {"token_server", dir_.Sub("token_server.log")};
  CertFiles signer = MakeSigningCert(dir_.path(), "token-signer");
  std::vector<std::string> args = {"--cert", signer.cert, "--key", signer.key,
                                   "--expires-in", std::to_string(options_.token_expires_in)};
  // Credentials travel in argv: they are test-only throwaway values, never real secrets.
  if (!options_.user.empty()) {
    args.insert(args.end(), {"--user", options_.user, "--password", options_.password});
  }
  if (options_.anonymous_pull) args.push_back("--anonymous-pull");
  if (!options_.refresh_token.empty()) args.insert(args.end(), {"--refresh-token", options_.refresh_token});
  token_port_ = SpawnPythonServer(token_, "token_server.py", args);
}

std::string RegistryServer::token_realm() const {
  return token_port_ ? "http://127.0.0.1:" + std::to_string(token_port_) + "/token" : "";
}

void RegistryServer::WriteRegistryConfig(int port) const {
  std::ostringstream c;
  c << "version: 0.1\n"
    << "log:\n  level: info\n  accesslog:\n    disabled: false\n"
    << "storage:\n"
    << "  filesystem:\n    rootdirectory: " << storage_dir() << "\n"
    << "  delete:\n    enabled: true\n"
    << "  cache:\n    blobdescriptor: inmemory\n"
    // Upload purging walks storage from a timer; tests inspect storage and must not race it.
    << "  maintenance:\n    uploadpurging:\n      enabled: false\n"
    << "http:\n  addr: 127.0.0.1:" << port << "\n"
    // A fixed secret: without one each start makes a random secret and warns about it.
    << "  secret: kiln-test-upload-state-secret\n";
  if (options_.tls) {
    c << "  tls:\n    certificate: " << server_cert_ << "\n    key: " << server_key_ << "\n";
  }
  if (options_.token_auth) {
    c << "auth:\n  token:\n"
      << "    realm: " << token_realm() << "\n"
      << "    service: kiln-test-registry\n"
      << "    issuer: kiln-test-issuer\n"
      << "    rootcertbundle: " << dir_.Sub("token-signer.crt") << "\n";
  } else if (!options_.user.empty()) {
    c << "auth:\n  htpasswd:\n    realm: kiln-test-registry\n    path: " << dir_.Sub("htpasswd") << "\n";
  }
  WriteFile(dir_.Sub("config.yml"), c.str());
}

void RegistryServer::StartRegistry() {
  registry_ = {"docker-registry", dir_.Sub("registry.log")};
  if (!options_.token_auth && !options_.user.empty()) {
    std::string out;
    // bcrypt (-B) is the only hash docker-registry's htpasswd backend accepts.
    if (RunShell("htpasswd -Bbn " + ShellQuote(options_.user) + " " + ShellQuote(options_.password) +
                     " > " + ShellQuote(dir_.Sub("htpasswd")),
                 &out) != 0) {
      Fail("htpasswd failed (is apache2-utils installed?): " + out);
    }
  }
  for (int attempt = 1;; ++attempt) {
    registry_port_ = PickFreePort();
    WriteRegistryConfig(registry_port_);
    registry_.pid = Spawn({"docker-registry", "serve", dir_.Sub("config.yml")}, registry_.log);
    const std::string url = scheme() + "://" + direct_host() + "/v2/";
    // The log line proves that *our* registry bound the port: with tests running in parallel another
    // registry may have taken it in the meantime, and would answer GET /v2/ just as well.
    const std::string listening = "listening on " + direct_host();
    const auto deadline = Clock::now() + kStartTimeout;
    for (;;) {
      std::string body;
      if (ReadIfExists(registry_.log).find(listening) != std::string::npos &&
          HttpCall("GET", url, ca_cert_, "", &body) != 0) {
        return;  // 200 or 401: it is serving
      }
      int status;
      if (Exited(registry_.pid, &status)) {
        registry_.pid = -1;
        if (ReadIfExists(registry_.log).find("address already in use") != std::string::npos &&
            attempt < 5) {
          break;  // lost the port race: try another one
        }
        Fail("docker-registry " + DescribeExit(status) + " (config " + dir_.Sub("config.yml") + ")");
      }
      if (Clock::now() > deadline) Fail("docker-registry did not answer GET " + url + " in time");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::filesystem::rename(registry_.log, registry_.log + "." + std::to_string(attempt));
  }
}

void RegistryServer::StartProxy() {
  proxy_ = {"fault_proxy", dir_.Sub("fault_proxy.log")};
  std::vector<std::string> args = {"--upstream", direct_host(), "--faults", options_.faults};
  if (options_.tls) {
    args.insert(args.end(), {"--tls-cert", server_cert_, "--tls-key", server_key_, "--upstream-ca", ca_cert_});
  }
  proxy_port_ = SpawnPythonServer(proxy_, "fault_proxy.py", args);
}

std::string RegistryServer::host() const {
  return "127.0.0.1:" + std::to_string(options_.fault_proxy ? proxy_port_ : registry_port_);
}

std::string RegistryServer::BlobPath(const std::string& digest) const {
  const auto colon = digest.find(':');
  const std::string algo = digest.substr(0, colon), hex = digest.substr(colon + 1);
  return storage_dir() + "/docker/registry/v2/blobs/" + algo + "/" + hex.substr(0, 2) + "/" + hex + "/data";
}

std::string RegistryServer::RegistryLog() const { return ReadIfExists(registry_.log); }

std::string RegistryServer::Control(const std::string& method, const std::string& target,
                                    const std::string& path, const std::string& body) const {
  const bool proxy = target == "proxy";
  if (proxy ? !options_.fault_proxy : !options_.token_auth) {
    std::fprintf(stderr, "RegistryServer: %s %s needs RegistryOptions::%s\n", method.c_str(), path.c_str(),
                 proxy ? "fault_proxy" : "token_auth");
    std::abort();
  }
  const std::string target_url =
      proxy ? url() + path : "http://127.0.0.1:" + std::to_string(token_port_) + path;
  std::string answer;
  const long code = HttpCall(method, target_url, proxy ? ca_cert_ : "", body, &answer);
  if (code != 200) {
    // Children die with us (PR_SET_PDEATHSIG), so aborting here leaves nothing behind.
    std::fprintf(stderr, "RegistryServer: %s %s: HTTP %ld\n%s\n", method.c_str(), target_url.c_str(), code,
                 answer.c_str());
    std::abort();
  }
  return answer;
}

void RegistryServer::SetFaults(const std::string& spec) { Control("POST", "proxy", "/__faults", spec); }

int RegistryServer::PendingFaults() const {
  // The answer is a JSON list of {"rule", "times_left", "skip_left"}; only times_left matters here.
  const std::string json = Control("GET", "proxy", "/__faults");
  int pending = 0;
  const std::string key = "\"times_left\": ";
  for (size_t at = json.find(key); at != std::string::npos; at = json.find(key, at + 1)) {
    pending += std::atoi(json.c_str() + at + key.size());  // "null" (unlimited) reads as 0
  }
  return pending;
}

std::vector<std::string> RegistryServer::Requests() const {
  return Lines(Control("GET", "proxy", "/__requests"));
}

void RegistryServer::ClearRequests() { Control("DELETE", "proxy", "/__requests"); }

std::string RegistryServer::ProxyStats() const { return Control("GET", "proxy", "/__stats"); }

std::vector<std::string> RegistryServer::TokenRequests() const {
  return Lines(Control("GET", "token", "/__requests"));
}

void RegistryServer::ClearTokenRequests() { Control("DELETE", "token", "/__requests"); }

std::string WriteDockerConfig(const std::string& dir, const std::string& host, const std::string& user,
                              const std::string& password) {
  const std::string path = dir + "/config.json";
  // Test credentials are plain ASCII without quotes or backslashes, so no JSON escaping is needed.
  WriteFile(path, "{\n  \"auths\": {\n    \"" + host + "\": {\n      \"auth\": \"" +
                      Base64(user + ":" + password) + "\"\n    }\n  }\n}\n",
            0600);
  return path;
}

}  // namespace kiln::testing
