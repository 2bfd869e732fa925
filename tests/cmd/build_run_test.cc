// `kiln build` end to end: RUN in shell and exec form, with SHELL, USER (uid, gid, supplementary
// groups from the image), WORKDIR, heredocs, ARG/ENV scope and --build-arg; and what the snapshots
// make of it: deletions as whiteouts, a replaced directory as opaque, no layer for a RUN that changed
// nothing, one layer for the whole stage with --single-snapshot.
#include <algorithm>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::BuildEnv;
using testing::FileInfo;
using testing::ListTree;
using testing::Stat;
using Paths = std::vector<std::string>;

class BuildRunTest : public testing::BuildEnvSuite {
 protected:
};

// Layer entry names without a leading "./", sorted.
Paths Entries(const testing::ReadBack& img, size_t layer) {
  Paths e = img.LayerEntries(layer);
  for (std::string& s : e) {
    if (s.rfind("./", 0) == 0) s = s.substr(2);
  }
  std::sort(e.begin(), e.end());
  return e;
}

TEST_F(BuildRunTest, RunFormsUserWorkdirAndArgs) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "ARG GLOBAL=g-default\n"
                                    "ARG UNUSED_GLOBAL=never\n"
                                    "FROM @REG@/busybox:latest\n"
                                    "ARG GLOBAL\n"
                                    "ARG LOCAL=l-default\n"
                                    "ENV FROM_ARG=$LOCAL TARGET=world\n"
                                    "RUN echo \"$GLOBAL $LOCAL $FROM_ARG [$UNUSED_GLOBAL]\" > /args.txt\n"
                                    "RUN [\"/bin/sh\", \"-c\", \"echo exec $TARGET > /exec.txt\"]\n"
                                    "RUN [\"/bin/touch\", \"/exec-$TARGET\"]\n"
                                    "USER app\n"
                                    "WORKDIR /home/app/work\n"
                                    "RUN id -u > ids.txt && id -g >> ids.txt && id -G >> ids.txt && pwd >> ids.txt && "
                                    "echo $HOME >> ids.txt\n"
                                    "USER 1234:2000\n"
                                    "RUN id -u > /tmp/numeric.txt && id -G >> /tmp/numeric.txt\n"
                                    "USER root\n"
                                    "SHELL [\"/bin/sh\", \"-euc\"]\n"
                                    "RUN <<EOT\n"
                                    "mkdir -p /heredoc\n"
                                    "echo \"first $TARGET\" > /heredoc/one\n"
                                    "case $- in *u*) echo nounset > /heredoc/flags;; esac\n"
                                    "EOT\n"
                                    "RUN <<EOT\n"
                                    "#!/bin/sh\n"
                                    "echo from-script > /heredoc/two\n"
                                    "EOT\n"
                                    "RUN cat > /heredoc/three <<EOT\n"
                                    "three $TARGET\n"
                                    "EOT\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("run:1") + " --build-arg LOCAL=cli --build-arg UNUSED=x");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("run:1");
  const std::string& fs = img.rootfs;

  // ARG scope: the global default is visible after `ARG GLOBAL` in the stage, --build-arg overrides
  // the local default, a global never redeclared in the stage is empty.
  EXPECT_EQ(Stat(fs, "args.txt").content, "g-default cli cli []\n");
  EXPECT_EQ(Stat(fs, "exec.txt").content, "exec world\n");
  // Exec form is not expanded by the builder and has no shell.
  EXPECT_EQ(Stat(fs, "exec-$TARGET").type, 'f');
  // USER app: uid, primary gid and supplementary groups from /etc/group; WORKDIR created for app.
  FileInfo ids = Stat(fs, "home/app/work/ids.txt");
  EXPECT_EQ(ids.content, "1000\n1000\n1000 50 2000\n/home/app/work\n/home/app\n");
  EXPECT_EQ(ids.uid, 1000u);
  FileInfo work = Stat(fs, "home/app/work");
  EXPECT_EQ(work.type, 'd');
  EXPECT_EQ(work.uid, 1000u);
  EXPECT_EQ(work.gid, 1000u);
  // USER uid:gid with no passwd entry: exactly those ids, no supplementary groups.
  EXPECT_EQ(Stat(fs, "tmp/numeric.txt").content, "1234\n2000\n");
  EXPECT_EQ(Stat(fs, "heredoc/one").content, "first world\n");
  EXPECT_EQ(Stat(fs, "heredoc/flags").content, "nounset\n");
  EXPECT_EQ(Stat(fs, "heredoc/two").content, "from-script\n");
  EXPECT_EQ(Stat(fs, "heredoc/three").content, "three world\n");

  // Build args never reach the config; ENV does.
  const json& c = img.config["config"];
  EXPECT_EQ(c["Env"], json({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FROM_ARG=cli",
                            "TARGET=world"}));
  EXPECT_EQ(c["User"], "root");
  // History records the build args a RUN saw the way Docker does ("|N K=V ... cmd").
  const json& h = img.config["history"];
  bool found = false;
  for (const json& e : h) {
    if (e["created_by"] == "RUN |2 GLOBAL=g-default LOCAL=cli /bin/sh -c echo \"$GLOBAL $LOCAL $FROM_ARG "
                           "[$UNUSED_GLOBAL]\" > /args.txt") {
      found = true;
    }
  }
  EXPECT_TRUE(found) << h.dump(1);
  EXPECT_EQ(img.NonEmptyHistory(), img.config["rootfs"]["diff_ids"].size());
  // The unused --build-arg is reported.
  EXPECT_NE(r.err.find("UNUSED"), std::string::npos) << r.err;
}

