// `kiln build --cache` end to end: the keys never give a wrong hit and miss exactly where an input
// changed (issue 8). Each test builds the same Dockerfile twice or more against a real registry and
// reads the log's "cache hit" / "cache miss" notes per step, then compares the images.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <thread>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using testing::BuildEnv;

class BuildCacheTest : public testing::BuildEnvSuite {
 protected:

  // "hit" / "miss" / "-" (no cache note) for each STEP of the last stage, in order, from the log.
  static std::vector<std::string> Steps(const std::string& log) {
    std::vector<std::string> out;
    std::regex done(R"(STEP (\d+)/(\d+): done in [^(]*\((.*)\))");
    std::istringstream in(log);
    std::string line;
    while (std::getline(in, line)) {
      std::smatch m;
      if (!std::regex_search(line, m, done)) continue;
      if (m[1] == "1") out.clear();  // a new stage starts
      std::string note = m[3];
      out.push_back(note.find("cache hit") != std::string::npos    ? "hit"
                    : note.find("cache miss") != std::string::npos ? "miss"
                                                                   : "-");
    }
    return out;
  }

  static void Write(const std::string& path, const std::string& content) {
    std::ofstream(path, std::ios::trunc) << content;
  }

  static std::string Dockerfile() {
    return "FROM @REG@/busybox:latest\n"       // 1
           "ARG USED=1\n"                      // 2
           "COPY a.txt /a.txt\n"               // 3
           "RUN echo used=$USED > /used\n"     // 4
           "COPY b.txt /b.txt\n"               // 5
           "RUN cat /a.txt /b.txt > /both\n";  // 6
  }

  testing::KilnRun Build(const std::string& ctx, const std::string& cache, const std::string& tag,
                         const std::string& extra = "") {
    return env_->Build(ctx, "--reproducible --cache " + cache + " --destination " + env_->Ref(tag) + " " + extra);
  }

};

using V = std::vector<std::string>;

TEST_F(BuildCacheTest, DirectoryCacheMissesExactlyWhereAnInputChanged) {
  std::string ctx = env_->Context({{"Dockerfile", Dockerfile()}, {"a.txt", "a1\n"}, {"b.txt", "b1\n"},
                                   {".dockerignore", "ignored.txt\n"}, {"ignored.txt", "x"}});
  std::string cache = "--cache-dir " + env_->NewDir("cache-dir");

  auto first = Build(ctx, cache, "cached:1");
  ASSERT_EQ(first.rc, 0) << first.err;
  EXPECT_EQ(Steps(first.err), (V{"-", "-", "miss", "miss", "miss", "miss"}));

  auto again = Build(ctx, cache, "cached:2");
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_EQ(Steps(again.err), (V{"-", "-", "hit", "hit", "hit", "hit"}));
  EXPECT_EQ(again.err.find("unpacked"), std::string::npos) << "a fully cached build extracts nothing";

  // A .dockerignored file never affects keys.
  Write(ctx + "/ignored.txt", "changed");
  auto ignored = Build(ctx, cache, "cached:3");
  ASSERT_EQ(ignored.rc, 0) << ignored.err;
  EXPECT_EQ(Steps(ignored.err), (V{"-", "-", "hit", "hit", "hit", "hit"}));

  // A build arg nothing declares still hits; one a RUN sees misses from that RUN on.
  auto unused = Build(ctx, cache, "cached:4", "--build-arg NOBODY=1");
  EXPECT_EQ(Steps(unused.err), (V{"-", "-", "hit", "hit", "hit", "hit"}));
  auto used = Build(ctx, cache, "cached:5", "--build-arg USED=2");
  ASSERT_EQ(used.rc, 0) << used.err;
  EXPECT_EQ(Steps(used.err), (V{"-", "-", "hit", "miss", "miss", "miss"}));
  EXPECT_NE(used.err.find("build arg or env USED changed"), std::string::npos) << used.err;

  // A context file misses from the COPY that reads it on.
  Write(ctx + "/b.txt", "b2\n");
  auto changed = Build(ctx, cache, "cached:6");
  ASSERT_EQ(changed.rc, 0) << changed.err;
  EXPECT_EQ(Steps(changed.err), (V{"-", "-", "hit", "hit", "miss", "miss"}));
  EXPECT_NE(changed.err.find("the files it copies changed"), std::string::npos) << changed.err;

  // The cached image and an uncached build of the same inputs are the same image.
  auto uncached = env_->Build(ctx, "--reproducible --destination " + env_->Ref("cached:uncached"));
  ASSERT_EQ(uncached.rc, 0) << uncached.err;
  auto hit_again = Build(ctx, cache, "cached:7");
  EXPECT_EQ(Steps(hit_again.err), (V{"-", "-", "hit", "hit", "hit", "hit"}));
  auto a = env_->Read("cached:7");
  auto b = env_->Read("cached:uncached");
  EXPECT_EQ(a.config["rootfs"], b.config["rootfs"]);
  EXPECT_EQ(a.config["config"], b.config["config"]);
  EXPECT_EQ(testing::ListTree(a.rootfs, ""), testing::ListTree(b.rootfs, ""));
  EXPECT_EQ(testing::Stat(a.rootfs, "both").content, "a1\nb2\n");
}

