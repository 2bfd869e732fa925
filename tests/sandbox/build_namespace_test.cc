// RunInUserNamespace: the body runs as uid 0 of a new user namespace with the mapping installed, its
// exit code (or signal) comes back, and a mapping the kernel refuses fails before the body runs.
#include "executor/sandbox/build_namespace.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace kiln::sandbox {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool UserNamespacesAllowed() { return ReadFile("/proc/sys/user/max_user_namespaces").rfind("0", 0) != 0; }

TEST(BuildNamespaceTest, BodyRunsAsRootOfTheMappedNamespace) {
  if (!UserNamespacesAllowed()) GTEST_SKIP() << "no user namespaces here";
  IdMapPlan single = SingleIdMapping();  // 0 → our own ids
  Result<int> rc = RunInUserNamespace(single, [&] {
    if (::getuid() != 0 || ::geteuid() != 0 || ::getgid() != 0) return 10;
    Result<std::vector<IdRange>> m = ParseProcIdMap(ReadFile("/proc/self/uid_map"));
    if (!m.ok() || m->size() != 1 || (*m)[0] != single.uids[0]) return 11;
    if (ReadFile("/proc/self/setgroups").rfind("deny", 0) != 0) return 12;  // single: setgroups denied
    // The identity plan kiln makes inside (for RUN's nested namespaces) knows setgroups is denied.
    IdMapPlan inner = PlanIdMapping();
    if (inner.kind != IdMapPlan::Kind::kIdentity || inner.setgroups_allowed()) return 13;
    return 7;
  });
  ASSERT_TRUE(rc.ok()) << rc.status().message();
  EXPECT_EQ(*rc, 7);
}

TEST(BuildNamespaceTest, ASignalComesBackAs128PlusIt) {
  if (!UserNamespacesAllowed()) GTEST_SKIP() << "no user namespaces here";
  Result<int> rc = RunInUserNamespace(SingleIdMapping(), [] {
    ::raise(SIGKILL);
    return 0;
  });
  ASSERT_TRUE(rc.ok()) << rc.status().message();
  EXPECT_EQ(*rc, 128 + SIGKILL);
}

TEST(BuildNamespaceTest, ARefusedMappingFailsBeforeTheBody) {
  if (!UserNamespacesAllowed()) GTEST_SKIP() << "no user namespaces here";
  IdMapPlan bad = SingleIdMapping();
  bad.uids = {{0, 0, 1}, {0, 1, 1}};  // overlapping: the kernel refuses it
  Result<int> rc = RunInUserNamespace(bad, [] { return 0; });  // had it run, rc would be 0
  EXPECT_FALSE(rc.ok());
  EXPECT_NE(rc.status().message().find("build's user namespace"), std::string::npos) << rc.status().message();
}

}  // namespace
}  // namespace kiln::sandbox
