// `kiln build` with RUN --mount end to end against the real registry, in every sandbox tier:
// cache mounts that persist between builds and never enter a layer, secrets by file and by
// environment variable that leave no trace in any output, binds from the context and from a stage,
// tmpfs, and Dockerfile errors at their file:line:column.
#include <unistd.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testing/base_images.h"
#include "tests/testing/build_env_suite.h"

namespace kiln {
namespace {

using testing::KilnRun;
using testing::Stat;

// How a tier is asked for; "" = kiln's choice as root (the user-namespace tier here).
struct TierArgs {
  const char* name;
  const char* flags;
  const char* wrapper;
};
const TierArgs kTiers[] = {
    {"rootless", "--sandbox rootless", ""},
    {"chroot", "--sandbox chroot", "setpriv --bounding-set -sys_admin --inh-caps -sys_admin"},
    {"ptrace", "--sandbox ptrace", ""},
};

class BuildMountsTest : public testing::BuildEnvSuite {
 protected:
  KilnRun Build(const std::string& ctx, const std::string& args, const TierArgs& tier, const std::string& env = "") {
    return env_->Build(ctx, std::string(tier.flags) + " " + args, env, tier.wrapper);
  }
  // Every layer's entries, "./" stripped.
  static std::vector<std::string> AllEntries(const testing::ReadBack& img) {
    std::vector<std::string> out;
    for (size_t i = 0; i < img.config["rootfs"]["diff_ids"].size(); ++i) {
      for (std::string e : img.LayerEntries(i)) {
        if (e.rfind("./", 0) == 0) e = e.substr(2);
        out.push_back(e);
      }
    }
    return out;
  }
  static bool HasEntryUnder(const std::vector<std::string>& entries, const std::string& dir) {
    for (const std::string& e : entries) {
      if (e == dir || e == dir + "/" || e.rfind(dir + "/", 0) == 0) return true;
    }
    return false;
  }
};

TEST_F(BuildMountsTest, CacheMountPersistsBetweenBuildsInEveryTier) {
  for (const TierArgs& tier : kTiers) {
    SCOPED_TRACE(tier.name);
    std::string id = std::string("demo-") + tier.name;
    std::string ctx = env_->Context({{"Dockerfile",
                                      "FROM @REG@/busybox:latest\n"
                                      "ARG N\n"
                                      "RUN --mount=type=cache,id=" + id + ",target=/var/cache/demo "
                                      "ls /var/cache/demo > /seen.txt && echo $N > /var/cache/demo/run$N\n"}});
    auto first = Build(ctx, "--build-arg N=1 --destination " + env_->Ref("mounts:cache1"), tier);
    ASSERT_EQ(first.rc, 0) << first.err;
    EXPECT_NE(first.err.find("cache mount /var/cache/demo (id " + id + "): new"), std::string::npos) << first.err;
    auto second = Build(ctx, "--build-arg N=2 --destination " + env_->Ref("mounts:cache2"), tier);
    ASSERT_EQ(second.rc, 0) << second.err;
    EXPECT_NE(second.err.find("(id " + id + "): reused"), std::string::npos) << second.err;

    auto one = env_->Read("mounts:cache1");
    auto two = env_->Read("mounts:cache2");
    EXPECT_EQ(Stat(one.rootfs, "seen.txt").content, "");
    EXPECT_EQ(Stat(two.rootfs, "seen.txt").content, "run1\n");  // the second build saw the first's file
    // The cache's content and the directories made for its target never enter a layer.
    for (const auto* img : {&one, &two}) {
      auto entries = AllEntries(*img);
      EXPECT_FALSE(HasEntryUnder(entries, "var/cache")) << tier.name;
      EXPECT_EQ(img->LayerEntries(img->config["rootfs"]["diff_ids"].size() - 1),
                std::vector<std::string>{"seen.txt"});
    }
  }
}

TEST_F(BuildMountsTest, SecretsByFileAndEnvLeaveNoTraceInAnyOutput) {
  const std::string file_value = "kiln-file-secret-7c1e";
  const std::string env_value = "kiln-env-secret-93ab";
  std::string secret_file = env_->NewDir("secret") + "/token";
  testing::WriteFile(secret_file, file_value, 0600);
  std::string ctx = env_->Context(
      {{"Dockerfile",
        "FROM @REG@/busybox:latest\n"
        "RUN --mount=type=secret,id=tok,required wc -c < /run/secrets/tok > /len.txt && "
        "stat -c %a /run/secrets/tok > /mode.txt\n"
        "RUN --mount=type=secret,id=api,env=API_TOKEN,target=/etc/api-token "
        "test \"$API_TOKEN\" = \"$(cat /etc/api-token)\" && echo ok > /env-ok\n"
        "RUN cat /run/secrets/tok > /leak 2>/dev/null || echo absent > /absent\n"
        "RUN --mount=type=secret,id=not-given ls /run/secrets > /optional.txt 2>&1 || true\n"}});
  for (const TierArgs& tier : kTiers) {
    SCOPED_TRACE(tier.name);
    std::string out_dir = env_->NewDir(std::string("secret-out-") + tier.name);
    std::string tag = std::string("mounts:secret-") + tier.name;
    auto r = Build(ctx,
                   "--compression uncompressed --cache --secret id=tok,src=" + secret_file +
                       " --secret id=api,env=KILN_TEST_API --tar-path " + out_dir + "/image.tar --destination " +
                       env_->Ref(tag),
                   tier, "KILN_TEST_API=" + env_value);
    ASSERT_EQ(r.rc, 0) << r.err;
    auto img = env_->Read(tag);
    EXPECT_EQ(Stat(img.rootfs, "len.txt").content, std::to_string(file_value.size()) + "\n");
    EXPECT_EQ(Stat(img.rootfs, "mode.txt").content, "400\n");
    EXPECT_EQ(Stat(img.rootfs, "env-ok").content, "ok\n");
    EXPECT_EQ(Stat(img.rootfs, "absent").content, "absent\n");  // a step without the mount cannot read it
    EXPECT_EQ(Stat(img.rootfs, "leak").content, "");
    // (skopeo recompresses uncompressed layers into its layout, so the rootfs is read, not the tars.)
    EXPECT_EQ(Stat(img.rootfs, "run/secrets").type, '-');
    EXPECT_EQ(Stat(img.rootfs, "etc/api-token").type, '-');
    EXPECT_EQ(Stat(img.rootfs, "optional.txt").content, "ls: /run/secrets: No such file or directory\n");

    // The registry layer cache (DESTINATION/cache) got this build's steps, so its entries are scanned too.
    std::string cached;
    testing::RunShell("ls " + env_->reg().storage_dir() + "/docker/registry/v2/repositories/mounts/cache/_manifests/tags", &cached);
    EXPECT_NE(cached, "") << r.err;
    // The scan: layers (uncompressed, in the state dir's store, the docker-archive and the registry's
    // storage, the registry cache's entries), config and history, the log, and whatever the state dir holds.
    std::string where = env_->state_dir() + " " + out_dir + " " + env_->reg().storage_dir() + " " + img.layout +
                        " " + img.rootfs;
    for (const std::string& value : {file_value, env_value}) {
      std::string hits;
      testing::RunShell("grep -rla -- '" + value + "' " + where + " ; true", &hits);
      EXPECT_EQ(hits, "") << value;
      EXPECT_EQ(r.out.find(value), std::string::npos);
      EXPECT_EQ(r.err.find(value), std::string::npos);
      EXPECT_EQ(img.config.dump().find(value), std::string::npos);
    }
  }
}

TEST_F(BuildMountsTest, BindFromContextAndStageAndTmpfs) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest AS tools\n"
                                    "RUN mkdir /out && echo tool > /out/tool.txt\n"
                                    "FROM @REG@/busybox:latest\n"
                                    "WORKDIR /w\n"
                                    "RUN --mount=type=bind,source=src,target=/src cat /src/a.txt > /from-ctx\n"
                                    "RUN --mount=type=bind,from=tools,source=/out,target=t cat /w/t/tool.txt > /from-stage\n"
                                    "RUN --mount=type=bind,source=src,target=/src,rw "
                                    "echo x > /src/new && ls /src > /rw-list\n"
                                    "RUN --mount=type=bind,source=src/a.txt,target=/one.txt cat /one.txt > /file-bind\n"
                                    "RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && ls /scratch > /tmpfs-list\n"
                                    "RUN --mount=type=bind,from=@REG@/busybox:docker,source=/bin/busybox,target=/img-busybox "
                                    "test -x /img-busybox && echo image > /from-image\n"},
                                   {"src/a.txt", "from the context\n"}});
  for (const TierArgs& tier : kTiers) {
    SCOPED_TRACE(tier.name);
    std::string tag = std::string("mounts:bind-") + tier.name;
    auto r = Build(ctx, "--destination " + env_->Ref(tag), tier);
    ASSERT_EQ(r.rc, 0) << r.err;
    auto img = env_->Read(tag);
    EXPECT_EQ(Stat(img.rootfs, "from-ctx").content, "from the context\n");
    EXPECT_EQ(Stat(img.rootfs, "from-stage").content, "tool\n");
    EXPECT_EQ(Stat(img.rootfs, "rw-list").content, "a.txt\nnew\n");
    EXPECT_EQ(Stat(img.rootfs, "file-bind").content, "from the context\n");
    EXPECT_EQ(Stat(img.rootfs, "tmpfs-list").content, "t\n");
    EXPECT_EQ(Stat(img.rootfs, "from-image").content, "image\n");
    auto entries = AllEntries(img);
    for (const char* gone : {"src", "w/t", "scratch", "one.txt", "img-busybox"}) EXPECT_FALSE(HasEntryUnder(entries, gone)) << gone;
    EXPECT_EQ(Stat(ctx, "src/new").type, '-');  // rw: the step's writes were thrown away
  }
}

