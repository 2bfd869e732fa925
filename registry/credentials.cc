#include "registry/credentials.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/io.h"
#include "core/reference.h"
#include "registry/transport.h"

extern char** environ;

namespace kiln::registry {
namespace {

// docker-credential-helpers' ErrCredentialsNotFound text, printed on stdout with exit status 1.
constexpr std::string_view kHelperNotFound = "credentials not found";
// A config.json is small; refuse anything absurd rather than reading it whole.
constexpr size_t kMaxConfigBytes = 16 << 20;
constexpr size_t kMaxHelperOutput = 1 << 20;

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IsDockerHubAlias(std::string_view host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

std::string JsonString(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// Closes an fd when it goes out of scope unless released.
struct Fd {
  int fd = -1;
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace

std::string NormalizeAuthKey(std::string_view key) {
  // Docker's ConvertToHostname: strip http(s):// and everything from the first '/'.
  std::string_view k = TrimSpace(key);
  if (k.rfind("http://", 0) == 0) {
    k.remove_prefix(7);
  } else if (k.rfind("https://", 0) == 0) {
    k.remove_prefix(8);
  }
  if (size_t slash = k.find('/'); slash != std::string_view::npos) k = k.substr(0, slash);
  std::string host(k);
  std::string lower = host;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (IsDockerHubAlias(lower)) return kDockerHub;
  return host;
}

std::string HelperServerUrl(std::string_view registry) {
  if (NormalizeAuthKey(registry) == kDockerHub) return "https://index.docker.io/v1/";
  return std::string(registry);
}

std::vector<std::string> DockerConfigSearch::Candidates() const {
  if (only_files) return files;
  std::vector<std::string> out;
  if (!docker_config_dir.empty()) out.push_back(docker_config_dir + "/config.json");
  if (!home_dir.empty()) out.push_back(home_dir + "/.docker/config.json");
  if (kaniko && !kaniko_path.empty()) out.push_back(kaniko_path);
  return out;
}

DockerConfigSearch DockerConfigSearch::FromEnvironment() {
  DockerConfigSearch s;
  if (const char* d = std::getenv("DOCKER_CONFIG"); d != nullptr) s.docker_config_dir = d;
  if (const char* h = std::getenv("HOME"); h != nullptr) s.home_dir = h;
  return s;
}

DockerConfigSearch DockerConfigSearch::ContainersAuth(const std::string& registry_auth_file,
                                                    const std::string& xdg_runtime_dir, const std::string& home_dir) {
  DockerConfigSearch s;
  s.only_files = true;
  if (!registry_auth_file.empty()) {
    s.files = {registry_auth_file};
    return s;
  }
  if (!xdg_runtime_dir.empty()) s.files.push_back(xdg_runtime_dir + "/containers/auth.json");
  if (!home_dir.empty()) s.files.push_back(home_dir + "/.config/containers/auth.json");
  return s;
}

DockerConfigSearch DockerConfigSearch::ContainersAuthFromEnvironment() {
  auto env = [](const char* k) {
    const char* v = std::getenv(k);
    return v == nullptr ? std::string() : std::string(v);
  };
  return ContainersAuth(env("REGISTRY_AUTH_FILE"), env("XDG_RUNTIME_DIR"), env("HOME"));
}

std::unique_ptr<Keychain> NewDefaultKeychain(DockerConfigSearch search, DockerConfigSearch containers,
                                             HelperRunner* runner) {
  std::vector<std::unique_ptr<Keychain>> chain;
  chain.push_back(std::make_unique<DockerConfigKeychain>(std::move(search), runner));
  chain.push_back(std::make_unique<DockerConfigKeychain>(std::move(containers), runner));
  return std::make_unique<ChainKeychain>(std::move(chain));
}

Result<Credential> ChainKeychain::Resolve(std::string_view registry) {
  for (auto& k : chain_) {
    KILN_ASSIGN_OR_RETURN(Credential c, k->Resolve(registry));
    if (!c.anonymous()) return c;
  }
  return Credential{};
}

std::string ChainKeychain::Searched() const {
  std::string out;
  for (const auto& k : chain_) {
    std::string s = k->Searched();
    if (s.empty()) continue;
    out += (out.empty() ? "" : ", ") + s;
  }
  return out;
}

std::string DockerConfigKeychain::Searched() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& c : search_.Candidates()) {
    out += (out.empty() ? "" : ", ") + c;
    if (std::find(unreadable_.begin(), unreadable_.end(), c) != unreadable_.end()) out += " (not readable)";
  }
  return out;
}

Result<std::string> DockerConfigFileForLogin(const std::string& docker_config_dir, const std::string& home_dir) {
  if (!docker_config_dir.empty()) return docker_config_dir + "/config.json";
  if (!home_dir.empty()) return home_dir + "/.docker/config.json";
  return FailedPrecondition("neither DOCKER_CONFIG nor HOME is set: no place for config.json");
}

Status UpdateDockerConfigAuth(const std::string& path, const std::string& registry, const std::string& auth) {
  nlohmann::json doc = nlohmann::json::object();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    KILN_ASSIGN_OR_RETURN(auto reader, OpenFileReader(path));
    auto text = ReadAll(*reader, kMaxConfigBytes);
    if (!text.ok()) return text.status().WithContext("reading " + path);
    try {
      doc = nlohmann::json::parse(*text);
    } catch (const nlohmann::json::exception&) {
      return InvalidArgument(path + ": not valid JSON; fix or remove it first");  // never quote it
    }
    if (!doc.is_object()) return InvalidArgument(path + ": not a JSON object");
  } else if (errno != ENOENT) {
    return ErrnoStatus("reading " + path, errno);
  }
  if (!doc.contains("auths") || !doc["auths"].is_object()) doc["auths"] = nlohmann::json::object();
  if (auth.empty()) {
    // Remove every spelling of the registry's key.
    std::vector<std::string> drop;
    for (const auto& [key, v] : doc["auths"].items()) {
      if (NormalizeAuthKey(key) == NormalizeAuthKey(registry)) drop.push_back(key);
    }
    for (const auto& k : drop) doc["auths"].erase(k);
  } else {
    std::string key = NormalizeAuthKey(registry) == kDockerHub ? HelperServerUrl(registry) : std::string(registry);
    doc["auths"][key] = nlohmann::json{{"auth", auth}};
  }
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) KILN_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), 0700));
  KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(path, 0600, /*durable=*/true));
  KILN_RETURN_IF_ERROR(out->Write(doc.dump(1, '\t') + "\n"));
  return out->Close();
}

