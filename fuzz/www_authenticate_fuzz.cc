// Fuzz target: the registry's WWW-Authenticate challenge (registry/auth.h). The input is a header
// value as a registry (or anything on its path) may send it. It is parsed on its own, then served as
// the challenge of a scripted registry (FakeTransport: no network) to an Authenticator: the ping that
// picks the scheme, realm and service, the token fetch against whatever realm it names, and the 401
// that widens the scopes.
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
  std::string header(reinterpret_cast<const char*>(data), size);
  for (Challenge& c : ParseChallenges(header)) {
    (void)c.params["realm"];
  }

  const std::string base = "https://reg.example";
  FakeTransport wire([&](const RecordedRequest& req) {
    FakeResponse r;
    if (req.url.rfind(base + "/v2/", 0) == 0) {
      r.status = 401;  // the ping and every registry request: challenge
      r.headers.Add("WWW-Authenticate", header);
    } else {
      r.body = R"({"token":"t","expires_in":300})";  // any realm: a token server
    }
    return r;
  });
  FakeClock clock;
  Credential cred;
  if (size % 2 == 1) {
    cred.username = "u";
    cred.password = "p";
  }
  auto auth = std::make_shared<Authenticator>(&wire, "reg.example", base, cred, &clock);
  AuthTransport transport(&wire, auth, {RepositoryScope("library/x", false)});
  Request req;
  req.url = base + "/v2/library/x/manifests/latest";
  Result<Response> resp = transport.RoundTrip(req);
  if (resp.ok()) (void)resp->ReadBody(1 << 16);
  (void)auth->CredentialNote();
  return 0;
}