TEST_F(BuildMountsTest, BindContentIsPartOfTheCacheKeyButSecretsAreNot) {
  std::string cache = env_->NewDir("layer-cache");
  std::string secret = env_->NewDir("key-secret") + "/s";
  testing::WriteFile(secret, "first", 0600);
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "RUN --mount=type=bind,source=dep.lock,target=/dep.lock "
                                    "--mount=type=secret,id=s cat /dep.lock > /installed\n"},
                                   {"dep.lock", "v1\n"}});
  std::string args = "--cache --cache-dir " + cache + " --secret id=s,src=" + secret + " --destination " +
                     env_->Ref("mounts:key");
  auto first = env_->Build(ctx, args);
  ASSERT_EQ(first.rc, 0) << first.err;
  testing::WriteFile(secret, "second", 0600);  // another secret value: still a hit
  auto hit = env_->Build(ctx, args);
  ASSERT_EQ(hit.rc, 0) << hit.err;
  EXPECT_NE(hit.err.find("cache hit"), std::string::npos) << hit.err;
  EXPECT_EQ(hit.err.find("cache mount"), std::string::npos);
  testing::WriteFile(ctx + "/dep.lock", "v2\n");  // the bound file changed: the step runs again
  auto miss = env_->Build(ctx, args);
  ASSERT_EQ(miss.rc, 0) << miss.err;
  EXPECT_EQ(Stat(env_->Read("mounts:key").rootfs, "installed").content, "v2\n");
}

