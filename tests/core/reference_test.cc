// The reference grammar, checked against the behaviour documented and tested by
// github.com/distribution/reference (normalize_test.go, reference_test.go) and the docker CLI.
#include "core/reference.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::registry {
namespace {

const std::string kHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kDig = "sha256:" + kHex;

struct Good {
  std::string in;
  std::string registry, repository, tag;
  bool has_digest;
  std::string full;  // ToString()
};

class GoodReferenceTest : public ::testing::TestWithParam<Good> {};

TEST_P(GoodReferenceTest, ParsesAndNormalises) {
  const Good& g = GetParam();
  auto r = Reference::Parse(g.in);
  ASSERT_TRUE(r.ok()) << g.in << ": " << r.status().ToString();
  EXPECT_EQ(r->registry(), g.registry) << g.in;
  EXPECT_EQ(r->repository(), g.repository) << g.in;
  EXPECT_EQ(r->tag(), g.tag) << g.in;
  EXPECT_EQ(r->digest().has_value(), g.has_digest) << g.in;
  EXPECT_EQ(r->ToString(), g.full) << g.in;
  // Normalised output parses back to itself.
  auto again = Reference::Parse(r->ToString());
  ASSERT_TRUE(again.ok()) << r->ToString();
  EXPECT_EQ(*again, *r);
}

INSTANTIATE_TEST_SUITE_P(
    Table, GoodReferenceTest,
    ::testing::Values(
        Good{"ubuntu", "docker.io", "library/ubuntu", "", false, "docker.io/library/ubuntu"},
        Good{"ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", false, "docker.io/library/ubuntu:22.04"},
        Good{"library/ubuntu", "docker.io", "library/ubuntu", "", false, "docker.io/library/ubuntu"},
        Good{"docker.io/ubuntu", "docker.io", "library/ubuntu", "", false, "docker.io/library/ubuntu"},
        Good{"docker.io/library/ubuntu:latest", "docker.io", "library/ubuntu", "latest", false,
             "docker.io/library/ubuntu:latest"},
        Good{"index.docker.io/ubuntu", "docker.io", "library/ubuntu", "", false, "docker.io/library/ubuntu"},
        Good{"index.docker.io/user/app:v1", "docker.io", "user/app", "v1", false, "docker.io/user/app:v1"},
        Good{"user/app", "docker.io", "user/app", "", false, "docker.io/user/app"},
        Good{"user/app/sub", "docker.io", "user/app/sub", "", false, "docker.io/user/app/sub"},
        Good{"localhost/app", "localhost", "app", "", false, "localhost/app"},
        Good{"localhost:5000/app", "localhost:5000", "app", "", false, "localhost:5000/app"},
        Good{"localhost:5000/app:tag", "localhost:5000", "app", "tag", false, "localhost:5000/app:tag"},
        Good{"localhost:5000", "docker.io", "library/localhost", "5000", false, "docker.io/library/localhost:5000"},
        Good{"127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "", false, "127.0.0.1:5000/a/b"},
        Good{"[::1]:5000/app", "[::1]:5000", "app", "", false, "[::1]:5000/app"},
        Good{"[2001:db8::1]/app:x", "[2001:db8::1]", "app", "x", false, "[2001:db8::1]/app:x"},
        Good{"ghcr.io/owner/repo:1.2.3", "ghcr.io", "owner/repo", "1.2.3", false, "ghcr.io/owner/repo:1.2.3"},
        Good{"quay.io/coreos/etcd", "quay.io", "coreos/etcd", "", false, "quay.io/coreos/etcd"},
        Good{"gcr.io/distroless/static-debian12:nonroot", "gcr.io", "distroless/static-debian12", "nonroot", false,
             "gcr.io/distroless/static-debian12:nonroot"},
        Good{"registry.gitlab.com/g/sub/proj/img:main", "registry.gitlab.com", "g/sub/proj/img", "main", false,
             "registry.gitlab.com/g/sub/proj/img:main"},
        Good{"123456789012.dkr.ecr.us-east-1.amazonaws.com/app:prod", "123456789012.dkr.ecr.us-east-1.amazonaws.com",
             "app", "prod", false, "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:prod"},
        Good{"Example.COM/app", "Example.COM", "app", "", false, "Example.COM/app"},
        Good{"Foo/bar", "Foo", "bar", "", false, "Foo/bar"},  // upper case makes it a domain
        Good{"my-registry:443/a", "my-registry:443", "a", "", false, "my-registry:443/a"},
        Good{"ubuntu@" + kDig, "docker.io", "library/ubuntu", "", true, "docker.io/library/ubuntu@" + kDig},
        Good{"ubuntu:22.04@" + kDig, "docker.io", "library/ubuntu", "22.04", true,
             "docker.io/library/ubuntu:22.04@" + kDig},
        Good{"localhost:5000/a:b@" + kDig, "localhost:5000", "a", "b", true, "localhost:5000/a:b@" + kDig},
        Good{"a-b/c_d", "docker.io", "a-b/c_d", "", false, "docker.io/a-b/c_d"},
        Good{"a__b", "docker.io", "library/a__b", "", false, "docker.io/library/a__b"},
        Good{"a--b", "docker.io", "library/a--b", "", false, "docker.io/library/a--b"},
        Good{"a.b.c", "docker.io", "library/a.b.c", "", false, "docker.io/library/a.b.c"},
        Good{"a.b/c", "a.b", "c", "", false, "a.b/c"},
        Good{"x:_tag", "docker.io", "library/x", "_tag", false, "docker.io/library/x:_tag"},
        Good{"x:Tag.With-Caps_1", "docker.io", "library/x", "Tag.With-Caps_1", false,
             "docker.io/library/x:Tag.With-Caps_1"},
        Good{"x:" + std::string(128, 't'), "docker.io", "library/x", std::string(128, 't'), false,
             "docker.io/library/x:" + std::string(128, 't')},
        Good{"0/1", "docker.io", "0/1", "", false, "docker.io/0/1"},
        Good{"sha256", "docker.io", "library/sha256", "", false, "docker.io/library/sha256"},
        Good{"a/" + std::string(243, 'a'), "docker.io", "a/" + std::string(243, 'a'), "", false,
             "docker.io/a/" + std::string(243, 'a')}));

struct Bad {
  std::string in;
  std::string reason;  // substring of the message
};

class BadReferenceTest : public ::testing::TestWithParam<Bad> {};

TEST_P(BadReferenceTest, RejectsWithClearMessage) {
  const Bad& b = GetParam();
  auto r = Reference::Parse(b.in);
  ASSERT_FALSE(r.ok()) << b.in << " parsed as " << r->ToString();
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("invalid reference \""), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(b.reason), std::string::npos) << b.in << ": " << r.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadReferenceTest,
    ::testing::Values(
        Bad{"", "at least one component"},
        Bad{"Ubuntu", "must be lowercase"},
        Bad{"docker.io/Ubuntu", "must be lowercase"},
        Bad{"localhost:5000/App", "must be lowercase"},
        Bad{"user/App", "must be lowercase"},
        Bad{kHex, "64-byte hexadecimal"},
        Bad{"ubuntu:", "empty tag"},
        Bad{"ubuntu:-x", "invalid tag format"},
        Bad{"ubuntu:.x", "invalid tag format"},
        Bad{"ubuntu:a+b", "invalid tag format"},
        Bad{"ubuntu:" + std::string(129, 't'), "invalid tag format"},
        Bad{"ubuntu@sha256:abc", "invalid digest format"},
        Bad{"ubuntu@" + kHex, "invalid digest format"},
        Bad{"ubuntu@sha256:" + kHex + "00", "invalid digest"},
        Bad{"ubuntu@md5:" + kHex, "unsupported digest algorithm"},
        Bad{"ubuntu@sha256:" + std::string(64, 'A'), "invalid digest"},
        Bad{"ubuntu@", "invalid digest format"},
        Bad{"@" + kDig, "at least one component"},
        Bad{":tag", "at least one component"},
        Bad{"/ubuntu", "empty path component"},
        Bad{"ubuntu/", "empty path component"},
        Bad{"a//b", "empty path component"},
        Bad{"-a", "path component"},
        Bad{"a-", "path component"},
        Bad{"a_", "path component"},
        Bad{"a___b", "path component"},
        Bad{"a..b", "path component"},
        Bad{"a._b", "path component"},
        Bad{"_a", "path component"},
        Bad{"a b", "path component"},
        Bad{"a/b c", "path component"},
        Bad{"a$/b", "path component"},
        Bad{"localhost:/a", "invalid registry host"},
        Bad{"local_host.com/a", "invalid registry host"},
        Bad{"-bad.com/a", "invalid registry host"},
        Bad{"bad-.com/a", "invalid registry host"},
        Bad{"a..com/x", "invalid registry host"},
        Bad{"host:port/a", "invalid registry host"},
        Bad{"[::1/a", "invalid registry host"},
        Bad{"[zz::1]:5000/a", "invalid registry host"},
        Bad{"localhost:5000/", "at least one component"},
        Bad{"a/" + std::string(244, 'a'), "not be more than 255 characters"},
        Bad{"example.com/" + std::string(250, 'a'), "not be more than 255 characters"}));

TEST(ReferenceTest, IdentifierAndDefaults) {
  auto r = Reference::Parse("ubuntu").value();
  EXPECT_EQ(r.Identifier(), "latest");
  EXPECT_EQ(r.TagOrDefault(), "latest");
  auto d = Reference::Parse("ubuntu@" + kDig).value();
  EXPECT_EQ(d.Identifier(), kDig);
  EXPECT_EQ(d.TagOrDefault(), "");
  auto td = Reference::Parse("ubuntu:1@" + kDig).value();
  EXPECT_EQ(td.Identifier(), kDig);  // the digest wins, as in docker pull
  EXPECT_EQ(td.TagOrDefault(), "1");
}

TEST(ReferenceTest, FamiliarStrings) {
  EXPECT_EQ(Reference::Parse("docker.io/library/ubuntu:1").value().FamiliarString(), "ubuntu:1");
  EXPECT_EQ(Reference::Parse("index.docker.io/user/app").value().FamiliarString(), "user/app");
  EXPECT_EQ(Reference::Parse("library/a/b").value().FamiliarString(), "library/a/b");
  EXPECT_EQ(Reference::Parse("localhost:5000/a:t").value().FamiliarString(), "localhost:5000/a:t");
}

TEST(ReferenceTest, ApiHost) {
  EXPECT_EQ(Reference::Parse("ubuntu").value().ApiHost(), "registry-1.docker.io");
  EXPECT_EQ(Reference::Parse("127.0.0.1:5000/a").value().ApiHost(), "127.0.0.1:5000");
}

TEST(ReferenceTest, WithTagAndDigest) {
  auto r = Reference::Parse("r.io/a:1").value();
  EXPECT_EQ(r.WithTag("2").ToString(), "r.io/a:2");
  EXPECT_EQ(r.WithDigest(Digest::Parse(kDig).value()).ToString(), "r.io/a:1@" + kDig);
}

}  // namespace
}  // namespace kiln::registry
