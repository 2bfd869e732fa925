// The real sandbox, tiers 1 (user namespace), 2 (chroot) and 3 (ptrace) side by side, run as the
// test's user (root on the CI machine). The unprivileged variants are in privilege_drop_test.cc.
#include "executor/sandbox/linux_command_runner.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/sandbox/sandbox_testing.h"
#include "tests/testing/temp_dir.h"

namespace kiln::sandbox {
namespace {

using kiln::testing::ReadFile;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;
using testing::ListTree;
using testing::RecordingWriter;

struct Ran {
  Status status;
  RunResult result;
  std::string output;
};

class SandboxTest : public ::testing::TestWithParam<LinuxCommandRunnerOptions::Tier> {
 protected:
  void SetUp() override {
    if (!testing::HaveBusybox()) GTEST_SKIP() << "needs Debian's busybox-static (/bin/busybox)";
    LinuxCommandRunnerOptions o;
    o.tier = GetParam();
    if (o.tier == LinuxCommandRunnerOptions::Tier::kChroot && ::geteuid() != 0) {
      GTEST_SKIP() << "the chroot tier needs root";
    }
    o.tracer_binary = KILN_BINARY;
    auto r = LinuxCommandRunner::Create(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    runner_ = std::move(r).value();
    rootfs_ = dir_.Sub("rootfs");
    testing::MakeBusyboxRootfs(rootfs_);
  }

  bool tier1() const { return GetParam() == LinuxCommandRunnerOptions::Tier::kUserNamespace; }
  bool ptrace() const { return GetParam() == LinuxCommandRunnerOptions::Tier::kPtrace; }

  RunSpec Spec(std::vector<std::string> argv) {
    RunSpec s;
    s.rootfs = rootfs_;
    s.argv = std::move(argv);
    s.env = {"PATH=/bin"};
    return s;
  }

  Ran Run(RunSpec spec) {
    RecordingWriter w;
    spec.output = &w;
    auto r = runner_->Run(spec);
    Ran out;
    out.status = r.status();
    if (r.ok()) out.result = *r;
    out.output = w.data();
    return out;
  }

  Ran Sh(const std::string& script) { return Run(Spec({"/bin/sh", "-c", script})); }

  TempDir dir_;
  std::string rootfs_;
  std::unique_ptr<LinuxCommandRunner> runner_;
};

TEST_P(SandboxTest, ExitCodes) {
  Ran ok = Sh("exit 0");
  ASSERT_TRUE(ok.status.ok()) << ok.status.ToString();
  EXPECT_TRUE(ok.result.success());
  Ran three = Sh("echo failing; exit 3");
  ASSERT_TRUE(three.status.ok()) << three.status.ToString();
  EXPECT_EQ(three.result.exit_code, 3);
  EXPECT_EQ(three.result.signal, 0);
  EXPECT_EQ(three.result.Describe(), "exit code 3");
  EXPECT_EQ(three.output, "failing\n");
}

TEST_P(SandboxTest, KilledBySignal) {
  Ran r = Sh("kill -TERM $$; sleep 5");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.result.signal, SIGTERM);
  EXPECT_EQ(r.result.exit_code, 128 + SIGTERM);
  EXPECT_FALSE(r.result.success());
}

TEST_P(SandboxTest, StdoutAndStderrAreStreamedAsProduced) {
  RunSpec spec = Spec({"/bin/sh", "-c", "echo first; sleep 0.4; echo second >&2"});
  RecordingWriter w;
  spec.output = &w;
  auto start = std::chrono::steady_clock::now();
  auto r = runner_->Run(spec);
  auto end = std::chrono::steady_clock::now();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(w.data(), "first\nsecond\n");
  ASSERT_GE(w.arrivals().size(), 2u);
  // "first" reached the writer while the step was still sleeping, not when it ended.
  EXPECT_LT(w.arrivals().front().first - start, (end - start) - std::chrono::milliseconds(250));
  EXPECT_GE(r->duration, std::chrono::milliseconds(400));
}

TEST_P(SandboxTest, EnvironmentIsExactlyTheSpec) {
  ::setenv("KILN_TEST_SECRET", "hunter2", 1);
  RunSpec spec = Spec({"/bin/env"});
  spec.env = {"PATH=/bin", "A=1", "B=with space", "EMPTY="};
  Ran r = Run(spec);
  ::unsetenv("KILN_TEST_SECRET");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  std::vector<std::string> lines;
  std::istringstream in(r.output);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"A=1", "B=with space", "EMPTY=", "PATH=/bin"}));
}

