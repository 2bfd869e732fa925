// Fuzz target: the token server's answer (registry/auth.h, Authenticator's token fetch). The input is
// the body a token endpoint returns with 200; a scripted registry (FakeTransport: no network) sends a
// Bearer challenge, the Authenticator fetches a token (anonymously, with a password, or through the
// identity-token refresh grant, by the input's length), caches it, and asks again after the clock has
// moved past any expiry a sane server could name.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "registry/auth.h"
#include "registry/clock.h"
#include "registry/fake_transport.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  using namespace kiln::registry;
  std::string body(reinterpret_cast<const char*>(data), size);
  const std::string base = "https://reg.example";
  FakeTransport wire([&](const RecordedRequest& req) {
    FakeResponse r;
    if (req.url.rfind(base + "/v2/", 0) == 0) {
      r.status = 401;
      r.headers.Add("WWW-Authenticate", R"(Bearer realm="https://auth.example/token",service="reg.example")");
    } else {
      r.body = body;
    }
    return r;
  });
  FakeClock clock;
  Credential cred;
  switch (size % 3) {
    case 1:
      cred.username = "u";
      cred.password = "p";
      break;
    case 2:
      cred.identity_token = "refresh";
      break;
    default:
      break;
  }
  Authenticator auth(&wire, "reg.example", base, cred, &clock);
  std::vector<std::string> scopes = {RepositoryScope("library/x", true)};
  for (int i = 0; i < 2; ++i) {
    Request req;
    req.url = base + "/v2/library/x/blobs/uploads/";
    (void)auth.Authorize(req, scopes);
    clock.Advance(std::chrono::hours(24 * 365));
  }
  return 0;
}
