// `kiln build` end to end on Dockerfile behaviour that Kaniko, Buildah and Docker accept (issue 16:
// "every Kaniko job runs unchanged"): our own Dockerfiles for what Kaniko's integration Dockerfiles
// pin down, with the result Buildah gives for the same file (docs/kaniko-compat.md keeps the list).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::BuildEnv;
using testing::FileInfo;
using testing::KilnRun;
using testing::ListTree;
using testing::Stat;
using Paths = std::vector<std::string>;

class BuildKanikoCompatTest : public testing::BuildEnvSuite {
 protected:

  static KilnRun Build(const std::map<std::string, std::string>& files, const std::string& repo_tag) {
    std::string ctx = env_->Context(files);
    return env_->Build(ctx, "--destination " + env_->Ref(repo_tag));
  }

};

// A base with busybox's applets and no /etc/passwd or /etc/group (like a scratch-based image).
const char* kNoPasswdBase =
    "FROM @REG@/busybox:latest AS bb\n"
    "FROM scratch\n"
    "COPY --from=bb /bin/ /bin/\n";

TEST_F(BuildKanikoCompatTest, WildcardMatchingNothingIsFineWhenAnotherSourceMatches) {
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest\n"
                   "COPY one.txt nothing-here* two.txt /dst/\n"
                   "COPY sub/*.md sub/*.none /docs/\n"},
                  {"one.txt", "1"},
                  {"two.txt", "2"},
                  {"sub/a.md", "a"}},
                 "wild:partial");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("wild:partial");
  EXPECT_EQ(ListTree(img.rootfs, "dst"), (Paths{"dst/one.txt", "dst/two.txt"}));
  EXPECT_EQ(ListTree(img.rootfs, "docs"), (Paths{"docs/a.md"}));
}

TEST_F(BuildKanikoCompatTest, CopyWhoseSourcesAllMatchNothingFails) {
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest\n"
                   "COPY nothing-here* none-either?.txt /dst/\n"},
                  {"one.txt", "1"}},
                 "wild:none");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("Dockerfile:2:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing-here*: no files match"), std::string::npos) << r.err;
  // A named source that does not exist stays an error, whatever else matched.
  r = Build({{"Dockerfile",
              "FROM @REG@/busybox:latest\n"
              "COPY one.txt missing.txt /dst/\n"},
             {"one.txt", "1"}},
            "wild:missing");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
}

TEST_F(BuildKanikoCompatTest, VolumeCreatesItsDirectoryForLaterSteps) {
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest\n"
                   "USER 1000\n"
                   "VOLUME /vol/inner /tmp\n"
                   "ENV V=/data\n"
                   "VOLUME [\"${V}\"]\n"
                   "USER root\n"
                   "RUN echo hello > /vol/inner/f && ls -ld /data > /listing\n"}},
                 "vol:1");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("vol:1");
  EXPECT_EQ(img.config["config"]["Volumes"],
            json({{"/vol/inner", json::object()}, {"/tmp", json::object()}, {"/data", json::object()}}));
  // Created missing (parents too), owned by root whatever USER says, 0755; /tmp existed already.
  for (const char* d : {"vol", "vol/inner", "data"}) {
    FileInfo fi = Stat(img.rootfs, d);
    EXPECT_EQ(fi.type, 'd') << d;
    EXPECT_EQ(fi.mode, 0755u) << d;
    EXPECT_EQ(fi.uid, 0u) << d;
  }
  EXPECT_EQ(Stat(img.rootfs, "vol/inner/f").content, "hello\n");
  // The first VOLUME created /vol/inner in a layer of its own; the second created /data.
  const json& h = img.config["history"];
  ASSERT_EQ(h.size(), 7u) << h.dump(1);
  EXPECT_EQ(h[2]["created_by"], "VOLUME /vol/inner /tmp");
  EXPECT_EQ(h[2].value("empty_layer", false), false);
  EXPECT_EQ(h[4].value("empty_layer", false), false);
  EXPECT_EQ(img.NonEmptyHistory(), img.config["rootfs"]["diff_ids"].size());
}