TEST_F(BuildRunTest, DeletionsBecomeWhiteoutsAndUnchangedRunsAddNoLayer) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "RUN mkdir -p /data/keep /data/replace /data/gonedir && echo 1 > /data/gone.txt && "
                                    "echo 2 > /data/replace/old.txt && echo k > /data/keep/k && echo g > /data/gonedir/g\n"
                                    "RUN rm /data/gone.txt && rm -rf /data/replace /data/gonedir && mkdir /data/replace && "
                                    "echo new > /data/replace/new.txt\n"
                                    "RUN true\n"
                                    "RUN cat /etc/passwd > /dev/null && ls /data > /dev/null\n"
                                    "RUN chmod 0600 /data/keep/k && ln -s keep/k /data/link\n"
                                    "RUN rm /bin/vi\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("run:snap"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("run:snap");
  const std::string& fs = img.rootfs;

  EXPECT_EQ(ListTree(fs, "data"), (Paths{"data/keep/", "data/keep/k", "data/link", "data/replace/",
                                         "data/replace/new.txt"}));
  EXPECT_EQ(Stat(fs, "data/keep/k").mode, 0600u);
  EXPECT_EQ(Stat(fs, "data/link").link, "keep/k");
  EXPECT_EQ(Stat(fs, "bin/vi").type, '-');
  EXPECT_EQ(Stat(fs, "bin/ls").type, 'l');

  // Layers: base, the first RUN, the deleting RUN, chmod+link, rm vi; `true` and the read-only RUN
  // are history entries marked empty.
  const json& h = img.config["history"];
  ASSERT_EQ(h.size(), 7u) << h.dump(1);
  EXPECT_EQ(h[3]["created_by"], "RUN /bin/sh -c true");
  EXPECT_EQ(h[3].value("empty_layer", false), true);
  EXPECT_EQ(h[4].value("empty_layer", false), true);
  EXPECT_EQ(img.config["rootfs"]["diff_ids"].size(), 5u);
  EXPECT_EQ(img.NonEmptyHistory(), 5u);
  ASSERT_EQ(img.manifest["layers"].size(), 5u);

  // The deleting step: a whiteout for the file and the directory, an opaque marker for the
  // directory that was replaced, and only the new file besides.
  Paths del = Entries(img, 2);
  auto has = [&](const Paths& p, const std::string& e) { return std::find(p.begin(), p.end(), e) != p.end(); };
  EXPECT_TRUE(has(del, "data/.wh.gone.txt")) << ::testing::PrintToString(del);
  EXPECT_TRUE(has(del, "data/.wh.gonedir")) << ::testing::PrintToString(del);
  EXPECT_TRUE(has(del, "data/replace/new.txt")) << ::testing::PrintToString(del);
  EXPECT_FALSE(has(del, "data/keep/k")) << ::testing::PrintToString(del);
  EXPECT_FALSE(has(del, "data/replace/old.txt")) << ::testing::PrintToString(del);
  EXPECT_TRUE(has(del, "data/replace/.wh..wh..opq")) << ::testing::PrintToString(del);
  // A metadata-only change and a new link.
  Paths meta = Entries(img, 3);
  EXPECT_TRUE(has(meta, "data/keep/k")) << ::testing::PrintToString(meta);
  EXPECT_TRUE(has(meta, "data/link")) << ::testing::PrintToString(meta);
  EXPECT_FALSE(has(meta, "data/replace/new.txt")) << ::testing::PrintToString(meta);
  // Deleting a base image file.
  Paths vi = Entries(img, 4);
  EXPECT_TRUE(has(vi, "bin/.wh.vi")) << ::testing::PrintToString(vi);
  for (const std::string& e : vi) EXPECT_TRUE(e == "bin/" || e == "bin/.wh.vi") << e;
}

