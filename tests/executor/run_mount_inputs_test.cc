// The inputs of RUN --mount that live outside the sandbox: --secret and --ssh flags, and the cache
// mount directories (keys per id and platform, locks, sharing modes).
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "executor/cache/mount_cache.h"
#include "executor/steps/secrets.h"
#include "executor/steps/ssh_forward.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

TEST(SecretFlagTest, BuildKitForms) {
  std::map<std::string, std::string> env = {{"TOKEN", "t"}};
  auto file = ParseSecretFlag("id=npm,src=/run/npmrc", env);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->id, "npm");
  EXPECT_EQ(file->kind, SecretSource::Kind::kFile);
  EXPECT_EQ(file->from, "/run/npmrc");
  auto source = ParseSecretFlag("id=a,source=/x,type=file", env);
  ASSERT_TRUE(source.ok());
  EXPECT_EQ(source->from, "/x");
  auto by_env = ParseSecretFlag("id=tok,env=TOKEN", env);
  ASSERT_TRUE(by_env.ok());
  EXPECT_EQ(by_env->kind, SecretSource::Kind::kEnv);
  EXPECT_EQ(by_env->from, "TOKEN");
  // Only an id: the variable of that name when it is set, else the file of that name.
  auto implicit_env = ParseSecretFlag("id=TOKEN", env);
  ASSERT_TRUE(implicit_env.ok());
  EXPECT_EQ(implicit_env->kind, SecretSource::Kind::kEnv);
  auto implicit_file = ParseSecretFlag("id=creds.json", env);
  ASSERT_TRUE(implicit_file.ok());
  EXPECT_EQ(implicit_file->kind, SecretSource::Kind::kFile);
  EXPECT_EQ(implicit_file->from, "creds.json");
  // No id: taken from the file's name.
  auto no_id = ParseSecretFlag("src=/home/me/.aws/credentials", env);
  ASSERT_TRUE(no_id.ok());
  EXPECT_EQ(no_id->id, "credentials");

  for (const char* bad : {"", "id", "id=x,colour=red", "id=x,type=vault", "id=x,type=file,env=Y", "id=x,src=a,env=B,type=env"}) {
    EXPECT_FALSE(ParseSecretFlag(bad, env).ok()) << bad;
  }
}

TEST(SecretStoreTest, ReadsOnDemandAndValidatesUpFront) {
  TempDir dir;
  WriteFile(dir.Sub("s"), "file-value", 0600);
  SecretStore store({{"f", SecretSource::Kind::kFile, dir.Sub("s")}, {"e", SecretSource::Kind::kEnv, "VAR"}},
                    {{"VAR", "env-value"}});
  EXPECT_TRUE(store.Validate().ok());
  EXPECT_EQ(*store.Read("f"), "file-value");
  EXPECT_EQ(*store.Read("e"), "env-value");
  EXPECT_EQ(store.Read("other").status().code(), ErrorCode::kNotFound);
  SecretStore missing({{"f", SecretSource::Kind::kFile, dir.Sub("nope")}}, {});
  Status v = missing.Validate();
  EXPECT_FALSE(v.ok());
  EXPECT_NE(v.message().find("--secret id=f"), std::string::npos) << v.message();
  SecretStore unset({{"e", SecretSource::Kind::kEnv, "UNSET_VAR"}}, {});
  EXPECT_FALSE(unset.Validate().ok());
}

