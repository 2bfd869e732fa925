// `kiln build` end to end: what each metadata instruction writes into the image config, how a child
// image inherits a base's config (and runs its ONBUILD triggers once), how ENTRYPOINT resets an
// inherited CMD, and the history. Every image is pushed to a real registry and read back by skopeo.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::BuildEnv;
using testing::FileInfo;
using testing::Stat;

class BuildConfigTest : public testing::BuildEnvSuite {
 protected:

  // Builds `dockerfile` (with "@REG@" for the registry) and pushes it as `repo_tag`.
  static void Build(const std::string& dockerfile, const std::string& repo_tag, const std::string& args = "") {
    std::string ctx = env_->Context({{"Dockerfile", dockerfile}});
    auto r = env_->Build(ctx, "--destination " + env_->Ref(repo_tag) + " " + args);
    ASSERT_EQ(r.rc, 0) << r.err;
  }

  // The base every child below starts from: one of each metadata instruction.
  static void BuildBase() {
    if (base_built_) return;
    Build(
        "FROM @REG@/busybox:latest\n"
        "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin BASE_ENV=from-base\n"
        "ENV SPACED=\"two words\" EXPANDED=${BASE_ENV}-x\n"
        "WORKDIR /srv\n"
        "USER app\n"
        "ENTRYPOINT [\"/bin/sh\", \"-c\"]\n"
        "CMD [\"echo base\"]\n"
        "LABEL base.label=yes shared=base \"with space\"=\"a b\"\n"
        "MAINTAINER someone@example.com\n"
        "EXPOSE 8080 53/udp\n"
        "VOLUME /data /cache\n"
        "HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=4 CMD wget -q localhost:8080 || exit 1\n"
        "STOPSIGNAL SIGQUIT\n"
        "SHELL [\"/bin/sh\", \"-ec\"]\n"
        "ONBUILD RUN echo \"onbuild ran as $(id -u)\" > /tmp/onbuild.txt\n",
        "base:1");
    base_built_ = true;
  }

  static bool base_built_;
};
bool BuildConfigTest::base_built_ = false;