TEST_F(BuildCacheTest, NewBaseDigestMissesEverything) {
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/base-for-cache:1\nRUN echo x > /x\n"}});
  testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", env_->reg(), "base-for-cache:1");
  std::string cache = "--cache-dir " + env_->NewDir("cache-base");
  ASSERT_EQ(Build(ctx, cache, "base:1").rc, 0);
  EXPECT_EQ(Steps(Build(ctx, cache, "base:2").err), (V{"-", "hit"}));
  // Same tag, new digest (Docker media types re-encode the manifest).
  testing::PushToRegistry("oci:" + testing::BusyboxLayout(KILN_BINARY) + ":latest", env_->reg(), "base-for-cache:1",
                          testing::MediaTypes::kDocker);
  EXPECT_EQ(Steps(Build(ctx, cache, "base:3").err), (V{"-", "miss"}));
}

TEST_F(BuildCacheTest, ChangedStageMissesTheCopyFromIt) {
  std::string df =
      "FROM @REG@/busybox:latest AS gen\nCOPY v.txt /v.txt\nRUN cp /v.txt /out\n"
      "FROM @REG@/busybox:latest\nRUN echo before > /before\nCOPY --from=gen /out /out\n";
  std::string ctx = env_->Context({{"Dockerfile", df}, {"v.txt", "1"}});
  std::string cache = "--cache-dir " + env_->NewDir("cache-stage");
  ASSERT_EQ(Build(ctx, cache, "stage:1").rc, 0);
  EXPECT_EQ(Steps(Build(ctx, cache, "stage:2").err), (V{"-", "hit", "hit"}));
  Write(ctx + "/v.txt", "2");
  auto r = Build(ctx, cache, "stage:3");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Steps(r.err), (V{"-", "hit", "miss"}));
  EXPECT_EQ(testing::Stat(env_->Read("stage:3").rootfs, "out").content, "2");
}

TEST_F(BuildCacheTest, RegistryCacheRoundTripsAndTwoBuildsCanShareIt) {
  std::string ctx = env_->Context({{"Dockerfile", Dockerfile()}, {"a.txt", "a\n"}, {"b.txt", "b\n"}});
  std::string cache = "--cache-repo " + env_->Ref("shared/cache");
  // Two builds at once on an empty cache: both succeed and produce the same image.
  testing::KilnRun r1, r2;
  std::thread t1([&] { r1 = Build(ctx, cache, "par:1"); });
  std::thread t2([&] { r2 = Build(ctx, cache, "par:2"); });
  t1.join();
  t2.join();
  ASSERT_EQ(r1.rc, 0) << r1.err;
  ASSERT_EQ(r2.rc, 0) << r2.err;
  EXPECT_EQ(env_->Read("par:1", false).digest, env_->Read("par:2", false).digest);
  auto hit = Build(ctx, cache, "par:3");
  ASSERT_EQ(hit.rc, 0) << hit.err;
  EXPECT_EQ(Steps(hit.err), (V{"-", "-", "hit", "hit", "hit", "hit"}));
  EXPECT_EQ(env_->Read("par:3", false).digest, env_->Read("par:1", false).digest);
}

TEST_F(BuildCacheTest, TwoBuildsShareADirectoryCacheAtOnce) {
  std::string ctx = env_->Context({{"Dockerfile", Dockerfile()}, {"a.txt", "a\n"}, {"b.txt", "b\n"}});
  std::string cache = "--cache-dir " + env_->NewDir("cache-par");
  testing::KilnRun r1, r2;
  std::thread t1([&] { r1 = Build(ctx, cache, "dpar:1"); });
  std::thread t2([&] { r2 = Build(ctx, cache, "dpar:2"); });
  t1.join();
  t2.join();
  ASSERT_EQ(r1.rc, 0) << r1.err;
  ASSERT_EQ(r2.rc, 0) << r2.err;
  auto hit = Build(ctx, cache, "dpar:3");
  EXPECT_EQ(Steps(hit.err), (V{"-", "-", "hit", "hit", "hit", "hit"}));
  EXPECT_EQ(env_->Read("dpar:3", false).digest, env_->Read("dpar:1", false).digest);
}

TEST_F(BuildCacheTest, WarmedBaseImageComesFromTheCacheDir) {
  std::string dir = env_->NewDir("warm");
  auto warm = testing::RunKiln(env_->kiln(), "warm --cache-dir " + dir + " --insecure-registry " + env_->reg().host() +
                                                 " --image " + env_->Ref("busybox:latest"));
  ASSERT_EQ(warm.rc, 0) << warm.err;
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN echo hi > /hi\n"}});
  auto r = env_->Build(ctx, "--cache --cache-dir " + dir + " --destination " + env_->Ref("warm:1"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("from the cache dir"), std::string::npos) << r.err;
  EXPECT_EQ(testing::Stat(env_->Read("warm:1").rootfs, "hi").content, "hi\n");
}

}  // namespace
}  // namespace kiln
