// executor/tree without a registry: loading trees from files, the rendered Dockerfiles, the final
// base, version bumps, changelog writes and the emitted pipelines' shape.
#include "executor/tree/tree.h"

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace kiln::tree {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

TEST(TreeTest, BumpFollowsDockerPkgSuffixRule) {
  EXPECT_EQ(BumpVersion("1.2.3"), "1.2.3-s1");
  EXPECT_EQ(BumpVersion("1.2.3-s1"), "1.2.3-s2");
  EXPECT_EQ(BumpVersion("0.1-s9"), "0.1-s10");
  EXPECT_EQ(BumpVersion("2.0-rc1"), "2.0-rc1-s1");
}

TEST(TreeTest, FinalBaseResolvesStagesAndSkipsScratchAndArgs) {
  EXPECT_EQ(FinalBase("FROM a:1 AS build\nRUN x\nFROM build\n"), "a:1");
  EXPECT_EQ(FinalBase("FROM --platform=$BUILDPLATFORM b:2 AS x\nfrom c:3\n"), "c:3");
  EXPECT_EQ(FinalBase("FROM a\nFROM scratch\nCOPY --from=0 / /\n"), std::nullopt);
  EXPECT_EQ(FinalBase("ARG V\nFROM img:$V\n"), std::nullopt);
}

TEST(TreeTest, PinBasePinsEveryFromOfThatBase) {
  EXPECT_EQ(PinBase("FROM r/a:1 AS x\nRUN y\nFROM r/a:1\nFROM r/a:2\n", "r/a:1", "sha256:ab"),
            "FROM r/a:1@sha256:ab AS x\nRUN y\nFROM r/a:1@sha256:ab\nFROM r/a:2\n");
}

TEST(TreeTest, LoadsKilnLayoutOrdersAndRendersTreeReferences) {
  TempDir d;
  WriteFile(d.Sub("z/image.yaml"), "name: zbase\nversion: '1'\n");
  WriteFile(d.Sub("z/Dockerfile"), "FROM debian:12\n");
  WriteFile(d.Sub("a/image.yaml"), "name: app\nversion: 2.0\nbuild_args:\n  X: y\n");
  WriteFile(d.Sub("a/Dockerfile"), "FROM zbase:whatever AS b\nFROM b\nFROM --platform=linux/amd64 zbase\n");
  WriteFile(d.Sub("notes/README"), "not an image\n");
  auto t = LoadTree(d.path());
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->order, (std::vector<std::string>{"zbase", "app"}));
  EXPECT_EQ(t->images.at("app").parents, std::vector<std::string>{"zbase"});
  EXPECT_EQ(t->images.at("app").build_args.at("X"), "y");
  EXPECT_EQ(t->Descendants("zbase"), (std::vector<std::string>{"zbase", "app"}));
  TreeNaming n{"reg.example:5000", "team"};
  auto r = RenderDockerfile(*t, t->images.at("app"), n, {{"zbase", "1-s1"}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "FROM reg.example:5000/team/zbase:1-s1 AS b\nFROM b\n"
                "FROM --platform=linux/amd64 reg.example:5000/team/zbase:1-s1\n");
}

TEST(TreeTest, RendersDockerPkgTemplates) {
  TempDir d;
  WriteFile(d.Sub("images/base/Dockerfile.template"), "FROM debian\n");
  WriteFile(d.Sub("images/base/changelog"), "base (0.3.0) wikimedia; urgency=medium\n\n  * x\n");
  WriteFile(d.Sub("images/web/Dockerfile.template"),
            "FROM {{ registry }}/{{ \"base\" | image_tag }}\nCOPY --from={{'base'|image_tag}} /a /a\n");
  WriteFile(d.Sub("images/web/changelog"), "web (1.0-s4) wikimedia; urgency=medium\n");
  auto t = LoadTree(d.path());
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->images.at("web").version, "1.0-s4");
  auto r = RenderDockerfile(*t, t->images.at("web"), TreeNaming{"r.io", "wm"}, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "FROM r.io/wm/base:0.3.0\nCOPY --from=wm/base:0.3.0 /a /a\n");
  auto no_registry = RenderDockerfile(*t, t->images.at("web"), TreeNaming{}, {});
  ASSERT_FALSE(no_registry.ok());
  EXPECT_NE(no_registry.status().message().find("Dockerfile.template:1: the template uses {{ registry }}"),
            std::string::npos);
}