TEST(SecretStoreTest, PrivateCopyHasTheAskedMode) {
  TempDir dir;
  ASSERT_TRUE(WriteSecretFile(dir.Sub("copy"), "v", 0440, std::nullopt, std::nullopt).ok());
  struct stat st;
  ASSERT_EQ(::stat(dir.Sub("copy").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0440u);
  EXPECT_EQ(ReadFile(dir.Sub("copy")), "v");
  EXPECT_FALSE(WriteSecretFile(dir.Sub("copy"), "again", 0400, std::nullopt, std::nullopt).ok());  // never replaced
}

TEST(SshFlagTest, Forms) {
  auto d = ParseSshFlag("default");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->id, "default");
  EXPECT_TRUE(d->paths.empty());
  auto keys = ParseSshFlag("deploy=/k/a,/k/b");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->id, "deploy");
  EXPECT_EQ(keys->paths, (std::vector<std::string>{"/k/a", "/k/b"}));
  EXPECT_FALSE(ParseSshFlag("").ok());
  EXPECT_FALSE(ParseSshFlag("=x").ok());
  EXPECT_FALSE(ParseSshFlag("id=").ok());
}

TEST(SshAgentsTest, MissingAgentIsAClearError) {
  SshAgents agents({{"default", {}}}, {});
  auto r = agents.AgentSocket("default", "/tmp");
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("SSH_AUTH_SOCK is not set"), std::string::npos);
  EXPECT_FALSE(agents.Has("deploy"));
}

CacheMountRequest Request(const std::string& id, const Platform& platform,
                          CacheSharing sharing = CacheSharing::kShared) {
  CacheMountRequest r;
  r.id = id;
  r.platform = platform;
  r.sharing = sharing;
  return r;
}

TEST(CacheMountStoreTest, OneDirectoryPerIdAndPlatformThatPersists) {
  TempDir dir;
  CacheMountStore store(dir.path());
  Platform amd64 = Platform::Parse("linux/amd64").value(), arm64 = Platform::Parse("linux/arm64/v8").value();
  {
    auto a = store.Acquire(Request("apt", amd64));
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_TRUE(a->created());
    WriteFile(a->dir() + "/pkg", "amd64");
  }
  auto again = store.Acquire(Request("apt", amd64));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created());
  EXPECT_EQ(ReadFile(again->dir() + "/pkg"), "amd64");
  auto other = store.Acquire(Request("apt", arm64));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->dir(), again->dir());
  EXPECT_NE(CacheMountStore::KeyOf("/root/.cache", amd64).find("root_.cache-"), std::string::npos)
      << CacheMountStore::KeyOf("/root/.cache", amd64);
  EXPECT_EQ(store.List().size(), 2u);
}

TEST(CacheMountStoreTest, ModeOwnerAndSeedApplyToANewDirectoryOnly) {
  TempDir dir;
  CacheMountStore store(dir.path());
  CacheMountRequest req = Request("seeded", Platform::Parse("linux/amd64").value());
  req.mode = 0700;
  auto a = store.Acquire(req, [](const std::string& d) {
    WriteFile(d + "/from-stage", "seed");
    return OkStatus();
  });
  ASSERT_TRUE(a.ok());
  struct stat st;
  ASSERT_EQ(::stat(a->dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(ReadFile(a->dir() + "/from-stage"), "seed");
}

TEST(CacheMountStoreTest, LockedWaitsAndPrivateTakesAFreshDirectory) {
  TempDir dir;
  CacheMountStore store(dir.path());
  Platform p = Platform::Parse("linux/amd64").value();
  auto held = store.Acquire(Request("busy", p, CacheSharing::kLocked));
  ASSERT_TRUE(held.ok());

  auto priv = store.Acquire(Request("busy", p, CacheSharing::kPrivate));
  ASSERT_TRUE(priv.ok());
  EXPECT_TRUE(priv->temporary());
  EXPECT_NE(priv->dir(), held->dir());
  std::string temp = priv->dir();
  priv = CacheMountLease();  // released: the temporary directory goes
  EXPECT_NE(::access(temp.c_str(), F_OK), 0);

  std::atomic<bool> got{false};
  std::thread waiter([&] {
    auto w = store.Acquire(Request("busy", p, CacheSharing::kShared));
    got = w.ok();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(got.load());  // still waiting for the holder
  held = CacheMountLease();
  waiter.join();
  EXPECT_TRUE(got.load());
}

}  // namespace
}  // namespace kiln::executor