TEST_F(BuildKanikoCompatTest, VolumeOfAnExistingDirectoryAddsNoLayer) {
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest\n"
                   "VOLUME /tmp\n"}},
                 "vol:2");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("vol:2", false);
  EXPECT_EQ(img.config["history"].back().value("empty_layer", false), true);
  EXPECT_EQ(img.config["rootfs"]["diff_ids"].size(), 1u);
}

TEST_F(BuildKanikoCompatTest, UserRootAndNumericUsersNeedNoPasswd) {
  auto r = Build({{"Dockerfile", std::string(kNoPasswdBase) +
                                     "USER root\n"
                                     "RUN id -u > /as-root && id -g >> /as-root\n"
                                     "USER root:root\n"
                                     "RUN id -u > /as-root-root && id -g >> /as-root-root && mkdir -m 1777 /w\n"
                                     "USER 1000\n"
                                     "RUN id -u > /w/as-1000 && id -g >> /w/as-1000\n"}},
                 "user:nopasswd");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("user:nopasswd");
  EXPECT_EQ(Stat(img.rootfs, "etc/passwd").type, '-');
  EXPECT_EQ(Stat(img.rootfs, "as-root").content, "0\n0\n");
  EXPECT_EQ(Stat(img.rootfs, "as-root-root").content, "0\n0\n");
  EXPECT_EQ(Stat(img.rootfs, "w/as-1000").content, "1000\n0\n");
  EXPECT_EQ(Stat(img.rootfs, "w/as-1000").uid, 1000u);
}

TEST_F(BuildKanikoCompatTest, UnknownUserNameWithoutPasswdStillFails) {
  auto r = Build({{"Dockerfile", std::string(kNoPasswdBase) +
                                     "USER app\n"
                                     "RUN true\n"}},
                 "user:unknown");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("unable to find user app"), std::string::npos) << r.err;
}

TEST_F(BuildKanikoCompatTest, ArgNamesAreExpanded) {
  auto r = Build({{"Dockerfile",
                   "ARG prefix=G\n"
                   "ARG ${prefix}LOBAL=from-global\n"
                   "FROM @REG@/busybox:latest\n"
                   "ARG GLOBAL\n"
                   "ENV name=src\n"
                   "ARG ${name}=a.txt\n"
                   "COPY $src /copied/\n"
                   "RUN echo \"$src $GLOBAL\" > /seen\n"},
                  {"a.txt", "A"},
                  {"b.txt", "B"}},
                 "arg:name");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("arg:name");
  EXPECT_EQ(ListTree(img.rootfs, "copied"), (Paths{"copied/a.txt"}));
  EXPECT_EQ(Stat(img.rootfs, "seen").content, "a.txt from-global\n");
}

TEST_F(BuildKanikoCompatTest, JsonArrayFollowedByTextKeepsTheJsonFormAndWarns) {
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest\n"
                   "CMD [\"/app\",\"--serve\"] # start\n"
                   "ENTRYPOINT [\"/bin/env\"]   # note\n"
                   "RUN [\"/bin/sh\", \"-c\", \"echo exec > /ran\"] trailing\n"}},
                 "json:trailing");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("json:trailing");
  const json& c = img.config["config"];
  EXPECT_EQ(c["Entrypoint"], json({"/bin/env"}));
  // ENTRYPOINT after CMD in the same stage keeps that CMD.
  EXPECT_EQ(c["Cmd"], json({"/app", "--serve"}));
  EXPECT_EQ(Stat(img.rootfs, "ran").content, "exec\n");
  EXPECT_NE(r.err.find("Dockerfile:2:24: CMD is a JSON array followed by \"# start\", which is ignored"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("Dockerfile:3:27: ENTRYPOINT is a JSON array followed by \"# note\""), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("Dockerfile:4:"), std::string::npos) << r.err;
}