TEST_F(BuildMountsTest, LockedCacheSerialisesConcurrentBuilds) {
  std::string ctx = env_->Context(
      {{"Dockerfile",
        "FROM @REG@/busybox:latest\n"
        "ARG WHO\n"
        "RUN --mount=type=cache,id=locked-demo,target=/c,sharing=locked "
        "if [ -e /c/busy ]; then echo overlap > /result; else echo alone > /result; fi; "
        "echo $WHO > /c/busy; sleep 1; rm /c/busy; echo $WHO >> /c/log\n"}});
  KilnRun a, b;
  std::thread ta([&] { a = env_->Build(ctx, "--build-arg WHO=a --destination " + env_->Ref("mounts:locked-a")); });
  std::thread tb([&] { b = env_->Build(ctx, "--build-arg WHO=b --destination " + env_->Ref("mounts:locked-b")); });
  ta.join();
  tb.join();
  ASSERT_EQ(a.rc, 0) << a.err;
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_EQ(Stat(env_->Read("mounts:locked-a").rootfs, "result").content, "alone\n");
  EXPECT_EQ(Stat(env_->Read("mounts:locked-b").rootfs, "result").content, "alone\n");
}

// A CI runner starts empty: the cache a build used goes to the registry, and the next build on a
// fresh state directory starts from it.
TEST_F(BuildMountsTest, CacheMountsTravelThroughTheRegistryToAFreshRunner) {
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "ARG N\n"
                                    "RUN --mount=type=cache,id=travels,target=/root/.cache/pkgs "
                                    "ls /root/.cache/pkgs > /seen && echo $N > /root/.cache/pkgs/f$N\n"}});
  auto run = [&](const std::string& state, const std::string& n) {
    return testing::RunKiln(KILN_BINARY, "build --context " + ctx + " --state-dir " + state +
                                             " --insecure --insecure-pull --cache --cache-repo " +
                                             env_->Ref("mount-cache") + " --build-arg N=" + n +
                                             " --destination " + env_->Ref("mounts:travel" + n));
  };
  auto first = run(env_->NewDir("runner-a"), "1");
  ASSERT_EQ(first.rc, 0) << first.err;
  EXPECT_NE(first.err.find("cache mount travels: exported"), std::string::npos) << first.err;
  std::string tags;
  testing::RunShell("skopeo list-tags --tls-verify=false docker://" + env_->Ref("mount-cache"), &tags);
  EXPECT_NE(tags.find("kiln-mount-travels-"), std::string::npos) << tags;

  auto second = run(env_->NewDir("runner-b"), "2");  // a fresh runner: nothing local
  ASSERT_EQ(second.rc, 0) << second.err;
  EXPECT_NE(second.err.find("cache mount travels: imported"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("(id travels): imported"), std::string::npos) << second.err;
  EXPECT_EQ(Stat(env_->Read("mounts:travel2").rootfs, "seen").content, "f1\n");

  std::string third_state = env_->NewDir("runner-c");
  auto third = run(third_state, "3");
  ASSERT_EQ(third.rc, 0) << third.err;
  EXPECT_EQ(Stat(env_->Read("mounts:travel3").rootfs, "seen").content, "f1\nf2\n");  // what build 2 exported
  // The same cache again with nothing new in it: not sent again.
  auto again = testing::RunKiln(KILN_BINARY, "build --context " + ctx + " --state-dir " + third_state +
                                                 " --insecure --insecure-pull --cache --cache-repo " +
                                                 env_->Ref("mount-cache") + " --build-arg N=3 --destination " +
                                                 env_->Ref("mounts:travel3"));
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_NE(again.err.find("cache hit"), std::string::npos) << again.err;  // the RUN itself came from the layer cache
}

