#include "executor/pipeline/registry_access.h"

#include "registry/access_options.h"

#include <algorithm>

namespace kiln::executor {

Result<std::unique_ptr<RegistryAccess>> RegistryAccess::Create(const BuildOptions& options,
                                                               const std::set<std::string>& pull_registries,
                                                               const std::set<std::string>& push_registries,
                                                               std::unique_ptr<registry::Keychain> keychain,
                                                               registry::Transport* transport,
                                                               std::function<void(std::string_view)> notice) {
  std::unique_ptr<RegistryAccess> a(new RegistryAccess());
  auto env = [&](const char* k) {
    auto it = options.environ.find(k);
    return it == options.environ.end() ? std::string() : it->second;
  };
  if (keychain) {
    a->keychain_ = std::move(keychain);
  } else {
    registry::DockerConfigSearch search;
    search.docker_config_dir = env("DOCKER_CONFIG");
    search.home_dir = env("HOME");
    a->helpers_ = std::make_unique<registry::ProcessHelperRunner>();
    registry::DockerConfigSearch containers =
        registry::DockerConfigSearch::ContainersAuth(env("REGISTRY_AUTH_FILE"), env("XDG_RUNTIME_DIR"), env("HOME"));
    a->keychain_ = registry::NewDefaultKeychain(search, containers, a->helpers_.get());
  }

  // Two clients: Kaniko's --insecure / --skip-tls-verify concern pushes and --insecure-pull /
  // --skip-tls-verify-pull concern pulls, even when both go to the same registry. Flags naming a
  // registry (--insecure-registry, --skip-tls-verify-registry, --registry-certificate) apply to both.
  auto make = [&](bool push, std::unique_ptr<registry::Transport>* owned,
                  std::unique_ptr<registry::Client>* client) -> Status {
    registry::RegistryAccessOptions ro = options.registry;
    const std::set<std::string>& mine = push ? push_registries : pull_registries;
    if (push ? options.skip_tls_verify_push : options.skip_tls_verify_pull) {
      ro.skip_verify_registries.insert(mine.begin(), mine.end());
    }
    if (push ? options.insecure_push : options.insecure_pull) ro.insecure_registries.insert(mine.begin(), mine.end());
    if (push) {
      // Mirrors and registry maps are for pulls.
      ro.mirrors.clear();
      ro.registry_maps.clear();
    }
    ro.retry_attempts = std::max(ro.retry_attempts, 1 + (push ? options.push_retry : options.image_download_retry));
    registry::Transport* wire = transport;
    if (wire == nullptr) {
      KILN_ASSIGN_OR_RETURN(registry::CurlTransportOptions topts, ro.TransportOptions());
      *owned = std::make_unique<registry::CurlTransport>(topts);
      wire = owned->get();
    }
    registry::ClientOptions settings = ro.ClientSettings();
    settings.notice = notice;
    *client = std::make_unique<registry::Client>(wire, a->keychain_.get(), std::move(settings));
    return OkStatus();
  };
  KILN_RETURN_IF_ERROR(make(false, &a->pull_transport_, &a->pull_client_));
  KILN_RETURN_IF_ERROR(make(true, &a->push_transport_, &a->push_client_));
  return a;
}

}  // namespace kiln::executor
