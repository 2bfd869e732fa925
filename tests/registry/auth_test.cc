// Challenge parsing and the token flow, against a scripted FakeTransport.
#include "registry/auth.h"

#include <gtest/gtest.h>

#include "registry/fake_transport.h"

namespace kiln::registry {
namespace {

TEST(ChallengeTest, ParsesBearerWithQuotedCommas) {
  auto c = ParseChallenges(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].params["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(c[0].params["service"], "registry.docker.io");
  EXPECT_EQ(c[0].params["scope"], "repository:library/ubuntu:pull,push");
}

TEST(ChallengeTest, ParsesSeveralChallengesAndCase) {
  auto c = ParseChallenges(R"(Basic realm="Registry Realm", BEARER Realm=https://r/t , Service="s", error="invalid_token")");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].params["realm"], "Registry Realm");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].params["realm"], "https://r/t");
  EXPECT_EQ(c[1].params["service"], "s");
  EXPECT_EQ(c[1].params["error"], "invalid_token");
}

TEST(ChallengeTest, EscapesAndEmpty) {
  auto c = ParseChallenges(R"(Bearer realm="a\"b", scope="")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].params["realm"], "a\"b");
  EXPECT_EQ(c[0].params["scope"], "");
  EXPECT_TRUE(ParseChallenges("").empty());
  auto bare = ParseChallenges("Basic");
  ASSERT_EQ(bare.size(), 1u);
  EXPECT_TRUE(bare[0].params.empty());
}

FakeResponse Resp(int status, std::string body = "", Headers h = {}) {
  FakeResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(h);
  return r;
}

Headers H(std::string k, std::string v) {
  Headers h;
  h.Add(std::move(k), std::move(v));
  return h;
}

const char kBearer[] = R"(Bearer realm="https://auth.example/token",service="reg.example")";

TEST(AuthTransportTest, AnonymousTokenFlowCachesPerScope) {
  FakeClock clock;
  int token_requests = 0;
  FakeTransport wire([&](const RecordedRequest& r) {
    if (r.url == "https://reg.example/v2/") return Resp(401, "", H("WWW-Authenticate", kBearer));
    if (r.url.rfind("https://auth.example/token?", 0) == 0) {
      ++token_requests;
      EXPECT_FALSE(r.headers.Has("Authorization"));
      return Resp(200, R"({"token":"T)" + std::to_string(token_requests) + R"(","expires_in":300})");
    }
    EXPECT_EQ(r.headers.Get("Authorization"), "Bearer T" + std::to_string(token_requests));
    return Resp(200, "ok");
  });
  auto auth = std::make_shared<Authenticator>(&wire, "reg.example", "https://reg.example", Credential{}, &clock);
  AuthTransport t(&wire, auth, {"repository:a/b:pull"});
  Request req;
  req.url = "https://reg.example/v2/a/b/manifests/1";
  ASSERT_TRUE(t.RoundTrip(req).ok());
  ASSERT_TRUE(t.RoundTrip(req).ok());
  EXPECT_EQ(token_requests, 1);
  auto log = wire.Log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[1], "GET https://auth.example/token?service=reg.example&scope=repository%3Aa%2Fb%3Apull");

  // Another scope gets its own token.
  AuthTransport t2(&wire, auth, {"repository:c:pull,push"});
  ASSERT_TRUE(t2.RoundTrip(req).ok());
  EXPECT_EQ(token_requests, 2);

  // Expiry: after 300 s the token is fetched again without a 401 first.
  clock.Advance(std::chrono::seconds(301));
  ASSERT_TRUE(t.RoundTrip(req).ok());
  EXPECT_EQ(token_requests, 3);
}

