#include "executor/registry_access.h"

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

  registry::CurlTransportOptions topts;
  auto ssl = options.environ.find("SSL_CERT_FILE");
  if (ssl != options.environ.end()) topts.system_ca_file = ssl->second;
  for (const auto& [host, path] : options.registry_certificates) topts.hosts[host].ca_files.push_back(path);
  for (const std::string& host : options.skip_tls_verify_registries) topts.hosts[host].skip_verify = true;
  if (options.skip_tls_verify_pull) {
    for (const std::string& r : pull_registries) topts.hosts[r].skip_verify = true;
  }
  if (options.skip_tls_verify_push) {
    for (const std::string& r : push_registries) topts.hosts[r].skip_verify = true;
  }
  a->transport_ = std::make_unique<registry::CurlTransport>(topts);

  registry::ClientOptions copts;
  copts.insecure_registries = options.insecure_registries;
  if (options.insecure_pull) copts.insecure_registries.insert(pull_registries.begin(), pull_registries.end());
  if (options.insecure_push) copts.insecure_registries.insert(push_registries.begin(), push_registries.end());
  copts.docker_io_mirrors = options.registry_mirrors;
  copts.mirror_fallback = !options.skip_default_registry_fallback;
  copts.retry.max_attempts = std::max(copts.retry.max_attempts, 1 + std::max(options.push_retry, options.image_download_retry));
  a->client_ = std::make_unique<registry::Client>(a->transport_.get(), a->keychain_.get(), copts);
  return a;
}

}  // namespace kiln::executor