TEST_F(BuildRunTest, HardLinksFifosSetuidAndOldTimesSurviveTheSnapshot) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "RUN mkdir -p /data/x/y/z && echo a > /data/a && ln /data/a /data/b && "
                                    "chmod 4755 /data/a && mkfifo -m 0640 /data/fifo && ln -s /nonexistent /data/dangling && "
                                    "touch -d @1000000000 /data/old && chown 1000:50 /data/x/y\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("run:special"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("run:special");
  const std::string& fs = img.rootfs;
  EXPECT_EQ(Stat(fs, "data/a").mode, 04755u);
  EXPECT_EQ(Stat(fs, "data/b").content, "a\n");
  std::string inodes;
  ASSERT_EQ(testing::RunShell("stat -c %i " + fs + "/data/a " + fs + "/data/b", &inodes), 0);
  EXPECT_EQ(inodes.substr(0, inodes.find('\n')), inodes.substr(inodes.find('\n') + 1, inodes.find('\n')))
      << "not one inode: " << inodes;
  EXPECT_EQ(Stat(fs, "data/fifo").type, 'p');
  EXPECT_EQ(Stat(fs, "data/fifo").mode, 0640u);
  EXPECT_EQ(Stat(fs, "data/dangling").type, 'l');
  EXPECT_EQ(Stat(fs, "data/dangling").link, "/nonexistent");
  EXPECT_EQ(Stat(fs, "data/x/y/z").type, 'd');
  EXPECT_EQ(Stat(fs, "data/x/y").uid, 1000u);
  EXPECT_EQ(Stat(fs, "data/x/y").gid, 50u);
  std::string mtime;
  ASSERT_EQ(testing::RunShell("stat -c %Y " + fs + "/data/old", &mtime), 0);
  EXPECT_EQ(mtime, "1000000000\n");
  // One hard link entry in the layer, not two copies.
  std::string listing;
  std::string blob = img.layout + "/blobs/sha256/" + img.manifest["layers"][1]["digest"].get<std::string>().substr(7);
  ASSERT_EQ(testing::RunShell("tar -tvf " + blob, &listing), 0);
  EXPECT_NE(listing.find(" link to "), std::string::npos) << listing;
}

TEST_F(BuildRunTest, DefaultPathWhenTheBaseHasNone) {
  // The busybox base's config has no Env at all, like many minimal images: BuildKit then sets the
  // default PATH for the stage (and so in the image), as it does for scratch.
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nENV TARGET=world\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("run:path"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("run:path", false);
  EXPECT_EQ(img.config["config"]["Env"],
            json({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TARGET=world"}));
}

TEST_F(BuildRunTest, ReplacedDirectoryBecomesOpaque) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "RUN mkdir -p /data/replace && echo 2 > /data/replace/old.txt && echo 3 > "
                                    "/data/replace/old2.txt\n"
                                    "RUN rm -rf /data/replace && mkdir /data/replace && echo new > /data/replace/new.txt\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("run:opaque"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("run:opaque");
  EXPECT_EQ(ListTree(img.rootfs, "data"), (Paths{"data/replace/", "data/replace/new.txt"}));
  Paths layer = Entries(img, 2);
  auto has = [&](const std::string& e) { return std::find(layer.begin(), layer.end(), e) != layer.end(); };
  EXPECT_TRUE(has("data/replace/.wh..wh..opq")) << ::testing::PrintToString(layer);
  EXPECT_TRUE(has("data/replace/new.txt")) << ::testing::PrintToString(layer);
  EXPECT_FALSE(has("data/replace/.wh.old.txt")) << ::testing::PrintToString(layer);
}

TEST_F(BuildRunTest, SingleSnapshotMakesOneLayerForTheStage) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "COPY a.txt /a.txt\n"
                                    "RUN echo one > /one && rm /bin/vi\n"
                                    "ENV X=1\n"
                                    "RUN echo two > /two\n"},
                                   {"a.txt", "A\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("run:single") + " --single-snapshot");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("run:single");
  EXPECT_EQ(img.config["rootfs"]["diff_ids"].size(), 2u);
  EXPECT_EQ(img.manifest["layers"].size(), 2u);
  EXPECT_EQ(img.NonEmptyHistory(), 2u);
  EXPECT_EQ(Stat(img.rootfs, "a.txt").content, "A\n");
  EXPECT_EQ(Stat(img.rootfs, "one").content, "one\n");
  EXPECT_EQ(Stat(img.rootfs, "two").content, "two\n");
  EXPECT_EQ(Stat(img.rootfs, "bin/vi").type, '-');
  Paths layer = Entries(img, 1);
  EXPECT_NE(std::find(layer.begin(), layer.end(), "bin/.wh.vi"), layer.end()) << ::testing::PrintToString(layer);
  EXPECT_NE(std::find(layer.begin(), layer.end(), "a.txt"), layer.end()) << ::testing::PrintToString(layer);
}

TEST_F(BuildRunTest, IgnorePathAndVarRunStayOutOfSnapshots) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "RUN mkdir -p /scratch /var/run && echo x > /scratch/tmp && echo pid > "
                                    "/var/run/x.pid && echo kept > /kept\n"}});
  auto r = env_->Build(ctx, "--destination " + env_->Ref("run:ignore") + " --ignore-path /scratch");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto img = env_->Read("run:ignore");
  EXPECT_EQ(Stat(img.rootfs, "kept").content, "kept\n");
  EXPECT_EQ(Stat(img.rootfs, "scratch/tmp").type, '-');
  EXPECT_EQ(Stat(img.rootfs, "var/run/x.pid").type, '-');
}

}  // namespace
}  // namespace kiln
