// Fuzz target: a credential helper's answer (registry/credentials.h). The input is what
// `docker-credential-NAME get` printed on stdout; a scripted runner returns it (no process is started)
// to a keychain whose config names the helper as credsStore and for one registry in credHelpers.
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
  explicit CannedRunner(std::string out) : out_(std::move(out)) {}
  kiln::Result<std::string> Run(const std::string&, const std::vector<std::string>&, const std::string&) override {
    return out_;
  }

 private:
  std::string out_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::registry;
  CannedRunner runner(std::string(reinterpret_cast<const char*>(data), size));
  auto kc = DockerConfigKeychain::FromJson(
      R"({"auths":{"r.example:5000":{"auth":"dTpw"}},"credHelpers":{"ghcr.io":"gh"},"credsStore":"store"})", &runner);
  if (!kc.ok()) __builtin_trap();  // the fixed config above is valid
  for (std::string_view registry : {"docker.io", "ghcr.io", "r.example:5000"}) {
    (void)(*kc)->Resolve(registry);
  }
  return 0;
}