TEST_F(BuildKanikoCompatTest, VariablesInExposeBlankQuotedArgAndShellOnlySyntaxInRun) {
  auto r = Build({{"Dockerfile",
                   "ARG BLANK=\"\"\n"
                   "FROM @REG@/busybox:latest\n"
                   "ARG BLANK\n"
                   "ENV proto=udp port=83\n"
                   "EXPOSE 80 82/$proto $port/${proto}\n"
                   // ${s%s} is shell syntax kiln does not expand in RUN: the shell sees it.
                   "RUN s=abs; echo \"[${s%s}][$BLANK]\" > /out\n"}},
                 "subst:1");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("subst:1");
  EXPECT_EQ(img.config["config"]["ExposedPorts"],
            json({{"80/tcp", json::object()}, {"82/udp", json::object()}, {"83/udp", json::object()}}));
  EXPECT_EQ(Stat(img.rootfs, "out").content, "[ab][]\n");
}

TEST_F(BuildKanikoCompatTest, EntrypointWithTrailingTextInAChildStageClearsTheInheritedCmd) {
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest AS parent\n"
                   "CMD [\"parent-cmd\"]\n"
                   "FROM parent\n"
                   "ENTRYPOINT [\"/bin/echo\"] # clears the CMD of parent\n"}},
                 "json:child");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("json:child", false);
  const json& c = img.config["config"];
  EXPECT_EQ(c["Entrypoint"], json({"/bin/echo"}));
  EXPECT_TRUE(!c.contains("Cmd") || c["Cmd"].is_null()) << c.dump();
}

TEST_F(BuildKanikoCompatTest, ChownOwnsTheParentsItCreatesAndChmodEveryCopiedEntry) {
  // Buildah and BuildKit: directories a COPY --chown creates on the way to its destination belong to
  // that owner (a later USER can write there); --chmod applies to every file and directory copied.
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest\n"
                   "COPY --chown=1001:1001 foo /path/to/foo\n"
                   "COPY --chown=1001:1001 qux /path2/to/qux\n"
                   "COPY --chmod=751 qux /c/dir751\n"
                   "COPY --chmod=700 qux /tmp/\n"
                   "USER 1001\n"
                   "RUN mkdir /path/new /path/to/new /path2/to/qux/new\n"},
                  {"foo", "f"},
                  {"qux/qup", "q"},
                  {"qux/quw/que", "e"}},
                 "chown:parents");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("chown:parents");
  for (const char* p : {"path", "path/to", "path/to/foo", "path2", "path2/to", "path2/to/qux", "path2/to/qux/quw",
                        "path2/to/qux/quw/que"}) {
    FileInfo fi = Stat(img.rootfs, p);
    EXPECT_EQ(fi.uid, 1001u) << p;
    EXPECT_EQ(fi.gid, 1001u) << p;
  }
  EXPECT_EQ(Stat(img.rootfs, "path/new").uid, 1001u);  // USER 1001 could write in /path
  EXPECT_EQ(Stat(img.rootfs, "c").uid, 0u);
  EXPECT_EQ(Stat(img.rootfs, "tmp").mode, 01777u);  // an existing destination keeps its mode
  EXPECT_EQ(Stat(img.rootfs, "tmp/qup").mode, 0700u);
  // The copied directory itself takes the mode too (BuildKit and Kaniko; Buildah leaves it 0755).
  for (const char* p : {"c/dir751", "c/dir751/qup", "c/dir751/quw", "c/dir751/quw/que"}) {
    EXPECT_EQ(Stat(img.rootfs, p).mode, 0751u) << p;
  }
}

TEST_F(BuildKanikoCompatTest, FlagWithoutEqualsSignIsRefused) {
  // `--from second` is no flag value for BuildKit ("missing a value on flag") nor Buildah.
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest AS first\n"
                   "FROM @REG@/busybox:latest\n"
                   "COPY --from first /bin/true /t\n"}},
                 "flag:noeq");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("Dockerfile:3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--from"), std::string::npos) << r.err;
}

