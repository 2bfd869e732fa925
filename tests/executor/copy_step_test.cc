#include "executor/steps/copy_step.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "layers/rootless.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using testing::ReadFile;
using testing::RunShell;
using testing::TempDir;
using testing::WriteFile;

struct stat Lstat(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}
bool Exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

class FakeFetcher : public UrlFetcher {
 public:
  Result<FetchedUrl> Fetch(const std::string& url, Writer* out) override {
    urls.push_back(url);
    auto it = bodies.find(url);
    if (it == bodies.end()) return NotFound("downloading " + RedactUrl(url) + ": HTTP 404");
    KILN_RETURN_IF_ERROR(out->Write(it->second));
    FetchedUrl f;
    f.filename = UrlBaseName(url);
    f.last_modified = 1500000000;
    return f;
  }
  std::map<std::string, std::string> bodies;
  std::vector<std::string> urls;
};

class CopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(ctx_.Sub("c").c_str(), 0755);
    ::mkdir(root_.Sub("r").c_str(), 0755);
    ctx = ctx_.Sub("c");
    rootfs = root_.Sub("r");
  }
  Result<CopyResult> Copy(CopyRequest req, const dockerfile::IgnoreMatcher* ignore = nullptr, bool from_stage = false) {
    CopySource src;
    src.root = ctx;
    src.ignore = ignore;
    src.from_stage = from_stage;
    return ExecuteCopy(src, rootfs, req, &fetcher);
  }
  static CopyRequest Req(std::vector<std::string> sources, std::string dest) {
    CopyRequest r;
    r.sources = std::move(sources);
    r.dest = std::move(dest);
    return r;
  }
  static std::vector<std::string> Sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }
  TempDir ctx_, root_;
  std::string ctx, rootfs;
  FakeFetcher fetcher;
};

TEST_F(CopyTest, FileToFileAndIntoDirectoryTable) {
  WriteFile(ctx + "/a.txt", "A");
  ::mkdir((rootfs + "/existing").c_str(), 0755);
  struct Case {
    std::string dest, workdir, expect;
  };
  const std::vector<Case> cases = {
      {"/b.txt", "/", "b.txt"},             // a new file name
      {"/d1/", "/", "d1/a.txt"},            // trailing slash: inside, created
      {"/existing", "/", "existing/a.txt"}, // existing directory: inside
      {"rel.txt", "/work", "work/rel.txt"}, // relative to WORKDIR
      {".", "/w2", "w2/a.txt"},             // "." is a directory
      {"/x/../../y.txt", "/", "y.txt"},     // `..` stops at the root
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.dest);
    auto req = Req({"a.txt"}, c.dest);
    req.workdir = c.workdir;
    auto r = Copy(req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(ReadFile(rootfs + "/" + c.expect), "A");
    EXPECT_NE(std::find(r->changed.begin(), r->changed.end(), c.expect), r->changed.end());
    EXPECT_EQ(r->files, 1u);
    EXPECT_EQ(r->bytes, 1u);
  }
}