TEST_F(BuildMountsTest, SshAgentIsForwardedToTheStepOnly) {
  std::string dir = env_->NewDir("ssh");
  std::string agent = dir + "/agent.sock";
  ASSERT_EQ(testing::RunShell("ssh-keygen -q -t ed25519 -N '' -C kiln-test-key -f " + dir + "/id >/dev/null"), 0);
  std::string pid;
  ASSERT_EQ(testing::RunShell("ssh-agent -a " + agent + " | sed -n 's/^SSH_AGENT_PID=\\([0-9]*\\);.*/\\1/p'", &pid), 0);
  struct Kill {
    std::string pid;
    ~Kill() { testing::RunShell("kill " + pid + " 2>/dev/null"); }
  } kill_agent{pid};
  ASSERT_EQ(testing::RunShell("SSH_AUTH_SOCK=" + agent + " ssh-add -q " + dir + "/id"), 0);

  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "COPY agent-probe /usr/bin/agent-probe\n"
                                    "RUN --mount=type=ssh agent-probe > /default-keys\n"
                                    "RUN --mount=type=ssh,id=deploy,target=/tmp/deploy.sock "
                                    "agent-probe > /deploy-keys && echo $SSH_AUTH_SOCK > /sock-path\n"
                                    "RUN agent-probe > /no-keys 2>&1 || echo no agent > /no-agent\n"}});
  std::filesystem::copy_file(AGENT_PROBE, ctx + "/agent-probe");
  ::chmod((ctx + "/agent-probe").c_str(), 0755);
  for (const TierArgs& tier : kTiers) {
    SCOPED_TRACE(tier.name);
    std::string tag = std::string("mounts:ssh-") + tier.name;
    auto r = Build(ctx, "--ssh default --ssh deploy=" + dir + "/id --destination " + env_->Ref(tag), tier,
                   "SSH_AUTH_SOCK=" + agent);
    ASSERT_EQ(r.rc, 0) << r.err;
    auto img = env_->Read(tag);
    EXPECT_EQ(Stat(img.rootfs, "default-keys").content, "1 key(s)\nkiln-test-key\n");
    EXPECT_EQ(Stat(img.rootfs, "deploy-keys").content.substr(0, 9), "1 key(s)\n");  // kiln's own agent with the key
    // The ptrace tier names the socket by its host path: its tracer does not translate socket addresses.
    if (std::string(tier.name) != "ptrace") {
      EXPECT_EQ(Stat(img.rootfs, "sock-path").content, "/tmp/deploy.sock\n");
    }
    EXPECT_EQ(Stat(img.rootfs, "no-agent").content, "no agent\n");
    EXPECT_EQ(Stat(img.rootfs, "run/buildkit").type, '-');
    EXPECT_EQ(Stat(img.rootfs, "tmp/deploy.sock").type, '-');
  }
}

