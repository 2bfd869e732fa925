#include "registry/auth.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "registry/errors.h"

namespace kiln::registry {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string ScopeKey(std::vector<std::string> scopes) {
  std::sort(scopes.begin(), scopes.end());
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());
  std::string key;
  for (const auto& s : scopes) key += (key.empty() ? "" : " ") + s;
  return key;
}

// A token server's "expires_in" in seconds, clamped to [1, kMaxTokenLifetime]: the field is any JSON
// number (1e300, -5, 2^63-1 all arrive), and converting or scaling it unchecked overflows (found by
// fuzz/token_response_fuzz). Longer lifetimes only mean kiln asks for a fresh token a day later.
constexpr int64_t kMaxTokenLifetime = 24 * 60 * 60;
int64_t TokenLifetimeSeconds(const nlohmann::json& v) {
  double seconds = v.get<double>();
  if (!(seconds >= 1)) return 60;  // also NaN; the spec's default
  if (seconds > kMaxTokenLifetime) return kMaxTokenLifetime;
  return static_cast<int64_t>(seconds);
}

}  // namespace

std::vector<Challenge> ParseChallenges(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0, n = h.size();
  auto skip_ws = [&] {
    while (i < n && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  auto read_token = [&] {
    size_t start = i;
    while (i < n && IsTokenChar(h[i])) ++i;
    return std::string(h.substr(start, i - start));
  };
  while (i < n) {
    skip_ws();
    while (i < n && (h[i] == ',' || h[i] == ' ')) ++i;
    std::string scheme = read_token();
    if (scheme.empty()) break;
    Challenge ch;
    ch.scheme = Lower(scheme);
    // auth-params: name=value or name="quoted", comma separated, until the next scheme.
    while (true) {
      skip_ws();
      size_t save = i;
      while (i < n && h[i] == ',') {
        ++i;
        skip_ws();
      }
      std::string name = read_token();
      skip_ws();
      if (name.empty() || i >= n || h[i] != '=') {
        i = save;  // the start of the next challenge (or junk)
        break;
      }
      ++i;
      skip_ws();
      std::string value;
      if (i < n && h[i] == '"') {
        ++i;
        while (i < n && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < n) ++i;
          value += h[i++];
        }
        if (i < n) ++i;
      } else {
        // Lenient: unquoted values up to the next comma or blank (some servers send bare URLs).
        size_t start = i;
        while (i < n && h[i] != ',' && h[i] != ' ' && h[i] != '\t') ++i;
        value = std::string(h.substr(start, i - start));
      }
      ch.params[Lower(name)] = value;
    }
    out.push_back(std::move(ch));
    // Junk that is neither a param nor a scheme: stop rather than loop forever.
    skip_ws();
    if (i < n && h[i] != ',' && !IsTokenChar(h[i])) break;
  }
  return out;
}

std::string RepositoryScope(std::string_view repository, bool push) {
  return "repository:" + std::string(repository) + (push ? ":pull,push" : ":pull");
}

Authenticator::Authenticator(Transport* wire, std::string registry, std::string base_url, Credential credential,
                             Clock* clock)
    : wire_(wire),
      registry_(std::move(registry)),
      base_url_(std::move(base_url)),
      credential_(std::move(credential)),
      clock_(clock) {}

std::string Authenticator::WhereKilnLooks() const {
  return searched_.empty() ? std::string() : " (kiln looks in " + searched_ + ")";
}

std::string Authenticator::CredentialNote() const {
  if (credential_.anonymous()) return "no credentials were sent: kiln found none for " + registry_ + WhereKilnLooks();
  return "credentials for " + registry_ + " were sent and refused" + WhereKilnLooks();
}

Status Authenticator::PingLocked() {
  if (pinged_) return OkStatus();
  Request req;
  req.method = "GET";
  req.url = base_url_ + "/v2/";
  auto resp = wire_->RoundTrip(req);
  if (!resp.ok()) return resp.status().WithContext("pinging registry " + registry_);
  if (resp->status == 401) {
    // Prefer Bearer over Basic when a registry offers both.
    for (const auto& header : resp->headers.GetAll("WWW-Authenticate")) {
      for (auto& ch : ParseChallenges(header)) {
        if (ch.scheme == "bearer") {
          scheme_ = "bearer";
          realm_ = ch.params["realm"];
          service_ = ch.params["service"];
        } else if (ch.scheme == "basic" && scheme_.empty()) {
          scheme_ = "basic";
        }
      }
    }
    if (scheme_.empty()) return Unsupported("registry " + registry_ + " asks for an authentication scheme kiln does not support");
    if (scheme_ == "bearer" && realm_.empty()) {
      return FailedPrecondition("registry " + registry_ + " sent a Bearer challenge without a realm");
    }
  } else if (resp->status < 200 || resp->status >= 300) {
    return HttpError("GET", req.url, *resp).WithContext("pinging registry " + registry_);
  }
  pinged_ = true;
  return OkStatus();
}

Result<Authenticator::Token> Authenticator::FetchToken(const std::vector<std::string>& scopes,
                                                       const std::string& realm, const std::string& service) {
  Request req;
  bool refresh = !credential_.identity_token.empty();
  if (refresh) {
    // OAuth2 refresh-token grant (distribution docs/spec/auth/oauth.md), as docker does with an
    // identity token.
    req.method = "POST";
    req.url = realm;
    req.headers.Set("Content-Type", "application/x-www-form-urlencoded");
    req.body = "grant_type=refresh_token&refresh_token=" + UrlEscape(credential_.identity_token) +
               "&service=" + UrlEscape(service) + "&client_id=kiln";
    for (const auto& s : scopes) req.body += "&scope=" + UrlEscape(s);
  } else {
    req.method = "GET";
    std::string q = "service=" + UrlEscape(service);
    for (const auto& s : scopes) q += "&scope=" + UrlEscape(s);
    if (!credential_.username.empty()) {
      q += "&account=" + UrlEscape(credential_.username);
      req.headers.Set("Authorization",
                      "Basic " + Base64Encode(credential_.username + ":" + credential_.password));
    }
    req.url = realm + (realm.find('?') == std::string::npos ? "?" : "&") + q;
  }
  std::string what = "fetching a token for registry " + registry_ + " (" + ScopeKey(scopes) + ")";
  auto resp = wire_->RoundTrip(req);
  if (!resp.ok()) return resp.status().WithContext(what);
  if (resp->status != 200) {
    Status s = HttpError(req.method, req.url, *resp).WithContext(what);
    if (resp->status == 401 || resp->status == 403) {
      return Status(ErrorCode::kUnauthenticated,
                    s.message() + (credential_.anonymous() ? ": no credentials are configured for this registry"
                                                            : ": the token server rejected the credentials") +
                        WhereKilnLooks());
    }
    return s;
  }
  KILN_ASSIGN_OR_RETURN(std::string body, resp->ReadBody(1 << 20));
  Token tok;
  int64_t expires_in = 60;  // the spec's default when the field is missing
  try {
    auto j = nlohmann::json::parse(body);
    if (j.contains("token") && j["token"].is_string()) tok.value = j["token"];
    if (tok.value.empty() && j.contains("access_token") && j["access_token"].is_string()) tok.value = j["access_token"];
    if (j.contains("expires_in") && j["expires_in"].is_number()) expires_in = TokenLifetimeSeconds(j["expires_in"]);
  } catch (const std::exception&) {
    return FailedPrecondition(what + ": the token server's answer is not JSON");
  }
  if (tok.value.empty()) return FailedPrecondition(what + ": the token server's answer holds no token");
  if (expires_in < 1) expires_in = 60;
  // Renew a little early so a token does not expire between our check and the registry's.
  int64_t margin_ms = std::min<int64_t>(expires_in * 1000 / 4, 10'000);
  tok.expires = clock_->Now() + std::chrono::milliseconds(expires_in * 1000 - margin_ms);
  return tok;
}

Status Authenticator::Authorize(Request& req, const std::vector<std::string>& scopes) {
  if (UrlOrigin(req.url) != base_url_) return OkStatus();  // never send credentials elsewhere
  std::unique_lock<std::mutex> lock(mu_);
  KILN_RETURN_IF_ERROR(PingLocked());
  if (scheme_ == "basic") {
    if (!credential_.username.empty() || !credential_.password.empty()) {
      req.headers.Set("Authorization", "Basic " + Base64Encode(credential_.username + ":" + credential_.password));
    }
    return OkStatus();
  }
  if (scheme_ != "bearer") return OkStatus();
  if (!credential_.registry_token.empty()) {
    req.headers.Set("Authorization", "Bearer " + credential_.registry_token);
    return OkStatus();
  }
  std::string key = ScopeKey(scopes);
  auto it = tokens_.find(key);
  if (it == tokens_.end() || clock_->Now() >= it->second.expires) {
    std::string realm = realm_, service = service_;
    // One fetch at a time (parallel blob transfers start together and would each fetch the same
    // token); requests that already hold a valid token are not held up, since mu_ is released.
    lock.unlock();
    std::lock_guard<std::mutex> fetching(fetch_mu_);
    lock.lock();
    it = tokens_.find(key);
    if (it == tokens_.end() || clock_->Now() >= it->second.expires) {
      lock.unlock();
      KILN_ASSIGN_OR_RETURN(Token tok, FetchToken(scopes, realm, service));
      lock.lock();
      it = tokens_.insert_or_assign(key, std::move(tok)).first;
    }
  }
  req.headers.Set("Authorization", "Bearer " + it->second.value);
  return OkStatus();
}

bool Authenticator::OnUnauthorized(const Response& resp, std::vector<std::string>* scopes) {
  std::lock_guard<std::mutex> lock(mu_);
  bool retry = false;
  const std::string old_key = ScopeKey(*scopes);
  for (const auto& header : resp.headers.GetAll("WWW-Authenticate")) {
    for (auto& ch : ParseChallenges(header)) {
      if (ch.scheme != "bearer") continue;
      if (scheme_ != "bearer") retry = true;  // the registry switched schemes since the ping
      scheme_ = "bearer";
      if (!ch.params["realm"].empty()) realm_ = ch.params["realm"];
      if (ch.params.count("service")) service_ = ch.params["service"];
      const std::string& scope = ch.params["scope"];
      // A challenge may name several space-separated scopes.
      size_t start = 0;
      while (start < scope.size()) {
        size_t sp = scope.find(' ', start);
        std::string one = scope.substr(start, sp == std::string::npos ? sp : sp - start);
        if (!one.empty() && std::find(scopes->begin(), scopes->end(), one) == scopes->end()) {
          scopes->push_back(one);
          retry = true;
        }
        if (sp == std::string::npos) break;
        start = sp + 1;
      }
      // An expired or revoked token: drop it and fetch another.
      if (tokens_.erase(old_key) > 0) retry = true;
    }
  }
  return retry;
}

AuthTransport::AuthTransport(Transport* wire, std::shared_ptr<Authenticator> auth, std::vector<std::string> scopes)
    : wire_(wire), auth_(std::move(auth)), scopes_(std::move(scopes)) {}

Result<Response> AuthTransport::RoundTrip(const Request& original) {
  std::vector<std::string> scopes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    scopes = scopes_;
  }
  Request req = original;
  KILN_RETURN_IF_ERROR(auth_->Authorize(req, scopes));
  KILN_ASSIGN_OR_RETURN(Response resp, wire_->RoundTrip(req));
  bool ours = UrlOrigin(original.url) == auth_->base_url();
  auto annotate = [&](Response r) {
    if (ours && (r.status == 401 || r.status == 403)) r.auth_note = auth_->CredentialNote();
    return r;
  };
  if (resp.status != 401 || !original.Replayable() || !ours) return annotate(std::move(resp));
  if (!auth_->OnUnauthorized(resp, &scopes)) return annotate(std::move(resp));
  {
    std::lock_guard<std::mutex> lock(mu_);
    scopes_ = scopes;  // later requests ask for the wider scope straight away
  }
  req = original;
  KILN_RETURN_IF_ERROR(auth_->Authorize(req, scopes));
  KILN_ASSIGN_OR_RETURN(Response again, wire_->RoundTrip(req));
  return annotate(std::move(again));
}

}  // namespace kiln::registry
