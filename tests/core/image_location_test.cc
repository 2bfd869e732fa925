// ParseImageLocation: the transport-prefixed image names of `kiln copy` (skopeo's).
#include "core/image_location.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(ParseImageLocationTest, Table) {
  struct Case {
    const char* text;
    ImageLocation::Kind kind;
    const char* path;
    const char* tag;
    const char* ref;  // Reference::ToString() or ""
  } cases[] = {
      {"docker://busybox", ImageLocation::Kind::kRegistry, "", "", "docker.io/library/busybox"},
      {"busybox:1.36", ImageLocation::Kind::kRegistry, "", "", "docker.io/library/busybox:1.36"},
      {"127.0.0.1:5000/a/b:t", ImageLocation::Kind::kRegistry, "", "", "127.0.0.1:5000/a/b:t"},
      {"oci:/tmp/lay", ImageLocation::Kind::kOciLayout, "/tmp/lay", "", ""},
      {"oci:/tmp/lay:v1", ImageLocation::Kind::kOciLayout, "/tmp/lay", "v1", ""},
      {"oci:rel/dir:with:colons", ImageLocation::Kind::kOciLayout, "rel/dir", "with:colons", ""},
      {"docker-archive:/x.tar", ImageLocation::Kind::kDockerArchive, "/x.tar", "", ""},
      {"docker-archive:/x.tar:app:2", ImageLocation::Kind::kDockerArchive, "/x.tar", "", "docker.io/library/app:2"},
      {"docker-archive:/x.tar:r:5000/app", ImageLocation::Kind::kDockerArchive, "/x.tar", "", "r:5000/app:latest"},
  };
  for (const auto& c : cases) {
    auto loc = ParseImageLocation(c.text);
    ASSERT_TRUE(loc.ok()) << c.text << ": " << loc.status().ToString();
    EXPECT_EQ(loc->kind, c.kind) << c.text;
    EXPECT_EQ(loc->path, c.path) << c.text;
    EXPECT_EQ(loc->tag, c.tag) << c.text;
    EXPECT_EQ(loc->reference ? loc->reference->ToString() : "", c.ref) << c.text;
  }
  auto at = ParseImageLocation("docker-archive:/x.tar:@1");
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(at->archive_index, std::optional<size_t>(1));
  EXPECT_EQ(at->ToString(), "docker-archive:/x.tar:@1");
  EXPECT_EQ(ParseImageLocation("oci:/d:t")->ToString(), "oci:/d:t");

  for (const char* bad : {"oci:", "oci:/d:", "docker-archive:", "docker-archive:/x.tar:@", "docker-archive:/x.tar:@1x",
                          "docker-archive:/x.tar:a@sha256:" "0000000000000000000000000000000000000000000000000000000000000000",
                          "dir:/tmp/x", "containers-storage:foo", "docker://UPPER/Case", "docker://"}) {
    auto loc = ParseImageLocation(bad);
    EXPECT_FALSE(loc.ok()) << bad;
    if (!loc.ok()) {
      EXPECT_EQ(loc.status().code(), ErrorCode::kInvalidArgument) << bad;
    }
  }
}

}  // namespace
}  // namespace kiln
