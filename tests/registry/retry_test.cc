// Retry and backoff with an injected clock.
#include "registry/retry.h"

#include <gtest/gtest.h>

#include "registry/errors.h"
#include "registry/fake_transport.h"

namespace kiln::registry {
namespace {

using std::chrono::milliseconds;

FakeResponse Resp(int status, std::string retry_after = "") {
  FakeResponse r;
  r.status = status;
  if (!retry_after.empty()) r.headers.Add("Retry-After", retry_after);
  return r;
}

RetryPolicy NoJitter() {
  RetryPolicy p;
  p.jitter = 0;
  p.initial_backoff = milliseconds(100);
  p.max_backoff = milliseconds(1000);
  p.max_attempts = 5;
  return p;
}

TEST(RetryTest, BacksOffExponentiallyOn5xxThenSucceeds) {
  FakeClock clock;
  FakeTransport wire;
  wire.Enqueue(Resp(500));
  wire.Enqueue(Resp(502));
  wire.Enqueue(Resp(503));
  wire.Enqueue(Resp(200));
  RetryTransport t(&wire, NoJitter(), &clock);
  Request req;
  req.url = "http://r/v2/a/manifests/1";
  auto r = t.RoundTrip(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(clock.sleeps(), (std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400)}));
}

TEST(RetryTest, HonoursRetryAfterOn429AndCapsBackoff) {
  FakeClock clock;
  FakeTransport wire;
  wire.Enqueue(Resp(429, "3"));
  wire.Enqueue(Resp(429, "7200"));
  wire.Enqueue(Resp(200));
  RetryPolicy p = NoJitter();
  p.max_retry_after = milliseconds(30'000);
  RetryTransport t(&wire, p, &clock);
  Request req;
  req.url = "http://r/v2/";
  ASSERT_EQ(t.RoundTrip(req)->status, 200);
  EXPECT_EQ(clock.sleeps(), (std::vector<milliseconds>{milliseconds(3000), milliseconds(30'000)}));
  EXPECT_EQ(t.BaseBackoff(10), milliseconds(1000));
}

TEST(RetryTest, TransportErrorsRetriedThenReportedWithAttempts) {
  FakeClock clock;
  FakeTransport wire([](const RecordedRequest&) { return FakeResponse::Error(Unavailable("connection reset")); });
  RetryTransport t(&wire, NoJitter(), &clock);
  Request req;
  req.url = "http://r/v2/";
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().temporary());
  EXPECT_NE(r.status().message().find("after 5 attempts"), std::string::npos) << r.status().message();
  EXPECT_EQ(wire.requests().size(), 5u);
  EXPECT_EQ(clock.sleeps().size(), 4u);
}

TEST(RetryTest, LastResponseReturnedAfterAttemptsRunOut) {
  FakeClock clock;
  FakeTransport wire([](const RecordedRequest&) { return Resp(503); });
  RetryPolicy p = NoJitter();
  p.max_attempts = 3;
  RetryTransport t(&wire, p, &clock);
  Request req;
  auto r = t.RoundTrip(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(wire.requests().size(), 3u);
}

TEST(RetryTest, PermanentErrorsAndNonReplayableBodiesAreNotRetried) {
  FakeClock clock;
  FakeTransport wire;
  wire.Enqueue(Resp(404));
  wire.Enqueue(FakeResponse::Error(IoError("bad URL")));
  wire.Enqueue(Resp(500));
  wire.Enqueue(Resp(500));
  RetryTransport t(&wire, NoJitter(), &clock);
  Request req;
  EXPECT_EQ(t.RoundTrip(req)->status, 404);
  EXPECT_FALSE(t.RoundTrip(req).ok());
  // A streamed body was consumed by the first attempt: sending it again would send nothing.
  StringReader body("blob");
  Request put;
  put.method = "PUT";
  put.body_reader = &body;
  EXPECT_EQ(t.RoundTrip(put)->status, 500);
  // PATCH appends to an upload: its partial effect is unknown, so it is not repeated.
  Request patch;
  patch.method = "PATCH";
  patch.body = "chunk";
  EXPECT_EQ(t.RoundTrip(patch)->status, 500);
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(RetryTest, JitterStaysWithinBounds) {
  FakeClock clock;
  FakeTransport wire;
  for (int i = 0; i < 4; ++i) wire.Enqueue(Resp(500));
  wire.Enqueue(Resp(200));
  RetryPolicy p = NoJitter();
  p.jitter = 0.5;
  RetryTransport t(&wire, p, &clock, /*seed=*/42);
  Request req;
  ASSERT_EQ(t.RoundTrip(req)->status, 200);
  auto sleeps = clock.sleeps();
  ASSERT_EQ(sleeps.size(), 4u);
  for (size_t i = 0; i < sleeps.size(); ++i) {
    auto base = t.BaseBackoff(static_cast<int>(i) + 1).count();
    EXPECT_GE(sleeps[i].count(), base / 2) << i;
    EXPECT_LE(sleeps[i].count(), base * 3 / 2) << i;
  }
}

TEST(RetryTest, ParseRetryAfter) {
  EXPECT_EQ(ParseRetryAfter("5"), milliseconds(5000));
  EXPECT_EQ(ParseRetryAfter(" 0.5 "), milliseconds(500));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-1"), std::nullopt);
}

TEST(HttpErrorTest, KeepsStatusAndRegistryCode) {
  Response resp;
  resp.status = 400;
  resp.body = std::make_unique<StringReader>(R"({"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]})");
  Status s = HttpError("PUT", "https://r/v2/a/blobs/uploads/x?_state=SECRET&digest=sha256:1", resp);
  EXPECT_EQ(s.code(), ErrorCode::kDigestMismatch);
  EXPECT_EQ(s.message(), "PUT https://r/v2/a/blobs/uploads/x: 400 Bad Request (DIGEST_INVALID: provided digest did not match)");
  Response html;
  html.status = 502;
  html.body = std::make_unique<StringReader>("<html>bad gateway</html>");
  Status g = HttpError("GET", "https://r/v2/", html);
  EXPECT_TRUE(g.temporary());
  EXPECT_EQ(g.message(), "GET https://r/v2/: 502 Bad Gateway");
}

}  // namespace
}  // namespace kiln::registry
