// RegistryAccess: one registry client for a build, set up from BuildOptions the way Kaniko sets up
// go-containerregistry: credentials from docker config files and helpers, plain HTTP and skipped TLS
// verification only for the registries the user named, extra CAs per registry, docker.io mirrors.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "core/status.h"
#include "executor/pipeline/build_options.h"
#include "registry/client.h"
#include "registry/credentials.h"
#include "registry/curl_transport.h"

namespace kiln::executor {

class RegistryAccess {
 public:
  /// `pull_registries` and `push_registries`: the registries the build reads from (bases, COPY
  /// --from images) and writes to (destinations); --insecure-pull / --insecure and the
  /// --skip-tls-verify flags apply to them. `keychain` may be null: docker config files are searched
  /// in $DOCKER_CONFIG (from options.environ), ~/.docker and /kaniko/.docker. `transport` may be
  /// null: libcurl with options.registry's TLS settings.
  static Result<std::unique_ptr<RegistryAccess>> Create(const BuildOptions& options,
                                                        const std::set<std::string>& pull_registries,
                                                        const std::set<std::string>& push_registries,
                                                        std::unique_ptr<registry::Keychain> keychain = nullptr,
                                                        registry::Transport* transport = nullptr,
                                                        std::function<void(std::string_view)> notice = nullptr);
  /// For base images and COPY --from images.
  registry::Client& pull_client() { return *pull_client_; }
  /// For destinations and the registry layer cache.
  registry::Client& push_client() { return *push_client_; }

 private:
  RegistryAccess() = default;
  std::unique_ptr<registry::HelperRunner> helpers_;
  std::unique_ptr<registry::Keychain> keychain_;
  std::unique_ptr<registry::Transport> pull_transport_, push_transport_;
  std::unique_ptr<registry::Client> pull_client_, push_client_;
};

}  // namespace kiln::executor