// kiln as an unprivileged user: the rootless tier, and the ptrace tier it falls back to where user
// namespaces are not allowed. Cache mounts and secrets work the same.
TEST_F(BuildMountsTest, AsAnUnprivilegedUser) {
  std::string secret = env_->NewDir("nobody-secret") + "/s";
  testing::WriteFile(secret, "nobody-secret-value", 0644);
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "ARG N\n"
                                    "ARG RUNAS=0:0\n"
                                    "USER $RUNAS\n"
                                    "RUN --mount=type=cache,target=/cache --mount=type=secret,id=s,required "
                                    "ls /cache > /seen && touch /cache/f$N && cat /run/secrets/s > /secret-len && "
                                    "wc -c < /run/secrets/s > /secret-len\n"}});
  for (const char* sandbox : {"rootless", "ptrace"}) {
    SCOPED_TRACE(sandbox);
    std::string state = env_->NewDir(std::string("nobody-mounts-") + sandbox);
    ASSERT_EQ(::chown(state.c_str(), 65534, 65534), 0);
    for (const char* n : {"1", "2"}) {
      std::string tag = std::string("mounts:nobody-") + sandbox + n;
      auto r = testing::RunKiln(KILN_BINARY,
                                "build --context " + ctx + " --state-dir " + state + " --insecure --insecure-pull " +
                                    "--sandbox " + sandbox + " --secret id=s,src=" + secret + " --build-arg N=" + n +
                                    // The ptrace tier runs steps only as kiln's own ids.
                                    (std::string(sandbox) == "ptrace" ? " --build-arg RUNAS=65534:65534" : "") +
                                    " --destination " + env_->Ref(tag),
                                "", "setpriv --reuid=65534 --regid=65534 --clear-groups");
      ASSERT_EQ(r.rc, 0) << r.err;
      auto img = env_->Read(tag);
      EXPECT_EQ(Stat(img.rootfs, "seen").content, std::string(n) == "1" ? "" : "f1\n");
      EXPECT_EQ(Stat(img.rootfs, "secret-len").content, "19\n");
      EXPECT_EQ(Stat(img.rootfs, "cache").type, '-');
      EXPECT_EQ(Stat(img.rootfs, "run/secrets").type, '-');
    }
  }
}

