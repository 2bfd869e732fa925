// `kiln tree` end to end: a tree of images built into a real registry by the real binary, in
// dependency order, skipped when present, rebuilt with bumped versions below a changed image;
// `outdated` from the registry alone; the pipelines `--emit` writes, checked by YAML parsers and the
// Kubernetes manifest checker; and the errors bad trees give.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/testing/build_env_suite.h"
#include "tests/testing/temp_dir.h"

namespace kiln {
namespace {

using testing::KilnRun;
using testing::ReadFile;
using testing::RunKiln;
using testing::WriteFile;

class TreeCommandTest : public testing::BuildEnvSuite {
 protected:
  // A three-level tree: base FROM busybox, runtime FROM base, svc-a and svc-b FROM runtime.
  std::string MakeTree() {
    std::string dir = env_->NewDir("tree");
    auto image = [&](const std::string& name, const std::string& from, const std::string& version) {
      WriteFile(dir + "/" + name + "/image.yaml", "# the " + name + " image\nname: " + name + "\nversion: \"" +
                                                      version + "\"\nbuild_args:\n  WHO: " + name + "\n");
      WriteFile(dir + "/" + name + "/Dockerfile",
                "FROM " + from + "\nARG WHO\nRUN echo $WHO > /" + name + ".txt\n");
    };
    image("base", env_->Ref("busybox:latest"), "1.0");
    image("runtime", "base", "2.0");
    image("svc-a", "runtime", "3.0");
    image("svc-b", "runtime:ignored-tag", "4.0");
    return dir;
  }
  // A namespace of its own for each test, so one test's tags never satisfy another's.
  std::string Ns() { return "tree" + std::to_string(++counter_); }
  std::string Flags(const std::string& ns) {
    return " --registry " + env_->reg().host() + " --namespace " + ns + " --insecure-registry " + env_->reg().host();
  }
  KilnRun Tree(const std::string& verb, const std::string& dir, const std::string& ns, const std::string& more = "") {
    std::string state = verb == "build" ? " --state-dir " + env_->state_dir() : "";
    return RunKiln(KILN_BINARY, "tree " + verb + " " + dir + Flags(ns) + state + " " + more);
  }
  static size_t Pos(const std::string& s, const std::string& what) {
    size_t p = s.find(what);
    EXPECT_NE(p, std::string::npos) << "no \"" << what << "\" in:\n" << s;
    return p;
  }
  inline static int counter_ = 0;
};

TEST_F(TreeCommandTest, BuildsInOrderSkipsWhatExistsAndRebuildsDescendantsWithBumpedVersions) {
  std::string dir = MakeTree(), ns = Ns();
  KilnRun first = Tree("build", dir, ns);
  ASSERT_EQ(first.rc, 0) << first.out << first.err;
  EXPECT_LT(Pos(first.out, "built base"), Pos(first.out, "building runtime"));
  EXPECT_LT(Pos(first.out, "built runtime"), Pos(first.out, "building svc-a"));
  EXPECT_LT(Pos(first.out, "built runtime"), Pos(first.out, "building svc-b"));
  Pos(first.out, "4 built, 0 failed, 0 skipped");
  for (std::string t : {"base:1.0", "runtime:2.0", "svc-a:3.0", "svc-b:4.0"}) {
    ASSERT_TRUE(env_->TagExists(ns + "/" + t)) << t << "\n" << first.out;
  }
  testing::ReadBack a = env_->Read(ns + "/svc-a:3.0");
  EXPECT_EQ(testing::Stat(a.rootfs, "base.txt").content, "base\n");
  EXPECT_EQ(testing::Stat(a.rootfs, "runtime.txt").content, "runtime\n");
  EXPECT_EQ(testing::Stat(a.rootfs, "svc-a.txt").content, "svc-a\n");
  EXPECT_EQ(a.config["config"]["Labels"]["org.opencontainers.image.base.name"],
            env_->Ref(ns + "/runtime:2.0"));

  KilnRun second = Tree("build", dir, ns);
  ASSERT_EQ(second.rc, 0) << second.out << second.err;
  Pos(second.out, "nothing to build");
  EXPECT_EQ(second.out.find("building"), std::string::npos) << second.out;

  // A new base version: base is built, everything below it rebuilt with a bumped version.
  std::string yaml = ReadFile(dir + "/base/image.yaml");
  WriteFile(dir + "/base/image.yaml", yaml.replace(yaml.find("1.0"), 3, "1.1"));
  std::string before = ReadFile(dir + "/runtime/image.yaml");
  KilnRun dry = Tree("build", dir, ns, "--dry-run");
  ASSERT_EQ(dry.rc, 0) << dry.out << dry.err;
  Pos(dry.out, "build   " + env_->Ref(ns + "/base:1.1"));
  Pos(dry.out, "rebuild " + env_->Ref(ns + "/runtime:2.0-s1") + " (was 2.0): Rebuild for base 1.1");
  Pos(dry.out, "rebuild " + env_->Ref(ns + "/svc-b:4.0-s1"));
  EXPECT_EQ(dry.out.find("building"), std::string::npos) << dry.out;
  EXPECT_EQ(ReadFile(dir + "/runtime/image.yaml"), before);
  EXPECT_FALSE(std::filesystem::exists(dir + "/runtime/changelog"));
  EXPECT_FALSE(env_->TagExists(ns + "/base:1.1"));

  KilnRun third = Tree("build", dir, ns);
  ASSERT_EQ(third.rc, 0) << third.out << third.err;
  Pos(third.out, "4 built, 0 failed, 0 skipped");
  for (std::string t : {"base:1.1", "runtime:2.0-s1", "svc-a:3.0-s1", "svc-b:4.0-s1"}) {
    EXPECT_TRUE(env_->TagExists(ns + "/" + t)) << t;
  }
  EXPECT_EQ(ReadFile(dir + "/runtime/image.yaml"),
            "# the runtime image\nname: runtime\nversion: \"2.0-s1\"\nbuild_args:\n  WHO: runtime\n");
  std::string changelog = ReadFile(dir + "/svc-a/changelog");
  EXPECT_EQ(changelog.rfind("svc-a (3.0-s1) unstable; urgency=medium\n\n  * Rebuild for runtime 2.0-s1\n\n -- kiln tree", 0),
            0u) << changelog;
  testing::ReadBack b = env_->Read(ns + "/svc-b:4.0-s1", false);
  EXPECT_EQ(b.config["config"]["Labels"]["org.opencontainers.image.base.name"], env_->Ref(ns + "/runtime:2.0-s1"));
  EXPECT_EQ(b.config["config"]["Labels"]["org.opencontainers.image.base.digest"],
            env_->Read(ns + "/runtime:2.0-s1", false).digest);
  KilnRun fourth = Tree("build", dir, ns);
  ASSERT_EQ(fourth.rc, 0) << fourth.out << fourth.err;
  Pos(fourth.out, "nothing to build");
}

TEST_F(TreeCommandTest, OutdatedReportsImagesWhoseBaseTagMoved) {
  std::string dir = MakeTree(), ns = Ns();
  KilnRun built = Tree("build", dir, ns, "--jobs 3");
  ASSERT_EQ(built.rc, 0) << built.out << built.err;
  KilnRun fresh = Tree("outdated", dir, ns);
  ASSERT_EQ(fresh.rc, 0) << fresh.err;
  Pos(fresh.out, "0 outdated");
  Pos(fresh.out, "current  " + env_->Ref(ns + "/svc-a:3.0"));

  // Re-push runtime:2.0 with other content: the services were built on the old one.
  std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN echo patched > /patched\n"}});
  KilnRun repush = env_->Build(ctx, "--destination " + env_->Ref(ns + "/runtime:2.0"));
  ASSERT_EQ(repush.rc, 0) << repush.err;
  KilnRun moved = Tree("outdated", dir, ns);
  ASSERT_EQ(moved.rc, 0) << moved.err;
  Pos(moved.out, "outdated " + env_->Ref(ns + "/svc-a:3.0") + ": base " + env_->Ref(ns + "/runtime:2.0") + " was sha256:");
  Pos(moved.out, "outdated " + env_->Ref(ns + "/svc-b:4.0"));
  Pos(moved.out, "current  " + env_->Ref(ns + "/base:1.0"));
  Pos(moved.out, "2 outdated");
}

// The emitted pipeline's jobs, as python's YAML parser reads them: job → needs.
nlohmann::json YamlToJson(const std::string& path) {
  std::string out = path + ".json";
  int rc = testing::RunShell("python3 -c 'import json,sys,yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), "
                             "open(sys.argv[2],\"w\"))' '" + path + "' '" + out + "'");
  EXPECT_EQ(rc, 0);
  return nlohmann::json::parse(ReadFile(out));
}

TEST_F(TreeCommandTest, EmitsGitlabChildPipelineAndKubernetesJobsFollowingTheTree) {
  std::string dir = MakeTree(), ns = Ns();
  std::string out = env_->NewDir("emit");
  KilnRun gl = Tree("build", dir, ns, "--emit gitlab-ci -o " + out + "/child.yml --emit-dir images");
  ASSERT_EQ(gl.rc, 0) << gl.out << gl.err;
  Pos(gl.err, "build   " + env_->Ref(ns + "/base:1.0"));
  nlohmann::json ci = YamlToJson(out + "/child.yml")[0];
  ASSERT_EQ(ci.size(), 4u) << ci.dump();
  EXPECT_EQ(ci["build:base"]["needs"], nlohmann::json::array());
  EXPECT_EQ(ci["build:runtime"]["needs"], nlohmann::json::array({"build:base"}));
  EXPECT_EQ(ci["build:svc-a"]["needs"], nlohmann::json::array({"build:runtime"}));
  EXPECT_EQ(ci["build:svc-b"]["needs"], nlohmann::json::array({"build:runtime"}));
  std::string script = ci["build:svc-a"]["script"][0];
  Pos(script, "/kaniko/executor tree build --context=images --only=svc-a --destination=" + env_->Ref(ns + "/svc-a:3.0"));
  Pos(script, "--set-version=base=1.0 --set-version=runtime=2.0 --set-version=svc-a=3.0");
  EXPECT_FALSE(env_->TagExists(ns + "/base:1.0"));  // emitting builds nothing
  // The job's before_script turns GitLab's registry variables into a docker config.
  WriteFile(out + "/before.sh", ci["build:svc-a"]["before_script"][0].get<std::string>() + "\n");
  ASSERT_EQ(testing::RunShell("cd '" + out + "' && CI_REGISTRY=r.example CI_REGISTRY_USER=u CI_REGISTRY_PASSWORD='p w' "
                              "sh -c '. ./before.sh && cat \"$DOCKER_CONFIG/config.json\"' > cfg.json"), 0);
  nlohmann::json cfg = nlohmann::json::parse(ReadFile(out + "/cfg.json"));
  EXPECT_EQ(cfg["auths"]["r.example"]["username"], "u");
  EXPECT_EQ(cfg["auths"]["r.example"]["password"], "p w");

  // One job's command, run here (kiln for /kaniko/executor): it builds exactly that image.
  std::string base_script = ci["build:base"]["script"][0];
  base_script.replace(0, std::string("/kaniko/executor ").size(), "");
  base_script.replace(base_script.find("--context=images"), 16, "--context=" + dir);
  KilnRun job = RunKiln(KILN_BINARY, base_script + " --state-dir " + env_->state_dir());
  ASSERT_EQ(job.rc, 0) << job.out << job.err;
  EXPECT_TRUE(env_->TagExists(ns + "/base:1.0"));

  std::string k8s = env_->NewDir("k8s");
  KilnRun kj = Tree("build", dir, ns, "--emit k8s -o " + k8s + "/tree.yaml --emit-dir images");
  ASSERT_EQ(kj.rc, 0) << kj.out << kj.err;
  nlohmann::json jobs = YamlToJson(k8s + "/tree.yaml");
  ASSERT_EQ(jobs.size(), 3u) << jobs.dump();  // base is in the registry now
  EXPECT_EQ(jobs[0]["metadata"]["name"], "kiln-tree-runtime");
  EXPECT_EQ(jobs[0]["spec"]["template"]["spec"]["initContainers"].size(), 1u);  // checkout; base exists
  auto inits = jobs[1]["spec"]["template"]["spec"]["initContainers"];
  ASSERT_EQ(inits.size(), 2u);
  EXPECT_EQ(inits[1]["args"][0], "tree");
  EXPECT_EQ(inits[1]["args"][1], "wait");
  EXPECT_EQ(inits[1]["args"][2], env_->Ref(ns + "/runtime:2.0"));
  // __FILE__ is relative to the build directory (where the kiln binary is) under Ninja.
  std::filesystem::path here = std::filesystem::path(KILN_BINARY).parent_path() / __FILE__;
  std::string checker = here.parent_path().parent_path() / "deploy/check_manifests.py";
  std::string log = k8s + "/check.log";
  int rc = testing::RunShell("python3 '" + checker + "' '" + k8s + "' > '" + log + "' 2>&1");
  EXPECT_EQ(rc, 0) << ReadFile(log);

  // The wait the Jobs use returns once the tag is there.
  KilnRun wait = RunKiln(KILN_BINARY, "tree wait " + env_->Ref(ns + "/base:1.0") + " --timeout 5 --insecure-registry " +
                                          env_->reg().host());
  EXPECT_EQ(wait.rc, 0) << wait.err;
}

TEST_F(TreeCommandTest, BuildsDockerPkgLayout) {
  std::string dir = env_->NewDir("dpkg"), ns = Ns();
  WriteFile(dir + "/images/dbase/Dockerfile.template", "FROM {{ registry }}/busybox:latest\nRUN echo d > /d\n");
  WriteFile(dir + "/images/dbase/changelog",
            "dbase (0.1.0) wikimedia; urgency=medium\n\n  * First.\n\n -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n");
  WriteFile(dir + "/images/dapp/Dockerfile.template",
            "FROM {{ registry }}/{{ \"dbase\" | image_tag }}\nRUN cat /d > /app\n");
  WriteFile(dir + "/images/dapp/changelog",
            "dapp (1.0.0-s2) wikimedia; urgency=medium\n\n  * Second.\n\n -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n");
  // docker-pkg's {{ registry }} is the tree's registry: busybox is at REG/busybox, outside the namespace.
  KilnRun r = Tree("build", dir, ns);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(env_->TagExists(ns + "/dbase:0.1.0"));
  EXPECT_TRUE(env_->TagExists(ns + "/dapp:1.0.0-s2"));
  WriteFile(dir + "/images/dbase/changelog", "dbase (0.2.0) wikimedia; urgency=medium\n\n  * New.\n\n -- A <a@example.org>  "
                                             "Mon, 01 Jan 2024 00:00:00 +0000\n\n" + ReadFile(dir + "/images/dbase/changelog"));
  KilnRun again = Tree("build", dir, ns);
  ASSERT_EQ(again.rc, 0) << again.out << again.err;
  EXPECT_TRUE(env_->TagExists(ns + "/dapp:1.0.0-s3"));
  EXPECT_EQ(ReadFile(dir + "/images/dapp/changelog").rfind("dapp (1.0.0-s3) wikimedia; urgency=medium\n\n  * Rebuild for dbase 0.2.0\n", 0), 0u);
}

TEST_F(TreeCommandTest, AFailedImageStopsItsDescendantsOnlyAndTheNextRunFinishes) {
  std::string dir = MakeTree(), ns = Ns();
  WriteFile(dir + "/lone/image.yaml", "name: lone\nversion: '1'\n");
  WriteFile(dir + "/lone/Dockerfile", "FROM " + env_->Ref("busybox:latest") + "\nRUN sleep 1 && echo lone > /lone\n");
  std::string good = ReadFile(dir + "/runtime/Dockerfile");
  WriteFile(dir + "/runtime/Dockerfile", good + "RUN echo broken-runtime && exit 3\n");
  KilnRun r = Tree("build", dir, ns);
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  Pos(r.out, "FAILED runtime: kiln build failed (exit code 3)");
  Pos(r.out, "broken-runtime");  // the tail of its log
  Pos(r.out, "skipped svc-a: runtime failed");
  Pos(r.out, "skipped svc-b: runtime failed");
  Pos(r.out, "2 built, 1 failed, 2 not built (a parent failed), 0 skipped");
  EXPECT_TRUE(env_->TagExists(ns + "/base:1.0"));
  EXPECT_TRUE(env_->TagExists(ns + "/lone:1"));
  EXPECT_FALSE(env_->TagExists(ns + "/svc-a:3.0"));

  WriteFile(dir + "/runtime/Dockerfile", good);
  KilnRun fixed = Tree("build", dir, ns);
  ASSERT_EQ(fixed.rc, 0) << fixed.out << fixed.err;
  Pos(fixed.out, "3 built, 0 failed, 2 skipped");
  EXPECT_TRUE(env_->TagExists(ns + "/svc-a:3.0"));
}

TEST_F(TreeCommandTest, BadTreesFailNamingTheFile) {
  std::string ns = Ns();
  std::string cyc = env_->NewDir("cycle");
  WriteFile(cyc + "/a/image.yaml", "name: a\nversion: '1'\n");
  WriteFile(cyc + "/a/Dockerfile", "FROM b\n");
  WriteFile(cyc + "/b/image.yaml", "name: b\nversion: '1'\n");
  WriteFile(cyc + "/b/Dockerfile", "FROM busybox AS b\nFROM a\n");
  KilnRun c = Tree("build", cyc, ns, "--dry-run");
  EXPECT_EQ(c.rc, 2);
  Pos(c.err, "the image tree has a cycle: ");
  Pos(c.err, cyc + "/a/Dockerfile");
  Pos(c.err, cyc + "/b/Dockerfile");

  std::string missing = env_->NewDir("missing");
  WriteFile(missing + "/images/x/Dockerfile.template", "# x\nFROM {{ registry }}/{{ \"nope\" | image_tag }}\n");
  WriteFile(missing + "/images/x/changelog", "x (1) u; urgency=low\n");
  KilnRun m = Tree("build", missing, ns, "--dry-run");
  EXPECT_EQ(m.rc, 2);
  Pos(m.err, missing + "/images/x/Dockerfile.template:2: uses image \"nope\", which the tree does not have");

  std::string jinja = env_->NewDir("jinja");
  WriteFile(jinja + "/images/x/Dockerfile.template", "FROM debian\n{% if x %}RUN true{% endif %}\n");
  WriteFile(jinja + "/images/x/changelog", "x (1) u; urgency=low\n");
  KilnRun j = Tree("build", jinja, ns, "--dry-run");
  EXPECT_EQ(j.rc, 2);
  Pos(j.err, jinja + "/images/x/Dockerfile.template:2: Jinja {% blocks are not supported");

  std::string bad = env_->NewDir("bad");
  WriteFile(bad + "/a/image.yaml", "name: a\nversion: [1\n");
  WriteFile(bad + "/a/Dockerfile", "FROM busybox\n");
  KilnRun y = Tree("build", bad, ns, "--dry-run");
  EXPECT_EQ(y.rc, 2);
  Pos(y.err, bad + "/a/image.yaml: not valid YAML");
  WriteFile(bad + "/a/image.yaml", "name: a\nversoin: 1\n");
  KilnRun k = Tree("build", bad, ns, "--dry-run");
  Pos(k.err, bad + "/a/image.yaml: unknown key \"versoin\"");
}

}  // namespace
}  // namespace kiln