TEST_F(CopyTest, DirectoryCopiesContentsAndListsCreatedDirs) {
  WriteFile(ctx + "/src/a", "1");
  WriteFile(ctx + "/src/sub/b", "22", 0600);
  ::chmod((ctx + "/src/sub").c_str(), 0750);
  auto r = Copy(Req({"src"}, "/opt/app"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/opt/app/a"), "1");
  EXPECT_EQ(ReadFile(rootfs + "/opt/app/sub/b"), "22");
  EXPECT_FALSE(Exists(rootfs + "/opt/app/src"));
  EXPECT_EQ(Lstat(rootfs + "/opt/app/sub").st_mode & 07777, 0750u);
  EXPECT_EQ(Lstat(rootfs + "/opt/app/sub/b").st_mode & 07777, 0600u);
  EXPECT_EQ(Lstat(rootfs + "/opt").st_mode & 07777, 0755u);
  EXPECT_EQ(Sorted(r->changed), (std::vector<std::string>{"opt", "opt/app", "opt/app/a", "opt/app/sub", "opt/app/sub/b"}));
  EXPECT_EQ(r->files, 2u);
  EXPECT_EQ(r->bytes, 3u);
}

TEST_F(CopyTest, MergesIntoExistingDirectoryAndReplacesFiles) {
  WriteFile(rootfs + "/app/keep", "old");
  WriteFile(rootfs + "/app/over", "old");
  ASSERT_EQ(::symlink("/etc/passwd", (rootfs + "/app/link").c_str()), 0);
  WriteFile(ctx + "/d/over", "new");
  WriteFile(ctx + "/d/link", "file now");
  auto r = Copy(Req({"d"}, "/app"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/app/keep"), "old");
  EXPECT_EQ(ReadFile(rootfs + "/app/over"), "new");
  EXPECT_TRUE(S_ISREG(Lstat(rootfs + "/app/link").st_mode));
  EXPECT_EQ(Sorted(r->changed), (std::vector<std::string>{"app/link", "app/over"}));
}

TEST_F(CopyTest, FileOntoDirectoryInsideCopiedTreeFails) {
  ::mkdir((rootfs + "/app").c_str(), 0755);
  ::mkdir((rootfs + "/app/x").c_str(), 0755);
  WriteFile(ctx + "/d/x", "file");
  auto r = Copy(Req({"d"}, "/app/"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot replace directory /app/x with a file"), std::string::npos);
}

TEST_F(CopyTest, DirectoryOntoFileFails) {
  WriteFile(rootfs + "/f", "x");
  WriteFile(ctx + "/d/a", "1");
  auto r = Copy(Req({"d"}, "/f"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot copy to non-directory: /f"), std::string::npos);
}

TEST_F(CopyTest, GlobsAndMultipleSourcesNeedSlash) {
  WriteFile(ctx + "/a1.txt", "1");
  WriteFile(ctx + "/a2.txt", "2");
  WriteFile(ctx + "/b.txt", "b");
  WriteFile(ctx + "/dir/x.txt", "x");
  auto r = Copy(Req({"a?.txt"}, "/out"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "When using COPY with more than one source file, the destination must be a directory and end with a /");
  r = Copy(Req({"a*.txt", "b.txt"}, "/out"));
  ASSERT_FALSE(r.ok());
  r = Copy(Req({"a[0-9].txt", "*/x.txt"}, "/out/"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/out/a1.txt"), "1");
  EXPECT_EQ(ReadFile(rootfs + "/out/a2.txt"), "2");
  EXPECT_EQ(ReadFile(rootfs + "/out/x.txt"), "x");
  EXPECT_FALSE(Exists(rootfs + "/out/b.txt"));
  // A glob with one match may target a file name.
  r = Copy(Req({"b*"}, "/single"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/single"), "b");
}

TEST_F(CopyTest, GlobMatchingDirectoriesCopiesTheirContents) {
  WriteFile(ctx + "/pkg1/a", "1");
  WriteFile(ctx + "/pkg2/b", "2");
  auto r = Copy(Req({"pkg*"}, "/all/"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/all/a"), "1");
  EXPECT_EQ(ReadFile(rootfs + "/all/b"), "2");
}

TEST_F(CopyTest, MissingSourcesAreClearErrors) {
  auto r = Copy(Req({"nope.txt"}, "/"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "file not found in build context or excluded by .dockerignore: stat nope.txt: file does not exist");
  r = Copy(Req({"*.none"}, "/d/"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("*.none"), std::string::npos);
}

TEST_F(CopyTest, SourceCannotClimbOutOfTheContext) {
  WriteFile(ctx_.Sub("secret"), "outside");  // beside the context, not in it
  WriteFile(ctx + "/secret", "inside");
  auto r = Copy(Req({"../secret"}, "/got"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/got"), "inside");
  r = Copy(Req({"../../etc/passwd"}, "/p"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
}

TEST_F(CopyTest, TopLevelSymlinkFollowedInsideRootNestedKept) {
  WriteFile(ctx + "/real.txt", "R");
  ASSERT_EQ(::symlink("real.txt", (ctx + "/link.txt").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/passwd", (ctx + "/evil").c_str()), 0);  // resolves to <ctx>/etc/passwd
  WriteFile(ctx + "/d/f", "F");
  ASSERT_EQ(::symlink("f", (ctx + "/d/l").c_str()), 0);
  auto r = Copy(Req({"link.txt"}, "/out/"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(S_ISREG(Lstat(rootfs + "/out/link.txt").st_mode));
  EXPECT_EQ(ReadFile(rootfs + "/out/link.txt"), "R");
  r = Copy(Req({"evil"}, "/e"));
  ASSERT_FALSE(r.ok());  // the host's /etc/passwd is not in the context
  r = Copy(Req({"d"}, "/dd"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(S_ISLNK(Lstat(rootfs + "/dd/l").st_mode));
  char buf[16] = {};
  ASSERT_EQ(::readlink((rootfs + "/dd/l").c_str(), buf, sizeof buf), 1);
  EXPECT_EQ(std::string(buf), "f");
}

TEST_F(CopyTest, DestinationThroughSymlinkStaysInRootfs) {
  ::mkdir((rootfs + "/etc").c_str(), 0755);
  ASSERT_EQ(::symlink("/etc", (rootfs + "/cfg").c_str()), 0);
  ASSERT_EQ(::symlink("../../../../../../etc", (rootfs + "/up").c_str()), 0);
  WriteFile(ctx + "/passwd", "mine");
  auto r = Copy(Req({"passwd"}, "/cfg/"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/etc/passwd"), "mine");
  EXPECT_EQ(r->changed, (std::vector<std::string>{"etc/passwd"}));
  r = Copy(Req({"passwd"}, "/up/p2"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/etc/p2"), "mine");
  EXPECT_NE(ReadFile("/etc/passwd"), "mine");
}

TEST_F(CopyTest, DockerignoreHidesSourcesAndEntriesWithExceptions) {
  WriteFile(ctx + "/app/main.c", "m");
  WriteFile(ctx + "/app/debug.log", "l");
  WriteFile(ctx + "/app/keep.log", "k");
  WriteFile(ctx + "/secret.env", "s");
  WriteFile(ctx + "/logs/a.log", "a");
  WriteFile(ctx + "/logs/important/x", "x");
  auto m = dockerfile::IgnoreMatcher::Create(
      dockerfile::ReadIgnorePatterns("**/*.log\n!app/keep.log\nsecret.env\nlogs\n!logs/important\n"));
  ASSERT_TRUE(m.ok());
  auto r = Copy(Req({"secret.env"}, "/s"), &*m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  r = Copy(Req({"."}, "/ctx/"), &*m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Exists(rootfs + "/ctx/app/main.c"));
  EXPECT_FALSE(Exists(rootfs + "/ctx/app/debug.log"));
  EXPECT_TRUE(Exists(rootfs + "/ctx/app/keep.log"));
  EXPECT_FALSE(Exists(rootfs + "/ctx/secret.env"));
  EXPECT_FALSE(Exists(rootfs + "/ctx/logs/a.log"));
  EXPECT_EQ(ReadFile(rootfs + "/ctx/logs/important/x"), "x");
  // Globs skip excluded matches.
  r = Copy(Req({"*.env"}, "/g/"), &*m);
  ASSERT_FALSE(r.ok());
}

TEST_F(CopyTest, ExcludeFlagSkipsMatches) {
  WriteFile(ctx + "/src/a.go", "a");
  WriteFile(ctx + "/src/a_test.go", "t");
  WriteFile(ctx + "/src/vendor/v.go", "v");
  WriteFile(ctx + "/top.txt", "t");
  WriteFile(ctx + "/top.md", "m");
  auto req = Req({"src"}, "/s");
  req.excludes = {"*_test.go", "vendor"};
  auto r = Copy(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Exists(rootfs + "/s/a.go"));
  EXPECT_FALSE(Exists(rootfs + "/s/a_test.go"));
  EXPECT_FALSE(Exists(rootfs + "/s/vendor"));
  req = Req({"top.*"}, "/t/");
  req.excludes = {"*.md"};
  r = Copy(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Exists(rootfs + "/t/top.txt"));
  EXPECT_FALSE(Exists(rootfs + "/t/top.md"));
}

TEST_F(CopyTest, ParentsKeepsSourceStructure) {
  WriteFile(ctx + "/x/a.txt", "a");
  WriteFile(ctx + "/y/z/b.txt", "b");
  auto req = Req({"x/a.txt", "y/z/b.txt"}, "/p/");
  req.parents = true;
  auto r = Copy(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/p/x/a.txt"), "a");
  EXPECT_EQ(ReadFile(rootfs + "/p/y/z/b.txt"), "b");
  req = Req({"./y/./z/b.txt"}, "/q/");
  req.parents = true;
  r = Copy(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/q/z/b.txt"), "b");
}

TEST_F(CopyTest, OwnershipModesAndTimes) {
  WriteFile(ctx + "/f", "x", 0751);
  ASSERT_EQ(::chown((ctx + "/f").c_str(), 123, 456), 0);
  struct timespec ts[2] = {{1000, 0}, {1234567, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (ctx + "/f").c_str(), ts, 0), 0);
  // From the context: 0:0, mode and mtime kept.
  auto r = Copy(Req({"f"}, "/ctx"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto st = Lstat(rootfs + "/ctx");
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234567);
  // From a stage: the owner is kept.
  r = Copy(Req({"f"}, "/stage"), nullptr, true);
  ASSERT_TRUE(r.ok());
  st = Lstat(rootfs + "/stage");
  EXPECT_EQ(st.st_uid, 123u);
  EXPECT_EQ(st.st_gid, 456u);
  // --chown and --chmod, also on the directories created on the way.
  auto req = Req({"f"}, "/new/dir/f");
  req.chown = std::make_pair(1000u, 1001u);
  req.chmod = 0640;
  r = Copy(req);
  ASSERT_TRUE(r.ok());
  st = Lstat(rootfs + "/new/dir/f");
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  st = Lstat(rootfs + "/new/dir");
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(CopyTest, RootlessOwnershipGoesToXattr) {
  WriteFile(ctx + "/d/f", "x");
  auto req = Req({"d"}, "/rl");
  req.chown = std::make_pair(1000u, 1001u);
  req.ownership = layers::ExtractOptions::Ownership::kRootlessXattr;
  auto r = Copy(req);
  if (!r.ok() && r.status().message().find("Operation not supported") != std::string::npos) {
    GTEST_SKIP() << "no user xattrs on this filesystem";
  }
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (std::string p : {"/rl", "/rl/f"}) {
    char buf[32];
    ssize_t n = ::getxattr((rootfs + p).c_str(), layers::kRootlessXattr, buf, sizeof buf);
    ASSERT_GE(n, 0) << p;
    auto o = layers::DecodeRootlessOwner(std::string_view(buf, static_cast<size_t>(n)));
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->uid, 1000u);
    EXPECT_EQ(o->gid, 1001u);
  }
  // A stage extracted rootless: its xattr is the owner that COPY --from keeps.
  std::string v = layers::EncodeRootlessOwner({77, 88});
  ASSERT_EQ(::setxattr((ctx + "/d/f").c_str(), layers::kRootlessXattr, v.data(), v.size(), 0), 0);
  r = Copy(Req({"d/f"}, "/from"), nullptr, true);
  ASSERT_TRUE(r.ok());
  auto st = Lstat(rootfs + "/from");
  EXPECT_EQ(st.st_uid, 77u);
  EXPECT_EQ(st.st_gid, 88u);
}

TEST_F(CopyTest, HardlinksPreservedWithinOneCopy) {
  WriteFile(ctx + "/h/a", "same");
  ASSERT_EQ(::link((ctx + "/h/a").c_str(), (ctx + "/h/b").c_str()), 0);
  auto r = Copy(Req({"h"}, "/h"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Lstat(rootfs + "/h/a").st_ino, Lstat(rootfs + "/h/b").st_ino);
  EXPECT_EQ(r->bytes, 4u);
}

TEST_F(CopyTest, InlineHeredocSources) {
  CopyRequest req;
  req.dest = "/scripts/";
  req.inline_sources = {{"run.sh", "echo hi\n", true}, {"b.txt", "b", false}};
  auto r = Copy(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/scripts/run.sh"), "echo hi\n");
  EXPECT_EQ(Lstat(rootfs + "/scripts/run.sh").st_mode & 07777, 0644u);
  req.dest = "/single.sh";
  req.inline_sources = {{"EOF", "x", true}};
  req.chmod = 0755;
  r = Copy(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(rootfs + "/single.sh"), "x");
  EXPECT_EQ(Lstat(rootfs + "/single.sh").st_mode & 07777, 0755u);
}

TEST_F(CopyTest, AddExtractsLocalTarsOfEveryCompression) {
  WriteFile(ctx + "/t/dir/f.txt", "in tar");
  ASSERT_EQ(RunShell("cd " + ctx + "/t && tar cf ../a.tar dir && gzip -c ../a.tar > ../a.tgz && "
                     "bzip2 -c ../a.tar > ../a.tbz && xz -c ../a.tar > ../a.txz && zstd -q -c ../a.tar > ../a.tzst"),
            0);
  for (std::string name : {"a.tar", "a.tgz", "a.tbz", "a.txz", "a.tzst"}) {
    SCOPED_TRACE(name);
    auto req = Req({name}, "/x/" + name);
    req.add = true;
    auto r = Copy(req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(ReadFile(rootfs + "/x/" + name + "/dir/f.txt"), "in tar");
    auto changed = r->changed;
    EXPECT_NE(std::find(changed.begin(), changed.end(), "x/" + name + "/dir/f.txt"), changed.end());
  }
  // COPY never extracts.
  auto r = Copy(Req({"a.tar"}, "/copied.tar"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(S_ISREG(Lstat(rootfs + "/copied.tar").st_mode));
  // ADD of a file that is not a tar copies it.
  WriteFile(ctx + "/plain.gz.txt", "not a tar");
  auto req = Req({"plain.gz.txt"}, "/plain");
  req.add = true;
  r = Copy(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadFile(rootfs + "/plain"), "not a tar");
}

TEST_F(CopyTest, AddTarWithChownAndHostileNames) {
  // A tar whose entry climbs out with `..` is refused; nothing lands outside.
  ASSERT_EQ(RunShell("cd " + ctx + " && python3 -c \"import tarfile,io\n"
                     "t=tarfile.open('evil.tar','w')\n"
                     "i=tarfile.TarInfo('../../../escape.txt'); d=b'x'; i.size=1; t.addfile(i,io.BytesIO(d))\n"
                     "t.close()\""),
            0);
  auto req = Req({"evil.tar"}, "/ev/");
  req.add = true;
  auto r = Copy(req);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(Exists(root_.Sub("escape.txt")));
  EXPECT_FALSE(Exists(root_.path() + "/../escape.txt"));
  WriteFile(ctx + "/t/f", "f");
  ASSERT_EQ(RunShell("cd " + ctx + "/t && tar cf ../ok.tar f"), 0);
  req = Req({"ok.tar"}, "/own");
  req.add = true;
  req.chown = std::make_pair(5u, 6u);
  r = Copy(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto st = Lstat(rootfs + "/own/f");
  EXPECT_EQ(st.st_uid, 5u);
  EXPECT_EQ(st.st_gid, 6u);
  EXPECT_EQ(Lstat(rootfs + "/own").st_uid, 5u);
}

TEST_F(CopyTest, AddUrlDownloadsWithChecksumAndMode) {
  fetcher.bodies["https://example.test/files/tool.tar.gz?token=s3cret"] = "payload";
  auto req = Req({"https://example.test/files/tool.tar.gz?token=s3cret"}, "/dl/");
  req.add = true;
  req.checksum = "sha256:239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5";
  auto r = Copy(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto st = Lstat(rootfs + "/dl/tool.tar.gz");
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(ReadFile(rootfs + "/dl/tool.tar.gz"), "payload");  // URLs are never extracted
  EXPECT_EQ(r->changed, (std::vector<std::string>{"dl", "dl/tool.tar.gz"}));
  // Without a trailing slash the destination is the file.
  req.dest = "/named";
  req.checksum = "";
  ASSERT_TRUE(Copy(req).ok());
  EXPECT_EQ(ReadFile(rootfs + "/named"), "payload");
  // Checksum mismatch: an error, and no file.
  req.dest = "/bad/";
  req.checksum = "sha256:" + std::string(64, '0');
  r = Copy(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDigestMismatch);
  EXPECT_EQ(r.status().message().find("s3cret"), std::string::npos);
  EXPECT_FALSE(Exists(rootfs + "/bad/tool.tar.gz"));
}

TEST_F(CopyTest, UrlAndGitRules) {
  auto req = Req({"https://example.test/x"}, "/x");
  auto r = Copy(req);  // COPY
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  req.add = true;
  r = Copy(req);
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);  // fake 404
  // Git sources are fetched by the pipeline (add_git.cc), never by the copy itself: here they are
  // refused as COPY sources and as one source among others.
  for (std::string git : {"git@github.com:a/b.git", "https://github.com/a/b.git", "git://h/r", "https://h/r.git#main"}) {
    req.sources = {git};
    r = Copy(req);
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << git;
    EXPECT_NE(r.status().message().find("git repository"), std::string::npos) << r.status().message();
  }
  WriteFile(ctx + "/local", "l");
  req.sources = {"local"};
  req.checksum = "sha256:" + std::string(64, '0');
  EXPECT_EQ(Copy(req).status().code(), ErrorCode::kInvalidArgument);
}

TEST(GlobMatchTest, GoFilepathMatchTable) {
  struct Case {
    const char* pattern;
    const char* name;
    bool match;
  };
  const Case cases[] = {
      {"*.txt", "a.txt", true},  {"*.txt", "d/a.txt", false}, {"a?c", "abc", true},  {"a?c", "a/c", false},
      {"[a-c]x", "bx", true},    {"[^a-c]x", "bx", false},     {"[^a-c]x", "dx", true}, {"\\*", "*", true},
      {"\\*", "a", false},       {"*/x", "d/x", true},         {"[", "[", false},     {"a*b*c", "aXbYc", true},
      {"", "", true},            {"[]a]", "]", false},          {"[a-]", "a", false},
  };
  for (const auto& c : cases) EXPECT_EQ(GlobMatch(c.pattern, c.name), c.match) << c.pattern << " " << c.name;
}

TEST(ParseChmodTest, OctalOnly) {
  EXPECT_EQ(*ParseChmod("755"), 0755u);
  EXPECT_EQ(*ParseChmod("0644"), 0644u);
  EXPECT_EQ(*ParseChmod("4755"), 04755u);
  EXPECT_EQ(ParseChmod("u+x").status().code(), ErrorCode::kUnsupported);
  EXPECT_FALSE(ParseChmod("").ok());
  EXPECT_FALSE(ParseChmod("77777").ok());
}

}  // namespace
}  // namespace kiln::executor