TEST_P(SandboxTest, ArgvZeroIsLookedUpInTheStepsPath) {
  WriteFile(rootfs_ + "/opt/tools/hello", "#!/bin/sh\necho hello from $0\n", 0755);
  RunSpec spec = Spec({"hello"});
  spec.env = {"PATH=/nowhere:/opt/tools"};
  Ran r = Run(spec);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "hello from /opt/tools/hello\n");

  Ran missing = Run(Spec({"no-such-tool"}));
  EXPECT_EQ(missing.status.code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status.message().find("\"no-such-tool\": executable file not found in $PATH"), std::string::npos)
      << missing.status.message();
}

TEST_P(SandboxTest, WorkingDirectory) {
  ::mkdir((rootfs_ + "/work").c_str(), 0755);
  RunSpec spec = Spec({"/bin/sh", "-c", "pwd"});
  spec.workdir = "/work";
  Ran r = Run(spec);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "/work\n");

  spec.workdir = "/does/not/exist";
  Ran missing = Run(spec);
  EXPECT_EQ(missing.status.code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status.message().find("working directory /does/not/exist does not exist"), std::string::npos)
      << missing.status.message();
}

TEST_P(SandboxTest, UserGroupAndSupplementaryGroups) {
  if (::geteuid() != 0) GTEST_SKIP() << "other users need root or subordinate ids";
  if (ptrace()) GTEST_SKIP() << "the ptrace tier runs steps as kiln's own ids only (PtraceTest covers the refusal)";
  RunSpec spec = Spec({"/bin/sh", "-c", "id -u; id -g; id -G"});
  spec.uid = 1234;
  spec.gid = 2345;
  spec.supplementary_groups = {2345, 27, 100};
  Ran r = Run(spec);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "1234\n2345\n2345 27 100\n");

  RunSpec root = Spec({"/bin/sh", "-c", "id -u; id -G"});
  Ran rr = Run(root);
  ASSERT_TRUE(rr.status.ok()) << rr.status.ToString();
  EXPECT_EQ(rr.output, "0\n0\n");  // kiln's own supplementary groups are not inherited
}

TEST_P(SandboxTest, ProcAndDev) {
  Ran devnull = Sh("echo gone > /dev/null && cat /dev/null | wc -c && head -c 4 /dev/zero | wc -c");
  ASSERT_TRUE(devnull.status.ok()) << devnull.status.ToString();
  EXPECT_EQ(devnull.output, "0\n4\n");
  Ran proc = Sh("cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$; ls /proc | grep -c '^[0-9]'");
  ASSERT_TRUE(proc.status.ok()) << proc.status.ToString();
  if (tier1()) {
    // A pid namespace of its own: the shell is pid 2 under kiln's supervisor, and only a handful of
    // processes exist (supervisor, sh, ls, grep...), not the host's.
    std::istringstream in(proc.output);
    std::string cmdline, pid, count;
    std::getline(in, cmdline);
    std::getline(in, pid);
    std::getline(in, count);
    EXPECT_EQ(pid, "2");
    EXPECT_LE(std::stoi(count), 6);
  } else if (ptrace()) {
    // The host's /proc, as a container runtime would mount it: the shell is a host process.
    EXPECT_EQ(proc.result.exit_code, 0) << proc.output;
    EXPECT_GT(std::stoi(proc.output.substr(proc.output.rfind('\n', proc.output.size() - 2) + 1)), 0) << proc.output;
  } else {
    EXPECT_NE(proc.result.exit_code, 0) << "tier 2 has no /proc: " << proc.output;
  }
}

TEST_P(SandboxTest, ResolvConfAndHostsComeFromTheHost) {
  Ran r = Sh("cat /etc/resolv.conf; echo ---; cat /etc/hosts");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  std::string expected = ReadFile("/etc/resolv.conf") + "---\n" + ReadFile("/etc/hosts");
  EXPECT_EQ(r.output, expected);
}