Result<std::string> ProcessHelperRunner::Run(const std::string& program, const std::vector<std::string>& args,
                                             const std::string& input) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return ErrnoStatus("running " + program + ": pipe", errno);
  Fd in_r{in_pipe[0]}, in_w{in_pipe[1]};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoStatus("running " + program + ": pipe", errno);
  Fd out_r{out_pipe[0]}, out_w{out_pipe[1]};
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoStatus("running " + program + ": pipe", errno);
  Fd err_r{err_pipe[0]}, err_w{err_pipe[1]};

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, program.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    if (rc == ENOENT) return NotFound("credential helper " + program + " is not on PATH");
    return ErrnoStatus("running credential helper " + program, rc);
  }
  in_r.Close();
  out_w.Close();
  err_w.Close();

  // Input (a server URL) is far below the pipe buffer, but a helper that never reads its stdin must
  // not block us: write without blocking, then read both outputs until they close.
  ::fcntl(in_w.fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  while (written < input.size()) {
    ssize_t n = ::write(in_w.fd, input.data() + written, input.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EPIPE or EAGAIN: the helper does not want (more) input
    written += static_cast<size_t>(n);
  }
  in_w.Close();

  std::string out, err;
  pollfd fds[2] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    int n = ::poll(fds, 2, 30'000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return Unavailable("credential helper " + program + " did not finish within 30 s");
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t k = ::read(fds[i].fd, buf, sizeof buf);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      std::string& dst = i == 0 ? out : err;
      if (dst.size() < kMaxHelperOutput) dst.append(buf, static_cast<size_t>(k));
    }
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return out;
  // docker-credential-helpers report a missing entry on stdout; recognising that exact text is safe
  // (it is not a secret), anything else on stdout is never repeated.
  if (TrimSpace(out).find(kHelperNotFound) != std::string_view::npos ||
      TrimSpace(err).find(kHelperNotFound) != std::string_view::npos) {
    return NotFound(program + ": credentials not found");
  }
  std::string why = WIFEXITED(wstatus) ? "exit status " + std::to_string(WEXITSTATUS(wstatus))
                                       : "killed by signal " + std::to_string(WTERMSIG(wstatus));
  std::string detail(TrimSpace(err));
  if (detail.size() > 500) detail = detail.substr(0, 500) + "...";
  return Status(ErrorCode::kFailedPrecondition,
                "credential helper " + program + " failed (" + why + ")" + (detail.empty() ? "" : ": " + detail));
}

DockerConfigKeychain::DockerConfigKeychain(DockerConfigSearch search, HelperRunner* runner)
    : search_(std::move(search)), runner_(runner) {}

Result<std::unique_ptr<DockerConfigKeychain>> DockerConfigKeychain::FromJson(std::string_view json,
                                                                             HelperRunner* runner) {
  DockerConfigSearch none;
  none.kaniko = false;
  auto kc = std::make_unique<DockerConfigKeychain>(none, runner);
  std::lock_guard<std::mutex> lock(kc->mu_);
  KILN_RETURN_IF_ERROR(kc->ParseLocked(json, "docker config"));
  kc->loaded_ = true;
  return kc;
}

Status DockerConfigKeychain::LoadLocked() {
  if (loaded_) return OkStatus();
  for (const std::string& path : search_.Candidates()) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      // A non-root kiln whose HOME is still /root (a runAsNonRoot pod): a directory it may not
      // enter holds nothing for it. Skipped, and named where a 401 lists the places kiln looked.
      if (errno == EACCES) {
        unreadable_.push_back(path);
        continue;
      }
      return ErrnoStatus("reading docker config " + path, errno);
    }
    KILN_ASSIGN_OR_RETURN(auto reader, OpenFileReader(path));
    auto text = ReadAll(*reader, kMaxConfigBytes);
    if (!text.ok()) return text.status().WithContext("reading docker config " + path);
    KILN_RETURN_IF_ERROR(ParseLocked(*text, path));
    break;  // docker uses the first config file it finds, never merges
  }
  loaded_ = true;
  return OkStatus();
}

