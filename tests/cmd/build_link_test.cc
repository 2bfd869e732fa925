// COPY --link end to end: the layer holds only the copied files and the directories leading to
// them, and its cached layer is reused — same digest, nothing rebuilt — after a step before it
// changed, while the steps after it run again.
#include <algorithm>

#include <gtest/gtest.h>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using testing::Stat;

class BuildLinkTest : public testing::BuildEnvSuite {};

TEST_F(BuildLinkTest, LinkedLayerIsIndependentOfTheStepsBeforeIt) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "ARG BEFORE\n"
                                    "RUN echo $BEFORE > /before\n"
                                    "COPY --link --chown=1000:1000 app /opt/app/\n"
                                    "RUN cat /opt/app/a /before > /after\n"},
                                   {"app/a", "linked\n"}});
  std::string cache = env_->NewDir("link-cache");
  auto build = [&](const std::string& before, const std::string& tag) {
    return env_->Build(ctx, "--cache --cache-dir " + cache + " --build-arg BEFORE=" + before + " --destination " +
                                env_->Ref("link:" + tag));
  };
  auto first = build("1", "one");
  ASSERT_EQ(first.rc, 0) << first.err;
  auto second = build("2", "two");  // the RUN before the COPY --link changed
  ASSERT_EQ(second.rc, 0) << second.err;
  EXPECT_NE(second.err.find("--link: independent of the layers below"), std::string::npos) << second.err;

  auto one = env_->Read("link:one");
  auto two = env_->Read("link:two");
  ASSERT_EQ(one.manifest["layers"].size(), 4u);
  ASSERT_EQ(two.manifest["layers"].size(), 4u);
  EXPECT_NE(one.manifest["layers"][1]["digest"], two.manifest["layers"][1]["digest"]);  // the RUN before
  EXPECT_EQ(one.manifest["layers"][2]["digest"], two.manifest["layers"][2]["digest"]);  // the --link layer
  EXPECT_NE(one.manifest["layers"][3]["digest"], two.manifest["layers"][3]["digest"]);  // the RUN after ran again
  EXPECT_EQ(Stat(two.rootfs, "after").content, "linked\n2\n");

  std::vector<std::string> entries = two.LayerEntries(2);
  for (std::string& e : entries) {
    if (e.rfind("./", 0) == 0) e = e.substr(2);
  }
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"opt/", "opt/app/", "opt/app/a"}));
  EXPECT_EQ(Stat(two.rootfs, "opt/app/a").uid, 1000u);
}

TEST_F(BuildLinkTest, LinkFromAStageAndWithoutACache) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest AS build\n"
                                    "RUN mkdir /out && echo built > /out/bin\n"
                                    "FROM @REG@/busybox:latest\n"
                                    "WORKDIR /srv\n"
                                    "COPY --link --from=build /out/bin ./tool\n"
                                    "RUN cat /srv/tool > /check\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("link:stage"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("link:stage");
  EXPECT_EQ(Stat(img.rootfs, "check").content, "built\n");
  EXPECT_EQ(Stat(img.rootfs, "srv/tool").content, "built\n");
}

}  // namespace
}  // namespace kiln