TEST_F(BuildKanikoCompatTest, WorkdirRelativeTrailingSpaceAndEmptyVariables) {
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest\n"
                   "WORKDIR rel\n"
                   "WORKDIR inner \n"
                   "RUN pwd > /pwd1\n"
                   "ENV dir /another/dir\n"
                   "WORKDIR $dir/$doesntexist\n"
                   "RUN pwd > /pwd2\n"
                   "ARG wd\n"
                   "WORKDIR /x/$wd\n"
                   "RUN pwd > /pwd3\n"
                   "WORKDIR /y//z/../w/\n"
                   "RUN pwd > /pwd4 && touch here\n"
                   "USER testuser:testgroup\n"}},
                 "workdir:1");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("workdir:1");
  EXPECT_EQ(Stat(img.rootfs, "pwd1").content, "/rel/inner\n");
  EXPECT_EQ(Stat(img.rootfs, "pwd2").content, "/another/dir\n");
  EXPECT_EQ(Stat(img.rootfs, "pwd3").content, "/x\n");
  EXPECT_EQ(Stat(img.rootfs, "pwd4").content, "/y/w\n");
  EXPECT_EQ(Stat(img.rootfs, "y/w/here").type, 'f');
  // An absolute WORKDIR is recorded as written, as BuildKit, Buildah and Kaniko do.
  EXPECT_EQ(img.config["config"]["WorkingDir"], "/y//z/../w/");
  // USER is only looked up when a step runs as it: unknown names in the config are fine.
  EXPECT_EQ(img.config["config"]["User"], "testuser:testgroup");
}

TEST_F(BuildKanikoCompatTest, CopyFromStageByIndexWithVariablesAndGlobsIntoScratch) {
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest AS base\n"
                   "COPY . /ctx/\n"
                   "FROM scratch AS second\n"
                   "ENV foopath /ctx/foo\n"
                   "COPY --from=0 $foopath /ctx/b* /foo/\n"
                   "FROM base\n"
                   "ARG file=/dest\n"
                   "COPY --from=second /foo $file\n"},
                  {"foo", "f"},
                  {"bar", "b"},
                  {"baz/x", "x"}},
                 "multi:1");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("multi:1");
  EXPECT_EQ(ListTree(img.rootfs, "dest"), (Paths{"dest/bar", "dest/foo", "dest/x"}));
}

TEST_F(BuildKanikoCompatTest, StageNamesIgnoreCaseAndCopyFromKeepsModesLinksAndDeletions) {
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest AS Base_Stage\n"
                   "RUN mkdir -p /foo/some_dir /some/dir && touch /foo/some_file && chmod 777 /foo/some_dir && "
                   "chmod 666 /foo/some_file && echo 1 > /some/dir/first.txt\n"
                   "RUN [\"/bin/ln\", \"-s\", \"nowhere\", \"/link\"]\n"
                   "RUN rm /some/dir/first.txt\n"
                   "FROM base_stage AS BUG_stage\n"
                   "COPY --from=BASE_STAGE /foo /bar\n"
                   "COPY / /ctx\n"},
                  {"top.txt", "t"},
                  {"d/inner.txt", "i"}},
                 "stages:case");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("stages:case");
  EXPECT_EQ(Stat(img.rootfs, "bar/some_dir").mode, 0777u);
  EXPECT_EQ(Stat(img.rootfs, "bar/some_file").mode, 0666u);
  FileInfo link = Stat(img.rootfs, "link");
  EXPECT_EQ(link.type, 'l');
  EXPECT_EQ(link.link, "nowhere");
  EXPECT_EQ(Stat(img.rootfs, "some/dir").type, 'd');
  EXPECT_EQ(Stat(img.rootfs, "some/dir/first.txt").type, '-');
  EXPECT_EQ(ListTree(img.rootfs, "ctx"), (Paths{"ctx/Dockerfile", "ctx/d/", "ctx/d/inner.txt", "ctx/top.txt"}));
}