TEST_P(SandboxTest, HostFilesOutsideTheRootfsAreInvisible) {
  WriteFile(dir_.Sub("sentinel"), "host secret");
  WriteFile(rootfs_ + "/inside", "rootfs file");
  Ran r = Sh("cat /inside; echo; cat " + dir_.Sub("sentinel") + " 2>&1 || echo unreachable; ls /");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_NE(r.output.find("rootfs file\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("unreachable"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("host secret"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("work"), std::string::npos) << "host's / is visible: " << r.output;
}

TEST_P(SandboxTest, NoDescriptorsLeak) {
  int leaky = ::open("/etc/hostname", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaky, 3);
  // Tier 2 has no /proc of its own; count descriptors the portable way there.
  Ran r = tier1() ? Sh("ls /proc/self/fd | tr '\\n' ' '")
                  : Sh("for fd in 3 4 5 6 7 8 9 " + std::to_string(leaky) +
                       "; do (: <&$fd) 2>/dev/null && echo open:$fd; done; echo done");
  ::close(leaky);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  if (tier1()) {
    EXPECT_EQ(r.output, "0 1 2 3 ");  // 3 is ls's own handle on the directory it lists
  } else {
    EXPECT_EQ(r.output, "done\n");
  }
}

TEST_P(SandboxTest, NothingIsLeftBehindInTheRootfs) {
  auto before = ListTree(rootfs_);
  ASSERT_EQ(before.count("etc"), 0u);  // a rootfs without /etc, /proc or /dev: all created for the run
  Ran r = Sh("echo made > /made-by-step; ls /dev /etc /proc > /dev/null");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  auto after = ListTree(rootfs_);
  ASSERT_EQ(after.count("made-by-step"), 1u);
  after.erase("made-by-step");
  // The root directory's mtime legitimately moved: the step created a file in it.
  before.erase(".");
  after.erase(".");
  EXPECT_EQ(before, after);

  // With nothing written by the step, even the root directory's times come back.
  auto before2 = ListTree(rootfs_);
  Ran r2 = Sh("cat /etc/resolv.conf > /dev/null");
  ASSERT_TRUE(r2.status.ok()) << r2.status.ToString();
  EXPECT_EQ(before2, ListTree(rootfs_));
}

TEST_P(SandboxTest, ExistingEtcFilesAreKeptExactly) {
  WriteFile(rootfs_ + "/etc/resolv.conf", "nameserver 192.0.2.1\n", 0600);
  WriteFile(rootfs_ + "/etc/hosts", "192.0.2.2 image-host\n", 0644);
  struct timespec old[2] = {{1000, 0}, {2000, 500}};
  ::utimensat(AT_FDCWD, (rootfs_ + "/etc/resolv.conf").c_str(), old, 0);
  auto before = ListTree(rootfs_);
  Ran r = Sh("cat /etc/resolv.conf; echo 'nameserver 203.0.113.9' 2>/dev/null > /etc/resolv.conf; true");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, ReadFile("/etc/resolv.conf"));  // the step saw the host's
  EXPECT_EQ(before, ListTree(rootfs_));               // and the image's file is back, inode, times and all
}

TEST_P(SandboxTest, EtcAsSymlinkIsNeverFollowedOutOfTheRootfs) {
  WriteFile(dir_.Sub("outside/hosts"), "outside\n");
  ::symlink(dir_.Sub("outside").c_str(), (rootfs_ + "/etc").c_str());
  Ran r = Sh("true");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(ReadFile(dir_.Sub("outside/hosts")), "outside\n");
  std::string out;
  kiln::testing::RunShell("ls -A " + dir_.Sub("outside"), &out);
  EXPECT_EQ(out, "hosts\n");
}

TEST_P(SandboxTest, BackgroundProcessesDoNotHangTheRun) {
  auto start = std::chrono::steady_clock::now();
  Ran r = Sh("sleep 30 & echo started");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "started\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_P(SandboxTest, RefusesTheHostRootAndProtectedPaths) {
  RunSpec spec = Spec({"/bin/true"});
  spec.rootfs = "/";
  EXPECT_EQ(runner_->Run(spec).status().code(), ErrorCode::kInvalidArgument);

  LinuxCommandRunnerOptions o;
  o.tier = GetParam();
  o.protected_paths = {rootfs_ + "/kiln-state"};
  ::mkdir((rootfs_ + "/kiln-state").c_str(), 0700);
  auto guarded = LinuxCommandRunner::Create(o);
  ASSERT_TRUE(guarded.ok());
  auto r = (*guarded)->Run(Spec({"/bin/true"}));
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("kiln-state lies inside the rootfs"), std::string::npos) << r.status().message();
}