Status DockerConfigKeychain::ParseLocked(std::string_view json, const std::string& source) {
  source_ = source;
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    // The parser's message quotes bytes near the error, which may be part of a secret: keep only the
    // position.
    return InvalidArgument(source + ": not valid JSON (at byte " +
                           std::to_string(dynamic_cast<const nlohmann::json::parse_error*>(&e)
                                              ? dynamic_cast<const nlohmann::json::parse_error*>(&e)->byte
                                              : 0) +
                           ")");
  }
  if (!doc.is_object()) return InvalidArgument(source + ": not a JSON object");
  if (auto it = doc.find("auths"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) return InvalidArgument(source + ": \"auths\" is not an object");
    for (const auto& [key, entry] : it->items()) {
      if (!entry.is_object()) return InvalidArgument(source + ": auths[\"" + key + "\"] is not an object");
      Credential c;
      c.username = JsonString(entry, "username");
      c.password = JsonString(entry, "password");
      c.identity_token = JsonString(entry, "identitytoken");
      c.registry_token = JsonString(entry, "registrytoken");
      if (std::string auth = JsonString(entry, "auth"); !auth.empty()) {
        auto decoded = Base64Decode(TrimSpace(auth));
        if (!decoded.ok()) return InvalidArgument(source + ": auths[\"" + key + "\"].auth is not valid base64");
        size_t colon = decoded->find(':');
        if (colon == std::string::npos) {
          return InvalidArgument(source + ": auths[\"" + key + "\"].auth is not base64 of USER:PASSWORD");
        }
        // As docker: `auth` wins over separate username/password fields.
        c.username = decoded->substr(0, colon);
        c.password = std::string(TrimSpace(std::string_view(*decoded).substr(colon + 1)));
      }
      auths_[key] = std::move(c);
    }
  }
  if (auto it = doc.find("credHelpers"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) return InvalidArgument(source + ": \"credHelpers\" is not an object");
    for (const auto& [key, helper] : it->items()) {
      if (!helper.is_string()) return InvalidArgument(source + ": credHelpers[\"" + key + "\"] is not a string");
      cred_helpers_[key] = helper.get<std::string>();
    }
  }
  if (auto it = doc.find("credsStore"); it != doc.end() && !it->is_null()) {
    if (!it->is_string()) return InvalidArgument(source + ": \"credsStore\" is not a string");
    creds_store_ = it->get<std::string>();
  }
  return OkStatus();
}

