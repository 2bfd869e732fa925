// Registry authentication as go-containerregistry does it: ping GET /v2/, read the WWW-Authenticate
// challenge, then send Basic credentials or fetch a Bearer token from the challenge's realm for the
// scopes a request needs (anonymously, with username/password, or with an identity token through the
// OAuth2 refresh-token grant), caching tokens per scope until they expire, and fetching a fresh one
// when the registry answers 401 (expired token, or a wider scope asked for in the challenge).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "registry/clock.h"
#include "registry/credentials.h"
#include "registry/transport.h"

namespace kiln::registry {

/// One challenge of a WWW-Authenticate header. `scheme` is lower case; parameter names are lower case.
struct Challenge {
  std::string scheme;
  std::map<std::string, std::string> params;
};

/// Parses a WWW-Authenticate value (RFC 9110 §11.6.1): several challenges, quoted strings with
/// backslash escapes, commas inside quotes (scope="repository:a:pull,push").
std::vector<Challenge> ParseChallenges(std::string_view header);

/// "repository:NAME:pull" / "repository:NAME:pull,push".
std::string RepositoryScope(std::string_view repository, bool push);

/// Authentication state for one registry. Thread-safe. Does not own `wire` or `clock`.
class Authenticator {
 public:
  /// `base_url` is "scheme://api-host" of the registry; `registry` names it in messages.
  Authenticator(Transport* wire, std::string registry, std::string base_url, Credential credential, Clock* clock);

  /// What a 401/403 should tell the user about credentials: whether any were sent for this registry
  /// and where kiln looks for them (`searched`, from Keychain::Searched). Never a secret.
  void SetCredentialSources(std::string searched) { searched_ = std::move(searched); }
  std::string CredentialNote() const;

  /// Adds an Authorization header for `scopes` to `req` when `req` goes to this registry, pinging
  /// and fetching a token first if needed.
  Status Authorize(Request& req, const std::vector<std::string>& scopes);
  /// Learns from a 401 answer: forgets the cached token for `scopes`, adopts the challenge's realm and
  /// extra scope. Returns true if sending the request again may succeed.
  bool OnUnauthorized(const Response& resp, std::vector<std::string>* scopes);

  const std::string& registry() const { return registry_; }
  const std::string& base_url() const { return base_url_; }

 private:
  struct Token {
    std::string value;
    Clock::TimePoint expires;
  };
  Status PingLocked();
  Result<Token> FetchToken(const std::vector<std::string>& scopes, const std::string& realm,
                           const std::string& service);

  /// " (kiln looks in FILES)", or "" when the keychain named none.
  std::string WhereKilnLooks() const;

  Transport* wire_;
  std::string registry_, base_url_;
  Credential credential_;
  std::string searched_;
  Clock* clock_;
  std::mutex mu_;
  std::mutex fetch_mu_;  // held while fetching a token; taken before mu_
  bool pinged_ = false;
  std::string scheme_;  // "", "basic" or "bearer"
  std::string realm_, service_;
  std::map<std::string, Token> tokens_;  // by space-joined sorted scopes
};

/// Decorator that authorises every request for a fixed set of scopes (plus those a challenge adds)
/// and retries once after a 401 when the body can be replayed.
class AuthTransport : public Transport {
 public:
  AuthTransport(Transport* wire, std::shared_ptr<Authenticator> auth, std::vector<std::string> scopes);
  Result<Response> RoundTrip(const Request& req) override;

 private:
  Transport* wire_;
  std::shared_ptr<Authenticator> auth_;
  std::mutex mu_;
  std::vector<std::string> scopes_;
};

}  // namespace kiln::registry