TEST(TreeTest, ErrorsNameTheFile) {
  TempDir d;
  WriteFile(d.Sub("images/x/Dockerfile.template"), "FROM a\nRUN {{ \"pkg\" | apt_install }}\n");
  WriteFile(d.Sub("images/x/changelog"), "x (1) u; urgency=low\n");
  auto t = LoadTree(d.path());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("images/x/Dockerfile.template:2: unsupported template expression"),
            std::string::npos) << t.status().message();

  TempDir e;
  WriteFile(e.Sub("images/x/Dockerfile.template"), "FROM a\n");
  WriteFile(e.Sub("images/x/changelog"), "\n\nnot a changelog\n");
  t = LoadTree(e.path());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("images/x/changelog: line 3: expected a Debian changelog entry"),
            std::string::npos) << t.status().message();

  TempDir f;
  WriteFile(f.Sub("a/image.yaml"), "name: same\nversion: '1'\n");
  WriteFile(f.Sub("a/Dockerfile"), "FROM x\n");
  WriteFile(f.Sub("b/image.yaml"), "name: same\nversion: '2'\n");
  WriteFile(f.Sub("b/Dockerfile"), "FROM x\n");
  t = LoadTree(f.path());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("b/image.yaml: image name \"same\" is also used by"), std::string::npos);
}

TEST(TreeTest, WriteBumpUpdatesVersionLineAndPrependsChangelog) {
  TempDir d;
  WriteFile(d.Sub("a/image.yaml"), "name: a\n# keep me\nversion: 1.0 # old\nbuild_args: {}\n");
  WriteFile(d.Sub("a/Dockerfile"), "FROM x\n");
  auto t = LoadTree(d.path());
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_TRUE(WriteBump(t->images.at("a"), "1.0-s1", "Rebuild for b 2", "Fri, 04 Dec 2026 12:00:00 +0000").ok());
  EXPECT_EQ(ReadFile(d.Sub("a/image.yaml")), "name: a\n# keep me\nversion: \"1.0-s1\"\nbuild_args: {}\n");
  EXPECT_EQ(ReadFile(d.Sub("a/changelog")),
            "a (1.0-s1) unstable; urgency=medium\n\n  * Rebuild for b 2\n\n"
            " -- kiln tree <kiln@localhost>  Fri, 04 Dec 2026 12:00:00 +0000\n\n");
  auto again = LoadTree(d.path());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->images.at("a").version, "1.0-s1");
}

TEST(TreeTest, EmitsNeedsAndWaits) {
  EmitOptions o;
  o.tree_dir = "images";
  o.naming = TreeNaming{"r.io", ""};
  std::vector<EmitJob> jobs = {{"base", "1", {}, {{"base", "1"}}}, {"app", "2", {"base"}, {{"base", "1"}, {"app", "2"}}}};
  std::string ci = EmitGitlabCi(jobs, o);
  EXPECT_NE(ci.find("\"build:app\":\n"), std::string::npos) << ci;
  EXPECT_NE(ci.find("  needs:\n    - \"build:base\"\n"), std::string::npos) << ci;
  std::string k8s = EmitKubernetes(jobs, o);
  EXPECT_NE(k8s.find("args: [\"tree\", \"wait\", \"r.io/base:1\"]"), std::string::npos) << k8s;
  EXPECT_NE(k8s.find("- \"--context=/workspace/src/images\""), std::string::npos) << k8s;
  EXPECT_NE(EmitGitlabCi({}, o).find("tree:up-to-date"), std::string::npos);
}

}  // namespace
}  // namespace kiln::tree