TEST_F(BuildKanikoCompatTest, BackgroundProcessesEndWithTheirStepAndReplacedPathsLayerCleanly) {
  // A RUN that leaves a daemon behind ends when its command does (the daemon is stopped and writes
  // nothing later); a file removed and copied again, and a symlink replaced by a directory, come
  // out as the last step left them.
  auto r = Build({{"Dockerfile",
                   "FROM @REG@/busybox:latest\n"
                   "RUN (while true; do sleep 1; echo x >> /daemon-output; done &); sleep 0.2\n"
                   "RUN sleep 2; cat /daemon-output 2>/dev/null | wc -l > /lines\n"
                   "RUN cp -a /etc/passwd /test\n"
                   "RUN rm -f /test\n"
                   "RUN cp -a /etc/group /test\n"
                   "RUN mkdir /real && ln -s /real /link\n"
                   "RUN rm -rf /real /link && mkdir /link\n"}},
                 "daemon:1");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("daemon:1");
  EXPECT_EQ(Stat(img.rootfs, "lines").content, "0\n");
  EXPECT_EQ(Stat(img.rootfs, "daemon-output").type, '-');
  EXPECT_EQ(Stat(img.rootfs, "test").content, Stat(img.rootfs, "etc/group").content);
  EXPECT_EQ(Stat(img.rootfs, "link").type, 'd');
  EXPECT_EQ(Stat(img.rootfs, "real").type, '-');
}

TEST_F(BuildKanikoCompatTest, GlobalArgsQuotedInFromAndSeenOnlyAfterArgInTheStage) {
  auto r = Build({{"Dockerfile",
                   "ARG BASE=\"@REG@/busybox:latest\"\n"
                   "ARG WORD=hello\n"
                   "ARG OTHER=hey\n"
                   "ARG BASE2='@REG@/busybox:latest'\n"
                   "FROM $BASE AS one\n"
                   "ARG WORD\n"
                   "RUN touch /${WORD} /dontignore && mkdir /keep && echo t > /keep/target && ln -s /keep/target /keep/link\n"
                   "FROM ${BASE2}\n"
                   "COPY --from=one /hello /keep/link /dontignore /from-one/\n"
                   "RUN touch /from-one/x${OTHER}\n"},
                  {".dockerignore", "/dontignore\n"}},
                 "args:global");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("args:global");
  // OTHER was never declared in the stage; a symlink source is followed (BuildKit); .dockerignore
  // is about the context, not about other stages.
  EXPECT_EQ(ListTree(img.rootfs, "from-one"),
            (Paths{"from-one/dontignore", "from-one/hello", "from-one/link", "from-one/x"}));
  FileInfo link = Stat(img.rootfs, "from-one/link");
  EXPECT_EQ(link.type, 'f');
  EXPECT_EQ(link.content, "t\n");
}

TEST_F(BuildKanikoCompatTest, VolumeStepsAreCachedWithTheirDirectories) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "VOLUME /cached/vol\n"
                                    "RUN echo x > /cached/vol/f\n"}});
  std::string cache = "--cache --cache-dir " + env_->NewDir("vol-cache");
  auto first = env_->Build(ctx, "--reproducible " + cache + " --destination " + env_->Ref("volcache:1"));
  ASSERT_EQ(first.rc, 0) << first.err;
  auto second = env_->Build(ctx, "--reproducible " + cache + " --destination " + env_->Ref("volcache:2"));
  ASSERT_EQ(second.rc, 0) << second.err;
  auto a = env_->Read("volcache:1");
  auto b = env_->Read("volcache:2");
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_NE(second.err.find("cache hit"), std::string::npos) << second.err;
  EXPECT_EQ(Stat(b.rootfs, "cached/vol").type, 'd');
  EXPECT_EQ(Stat(b.rootfs, "cached/vol/f").content, "x\n");
}

}  // namespace
}  // namespace kiln
