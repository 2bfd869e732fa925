// PathTranslator against a real rootfs on disk: every expectation is the host path the kernel would
// reach if the rootfs were "/" (path_resolution(7)), worked out by hand from the tree built in SetUp.
// Where the kernel can check an expectation on its own (relative links that stay inside, the 40-link
// limit, PATH_MAX), the test asks it too, so the hand-worked answer is not just our own reading.
#include "executor/sandbox/path_translator.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace kiln::sandbox {
namespace {

using kiln::testing::TempDir;
using kiln::testing::WriteFile;
using Follow = PathTranslator::Follow;
using ::testing::AnyOf;
using ::testing::Eq;

// How a failed translation prints in EXPECT_EQ, so that every check compares one string.
std::string Err(int e) { return std::string("<error ") + ::strerrordesc_np(e) + ">"; }

// The errno the kernel gives for lstat (follow = false) or stat (true) of `host`; 0 on success.
int KernelErrno(const std::string& host, bool follow) {
  struct stat st;
  int rc = follow ? ::stat(host.c_str(), &st) : ::lstat(host.c_str(), &st);
  return rc == 0 ? 0 : errno;
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return Err(errno);
  return buf;
}

void MkDir(const std::string& path) { ASSERT_EQ(::mkdir(path.c_str(), 0755), 0) << path << ": " << strerror(errno); }

void Symlink(const std::string& target, const std::string& link) {
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0) << link << ": " << strerror(errno);
}

// A Debian-like rootfs (merged /usr, alternatives) with the awkward links path resolution must handle:
//   bin -> usr/bin, lib -> usr/lib                   relative directory links (usrmerge)
//   usr/bin/awk -> /etc/alternatives/awk             absolute link to an absolute link
//   etc/alternatives/awk -> /usr/bin/mawk
//   usr/bin/python3 -> python3.11                    relative link in the same directory
//   etc/os-release -> ../usr/lib/os-release          relative link with ".."
//   etc/mtab -> /proc/self/mounts                    absolute link into a passthrough directory
//   usr/lib/escape -> ../../../../..                 ".." beyond the root
//   usr/lib/escape_etc -> ../../../../../etc
//   loop1 -> loop2, loop2 -> loop1, selfloop -> selfloop
//   dangling -> /nonexistent/target, creatable -> /etc/newfile
//   dirlink -> /usr/lib/                             target with a trailing slash
//   hostroot -> /proc/self/root                      the step's own root, through /proc
//   devup -> /dev/../etc                             ".." out of a passthrough directory
//   etc/passwd, usr/bin/mawk, usr/bin/python3.11, usr/lib/os-release: regular files
//   usr/share/, home/user/, procfoo/, tmp/: directories
class PathTranslatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = RealPath(dir_.path());
    ASSERT_EQ(root_.front(), '/') << root_;
    const std::string& r = root_;
    WriteFile(r + "/usr/bin/mawk", "#!mawk\n", 0755);
    WriteFile(r + "/usr/bin/python3.11", "#!python\n", 0755);
    WriteFile(r + "/usr/lib/os-release", "ID=debian\n");
    WriteFile(r + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    MkDir(r + "/etc/alternatives");
    MkDir(r + "/usr/share");
    MkDir(r + "/home");
    MkDir(r + "/home/user");
    MkDir(r + "/procfoo");
    MkDir(r + "/tmp");
    Symlink("usr/bin", r + "/bin");
    Symlink("usr/lib", r + "/lib");
    Symlink("/etc/alternatives/awk", r + "/usr/bin/awk");
    Symlink("/usr/bin/mawk", r + "/etc/alternatives/awk");
    Symlink("python3.11", r + "/usr/bin/python3");
    Symlink("../usr/lib/os-release", r + "/etc/os-release");
    Symlink("/proc/self/mounts", r + "/etc/mtab");
    Symlink("../../../../..", r + "/usr/lib/escape");
    Symlink("../../../../../etc", r + "/usr/lib/escape_etc");
    Symlink("loop2", r + "/loop1");
    Symlink("loop1", r + "/loop2");
    Symlink("selfloop", r + "/selfloop");
    Symlink("/nonexistent/target", r + "/dangling");
    Symlink("/etc/newfile", r + "/creatable");
    Symlink("/usr/lib/", r + "/dirlink");
    Symlink("/proc/self/root", r + "/hostroot");
    Symlink("/dev/../etc", r + "/devup");
    tr_ = std::make_unique<PathTranslator>(root_, std::vector<std::string>{"/proc", "/dev", "/sys"});
  }

  // The host path for `path`, or Err(errno) when the translation fails.
  std::string Host(std::string_view path, Follow follow = Follow::kYes, std::string_view guest_dir = "/") const {
    PathTranslator::Translated t = tr_->ToHost(guest_dir, path, follow);
    if (t.error != 0) return Err(t.error);
    return t.host;
  }
  std::string NoFollow(std::string_view path, std::string_view guest_dir = "/") const {
    return Host(path, Follow::kNo, guest_dir);
  }

  TempDir dir_;
  std::string root_;  // realpath of dir_
  std::unique_ptr<PathTranslator> tr_;
};