TEST_F(BuildConfigTest, EveryMetadataInstructionLandsInTheConfig) {
  BuildBase();
  auto img = env_->Read("base:1", false);
  const json& c = img.config["config"];
  EXPECT_EQ(c["Env"], json({"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "BASE_ENV=from-base", "SPACED=two words",
                            "EXPANDED=from-base-x"}));
  EXPECT_EQ(c["WorkingDir"], "/srv");
  EXPECT_EQ(c["User"], "app");
  EXPECT_EQ(c["Entrypoint"], json({"/bin/sh", "-c"}));
  EXPECT_EQ(c["Cmd"], json({"echo base"}));
  EXPECT_EQ(c["Labels"], json({{"base.label", "yes"}, {"shared", "base"}, {"with space", "a b"}}));
  EXPECT_EQ(img.config["author"], "someone@example.com");
  EXPECT_EQ(c["ExposedPorts"], json({{"8080/tcp", json::object()}, {"53/udp", json::object()}}));
  EXPECT_EQ(c["Volumes"], json({{"/data", json::object()}, {"/cache", json::object()}}));
  EXPECT_EQ(c["StopSignal"], "SIGQUIT");
  EXPECT_EQ(c["Shell"], json({"/bin/sh", "-ec"}));
  EXPECT_EQ(c["OnBuild"], json({"RUN echo \"onbuild ran as $(id -u)\" > /tmp/onbuild.txt"}));
  // Shell-form HEALTHCHECK is CMD-SHELL whatever SHELL says; durations in nanoseconds.
  EXPECT_EQ(c["Healthcheck"], json({{"Test", {"CMD-SHELL", "wget -q localhost:8080 || exit 1"}},
                                    {"Interval", 5000000000LL},
                                    {"Timeout", 2000000000LL},
                                    {"StartPeriod", 1000000000LL},
                                    {"Retries", 4}}));
  EXPECT_EQ(img.config["os"], "linux");
  EXPECT_EQ("linux/" + img.config["architecture"].get<std::string>(), testing::NativePlatform());

  // History: the base's one entry, then one per instruction; only WORKDIR (which created /srv) and
  // VOLUME added layers. diff_ids match the non-empty history entries and the manifest's layers.
  const json& h = img.config["history"];
  ASSERT_EQ(h.size(), 15u) << h.dump(1);
  EXPECT_EQ(h[1]["created_by"], "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin BASE_ENV=from-base");
  EXPECT_EQ(h[1].value("empty_layer", false), true);
  EXPECT_EQ(h[3]["created_by"], "WORKDIR /srv");
  EXPECT_EQ(h[3].value("empty_layer", false), false);
  EXPECT_EQ(h[14]["created_by"], "ONBUILD RUN echo \"onbuild ran as $(id -u)\" > /tmp/onbuild.txt");
  // VOLUME created the missing /data and /cache (as Docker's classic builder, Buildah and Kaniko do).
  EXPECT_EQ(h[10]["created_by"], "VOLUME /data /cache");
  EXPECT_EQ(h[10].value("empty_layer", false), false);
  for (size_t i = 4; i < h.size(); ++i) {
    if (i != 10) { EXPECT_EQ(h[i].value("empty_layer", false), true) << h[i].dump(); }
  }
  EXPECT_EQ(img.config["rootfs"]["diff_ids"].size(), 3u);
  EXPECT_EQ(img.NonEmptyHistory(), img.config["rootfs"]["diff_ids"].size());
  EXPECT_EQ(img.manifest["layers"].size(), 3u);
  EXPECT_EQ(img.manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
}

TEST_F(BuildConfigTest, HistoryWritesEnvAndLabelAsSet) {
  BuildBase();
  auto img = env_->Read("base:1", false);
  const json& h = img.config["history"];
  ASSERT_EQ(h.size(), 15u) << h.dump(1);
  // Docker and BuildKit write ENV and LABEL with the values as they were set: quotes removed,
  // variables expanded.
  EXPECT_EQ(h[2]["created_by"], "ENV SPACED=two words EXPANDED=from-base-x");
  EXPECT_EQ(h[7]["created_by"], "LABEL base.label=yes shared=base with space=a b");
}

TEST_F(BuildConfigTest, ChildInheritsConfigRunsOnbuildOnceAndEntrypointResetsCmd) {
  BuildBase();
  Build(
      "FROM @REG@/base:1\n"
      "RUN case $- in *e*) echo errexit-on;; esac > /tmp/shell.txt; id -u >> /tmp/shell.txt; pwd >> /tmp/shell.txt\n"
      "ENTRYPOINT [\"/bin/echo\"]\n",
      "child:a");
  auto img = env_->Read("child:a");
  const json& c = img.config["config"];
  // Inherited from the base.
  EXPECT_EQ(c["Env"], json({"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "BASE_ENV=from-base", "SPACED=two words",
                            "EXPANDED=from-base-x"}));
  EXPECT_EQ(c["WorkingDir"], "/srv");
  EXPECT_EQ(c["User"], "app");
  EXPECT_EQ(c["Labels"]["base.label"], "yes");
  EXPECT_EQ(c["ExposedPorts"].size(), 2u);
  EXPECT_EQ(c["Volumes"].size(), 2u);
  EXPECT_EQ(c["StopSignal"], "SIGQUIT");
  EXPECT_EQ(c["Healthcheck"]["Retries"], 4);
  EXPECT_EQ(c["Shell"], json({"/bin/sh", "-ec"}));
  // A new ENTRYPOINT drops the inherited CMD; the triggers ran and are not passed on.
  EXPECT_EQ(c["Entrypoint"], json({"/bin/echo"}));
  EXPECT_TRUE(!c.contains("Cmd") || c["Cmd"].is_null()) << c.dump();
  EXPECT_TRUE(!c.contains("OnBuild") || c["OnBuild"].is_null() || c["OnBuild"].empty()) << c.dump();

  // The trigger ran right after FROM as the base's USER; RUN used the base's SHELL (-e) and WORKDIR.
  FileInfo onbuild = Stat(img.rootfs, "tmp/onbuild.txt");
  EXPECT_EQ(onbuild.type, 'f');
  EXPECT_EQ(onbuild.content, "onbuild ran as 1000\n");
  EXPECT_EQ(onbuild.uid, 1000u);
  EXPECT_EQ(Stat(img.rootfs, "tmp/shell.txt").content, "errexit-on\n1000\n/srv\n");

  const json& h = img.config["history"];
  ASSERT_EQ(h.size(), 18u) << h.dump(1);
  EXPECT_EQ(h[15]["created_by"], "RUN /bin/sh -ec echo \"onbuild ran as $(id -u)\" > /tmp/onbuild.txt");
  EXPECT_EQ(h[16]["created_by"],
            "RUN /bin/sh -ec case $- in *e*) echo errexit-on;; esac > /tmp/shell.txt; id -u >> /tmp/shell.txt; pwd >> "
            "/tmp/shell.txt");
  EXPECT_EQ(h[17]["created_by"], "ENTRYPOINT [\"/bin/echo\"]");
  EXPECT_EQ(img.NonEmptyHistory(), img.config["rootfs"]["diff_ids"].size());
  EXPECT_EQ(img.config["rootfs"]["diff_ids"].size(), 5u);
}

TEST_F(BuildConfigTest, CmdSetInTheStageSurvivesEntrypointAndShellFormUsesShell) {
  BuildBase();
  Build(
      "FROM @REG@/base:1\n"
      "CMD echo $HOME\n"
      "ENTRYPOINT [\"/bin/cat\"]\n"
      "SHELL [\"/bin/sh\", \"-xc\"]\n"
      "HEALTHCHECK NONE\n"
      "ENV BASE_ENV=overridden\n"
      "LABEL shared=child\n"
      "USER 1234:5678\n"
      "WORKDIR rel\n"
      "STOPSIGNAL 9\n",
      "child:b", "--label shared=from-flag --label extra=flag");
  auto img = env_->Read("child:b");
  const json& c = img.config["config"];
  EXPECT_EQ(c["Cmd"], json({"/bin/sh", "-ec", "echo $HOME"}));
  EXPECT_EQ(c["Entrypoint"], json({"/bin/cat"}));
  EXPECT_EQ(c["Shell"], json({"/bin/sh", "-xc"}));
  EXPECT_EQ(c["Healthcheck"], json({{"Test", {"NONE"}}}));
  EXPECT_EQ(c["Env"], json({"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "BASE_ENV=overridden", "SPACED=two words",
                            "EXPANDED=from-base-x"}));
  // --label wins over the Dockerfile's LABEL, which wins over the base's.
  EXPECT_EQ(c["Labels"], json({{"base.label", "yes"}, {"shared", "from-flag"}, {"with space", "a b"}, {"extra", "flag"}}));
  EXPECT_EQ(c["User"], "1234:5678");
  EXPECT_EQ(c["WorkingDir"], "/srv/rel");
  EXPECT_EQ(c["StopSignal"], "9");
  // WORKDIR created the directory for the current USER.
  FileInfo rel = Stat(img.rootfs, "srv/rel");
  EXPECT_EQ(rel.type, 'd');
  EXPECT_EQ(rel.uid, 1234u);
  EXPECT_EQ(rel.gid, 5678u);
}

TEST_F(BuildConfigTest, ScratchStageHasTheDefaultPathAndNoLayersUntilCopy) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM scratch\n"
                                    "ENV A=1\n"
                                    "COPY hello.txt /\n"
                                    "CMD [\"/hello.txt\"]\n"},
                                   {"hello.txt", "hi\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("scratch:1") + " --custom-platform linux/arm64");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("scratch:1");
  EXPECT_EQ(img.config["config"]["Env"],
            json({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1"}));
  EXPECT_EQ(img.config["architecture"], "arm64");
  EXPECT_EQ(img.config["os"], "linux");
  EXPECT_EQ(img.config["rootfs"]["diff_ids"].size(), 1u);
  EXPECT_EQ(img.config["history"].size(), 3u);
  EXPECT_EQ(testing::ListTree(img.rootfs, ""), std::vector<std::string>{"hello.txt"});
  FileInfo f = Stat(img.rootfs, "hello.txt");
  EXPECT_EQ(f.content, "hi\n");
  EXPECT_EQ(f.mode, 0644u);
  EXPECT_EQ(f.uid, 0u);
}

}  // namespace
}  // namespace kiln