TEST_P(SandboxTest, RootStepCannotChrootOut) {
  if (tier1()) GTEST_SKIP() << "tier 1 pivots the root; chroot there cannot reach the host";
  if (ptrace()) GTEST_SKIP() << "the ptrace tier is for a kiln without privileges; forced as root, its steps are root";
  Ran r = Sh("mkdir -p /x && chroot /x /bin/true; echo rc=$?");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_NE(r.output.find("rc=1"), std::string::npos) << r.output;  // EPERM: CAP_SYS_CHROOT was dropped
}

// Parallel stages: two stages' steps run at once on one runner while other threads of kiln allocate,
// start threads and hold locks (layer uploads, pulls). The supervisor forked at any instant must
// neither deadlock on a lock another thread held (raw clone in tier 1) nor keep the other run's pipes
// open (its output would not end until this run's did). 2 x 12 runs, each must end well in time.
TEST_P(SandboxTest, ConcurrentRunsWhileOtherThreadsAllocate) {
  std::string second = dir_.Sub("rootfs2");
  testing::MakeBusyboxRootfs(second);
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int t = 0; t < 3; ++t) {
    busy.emplace_back([&stop, t] {
      std::vector<std::string> keep(64);
      for (size_t i = 0; !stop; ++i) {
        keep[i % keep.size()] = std::string(16 + (i * 7919 + t) % 70000, 'x');  // malloc arenas busy
        if (i % 512 == 0) std::thread([] {}).join();                              // the thread list
      }
    });
  }
  auto runs = [this](std::string rootfs, std::string word) {
    std::string problems;
    for (int i = 0; i < 12; ++i) {
      RunSpec s = Spec({"/bin/sh", "-c", "echo " + word + " " + std::to_string(i)});
      s.rootfs = rootfs;
      RecordingWriter w;
      s.output = &w;
      auto start = std::chrono::steady_clock::now();
      auto r = runner_->Run(s);
      auto took = std::chrono::steady_clock::now() - start;
      if (!r.ok()) problems += r.status().ToString() + "\n";
      if (w.data() != word + " " + std::to_string(i) + "\n") problems += "output: " + w.data() + "\n";
      if (took > std::chrono::seconds(5)) problems += "run " + std::to_string(i) + " took over 5s\n";
    }
    return problems;
  };
  auto a = std::async(std::launch::async, runs, rootfs_, "first");
  auto b = std::async(std::launch::async, runs, second, "second");
  bool done = a.wait_for(std::chrono::seconds(90)) == std::future_status::ready &&
              b.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  if (!done) {
    ADD_FAILURE() << "concurrent runs hung";
    std::_Exit(1);  // the hung run cannot be joined
  }
  stop = true;
  for (std::thread& t : busy) t.join();
  EXPECT_EQ(a.get(), "");
  EXPECT_EQ(b.get(), "");
}

INSTANTIATE_TEST_SUITE_P(Tiers, SandboxTest,
                         ::testing::Values(LinuxCommandRunnerOptions::Tier::kUserNamespace,
                                           LinuxCommandRunnerOptions::Tier::kChroot,
                                           LinuxCommandRunnerOptions::Tier::kPtrace),
                         [](const auto& info) {
                           switch (info.param) {
                             case LinuxCommandRunnerOptions::Tier::kUserNamespace: return "UserNamespace";
                             case LinuxCommandRunnerOptions::Tier::kChroot: return "Chroot";
                             default: return "Ptrace";
                           }
                         });

// Tier 3 only: what differs from the other tiers.
class PtraceTest : public SandboxTest {};