TEST_F(PathTranslatorTest, PlainPathsLandUnderTheRootfs) {
  EXPECT_EQ(Host("/etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(NoFollow("/etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/usr/lib/os-release"), root_ + "/usr/lib/os-release");
  EXPECT_EQ(Host("/home/user"), root_ + "/home/user");
  EXPECT_EQ(tr_->rootfs(), root_);
}

TEST_F(PathTranslatorTest, RootAndDotDotAboveItAreTheRootfs) {
  EXPECT_EQ(Host("/"), root_);
  EXPECT_EQ(NoFollow("/"), root_);
  EXPECT_EQ(Host("//"), root_);
  EXPECT_EQ(Host("/."), root_);
  EXPECT_EQ(Host("/.."), root_);
  EXPECT_EQ(Host("/../../.."), root_);
  EXPECT_EQ(Host("/../../../etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/usr/../../../etc"), root_ + "/etc");
  EXPECT_EQ(NoFollow("/home/user/../.."), root_);
}

TEST_F(PathTranslatorTest, UsrMergeDirectoryLinks) {
  EXPECT_EQ(Host("/bin"), root_ + "/usr/bin");
  EXPECT_EQ(NoFollow("/bin"), root_ + "/bin");  // lstat("/bin") sees the link itself
  EXPECT_EQ(Host("/bin/mawk"), root_ + "/usr/bin/mawk");
  EXPECT_EQ(NoFollow("/bin/mawk"), root_ + "/usr/bin/mawk");  // only the last component is not followed
  EXPECT_EQ(Host("/lib/os-release"), root_ + "/usr/lib/os-release");
  EXPECT_EQ(Host("/bin/python3"), root_ + "/usr/bin/python3.11");
  EXPECT_EQ(NoFollow("/bin/python3"), root_ + "/usr/bin/python3");
}

TEST_F(PathTranslatorTest, AbsoluteLinkTargetsStartAgainAtTheRootfs) {
  EXPECT_EQ(Host("/etc/alternatives/awk"), root_ + "/usr/bin/mawk");
  EXPECT_EQ(NoFollow("/etc/alternatives/awk"), root_ + "/etc/alternatives/awk");
  // Two absolute links in a row: awk -> /etc/alternatives/awk -> /usr/bin/mawk.
  EXPECT_EQ(Host("/usr/bin/awk"), root_ + "/usr/bin/mawk");
  EXPECT_EQ(NoFollow("/usr/bin/awk"), root_ + "/usr/bin/awk");
  // Three links: bin -> usr/bin, then the two above.
  EXPECT_EQ(Host("/bin/awk"), root_ + "/usr/bin/mawk");
  EXPECT_EQ(NoFollow("/bin/awk"), root_ + "/usr/bin/awk");
  EXPECT_EQ(Host("/dirlink"), root_ + "/usr/lib");
  EXPECT_EQ(Host("/dirlink/os-release"), root_ + "/usr/lib/os-release");
  EXPECT_EQ(NoFollow("/dirlink"), root_ + "/dirlink");
}

TEST_F(PathTranslatorTest, RelativeLinkTargetsStartAtTheLinksDirectory) {
  EXPECT_EQ(Host("/etc/os-release"), root_ + "/usr/lib/os-release");
  EXPECT_EQ(NoFollow("/etc/os-release"), root_ + "/etc/os-release");
  EXPECT_EQ(Host("/usr/bin/python3"), root_ + "/usr/bin/python3.11");
}

TEST_F(PathTranslatorTest, DotDotAfterALinkGoesUpFromItsTarget) {
  // /bin/.. is /usr/bin/.. = /usr, not "/" as a textual clean-up would say.
  EXPECT_EQ(Host("/bin/.."), root_ + "/usr");
  EXPECT_EQ(NoFollow("/bin/.."), root_ + "/usr");
  EXPECT_EQ(Host("/bin/../share"), root_ + "/usr/share");
  EXPECT_EQ(Host("/lib/../bin/mawk"), root_ + "/usr/bin/mawk");
  EXPECT_EQ(Host("/etc/alternatives/../passwd"), root_ + "/etc/passwd");
}

TEST_F(PathTranslatorTest, LinksCannotClimbOutOfTheRootfs) {
  EXPECT_EQ(Host("/usr/lib/escape"), root_);
  EXPECT_EQ(NoFollow("/usr/lib/escape"), root_ + "/usr/lib/escape");
  EXPECT_EQ(Host("/usr/lib/escape/etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/usr/lib/escape/../../tmp"), root_ + "/tmp");
  EXPECT_EQ(Host("/usr/lib/escape_etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/lib/escape_etc"), root_ + "/etc");
  EXPECT_EQ(Host("escape/etc", Follow::kYes, "/usr/lib"), root_ + "/etc");
  // The host's own /etc/passwd is never the answer.
  EXPECT_NE(Host("/usr/lib/escape/etc/passwd"), "/etc/passwd");
}

TEST_F(PathTranslatorTest, LinkLoopsFailWithEloopWhenFollowed) {
  EXPECT_EQ(Host("/loop1"), Err(ELOOP));
  EXPECT_EQ(Host("/selfloop"), Err(ELOOP));
  EXPECT_EQ(NoFollow("/loop1"), root_ + "/loop1");  // lstat/unlink of the link itself works
  EXPECT_EQ(NoFollow("/selfloop"), root_ + "/selfloop");
  EXPECT_EQ(NoFollow("/loop1/x"), Err(ELOOP));  // not the last component: always followed
  EXPECT_EQ(NoFollow("/loop1/"), Err(ELOOP));   // a trailing slash follows
  EXPECT_EQ(Host("loop2", Follow::kYes, "/"), Err(ELOOP));
  // The kernel agrees on the relative loop.
  EXPECT_EQ(KernelErrno(root_ + "/loop1", true), ELOOP);
}

// Linux follows at most 40 links in one lookup (MAXSYMLINKS): the 41st fails with ELOOP.
TEST_F(PathTranslatorTest, FortyLinksResolveAndTheFortyFirstIsEloop) {
  auto chain = [&](const std::string& dir, int n) {
    MkDir(root_ + "/" + dir);
    MkDir(root_ + "/" + dir + "/target");
    for (int i = 0; i < n; ++i) {
      std::string next = i + 1 < n ? "l" + std::to_string(i + 1) : "target";
      Symlink(next, root_ + "/" + dir + "/l" + std::to_string(i));
    }
  };
  chain("c40", 40);
  chain("c41", 41);
  chain("c20", 20);
  EXPECT_EQ(Host("/c40/l0"), root_ + "/c40/target");
  EXPECT_EQ(Host("/c40/l0/"), root_ + "/c40/target/");
  EXPECT_EQ(Host("/c41/l0"), Err(ELOOP));
  EXPECT_EQ(Host("/c41/l1"), root_ + "/c41/target");
  EXPECT_EQ(NoFollow("/c41/l0"), root_ + "/c41/l0");
  // The count is for the whole lookup, not per component: 20 + 20 links is fine, 20 + 20 + 20 not.
  EXPECT_EQ(Host("/c20/l0/../l0"), root_ + "/c20/target");
  EXPECT_EQ(Host("/c20/l0/../l0/../l0"), Err(ELOOP));
  // One more link in front of a 40-link chain also tips it over.
  Symlink("c40", root_ + "/to_c40");
  EXPECT_EQ(Host("/to_c40/l1"), root_ + "/c40/target");  // 1 + 39
  EXPECT_EQ(Host("/to_c40/l0"), Err(ELOOP));             // 1 + 40
  // These chains are relative and stay inside, so the host kernel can confirm the limit.
  EXPECT_EQ(KernelErrno(root_ + "/c40/l0", true), 0);
  EXPECT_EQ(KernelErrno(root_ + "/c41/l0", true), ELOOP);
  EXPECT_EQ(KernelErrno(root_ + "/c20/l0/../l0", true), 0);
  EXPECT_EQ(KernelErrno(root_ + "/c20/l0/../l0/../l0", true), ELOOP);
}

TEST_F(PathTranslatorTest, DanglingLinks) {
  EXPECT_EQ(Host("/dangling"), root_ + "/nonexistent/target");
  EXPECT_EQ(NoFollow("/dangling"), root_ + "/dangling");
  EXPECT_EQ(Host("/dangling/more"), root_ + "/nonexistent/target/more");
  // open(O_CREAT) through a dangling link creates its target, inside the rootfs.
  EXPECT_EQ(Host("/creatable"), root_ + "/etc/newfile");
  EXPECT_EQ(NoFollow("/creatable"), root_ + "/creatable");
}

TEST_F(PathTranslatorTest, AFileUsedAsADirectoryStaysAnError) {
  // The rest of the path is kept as written, so the kernel answers ENOTDIR; in particular the ".."
  // after the file must not be cleaned away into a path that exists.
  EXPECT_EQ(Host("/etc/passwd/x"), root_ + "/etc/passwd/x");
  EXPECT_EQ(Host("/etc/passwd/../passwd"), root_ + "/etc/passwd/../passwd");
  EXPECT_EQ(Host("/etc/passwd/.."), root_ + "/etc/passwd/..");
  EXPECT_EQ(NoFollow("/etc/passwd/.."), root_ + "/etc/passwd/..");
  // Through links: /usr/bin/awk ends at the file /usr/bin/mawk.
  EXPECT_EQ(Host("/bin/awk/x"), root_ + "/usr/bin/mawk/x");
  EXPECT_EQ(Host("/bin/awk/../mawk"), root_ + "/usr/bin/mawk/../mawk");
  EXPECT_EQ(KernelErrno(Host("/etc/passwd/../passwd"), true), ENOTDIR);
  EXPECT_EQ(KernelErrno(Host("/bin/awk/../mawk"), true), ENOTDIR);
}

TEST_F(PathTranslatorTest, MissingComponentsAreKeptAsWritten) {
  // ".." after a missing directory must still fail with ENOENT, not reach /etc/passwd.
  EXPECT_EQ(Host("/nonexistent/../etc/passwd"), root_ + "/nonexistent/../etc/passwd");
  EXPECT_EQ(KernelErrno(Host("/nonexistent/../etc/passwd"), true), ENOENT);
  EXPECT_EQ(Host("/etc/newdir/sub"), root_ + "/etc/newdir/sub");
  EXPECT_EQ(NoFollow("/etc/newfile"), root_ + "/etc/newfile");
  EXPECT_EQ(Host("/etc/newfile"), root_ + "/etc/newfile");
  // Resolution stops at the first missing component; the rest is not resolved (nor cleaned).
  EXPECT_EQ(Host("/bin/newdir/../awk"), root_ + "/usr/bin/newdir/../awk");
}

TEST_F(PathTranslatorTest, RelativePathsStartAtTheGuestDirectory) {
  EXPECT_EQ(Host("os-release", Follow::kYes, "/usr/lib"), root_ + "/usr/lib/os-release");
  EXPECT_EQ(Host("../../etc/passwd", Follow::kYes, "/home/user"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("../../../../../etc/passwd", Follow::kYes, "/home/user"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("bin/mawk", Follow::kYes, "/"), root_ + "/usr/bin/mawk");
  EXPECT_EQ(Host("awk", Follow::kYes, "/usr/bin"), root_ + "/usr/bin/mawk");
  EXPECT_EQ(Host("awk", Follow::kNo, "/usr/bin"), root_ + "/usr/bin/awk");
  EXPECT_EQ(Host(".", Follow::kYes, "/usr/bin"), root_ + "/usr/bin");
  EXPECT_EQ(Host("..", Follow::kYes, "/usr/bin"), root_ + "/usr");
  EXPECT_EQ(Host("../../..", Follow::kYes, "/"), root_);
  EXPECT_EQ(Host("./etc/./passwd", Follow::kYes, "/"), root_ + "/etc/passwd");
  // An absolute path ignores the guest directory.
  EXPECT_EQ(Host("/etc/passwd", Follow::kYes, "/home/user"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/", Follow::kYes, "/home/user"), root_);
  // A directory named through a link (a dirfd opened on /bin) is the link's target: /usr/bin/.. = /usr.
  EXPECT_EQ(Host("..", Follow::kYes, "/bin"), root_ + "/usr");
  // A new name in the guest directory.
  EXPECT_EQ(Host("newfile", Follow::kNo, "/home/user"), root_ + "/home/user/newfile");
}

TEST_F(PathTranslatorTest, TrailingSlashFollowsAndIsKept) {
  EXPECT_EQ(NoFollow("/bin/"), root_ + "/usr/bin/");
  EXPECT_EQ(Host("/bin/"), root_ + "/usr/bin/");
  EXPECT_EQ(NoFollow("/dirlink/"), root_ + "/usr/lib/");
  EXPECT_EQ(Host("/usr//"), root_ + "/usr/");
  EXPECT_EQ(NoFollow("/home/user/"), root_ + "/home/user/");
  // mkdir("newdir/") creates newdir; the slash reaches the kernel.
  EXPECT_EQ(NoFollow("/etc/newdir/"), root_ + "/etc/newdir/");
  EXPECT_EQ(NoFollow("newdir/", "/home"), root_ + "/home/newdir/");
  // A file with a trailing slash is ENOTDIR for the kernel, so the slash must survive.
  EXPECT_EQ(Host("/etc/passwd/"), root_ + "/etc/passwd/");
  EXPECT_EQ(KernelErrno(Host("/etc/passwd/"), false), ENOTDIR);
  // A dangling link with a trailing slash is followed even by lstat.
  EXPECT_EQ(NoFollow("/dangling/"), root_ + "/nonexistent/target/");
  // The root stays the rootfs without a slash added.
  EXPECT_EQ(Host("/"), root_);
  EXPECT_EQ(Host("/usr/../"), root_ + "/");
}

TEST_F(PathTranslatorTest, DotAndEmptyComponentsChangeNothing) {
  EXPECT_EQ(Host("/usr/./bin//mawk"), root_ + "/usr/bin/mawk");
  EXPECT_EQ(Host("//etc///passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/usr/bin/./../lib/./os-release"), root_ + "/usr/lib/os-release");
  EXPECT_EQ(NoFollow("/./bin/./awk"), root_ + "/usr/bin/awk");
  EXPECT_EQ(Host("/././."), root_);
}

TEST_F(PathTranslatorTest, PassthroughDirectoriesAreTheHosts) {
  EXPECT_EQ(Host("/dev/null"), "/dev/null");
  EXPECT_EQ(NoFollow("/dev/null"), "/dev/null");
  EXPECT_EQ(Host("/proc/cpuinfo"), "/proc/cpuinfo");
  EXPECT_EQ(Host("/proc/self/status"), "/proc/self/status");
  EXPECT_EQ(Host("/sys/kernel"), "/sys/kernel");
  EXPECT_EQ(Host("/proc"), "/proc");
  EXPECT_EQ(NoFollow("/proc"), "/proc");
  EXPECT_EQ(Host("/dev/"), "/dev/");
  EXPECT_EQ(Host("//dev//./null"), "/dev/null");
  EXPECT_EQ(Host("/usr/../dev/null"), "/dev/null");
  EXPECT_EQ(Host("null", Follow::kYes, "/dev"), "/dev/null");
  EXPECT_EQ(Host("../dev/null", Follow::kYes, "/usr"), "/dev/null");
  // Reached through links inside the rootfs.
  EXPECT_EQ(Host("/etc/mtab"), "/proc/self/mounts");
  EXPECT_EQ(NoFollow("/etc/mtab"), root_ + "/etc/mtab");
  EXPECT_EQ(Host("/usr/lib/escape/dev/null"), "/dev/null");
  // Only whole components match: /procfoo and /device are the rootfs's own.
  EXPECT_EQ(Host("/procfoo/x"), root_ + "/procfoo/x");
  EXPECT_EQ(Host("/device"), root_ + "/device");
  EXPECT_EQ(Host("/usr/dev/null"), root_ + "/usr/dev/null");
}

// Only what a container's /dev holds: never the host's disks or kernel interfaces.
TEST_F(PathTranslatorTest, OnlyAContainersDevicesArePassedThrough) {
  EXPECT_EQ(Host("/dev/zero"), "/dev/zero");
  EXPECT_EQ(Host("/dev/urandom"), "/dev/urandom");
  EXPECT_EQ(Host("/dev/pts"), "/dev/pts");
  EXPECT_EQ(Host("/dev/shm"), "/dev/shm");
  for (const char* dev : {"/dev/vda", "/dev/sda", "/dev/kmsg", "/dev/mem", "/dev/disk/by-id", "/dev/../dev/sda1"}) {
    EXPECT_EQ(Host(dev), Err(ENOENT)) << dev;
  }
}

TEST_F(PathTranslatorTest, ProcPidRootLeadsBackIntoTheRootfs) {
  EXPECT_EQ(Host("/proc/self/root/etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/proc/self/root"), root_);
  EXPECT_EQ(Host("/proc/self/root/"), root_ + "/");
  EXPECT_EQ(Host("/proc/1/root/etc/alternatives/awk"), root_ + "/usr/bin/mawk");
  EXPECT_EQ(Host("/proc/4242/root/bin/mawk"), root_ + "/usr/bin/mawk");
  EXPECT_EQ(Host("/proc/thread-self/root/bin"), root_ + "/usr/bin");
  EXPECT_EQ(Host("/proc/self/root/../../etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/proc/self/root/dev/null"), "/dev/null");
  EXPECT_EQ(Host("/proc/self/root/proc/self/root/etc"), root_ + "/etc");
  EXPECT_EQ(Host("//proc/./self//root/./etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("root/etc/passwd", Follow::kYes, "/proc/self"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/hostroot/etc/passwd"), root_ + "/etc/passwd");
  // Not a pid: an ordinary /proc entry, handed to the host as it is.
  EXPECT_EQ(Host("/proc/abc/root/etc"), "/proc/abc/root/etc");
  EXPECT_EQ(Host("/proc/self/cwd"), "/proc/self/cwd");
  EXPECT_EQ(Host("/proc/self/rootx"), "/proc/self/rootx");
}

TEST_F(PathTranslatorTest, HostPathLengthIsBoundedByPathMax) {
  // A host path of PATH_MAX - 1 bytes (plus its NUL) is the longest the kernel takes.
  // A guest path of exactly n bytes: "/" and components of at most 201 bytes, ending in a name.
  auto guest_of_length = [](size_t n) {
    std::string g = "/";
    size_t component = 0;
    while (g.size() < n) {
      if (component >= 200 && g.size() + 1 < n) {
        g += '/';
        component = 0;
      } else {
        g += 'a';
        ++component;
      }
    }
    return g;
  };
  std::string fits = guest_of_length(PATH_MAX - 1 - root_.size());
  ASSERT_EQ(root_.size() + fits.size(), static_cast<size_t>(PATH_MAX - 1));
  EXPECT_EQ(Host(fits), root_ + fits);
  std::string too_long = guest_of_length(PATH_MAX - root_.size());
  EXPECT_EQ(Host(too_long), Err(ENAMETOOLONG));
  // A short guest path whose link makes the host path too long: the body (absolute, so it starts again
  // at the rootfs) fits, but ROOT + body + "/x/y/z/w" does not.
  std::string body = guest_of_length(PATH_MAX - 5 - root_.size());
  Symlink(body, root_ + "/longlink");
  EXPECT_EQ(Host("/longlink"), root_ + body);
  EXPECT_EQ(Host("/longlink/x/y/z/w"), Err(ENAMETOOLONG));
}

TEST_F(PathTranslatorTest, ResultsAgreeWithTheKernelWhereItCanJudge) {
  // Relative links that stay inside mean the same to the host kernel as to the guest.
  for (const char* guest : {"/bin/mawk", "/etc/os-release", "/usr/bin/python3", "/bin/../share", "/lib/os-release",
                            "/bin/python3", "/usr/bin/../lib/../bin/mawk", "/home/user/../../bin/.."}) {
    EXPECT_EQ(Host(guest), RealPath(root_ + guest)) << guest;
  }
}

TEST_F(PathTranslatorTest, ToGuestMapsHostPathsBack) {
  EXPECT_EQ(tr_->ToGuest(root_), "/");
  EXPECT_EQ(tr_->ToGuest(root_ + "/etc/passwd"), "/etc/passwd");
  EXPECT_EQ(tr_->ToGuest(root_ + "/usr/bin"), "/usr/bin");
  EXPECT_EQ(tr_->ToGuest("/proc"), "/proc");
  EXPECT_EQ(tr_->ToGuest("/proc/123/cwd"), "/proc/123/cwd");
  EXPECT_EQ(tr_->ToGuest("/dev/null"), "/dev/null");
  EXPECT_EQ(tr_->ToGuest("/sys"), "/sys");
  EXPECT_EQ(tr_->ToGuest("/"), std::nullopt);
  EXPECT_EQ(tr_->ToGuest("/etc/passwd"), std::nullopt);
  EXPECT_EQ(tr_->ToGuest("/device"), std::nullopt);
  EXPECT_EQ(tr_->ToGuest("/procx/1"), std::nullopt);
  EXPECT_EQ(tr_->ToGuest(root_.substr(0, root_.rfind('/'))), std::nullopt);  // the rootfs's parent
  EXPECT_EQ(tr_->ToGuest(root_ + "x"), std::nullopt);                           // a sibling with the same prefix
  EXPECT_EQ(tr_->ToGuest(root_ + "x/etc"), std::nullopt);
  EXPECT_EQ(tr_->ToGuest(root_.substr(0, root_.size() - 1)), std::nullopt);
  // Round trip for paths without links.
  for (const char* guest : {"/etc/passwd", "/usr/lib/os-release", "/home/user", "/etc/newfile"}) {
    EXPECT_EQ(tr_->ToGuest(Host(guest)), guest) << guest;
  }
}

TEST(PathTranslatorPlainTest, ToGuestNeedsAWholeComponentPrefix) {
  PathTranslator tr("/tmp/x", {"/proc", "/dev", "/sys"});
  EXPECT_EQ(tr.ToGuest("/tmp/x"), "/");
  EXPECT_EQ(tr.ToGuest("/tmp/x/y"), "/y");
  EXPECT_EQ(tr.ToGuest("/tmp/xy"), std::nullopt);
  EXPECT_EQ(tr.ToGuest("/tmp/xy/z"), std::nullopt);
  EXPECT_EQ(tr.ToGuest("/tmp"), std::nullopt);
  EXPECT_EQ(tr.ToGuest("/tmp/"), std::nullopt);
}

TEST(PathTranslatorPlainTest, ConstructorNormalisesSlashes) {
  PathTranslator tr("/tmp/x/", {"proc/", "//dev", "/sys//", ""});
  EXPECT_EQ(tr.rootfs(), "/tmp/x");
  EXPECT_EQ(tr.ToGuest("/tmp/x"), "/");
  EXPECT_EQ(tr.ToGuest("/proc/1"), "/proc/1");
  EXPECT_EQ(tr.ToGuest("/dev"), "/dev");
  EXPECT_EQ(tr.ToGuest("/sys/fs"), "/sys/fs");
  // Nothing lstat'able is under /tmp/x for these: passthrough decides before the disk is read.
  EXPECT_EQ(tr.ToHost("/", "/dev/null", Follow::kYes).host, "/dev/null");
  EXPECT_EQ(tr.ToHost("/", "/sys/fs", Follow::kYes).host, "/sys/fs");
  EXPECT_EQ(tr.ToHost("/", "/proc/cpuinfo", Follow::kNo).host, "/proc/cpuinfo");
}

TEST(PathTranslatorPlainTest, WithoutPassthroughDevIsTheRootfsOwn) {
  TempDir dir;
  std::string root = RealPath(dir.path());
  PathTranslator tr(root, {});
  PathTranslator::Translated t = tr.ToHost("/", "/dev/null", Follow::kYes);
  EXPECT_EQ(t.error, 0);
  EXPECT_EQ(t.host, root + "/dev/null");
  EXPECT_EQ(tr.ToGuest("/dev/null"), std::nullopt);
  EXPECT_EQ(tr.ToGuest(root + "/dev/null"), "/dev/null");
}

// Cases the first version got wrong (found by these tests, fixed since).

// ".." out of a passthrough directory. In the guest, /dev/.. is the guest's "/", so /dev/../etc/passwd
// is the rootfs's /etc/passwd; handed to the kernel unchanged it would read the HOST's /etc/passwd
// (also via a link inside the rootfs, devup -> /dev/../etc).
TEST_F(PathTranslatorTest, DotDotOutOfPassthroughStaysInRootfs) {
  EXPECT_EQ(Host("/dev/../etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/sys/.."), root_);
  EXPECT_EQ(Host("/proc/self/../../etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("../etc/passwd", Follow::kYes, "/dev"), root_ + "/etc/passwd");
  EXPECT_EQ(Host("/devup/passwd"), root_ + "/etc/passwd");
  // /proc/self/.. is /proc, so /proc/self/../self/root is still the step's root.
  EXPECT_EQ(Host("/proc/self/../self/root/etc/passwd"), root_ + "/etc/passwd");
}

// A final "." must not be dropped: in the kernel "x/." makes x a non-final component, followed even by
// lstat, and it must be a directory ("/etc/passwd/." is ENOTDIR, "/dangling/." ENOENT).
TEST_F(PathTranslatorTest, FinalDotMakesThePreviousComponentADirectory) {
  EXPECT_THAT(NoFollow("/bin/."), AnyOf(Eq(root_ + "/usr/bin"), Eq(root_ + "/usr/bin/.")));
  std::string passwd = Host("/etc/passwd/.");
  EXPECT_TRUE(passwd == Err(ENOTDIR) || KernelErrno(passwd, true) == ENOTDIR) << passwd;
  std::string dangling = NoFollow("/dangling/.");
  EXPECT_TRUE(dangling == Err(ENOENT) || KernelErrno(dangling, false) == ENOENT) << dangling;
}

// The kernel refuses a path argument of PATH_MAX bytes or more with ENAMETOOLONG before resolving
// anything, even when "." or ".." would shorten it.
TEST_F(PathTranslatorTest, GuestPathOfPathMaxBytesIsTooLong) {
  std::string dots;
  while (dots.size() < PATH_MAX) dots += "./";
  EXPECT_EQ(KernelErrno("/" + dots + "etc", true), ENAMETOOLONG);  // the host kernel on the same shape
  EXPECT_EQ(Host("/" + dots + "etc/passwd"), Err(ENAMETOOLONG));
  EXPECT_EQ(Host(dots + "passwd", Follow::kYes, "/etc"), Err(ENAMETOOLONG));
}

// /proc/self/root is a (magic) symlink, and a call that does not follow the last component (lstat,
// readlink) must see the link: lstat says S_IFLNK, readlink says "/". Handing the host /proc/self/root
// unchanged is right: the step is not chrooted, so its readlink reads "/" as the guest expects.
TEST_F(PathTranslatorTest, ProcSelfRootIsNotFollowedAsTheLastComponent) {
  EXPECT_EQ(NoFollow("/proc/self/root"), "/proc/self/root");
  EXPECT_EQ(NoFollow("/proc/1/root"), "/proc/1/root");
}

// Below a process's cwd or an open directory the kernel would walk host paths: refused. The links
// themselves are still there for readlink (the tracer reports them as guest paths).
TEST_F(PathTranslatorTest, PathsBelowProcessCwdAndFdLinksAreRefused) {
  EXPECT_EQ(Host("/proc/self/cwd/etc/passwd"), Err(EACCES));
  EXPECT_EQ(Host("/proc/1/cwd/x"), Err(EACCES));
  EXPECT_EQ(Host("/proc/self/task/7/cwd/x"), Err(EACCES));
  EXPECT_EQ(Host("/proc/self/fd/3/secret"), Err(EACCES));
  EXPECT_EQ(Host("/proc/1/task/1/fd/3/secret"), Err(EACCES));
  EXPECT_EQ(Host("/proc/self/map_files/1000-2000/x"), Err(EACCES));
  EXPECT_EQ(NoFollow("/proc/self/cwd"), "/proc/self/cwd");
  EXPECT_EQ(Host("/proc/self/fd/3"), "/proc/self/fd/3");
  EXPECT_EQ(Host("/proc/self/fdinfo/3"), "/proc/self/fdinfo/3");
  EXPECT_EQ(Host("/proc/self/status"), "/proc/self/status");
}

// With an own-process predicate, other processes' private /proc entries (command lines too) are
// refused; what ps lists them by and the step's own processes stay open.
TEST_F(PathTranslatorTest, OtherProcessesPrivatePartsAreRefused) {
  PathTranslator tr(root_, {"/proc", "/dev", "/sys"});
  tr.SetOwnProcess([](std::string_view pid) { return pid == "42"; });
  auto host = [&](const std::string& p) {
    PathTranslator::Translated t = tr.ToHost("/", p, Follow::kYes);
    return t.error != 0 ? Err(t.error) : t.host;
  };
  EXPECT_EQ(host("/proc/1/environ"), Err(EACCES));
  EXPECT_EQ(host("/proc/1/mem"), Err(EACCES));
  EXPECT_EQ(host("/proc/1/fd/3"), Err(EACCES));
  EXPECT_EQ(host("/proc/1/task/1/environ"), Err(EACCES));
  EXPECT_EQ(host("/proc/1/root/etc/passwd"), root_ + "/etc/passwd");  // any root link leads into the rootfs
  EXPECT_EQ(host("/proc/1/status"), "/proc/1/status");
  EXPECT_EQ(host("/proc/1/cmdline"), Err(EACCES));  // command lines carry tokens
  EXPECT_EQ(host("/proc/42/cmdline"), "/proc/42/cmdline");
  EXPECT_EQ(host("/proc/1/task/1/stat"), "/proc/1/task/1/stat");
  EXPECT_EQ(host("/proc/42/environ"), "/proc/42/environ");
  EXPECT_EQ(host("/proc/self/environ"), "/proc/self/environ");
  EXPECT_EQ(host("/proc/42/root/etc/passwd"), root_ + "/etc/passwd");
}

}  // namespace
}  // namespace kiln::sandbox