// The chroot tier stages a secret into the rootfs for the step. kiln killed mid-step (SIGKILL: no
// clean-up of its own) leaves it in its work directory; the next build on that state directory
// removes it before doing anything else.
TEST_F(BuildMountsTest, ASecretStagedByAKilledBuildIsGoneAtTheNextStart) {
  const std::string value = "kiln-killed-secret-5e2d";
  std::string secret = env_->NewDir("killed-secret") + "/s";
  testing::WriteFile(secret, value, 0600);
  std::string state = env_->NewDir("killed-state");
  std::string ctx = env_->Context({{"Dockerfile",
                                    "FROM @REG@/busybox:latest\n"
                                    "RUN --mount=type=secret,id=s touch /started && sleep 611\n"}});
  std::string log = env_->NewDir("killed-log") + "/err";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string cmd = "exec setpriv --bounding-set -sys_admin --inh-caps -sys_admin " + std::string(KILN_BINARY) +
                      " build --sandbox chroot --context " + ctx + " --state-dir " + state +
                      " --insecure-pull --no-push --secret id=s,src=" + secret + " >/dev/null 2>" + log;
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    ::_exit(127);
  }
  auto hits = [&] {
    std::string out;
    testing::RunShell("grep -rla -- '" + value + "' " + state + " ; true", &out);
    return out;
  };
  bool started = false;
  for (int i = 0; i < 600 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(
             state + "/work", std::filesystem::directory_options::skip_permission_denied, ec)) {
      if (e.path().filename() == "started") started = true;
    }
    if (::waitpid(pid, nullptr, WNOHANG) == pid) break;
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_TRUE(started) << testing::ReadFile(log);
  EXPECT_NE(hits(), "");  // the staged copy is there: kiln had no chance to remove it
  testing::RunShell("pkill -f 'sleep 611' ; true");

  std::string next = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\nRUN true\n"}});
  auto r = testing::RunKiln(KILN_BINARY, "build --context " + next + " --state-dir " + state +
                                             " --insecure-pull --no-push");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("removed 1 work directories left by killed builds"), std::string::npos) << r.err;
  EXPECT_EQ(hits(), "");
}

TEST_F(BuildMountsTest, BadMountsAreErrorsAtTheirLine) {
  struct Case {
    std::string run;
    std::string message;
  };
  const Case cases[] = {
      {"RUN --mount=type=volume,target=/x true", "unsupported mount type \"volume\""},
      {"RUN --mount=type=cache,target=/x,colour=red true", "unexpected key 'colour'"},
      {"RUN --mount=type=bind,source=src,target=/ true", "the target cannot be /"},
      {"RUN --mount=type=cache true", "target= is required"},
      {"RUN --mount=type=secret,id=missing,required true", "secret missing is required by this RUN but was not given"},
      {"RUN --mount=type=bind,source=nope,target=/n true", "--mount source nope does not exist in the build context"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.run);
    std::string ctx = env_->Context({{"Dockerfile", "FROM @REG@/busybox:latest\n" + c.run + "\n"}, {"src/a", "a"}});
    auto r = env_->Build(ctx, "--no-push");
    EXPECT_NE(r.rc, 0);
    EXPECT_NE(r.err.find("Dockerfile:2:1"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace kiln