TEST_P(PtraceTest, AbsoluteSymlinksResolveInsideTheRootfs) {
  // Debian's alternatives: absolute links that, followed on the host, would reach the host's files.
  WriteFile(dir_.Sub("host-only/tool"), "#!/bin/sh\necho host tool\n", 0755);
  WriteFile(rootfs_ + "/opt/real/tool", "#!/bin/sh\necho rootfs tool\n", 0755);
  ::mkdir((rootfs_ + "/etc").c_str(), 0755);
  ::mkdir((rootfs_ + "/etc/alternatives").c_str(), 0755);
  ::symlink("/opt/real/tool", (rootfs_ + "/etc/alternatives/tool").c_str());
  ::symlink("/etc/alternatives/tool", (rootfs_ + "/bin/tool").c_str());
  // A link whose target exists on the host only: inside the rootfs it dangles.
  ::symlink(dir_.Sub("host-only/tool").c_str(), (rootfs_ + "/bin/hosttool").c_str());
  Ran r = Sh("tool; readlink /bin/tool; cat /bin/hosttool 2>/dev/null || echo dangling; cd /bin && pwd && ls ../opt");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "rootfs tool\n/etc/alternatives/tool\ndangling\n/bin\nreal\n");
}

TEST_P(PtraceTest, ScriptsAndRelativePaths) {
  WriteFile(rootfs_ + "/work/run.sh", "#!/bin/sh -e\necho \"$0 [$*]\"; cat ../data/x\n", 0755);
  WriteFile(rootfs_ + "/data/x", "data\n");
  WriteFile(rootfs_ + "/work/not-exec.sh", "#!/bin/sh\necho ran\n", 0644);
  RunSpec spec = Spec({"/bin/sh", "-c", "./run.sh a b && ./not-exec.sh; echo rc=$?; /bin/sh -c 'cd .. && pwd'"});
  spec.workdir = "/work";
  Ran r = Run(spec);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_NE(r.output.find("./run.sh [a b]\ndata\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rc=126"), std::string::npos) << r.output;  // no exec bit: EACCES, as the kernel says
  EXPECT_NE(r.output.find("\n/\n"), std::string::npos) << r.output;
}

TEST_P(PtraceTest, StepsRunOnlyAsKilnsOwnIds) {
  RunSpec spec = Spec({"/bin/sh", "-c", "id -u"});
  spec.uid = ::geteuid() + 1;
  spec.gid = ::getegid();
  Ran r = Run(spec);
  EXPECT_EQ(r.status.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status.message().find("runs steps only as kiln's own uid " + std::to_string(::geteuid())), std::string::npos)
      << r.status.message();
  RunSpec own = Spec({"/bin/sh", "-c", "id -u"});
  own.uid = ::geteuid();
  own.gid = ::getegid();
  Ran ok = Run(own);
  ASSERT_TRUE(ok.status.ok()) << ok.status.ToString();
  EXPECT_EQ(ok.output, std::to_string(::geteuid()) + "\n");
  EXPECT_TRUE(ok.result.creator_ids_not_on_disk);
}

TEST_P(PtraceTest, OtherProcessesEnvironmentIsOutOfReach) {
  // The step runs as kiln's uid; the CI job's shell of that uid holds CI_REGISTRY_PASSWORD in its
  // environment. This test process stands in for it.
  std::string me = std::to_string(::getpid());
  Ran r = Sh("cat /proc/" + me + "/environ >/dev/null 2>&1 && echo environ-readable || echo environ-denied; "
             "ls /proc/" + me + "/fd >/dev/null 2>&1 && echo fd-readable || echo fd-denied; "
             "ls /proc/" + me + "/task/" + me + "/cwd/ >/dev/null 2>&1 && echo cwd-readable || echo cwd-denied; "
             "grep -c '^Name:' /proc/" + me + "/status; "
             "grep -c PATH=/bin /proc/self/environ; "
             "sh -c 'grep -c PATH=/bin /proc/$PPID/environ'; true");  // the parent is the step's own shell
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "environ-denied\nfd-denied\ncwd-denied\n1\n1\n1\n");
}

// As root, the ptrace tier has no namespace to confine the step: it keeps only a container root's
// default capabilities (Docker's and runc's set: no SYS_ADMIN, SYS_MODULE, SYS_RAWIO, DAC_READ_SEARCH…).
TEST_P(PtraceTest, ARootStepHasAContainersDefaultCapabilities) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Ran r = Sh("grep -E '^Cap(Eff|Prm|Bnd|Amb):' /proc/self/status");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output,
            "CapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n");
}

TEST_P(PtraceTest, ThreadsRewritePathsConcurrently) {
  WriteFile(rootfs_ + "/t", ReadFile(THREADS_HELPER), 0755);
  for (int i = 0; i < 4; ++i) WriteFile(rootfs_ + "/data/f" + std::to_string(i), "f" + std::to_string(i) + "\n");
  for (int round = 0; round < 3; ++round) {
    Ran r = Run(Spec({"/t"}));
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.output, "bad=0\n");
    EXPECT_TRUE(r.result.success());
  }
}