Result<Credential> DockerConfigKeychain::FromHelper(const std::string& helper, const std::string& server_url) {
  if (runner_ == nullptr) return FailedPrecondition("no way to run credential helper docker-credential-" + helper);
  if (helper.empty() || helper.find('/') != std::string::npos) {
    return InvalidArgument(source_ + ": invalid credential helper name \"" + helper + "\"");
  }
  std::string program = "docker-credential-" + helper;
  auto out = runner_->Run(program, {"get"}, server_url + "\n");
  if (!out.ok()) {
    if (out.status().code() == ErrorCode::kNotFound &&
        out.status().message().find(kHelperNotFound) != std::string::npos) {
      return Credential{};  // the helper has nothing for this registry: anonymous
    }
    return out.status().WithContext("getting credentials for " + server_url);
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(*out);
  } catch (const nlohmann::json::exception&) {
    return InvalidArgument(program + " get: its output is not JSON");  // never quote it: it may be a secret
  }
  if (!doc.is_object()) return InvalidArgument(program + " get: its output is not a JSON object");
  Credential c;
  std::string user = JsonString(doc, "Username");
  std::string secret = JsonString(doc, "Secret");
  // docker-credential-helpers store identity tokens under the user name "<token>".
  if (user == "<token>") {
    c.identity_token = secret;
  } else {
    c.username = user;
    c.password = secret;
  }
  return c;
}

Result<Credential> DockerConfigKeychain::Resolve(std::string_view registry) {
  std::string helper;
  Credential from_file;
  bool found_in_file = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    KILN_RETURN_IF_ERROR(LoadLocked());
    const std::string want = NormalizeAuthKey(registry);
    // credHelpers: an exact key first, then any key naming the same host; else the credsStore.
    if (auto it = cred_helpers_.find(std::string(registry)); it != cred_helpers_.end()) {
      helper = it->second;
    } else {
      for (const auto& [key, h] : cred_helpers_) {
        if (NormalizeAuthKey(key) == want) {
          helper = h;
          break;
        }
      }
    }
    if (helper.empty()) helper = creds_store_;
    // auths: the exact key, then the key docker itself writes (https://index.docker.io/v1/ for the
    // Hub), then any key that names the same host ("https://r:5000", "r:5000/v2/"), in key order.
    auto exact = auths_.find(std::string(registry));
    if (exact == auths_.end()) exact = auths_.find(HelperServerUrl(registry));
    if (exact != auths_.end()) {
      from_file = exact->second;
      found_in_file = true;
    } else {
      for (const auto& [key, c] : auths_) {
        if (NormalizeAuthKey(key) == want) {
          from_file = c;
          found_in_file = true;
          break;
        }
      }
    }
  }
  if (!helper.empty()) {
    KILN_ASSIGN_OR_RETURN(Credential c, FromHelper(helper, HelperServerUrl(registry)));
    // `docker login` with a credsStore leaves an empty auths entry behind; when the helper has nothing,
    // credentials written inline by other tools (CI scripts) still count, as in containers/image.
    if (!c.anonymous() || !found_in_file) return c;
  }
  return from_file;
}

}  // namespace kiln::registry
