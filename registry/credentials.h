// Credentials for registries, from the places users keep them: docker's config.json (`auths` with
// `auth` or `username`/`password`, `identitytoken`, `registrytoken`), and credential helpers
// (`credHelpers` per registry, `credsStore` as the default) run as `docker-credential-NAME get`.
// Credentials are never logged and never appear in error messages.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kiln::registry {

/// What a registry accepts as proof of identity. All empty means anonymous.
struct Credential {
  std::string username, password;
  /// An OAuth2 refresh token (docker config "identitytoken"), exchanged at the token endpoint.
  std::string identity_token;
  /// A bearer token used as is (docker config "registrytoken").
  std::string registry_token;

  bool anonymous() const {
    return username.empty() && password.empty() && identity_token.empty() && registry_token.empty();
  }
};

/// Finds credentials for a registry. Implementations are thread-safe.
class Keychain {
 public:
  virtual ~Keychain() = default;
  /// Credentials for `registry` (as in a reference: "docker.io", "r.example:5000"); anonymous when
  /// none are configured. Fails only when configuration exists but is broken (unreadable or malformed
  /// config, failing helper).
  virtual Result<Credential> Resolve(std::string_view registry) = 0;
  /// Where this keychain looks, for messages ("/root/.docker/config.json, ..."); "" when nowhere
  /// the user could change.
  virtual std::string Searched() const { return ""; }
};

/// Asks each keychain in turn; the first that has credentials for a registry answers (anonymous
/// when none has). An error from one (a malformed file) is returned as is.
class ChainKeychain : public Keychain {
 public:
  explicit ChainKeychain(std::vector<std::unique_ptr<Keychain>> chain) : chain_(std::move(chain)) {}
  Result<Credential> Resolve(std::string_view registry) override;
  std::string Searched() const override;

 private:
  std::vector<std::unique_ptr<Keychain>> chain_;
};

/// No credentials for anyone.
class AnonymousKeychain : public Keychain {
 public:
  Result<Credential> Resolve(std::string_view) override { return Credential{}; }
};

/// Runs a program with stdin and returns its stdout (the credential-helper seam).
class HelperRunner {
 public:
  virtual ~HelperRunner() = default;
  /// Runs `program` (looked up on PATH) with `args`, writing `input` to its stdin. Fails with the
  /// exit status and stderr (never stdout, which may hold a secret) when it exits non-zero.
  virtual Result<std::string> Run(const std::string& program, const std::vector<std::string>& args,
                                  const std::string& input) = 0;
};

/// HelperRunner over fork/exec with pipes.
class ProcessHelperRunner : public HelperRunner {
 public:
  Result<std::string> Run(const std::string& program, const std::vector<std::string>& args,
                          const std::string& input) override;
};

/// Where docker config files may be, in priority order. The CLI fills this from the environment.
struct DockerConfigSearch {
  std::string docker_config_dir;  // $DOCKER_CONFIG → DIR/config.json
  std::string home_dir;           // $HOME → HOME/.docker/config.json
  bool kaniko = true;             // /kaniko/.docker/config.json
  std::string kaniko_path = "/kaniko/.docker/config.json";

  /// With only_files, exactly these are the candidates (containers' auth.json lookup), even none.
  std::vector<std::string> files;
  bool only_files = false;

  /// The candidate files, most preferred first.
  std::vector<std::string> Candidates() const;
  /// From $DOCKER_CONFIG and $HOME (unset variables leave their field empty), with the Kaniko path.
  static DockerConfigSearch FromEnvironment();
  /// containers-auth.json(5), what `podman login` and `buildah login` write: $REGISTRY_AUTH_FILE,
  /// else $XDG_RUNTIME_DIR/containers/auth.json, else $HOME/.config/containers/auth.json.
  static DockerConfigSearch ContainersAuth(const std::string& registry_auth_file, const std::string& xdg_runtime_dir,
                                          const std::string& home_dir);
  /// ContainersAuth from $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR and $HOME.
  static DockerConfigSearch ContainersAuthFromEnvironment();
};

/// The keychain kiln uses: Docker's and Kaniko's config.json first (`search`), then containers'
/// auth.json (`containers`), each file read as docker reads config.json.
std::unique_ptr<Keychain> NewDefaultKeychain(DockerConfigSearch search, DockerConfigSearch containers,
                                             HelperRunner* runner);

/// The file `kiln login` writes: $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
/// Fails when neither variable is set.
Result<std::string> DockerConfigFileForLogin(const std::string& docker_config_dir, const std::string& home_dir);
/// Adds (or with an empty `auth` removes) auths[registry] in the docker config `path`, keeping every
/// other key; written to a temporary file, mode 0600, then renamed. `auth` is base64(user:password).
Status UpdateDockerConfigAuth(const std::string& path, const std::string& registry, const std::string& auth);

/// Docker's config.json lookup. The first existing candidate file is used (as docker does);
/// it is read once, on first use.
class DockerConfigKeychain : public Keychain {
 public:
  DockerConfigKeychain(DockerConfigSearch search, HelperRunner* runner);
  /// Builds from the file contents directly (tests, or a config passed by other means).
  static Result<std::unique_ptr<DockerConfigKeychain>> FromJson(std::string_view json, HelperRunner* runner);
  Result<Credential> Resolve(std::string_view registry) override;
  std::string Searched() const override;

 private:
  Status LoadLocked();
  Status ParseLocked(std::string_view json, const std::string& source);
  Result<Credential> FromHelper(const std::string& helper, const std::string& server_url);

  DockerConfigSearch search_;
  HelperRunner* runner_;
  mutable std::mutex mu_;
  std::vector<std::string> unreadable_;  // candidates skipped for EACCES
  bool loaded_ = false;
  std::string source_;
  std::map<std::string, Credential> auths_;           // keys as written in the file
  std::map<std::string, std::string> cred_helpers_;   // registry → helper name
  std::string creds_store_;
};

/// Docker's key normalisation for `auths`: drops a scheme and any path ("https://r:5000/v1/" →
/// "r:5000"), and maps Docker Hub's aliases (index.docker.io, registry-1.docker.io) to "docker.io".
std::string NormalizeAuthKey(std::string_view key);
/// The server URL docker passes to credential helpers: "https://index.docker.io/v1/" for Docker Hub,
/// the registry name otherwise.
std::string HelperServerUrl(std::string_view registry);

}  // namespace kiln::registry