INSTANTIATE_TEST_SUITE_P(Tier3, PtraceTest, ::testing::Values(LinuxCommandRunnerOptions::Tier::kPtrace));

// Tier 1 only.
class UserNamespaceTest : public SandboxTest {};

TEST_P(UserNamespaceTest, HostnameAndNetworkNone) {
  RunSpec spec = Spec({"/bin/sh", "-c", "hostname; cat /proc/net/dev | grep -c :"});
  spec.hostname = "kiln-build";
  spec.network = NetworkMode::kNone;
  Ran r = Run(spec);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "kiln-build\n1\n");  // only lo
  Ran lo = Run([&] {
    RunSpec s = Spec({"/bin/sh", "-c", "ifconfig lo | grep -c UP"});
    s.network = NetworkMode::kNone;
    return s;
  }());
  ASSERT_TRUE(lo.status.ok()) << lo.status.ToString();
  EXPECT_EQ(lo.output, "1\n");
}

TEST_P(UserNamespaceTest, SupervisorIsPidOneAndNotReadable) {
  Ran r = Sh("readlink /proc/1/exe || echo hidden; cat /proc/1/environ > /dev/null 2>&1 || echo environ-hidden");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.output, "hidden\nenviron-hidden\n");
}

TEST_P(UserNamespaceTest, DescribeTierNamesTheMapping) {
  EXPECT_NE(runner_->DescribeTier().find("rootless (user namespace)"), std::string::npos) << runner_->DescribeTier();
}

INSTANTIATE_TEST_SUITE_P(Tier1, UserNamespaceTest,
                         ::testing::Values(LinuxCommandRunnerOptions::Tier::kUserNamespace));

TEST(InPlaceTest, RunsInKilnsOwnFilesystem) {
  LinuxCommandRunnerOptions o;
  o.tier = LinuxCommandRunnerOptions::Tier::kInPlace;
  auto runner = LinuxCommandRunner::Create(o);
  ASSERT_TRUE(runner.ok());
  RunSpec spec;
  spec.rootfs = "/";
  spec.argv = {"/bin/sh", "-c", "env; exit 4"};
  spec.env = {"ONLY=this"};
  spec.uid = ::geteuid();
  spec.gid = ::getegid();
  RecordingWriter w;
  spec.output = &w;
  auto r = (*runner)->Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 4);
  EXPECT_NE(w.data().find("ONLY=this\n"), std::string::npos);
  spec.rootfs = "/tmp";
  EXPECT_EQ((*runner)->Run(spec).status().code(), ErrorCode::kInvalidArgument);
}

TEST(DetectionTest, FindsATierOnThisMachine) {
  TierDetection d = DetectSandboxTiers();
  ASSERT_TRUE(d.Best().has_value()) << d.NoTierMessage();
  if (::geteuid() == 0) {
    EXPECT_TRUE(d.chroot);
    if (d.user_namespace) {
      EXPECT_EQ(d.id_mapping.kind, IdMapPlan::Kind::kIdentity);
    }
  }
  EXPECT_FALSE(d.Describe().empty());
  EXPECT_TRUE(d.ptrace) << d.ptrace_problem;  // this machine's seccomp allows ptrace, as Docker's default does
}

TEST(DetectionTest, NoTierMessageExplainsEachTier) {
  TierDetection d;
  d.user_namespace_problem = "clone: Operation not permitted";
  d.chroot_problem = "kiln runs as uid 1000, not root";
  d.ptrace_problem = "ptrace(PTRACE_TRACEME) is refused (seccomp profile or Yama)";
  std::string m = d.NoTierMessage();
  EXPECT_NE(m.find("RUN needs user namespaces, root with CAP_SYS_CHROOT, or ptrace"), std::string::npos) << m;
  EXPECT_NE(m.find("clone: Operation not permitted"), std::string::npos);
  EXPECT_NE(m.find("not root"), std::string::npos);
  EXPECT_NE(m.find("PTRACE_TRACEME) is refused"), std::string::npos);
}

}  // namespace
}  // namespace kiln::sandbox
