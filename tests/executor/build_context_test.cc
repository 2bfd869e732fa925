#include "executor/steps/build_context.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layers/safe_path.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using testing::ReadFile;
using testing::RunShell;
using testing::TempDir;
using testing::WriteFile;

TEST(BuildContextTest, DirectoryFormsAndDockerignore) {
  TempDir t;
  WriteFile(t.Sub("ctx/a.txt"), "a");
  WriteFile(t.Sub("ctx/.dockerignore"), "# comment\n*.log\n");
  for (std::string spec : {t.Sub("ctx"), "dir://" + t.Sub("ctx")}) {
    auto c = BuildContext::Open(spec, "", "");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ((*c)->root().front(), '/');
    EXPECT_EQ(ReadFile((*c)->root() + "/a.txt"), "a");
    EXPECT_TRUE((*c)->ignore().Excluded("x.log"));
    EXPECT_FALSE((*c)->ignore().Excluded("a.txt"));
  }
}

TEST(BuildContextTest, DockerfileSpecificIgnoreFileWins) {
  TempDir t;
  WriteFile(t.Sub("ctx/.dockerignore"), "*.log\n");
  WriteFile(t.Sub("df/app.Dockerfile"), "FROM scratch\n");
  WriteFile(t.Sub("df/app.Dockerfile.dockerignore"), "*.tmp\n");
  auto c = BuildContext::Open(t.Sub("ctx"), t.Sub("df/app.Dockerfile"), "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE((*c)->ignore().Excluded("x.tmp"));
  EXPECT_FALSE((*c)->ignore().Excluded("x.log"));
  EXPECT_EQ((*c)->ignore_file(), t.Sub("df/app.Dockerfile.dockerignore"));
}

TEST(BuildContextTest, TarballContextsAreExtractedIntoScratch) {
  TempDir t;
  WriteFile(t.Sub("src/dir/f.txt"), "in tar");
  WriteFile(t.Sub("src/.dockerignore"), "secret\n");
  ASSERT_EQ(RunShell("cd " + t.Sub("src") + " && tar czf ../ctx.tar.gz . && tar cf ../ctx.tar . && cp ../ctx.tar.gz ../ctx.bin"), 0);
  int n = 0;
  for (std::string spec : {t.Sub("ctx.tar.gz"), t.Sub("ctx.tar"), "tar://" + t.Sub("ctx.bin")}) {
    SCOPED_TRACE(spec);
    std::string scratch = t.Sub("scratch" + std::to_string(n++));
    ASSERT_EQ(::mkdir(scratch.c_str(), 0700), 0);
    auto c = BuildContext::Open(spec, "", scratch);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(ReadFile((*c)->root() + "/dir/f.txt"), "in tar");
    EXPECT_TRUE((*c)->ignore().Excluded("secret"));
  }
}

TEST(BuildContextTest, HostileContextTarStaysInScratch) {
  TempDir t;
  ASSERT_EQ(RunShell("cd " + t.path() + " && python3 -c \"import tarfile,io\n"
                     "t=tarfile.open('evil.tar','w')\n"
                     "i=tarfile.TarInfo('../escaped'); i.size=1; t.addfile(i,io.BytesIO(b'x'))\n"
                     "t.close()\""),
            0);
  ASSERT_EQ(::mkdir(t.Sub("scratch").c_str(), 0700), 0);
  auto c = BuildContext::Open(t.Sub("evil.tar"), "", t.Sub("scratch"));
  EXPECT_FALSE(c.ok());
  struct stat st;
  EXPECT_NE(::lstat(t.Sub("escaped").c_str(), &st), 0);
}

TEST(BuildContextTest, UnsupportedAndMissing) {
  for (std::string spec : {"git://github.com/a/b", "s3://bucket/ctx.tar.gz", "gs://b/c", "https://h/ctx.tar.gz",
                           "git@github.com:a/b.git"}) {
    auto c = BuildContext::Open(spec, "", "/tmp");
    ASSERT_FALSE(c.ok()) << spec;
    EXPECT_EQ(c.status().code(), ErrorCode::kUnsupported) << spec;
    EXPECT_NE(c.status().message().find(spec.substr(0, 3)), std::string::npos) << c.status().message();
  }
  EXPECT_EQ(BuildContext::Open("/nonexistent/kiln/ctx", "", "").status().code(), ErrorCode::kNotFound);
  TempDir t;
  WriteFile(t.Sub("notatar.tar"), "hello");
  ASSERT_EQ(::mkdir(t.Sub("s").c_str(), 0700), 0);
  EXPECT_FALSE(BuildContext::Open(t.Sub("notatar.tar"), "", t.Sub("s")).ok());
}

TEST(ResolveInRootTest, ChrootSemantics) {
  TempDir t;
  ASSERT_EQ(::mkdir(t.Sub("etc").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(t.Sub("a").c_str(), 0755), 0);
  ASSERT_EQ(::symlink("/etc", t.Sub("abs").c_str()), 0);
  ASSERT_EQ(::symlink("../../../../etc", t.Sub("a/up").c_str()), 0);
  ASSERT_EQ(::symlink("loop", t.Sub("loop").c_str()), 0);
  WriteFile(t.Sub("file"), "x");
  int fd = ::open(t.path().c_str(), O_PATH | O_DIRECTORY);
  layers::UniqueFd root(fd);
  struct Case {
    std::string in, out;
  };
  for (const Case& c : std::vector<Case>{{"abs/passwd", "etc/passwd"},
                                         {"a/up/x", "etc/x"},
                                         {"missing/../etc", "etc"},
                                         {"abs", "etc"},
                                         {"", ""},
                                         {"a/new/deeper", "a/new/deeper"}}) {
    auto r = layers::ResolveBelow(fd, c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
    EXPECT_EQ(*r, c.out) << c.in;
  }
  EXPECT_FALSE(layers::ResolveBelow(fd, "loop").ok());
  EXPECT_EQ(layers::ResolveBelow(fd, "file/x").status().code(), ErrorCode::kFailedPrecondition);
  auto text = ReadFileInRoot(fd, "file", 10);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(**text, "x");
  EXPECT_FALSE(ReadFileInRoot(fd, "nothing", 10)->has_value());
  EXPECT_FALSE(ReadFileInRoot(fd, "file", 0).ok());
}

}  // namespace
}  // namespace kiln::executor
