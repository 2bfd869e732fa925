#include "cmd/registry_flags.h"

namespace kiln::cmd {

void RegistryFlags::Declare(CLI::App* sub) {
  auto one_each = [](CLI::Option* o) { o->allow_extra_args(false)->expected(1)->take_all(); };
  one_each(sub->add_option("--insecure-registry", insecure_registries, "Use plain HTTP for this registry (repeatable)"));
  one_each(sub->add_option("--skip-tls-verify-registry", skip_verify_registries,
                           "Do not verify the TLS certificate of this registry (repeatable)"));
  one_each(sub->add_option("--registry-certificate", registry_certificates,
                           "HOST=PATH: trust the CA file or certs.d-style directory PATH for registry HOST (repeatable)"));
  one_each(sub->add_option("--registry-mirror", mirrors,
                           "Pull docker.io images through this mirror first: HOST[/PATH] (repeatable)"));
  one_each(sub->add_option("--registry-map", registry_maps,
                           "REGISTRY=MIRROR[/PATH]: pull REGISTRY's images from MIRROR first (repeatable, or ';'-separated)"));
}

Status RegistryFlags::ApplyTo(registry::RegistryAccessOptions& access) const {
  access.insecure_registries.insert(insecure_registries.begin(), insecure_registries.end());
  access.skip_verify_registries.insert(skip_verify_registries.begin(), skip_verify_registries.end());
  for (const std::string& c : registry_certificates) KILN_RETURN_IF_ERROR(access.AddRegistryCertificate(c));
  access.mirrors = mirrors;
  for (const std::string& m : registry_maps) KILN_RETURN_IF_ERROR(access.AddRegistryMap(m));
  return OkStatus();
}

Result<std::unique_ptr<CommandRegistryClient>> CommandRegistryClient::Create(
    const registry::RegistryAccessOptions& access) {
  std::unique_ptr<CommandRegistryClient> c(new CommandRegistryClient());
  KILN_ASSIGN_OR_RETURN(registry::CurlTransportOptions to, access.TransportOptions());
  c->wire_ = std::make_unique<registry::CurlTransport>(to);
  c->keychain_ = registry::NewDefaultKeychain(registry::DockerConfigSearch::FromEnvironment(),
                                              registry::DockerConfigSearch::ContainersAuthFromEnvironment(),
                                              &c->helpers_);
  c->client_ = std::make_unique<registry::Client>(c->wire_.get(), c->keychain_.get(), access.ClientSettings());
  return c;
}

}  // namespace kiln::cmd
