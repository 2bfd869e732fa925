// Fuzz target: docker's config.json (registry/credentials.h). The input is the file as a pod or a CI
// job may mount it; it is read as DockerConfigKeychain reads it, and credentials are resolved for
// the registry names kiln asks about (Docker Hub and its aliases, a host with a port, a bare host).
// A credential helper the file names is answered by a scripted runner (no process is started).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "registry/credentials.h"

namespace {

class CannedRunner : public kiln::registry::HelperRunner {
 public:
  kiln::Result<std::string> Run(const std::string&, const std::vector<std::string>&, const std::string&) override {
    return std::string(R"({"ServerURL":"r","Username":"u","Secret":"s"})");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::registry;
  std::string_view json(reinterpret_cast<const char*>(data), size);
  CannedRunner runner;
  auto kc = DockerConfigKeychain::FromJson(json, &runner);
  if (!kc.ok()) return 0;
  for (std::string_view registry : {"docker.io", "index.docker.io", "r.example:5000", "localhost", "ghcr.io"}) {
    (void)(*kc)->Resolve(registry);
  }
  if (size < 512) {
    (void)NormalizeAuthKey(json);
    (void)HelperServerUrl(json);
  }
  return 0;
}