// Found by fuzz/token_response_fuzz: an expires_in of 1e300 or 2^63-1 was converted to int64 and
// multiplied by 1000 unchecked (undefined behaviour). Any number is now clamped: huge lifetimes to a
// day, zero, negative and fractional-below-one ones to the spec's 60 s.
TEST(AuthTransportTest, OutOfRangeTokenLifetimesAreClamped) {
  for (const char* expires_in : {"1e300", "9223372036854775807", "18446744073709551615", "-1e300", "0.5", "-7"}) {
    SCOPED_TRACE(expires_in);
    FakeClock clock;
    int token_requests = 0;
    FakeTransport wire([&](const RecordedRequest& r) {
      if (r.url == "https://reg.example/v2/") return Resp(401, "", H("WWW-Authenticate", kBearer));
      ++token_requests;
      return Resp(200, std::string(R"({"token":"T","expires_in":)") + expires_in + "}");
    });
    Authenticator auth(&wire, "reg.example", "https://reg.example", Credential{}, &clock);
    Request req;
    req.url = "https://reg.example/v2/a/manifests/1";
    ASSERT_TRUE(auth.Authorize(req, {"repository:a:pull"}).ok());
    EXPECT_EQ(req.headers.Get("Authorization"), "Bearer T");
    bool huge = expires_in[0] != '-' && expires_in[0] != '0';
    // Within the lifetime (a day, or the default 60 s less its early-renewal margin): cached.
    clock.Advance(std::chrono::seconds(huge ? 24 * 3600 - 60 : 30));
    ASSERT_TRUE(auth.Authorize(req, {"repository:a:pull"}).ok());
    EXPECT_EQ(token_requests, 1);
    // Past it: fetched again.
    clock.Advance(std::chrono::seconds(huge ? 120 : 60));
    ASSERT_TRUE(auth.Authorize(req, {"repository:a:pull"}).ok());
    EXPECT_EQ(token_requests, 2);
  }
}

TEST(AuthTransportTest, PasswordGoesToTheTokenServerOnlyAndRefreshesOn401) {
  FakeClock clock;
  int tokens = 0;
  bool reject_next = false;
  FakeTransport wire([&](const RecordedRequest& r) {
    if (r.url == "https://reg.example/v2/") return Resp(401, "", H("WWW-Authenticate", kBearer));
    if (r.url.rfind("https://auth.example/token?", 0) == 0) {
      EXPECT_EQ(r.headers.Get("Authorization"), "Basic " + Base64Encode("u:p"));
      EXPECT_NE(r.url.find("account=u"), std::string::npos);
      ++tokens;
      return Resp(200, R"({"access_token":"A)" + std::to_string(tokens) + R"("})");
    }
    EXPECT_EQ(r.headers.Get("Authorization").rfind("Bearer A", 0), 0u);  // never the password
    if (reject_next) {
      reject_next = false;
      return Resp(401, R"({"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]})",
                  H("WWW-Authenticate", std::string(kBearer) + R"(,error="invalid_token")"));
    }
    return Resp(200);
  });
  auto auth = std::make_shared<Authenticator>(&wire, "reg.example", "https://reg.example", Credential{"u", "p", "", ""}, &clock);
  AuthTransport t(&wire, auth, {"repository:a:pull"});
  Request req;
  req.url = "https://reg.example/v2/a/blobs/sha256:x";
  ASSERT_EQ(t.RoundTrip(req)->status, 200);
  reject_next = true;  // the registry revoked the token before it expired
  auto r = t.RoundTrip(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(tokens, 2);
}

TEST(AuthTransportTest, ChallengeScopeIsAddedAndRequestRetried) {
  FakeClock clock;
  FakeTransport wire([&](const RecordedRequest& r) {
    if (r.url == "https://reg.example/v2/") return Resp(401, "", H("WWW-Authenticate", kBearer));
    if (r.url.rfind("https://auth.example/token?", 0) == 0) {
      bool wide = r.url.find("scope=repository%3Aother%3Apull") != std::string::npos;
      return Resp(200, wide ? R"({"token":"WIDE"})" : R"({"token":"NARROW"})");
    }
    if (r.headers.Get("Authorization") == "Bearer WIDE") return Resp(201);
    return Resp(401, "", H("WWW-Authenticate", std::string(kBearer) +
                                                 R"(,scope="repository:other:pull",error="insufficient_scope")"));
  });
  auto auth = std::make_shared<Authenticator>(&wire, "reg.example", "https://reg.example", Credential{}, &clock);
  AuthTransport t(&wire, auth, {"repository:a:pull,push"});
  Request req;
  req.method = "POST";
  req.url = "https://reg.example/v2/a/blobs/uploads/?mount=sha256:x&from=other";
  auto r = t.RoundTrip(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 201);
}

