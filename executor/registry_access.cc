#include "executor/registry_access.h"

#include "registry/access_options.h"

#include <algorithm>

namespace kiln::executor {

Result<std::unique_ptr<RegistryAccess>> RegistryAccess::Create(const BuildOptions& options,
                                                               const std::set<std::string>& pull_registries,
                                                               const std::set<std::string>& push_registries,
                                                               std::unique_ptr<registry::Keychain> keychain) {
  std::unique_ptr<RegistryAccess> a(new RegistryAccess());
  if (keychain) {
    a->keychain_ = std::move(keychain);
  } else {
    registry::DockerConfigSearch search;
    auto env = [&](const char* k) {
      auto it = options.environ.find(k);
      return it == options.environ.end() ? std::string() : it->second;
    };
    search.docker_config_dir = env("DOCKER_CONFIG");
    search.home_dir = env("HOME");
    a->helpers_ = std::make_unique<registry::ProcessHelperRunner>();
    a->keychain_ = std::make_unique<registry::DockerConfigKeychain>(search, a->helpers_.get());
  }

  registry::RegistryAccessOptions ro;
  auto env = [&](const char* k) {
    auto it = options.environ.find(k);
    return it == options.environ.end() ? std::string() : it->second;
  };
  ro.system_ca_file = env("SSL_CERT_FILE");
  ro.system_ca_dir = env("SSL_CERT_DIR");
  for (const auto& [host, path] : options.registry_certificates) ro.registry_certificates[host].push_back(path);
  ro.skip_verify_registries = options.skip_tls_verify_registries;
  if (options.skip_tls_verify_pull) ro.skip_verify_registries.insert(pull_registries.begin(), pull_registries.end());
  if (options.skip_tls_verify_push) ro.skip_verify_registries.insert(push_registries.begin(), push_registries.end());
  ro.insecure_registries = options.insecure_registries;
  if (options.insecure_pull) ro.insecure_registries.insert(pull_registries.begin(), pull_registries.end());
  if (options.insecure_push) ro.insecure_registries.insert(push_registries.begin(), push_registries.end());
  ro.mirrors = options.registry_mirrors;
  ro.mirror_fallback = !options.skip_default_registry_fallback;
  ro.retry_attempts = std::max(ro.retry_attempts, 1 + std::max(options.push_retry, options.image_download_retry));
  KILN_ASSIGN_OR_RETURN(registry::CurlTransportOptions topts, ro.TransportOptions());
  a->transport_ = std::make_unique<registry::CurlTransport>(topts);
  a->client_ = std::make_unique<registry::Client>(a->transport_.get(), a->keychain_.get(), ro.ClientSettings());
  return a;
}

}  // namespace kiln::executor
