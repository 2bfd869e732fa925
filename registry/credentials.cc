#include "registry/credentials.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/io.h"
#include "core/json_fields.h"
#include "core/subprocess.h"
#include "core/reference.h"
#include "registry/transport.h"

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
  SubprocessSpec spec;
  spec.argv = {program};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.input = input;
  spec.max_output = kMaxHelperOutput;
  spec.timeout = std::chrono::seconds(30);
  Result<SubprocessResult> ran = RunSubprocess(spec);
  if (!ran.ok()) {
    if (ran.status().code() == ErrorCode::kNotFound) return NotFound("credential helper " + program + " is not on PATH");
    return Status(ran.status().code(), "credential helper " + ran.status().message());
  }
  if (ran->Succeeded()) return std::move(ran->out);
  const std::string& out = ran->out;
  const std::string& err = ran->err;
  // docker-credential-helpers report a missing entry on stdout; recognising that exact text is safe
  // (it is not a secret), anything else on stdout is never repeated.
  if (TrimSpace(out).find(kHelperNotFound) != std::string_view::npos ||
      TrimSpace(err).find(kHelperNotFound) != std::string_view::npos) {
    return NotFound(program + ": credentials not found");
  }
  std::string why = ran->Why();
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
      c.username = JsonStringField(entry, "username");
      c.password = JsonStringField(entry, "password");
      c.identity_token = JsonStringField(entry, "identitytoken");
      c.registry_token = JsonStringField(entry, "registrytoken");
      if (std::string auth = JsonStringField(entry, "auth"); !auth.empty()) {
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
  std::string user = JsonStringField(doc, "Username");
  std::string secret = JsonStringField(doc, "Secret");
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