TEST(AuthTransportTest, BasicAuthAndNoCredentialsToOtherHosts) {
  FakeClock clock;
  FakeTransport wire([&](const RecordedRequest& r) {
    if (r.url == "http://r:5000/v2/") return Resp(401, "", H("WWW-Authenticate", R"(Basic realm="x")"));
    if (r.url.rfind("http://r:5000/", 0) == 0) {
      EXPECT_EQ(r.headers.Get("Authorization"), "Basic " + Base64Encode("me:pw"));
    } else {
      EXPECT_FALSE(r.headers.Has("Authorization")) << r.url;
    }
    return Resp(200);
  });
  auto auth = std::make_shared<Authenticator>(&wire, "r:5000", "http://r:5000", Credential{"me", "pw", "", ""}, &clock);
  AuthTransport t(&wire, auth, {"repository:a:pull"});
  Request req;
  req.url = "http://r:5000/v2/a/manifests/1";
  ASSERT_TRUE(t.RoundTrip(req).ok());
  req.url = "https://storage.example/blob?sig=1";
  ASSERT_TRUE(t.RoundTrip(req).ok());
}

TEST(AuthTransportTest, IdentityTokenUsesOAuthRefreshGrant) {
  FakeClock clock;
  FakeTransport wire([&](const RecordedRequest& r) {
    if (r.url == "https://reg.example/v2/") return Resp(401, "", H("WWW-Authenticate", kBearer));
    if (r.url == "https://auth.example/token") {
      EXPECT_EQ(r.method, "POST");
      EXPECT_EQ(r.headers.Get("Content-Type"), "application/x-www-form-urlencoded");
      EXPECT_EQ(r.body,
                "grant_type=refresh_token&refresh_token=RT%2B1&service=reg.example&client_id=kiln&scope=repository%3Aa%3Apull");
      return Resp(200, R"({"access_token":"AT","expires_in":60})");
    }
    EXPECT_EQ(r.headers.Get("Authorization"), "Bearer AT");
    return Resp(200);
  });
  auto auth = std::make_shared<Authenticator>(&wire, "reg.example", "https://reg.example", Credential{"", "", "RT+1", ""}, &clock);
  AuthTransport t(&wire, auth, {"repository:a:pull"});
  Request req;
  req.url = "https://reg.example/v2/a/manifests/1";
  ASSERT_EQ(t.RoundTrip(req)->status, 200);
}

TEST(AuthTransportTest, RejectedCredentialsGiveUnauthenticatedWithoutSecrets) {
  FakeClock clock;
  FakeTransport wire([&](const RecordedRequest& r) {
    if (r.url == "https://reg.example/v2/") return Resp(401, "", H("WWW-Authenticate", kBearer));
    return Resp(401, R"({"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]})");
  });
  auto auth = std::make_shared<Authenticator>(&wire, "reg.example", "https://reg.example",
                                              Credential{"user", "TopSecret", "", ""}, &clock);
  AuthTransport t(&wire, auth, {"repository:a:pull"});
  Request req;
  req.url = "https://reg.example/v2/a/manifests/1";
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("reg.example"), std::string::npos);
  EXPECT_EQ(r.status().message().find("TopSecret"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find(Base64Encode("user:TopSecret")), std::string::npos);
}

TEST(Base64Test, RoundTrip) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "user:pa:ss"}) {
    EXPECT_EQ(Base64Decode(Base64Encode(s)).value(), s);
  }
  EXPECT_EQ(Base64Encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_FALSE(Base64Decode("not base64!").ok());
}

}  // namespace
}  // namespace kiln::registry
