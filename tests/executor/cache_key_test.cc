// Cache keys: the framing is unambiguous, every input changes the key, and HashCopySources sees
// exactly the files a COPY copies (and nothing else).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor/cache/cache_key.h"
#include "executor/steps/copy_step.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using kiln::testing::TempDir;
using kiln::testing::WriteFile;

Platform Amd64() { return Platform::Parse("linux/amd64").value(); }
Digest D(std::string_view s) { return Sha256Of(s); }

TEST(CacheKeyBuilderTest, FramingIsUnambiguous) {
  EXPECT_NE(CacheKeyBuilder().Add("ab", "c").Finish(), CacheKeyBuilder().Add("a", "bc").Finish());
  EXPECT_NE(CacheKeyBuilder().Add("x", "ab").Add("y", "c").Finish(),
            CacheKeyBuilder().Add("x", "a").Add("y", "bc").Finish());
  // Two fields are not one field holding both.
  EXPECT_NE(CacheKeyBuilder().Add("a", "b").Add("c", "d").Finish(), CacheKeyBuilder().Add("a", "bcd").Finish());
  // A digest field is typed apart from a string holding the same text.
  Digest d = D("x");
  EXPECT_NE(CacheKeyBuilder().Add("f", d).Finish(), CacheKeyBuilder().Add("f", d.ToString()).Finish());
  // A map is not a run of string fields, and its entries are framed.
  EXPECT_NE(CacheKeyBuilder().AddVars("v", {{"a", "bc"}}).Finish(), CacheKeyBuilder().AddVars("v", {{"ab", "c"}}).Finish());
  EXPECT_NE(CacheKeyBuilder().AddVars("v", {{"a", "1"}, {"b", "2"}}).Finish(),
            CacheKeyBuilder().AddVars("v", {{"a", "1"}}).AddVars("v", {{"b", "2"}}).Finish());
  EXPECT_NE(CacheKeyBuilder().AddVars("v", {}).Finish(), CacheKeyBuilder().Finish());
  // Same input, same key; Finish leaves the builder usable.
  CacheKeyBuilder b;
  b.Add("a", "b");
  EXPECT_EQ(b.Finish(), b.Finish());
  EXPECT_EQ(b.Finish(), CacheKeyBuilder().Add("a", "b").Finish());
}

TEST(CacheKeyBuilderTest, VarsAreOrderIndependent) {
  CacheVars a, b;
  a["Z"] = "1";
  a["A"] = "2";
  b["A"] = "2";
  b["Z"] = "1";
  EXPECT_EQ(CacheKeyBuilder().AddVars("v", a).Finish(), CacheKeyBuilder().AddVars("v", b).Finish());
  EXPECT_EQ(StepKey(D("p"), "RUN x", a, Amd64(), std::nullopt), StepKey(D("p"), "RUN x", b, Amd64(), std::nullopt));
}

TEST(StepKeyTest, EveryInputChangesTheKey) {
  CacheVars vars{{"A", "1"}, {"PATH", "/bin"}};
  Digest base = StepKey(D("parent"), "RUN make", vars, Amd64(), std::nullopt);
  EXPECT_NE(base, StepKey(D("parent2"), "RUN make", vars, Amd64(), std::nullopt));
  EXPECT_NE(base, StepKey(D("parent"), "RUN make all", vars, Amd64(), std::nullopt));
  EXPECT_NE(base, StepKey(D("parent"), "RUN make", {{"A", "2"}, {"PATH", "/bin"}}, Amd64(), std::nullopt));
  EXPECT_NE(base, StepKey(D("parent"), "RUN make", {{"A", "1"}}, Amd64(), std::nullopt));
  EXPECT_NE(base, StepKey(D("parent"), "RUN make", {{"A", "1"}, {"PATH", "/bin"}, {"B", ""}}, Amd64(), std::nullopt));
  EXPECT_NE(base, StepKey(D("parent"), "RUN make", vars, Platform::Parse("linux/arm64").value(), std::nullopt));
  EXPECT_NE(base, StepKey(D("parent"), "RUN make", vars, Platform::Parse("linux/arm/v7").value(), std::nullopt));
  EXPECT_NE(StepKey(D("parent"), "RUN make", vars, Platform::Parse("linux/arm/v6").value(), std::nullopt),
            StepKey(D("parent"), "RUN make", vars, Platform::Parse("linux/arm/v7").value(), std::nullopt));
  EXPECT_NE(base, StepKey(D("parent"), "RUN make", vars, Amd64(), D("sources")));
  EXPECT_NE(StepKey(D("parent"), "COPY . /", {}, Amd64(), D("s1")), StepKey(D("parent"), "COPY . /", {}, Amd64(), D("s2")));
  EXPECT_EQ(base, StepKey(D("parent"), "RUN make", vars, Amd64(), std::nullopt));
  // An empty value is not an absent variable.
  EXPECT_NE(StepKey(D("p"), "RUN x", {{"A", ""}}, Amd64(), std::nullopt), StepKey(D("p"), "RUN x", {}, Amd64(), std::nullopt));
}

TEST(StepKeyTest, StageBaseKeys) {
  Digest m1 = D("manifest1"), m2 = D("manifest2");
  EXPECT_NE(StageBaseKey(m1, "gzip"), StageBaseKey(m2, "gzip"));
  EXPECT_NE(StageBaseKey(m1, "gzip"), StageBaseKey(m1, "zstd"));
  EXPECT_NE(StageBaseKey(std::nullopt, "gzip"), StageBaseKey(m1, "gzip"));
  EXPECT_EQ(StageBaseKey(std::nullopt, "gzip"), StageBaseKey(std::nullopt, "gzip"));
  EXPECT_NE(AfterUncachedStepKey(m1, "ADD http://x /", D("a")), AfterUncachedStepKey(m1, "ADD http://x /", D("b")));
  EXPECT_NE(AfterUncachedStepKey(m1, "ADD http://x /", std::nullopt), AfterUncachedStepKey(m1, "ADD http://x /", D("a")));
}

TEST(StepKeyTest, DescribesWhatChanged) {
  auto before = StepKeyWithInputs(D("p"), "RUN make", {{"VERSION", "1"}, {"OLD", "x"}}, Amd64(), D("s"));
  EXPECT_EQ(before.key, StepKey(D("p"), "RUN make", {{"VERSION", "1"}, {"OLD", "x"}}, Amd64(), D("s")));
  auto now = StepKeyWithInputs(D("p"), "RUN make", {{"VERSION", "2"}, {"OLD", "x"}}, Amd64(), D("s"));
  EXPECT_EQ(DescribeKeyChange(before, now), "build arg or env VERSION changed");
  now = StepKeyWithInputs(D("q"), "RUN make", {{"VERSION", "1"}, {"NEW", "y"}}, Amd64(), D("t"));
  EXPECT_EQ(DescribeKeyChange(before, now),
            "an earlier step or the base image changed; build arg or env NEW is new; build arg or env OLD is gone; "
            "the files it copies changed");
  EXPECT_EQ(DescribeKeyChange(before, before), "");
}

// --- HashCopySources ---

class HashSourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_ = dir_.Sub("ctx");
    WriteFile(ctx_ + "/app/main.c", "int main(){}");
    WriteFile(ctx_ + "/app/util.c", "void u(){}");
    WriteFile(ctx_ + "/app/notes.md", "notes");
    WriteFile(ctx_ + "/app/build/out.o", "object");
    WriteFile(ctx_ + "/README", "readme");
    WriteFile(ctx_ + "/secret.env", "TOKEN=1");
  }

  Digest Hash(const CopyRequest& req, const dockerfile::IgnoreMatcher* ignore = nullptr, bool from_stage = false) {
    CopySource src;
    src.root = ctx_;
    src.ignore = ignore;
    src.from_stage = from_stage;
    auto r = HashCopySources(src, req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->has_value()) return Digest();
    return **r;
  }
  static CopyRequest Req(std::vector<std::string> sources, std::string dest = "/dst/") {
    CopyRequest r;
    r.sources = std::move(sources);
    r.dest = std::move(dest);
    return r;
  }

  TempDir dir_;
  std::string ctx_;
};

TEST_F(HashSourcesTest, ContentAndModeOfSelectedFilesCount) {
  CopyRequest req = Req({"app"});
  Digest h0 = Hash(req);
  EXPECT_TRUE(h0.valid());
  EXPECT_EQ(h0, Hash(req));
  WriteFile(ctx_ + "/app/main.c", "int main(){return 1;}");
  Digest h1 = Hash(req);
  EXPECT_NE(h0, h1);
  ASSERT_EQ(::chmod((ctx_ + "/app/main.c").c_str(), 0755), 0);
  Digest h2 = Hash(req);
  EXPECT_NE(h1, h2);
  ASSERT_EQ(::chmod((ctx_ + "/app/build").c_str(), 0700), 0);  // a directory's mode is copied too
  Digest h3 = Hash(req);
  EXPECT_NE(h2, h3);
  WriteFile(ctx_ + "/app/new.c", "");  // a new empty file is a new entry
  EXPECT_NE(h3, Hash(req));
}

TEST_F(HashSourcesTest, MtimeDoesNotCount) {
  CopyRequest req = Req({"app"});
  Digest h0 = Hash(req);
  struct timespec ts[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (ctx_ + "/app/main.c").c_str(), ts, 0), 0);
  EXPECT_EQ(h0, Hash(req));
}

TEST_F(HashSourcesTest, FilesOutsideTheSelectionDoNotCount) {
  CopyRequest req = Req({"app/*.c"});
  Digest h0 = Hash(req);
  WriteFile(ctx_ + "/README", "changed");
  WriteFile(ctx_ + "/app/notes.md", "changed");      // not matched by the glob
  WriteFile(ctx_ + "/app/build/out.o", "changed");  // not matched either ('*' does not cross '/')
  EXPECT_EQ(h0, Hash(req));
  WriteFile(ctx_ + "/app/util.c", "changed");
  EXPECT_NE(h0, Hash(req));
  // A file that newly matches the glob changes the hash.
  Digest h1 = Hash(req);
  WriteFile(ctx_ + "/app/extra.c", "");
  EXPECT_NE(h1, Hash(req));
}

TEST_F(HashSourcesTest, DockerignoredFilesDoNotCount) {
  auto ignore = dockerfile::IgnoreMatcher::Create(dockerfile::ReadIgnorePatterns("*.env\napp/build\napp/*.md\n!app/keep.md\n"));
  ASSERT_TRUE(ignore.ok());
  CopyRequest req = Req({"."});
  Digest h0 = Hash(req, &*ignore);
  WriteFile(ctx_ + "/secret.env", "TOKEN=2");
  WriteFile(ctx_ + "/app/build/out.o", "changed");
  WriteFile(ctx_ + "/app/build/new.o", "new");
  WriteFile(ctx_ + "/app/notes.md", "changed");
  EXPECT_EQ(h0, Hash(req, &*ignore));
  // The exception is copied, so it counts.
  WriteFile(ctx_ + "/app/keep.md", "kept");
  Digest h1 = Hash(req, &*ignore);
  EXPECT_NE(h0, h1);
  WriteFile(ctx_ + "/README", "changed");
  EXPECT_NE(h1, Hash(req, &*ignore));
  // Without the ignore file, the ignored files count.
  Digest all = Hash(req);
  WriteFile(ctx_ + "/secret.env", "TOKEN=3");
  EXPECT_NE(all, Hash(req));
}

TEST_F(HashSourcesTest, ExcludeFlag) {
  CopyRequest req = Req({"app"});
  req.excludes = {"build", "*.md"};
  Digest h0 = Hash(req);
  WriteFile(ctx_ + "/app/build/out.o", "changed");
  WriteFile(ctx_ + "/app/notes.md", "changed");
  EXPECT_EQ(h0, Hash(req));
  WriteFile(ctx_ + "/app/util.c", "changed");
  EXPECT_NE(h0, Hash(req));
  // The exclude list is part of the key: the same files with another --exclude differ.
  CopyRequest other = req;
  other.excludes = {"build"};
  EXPECT_NE(Hash(req), Hash(other));
}

TEST_F(HashSourcesTest, DirectoryAndFileSourcesAndRequestFields) {
  Digest dir = Hash(Req({"app"}));
  Digest file = Hash(Req({"app/main.c"}));
  EXPECT_NE(dir, file);
  // The destination, workdir, chown and chmod shape the layer, so they are in the hash.
  EXPECT_NE(Hash(Req({"app"}, "/a/")), Hash(Req({"app"}, "/b/")));
  CopyRequest wd = Req({"app"}, "rel/");
  Digest w1 = Hash(wd);
  wd.workdir = "/srv";
  EXPECT_NE(w1, Hash(wd));
  CopyRequest owned = Req({"app"});
  owned.chown = std::make_pair(1000u, 1000u);
  EXPECT_NE(dir, Hash(owned));
  CopyRequest moded = Req({"app"});
  moded.chmod = 0700;
  EXPECT_NE(dir, Hash(moded));
  // Renaming a file inside the copied directory changes the hash.
  ASSERT_EQ(::rename((ctx_ + "/app/util.c").c_str(), (ctx_ + "/app/util2.c").c_str()), 0);
  EXPECT_NE(dir, Hash(Req({"app"})));
}

TEST_F(HashSourcesTest, Symlinks) {
  ASSERT_EQ(::symlink("main.c", (ctx_ + "/app/link").c_str()), 0);
  CopyRequest req = Req({"app"});
  Digest h0 = Hash(req);
  // Inside a directory, a symlink is copied as a link: its target counts.
  ASSERT_EQ(::unlink((ctx_ + "/app/link").c_str()), 0);
  ASSERT_EQ(::symlink("util.c", (ctx_ + "/app/link").c_str()), 0);
  EXPECT_NE(h0, Hash(req));
  // A top-level symlink is followed: what counts is the content it points at.
  ASSERT_EQ(::symlink("app/main.c", (ctx_ + "/top").c_str()), 0);
  CopyRequest top = Req({"top"}, "/x");
  Digest t0 = Hash(top);
  WriteFile(ctx_ + "/app/main.c", "changed");
  EXPECT_NE(t0, Hash(top));
  // A symlink that leaves the root resolves inside it.
  ASSERT_EQ(::symlink("/../../README", (ctx_ + "/esc").c_str()), 0);
  CopyRequest esc = Req({"esc"}, "/x");
  Digest e0 = Hash(esc);
  WriteFile(ctx_ + "/README", "changed");
  EXPECT_NE(e0, Hash(esc));
}

TEST_F(HashSourcesTest, Hardlinks) {
  CopyRequest req = Req({"app"});
  Digest h0 = Hash(req);
  ASSERT_EQ(::link((ctx_ + "/app/main.c").c_str(), (ctx_ + "/app/z.c").c_str()), 0);
  Digest linked = Hash(req);
  EXPECT_NE(h0, linked);
  // The same content as a separate file is a different layer (a file, not a hardlink entry).
  ASSERT_EQ(::unlink((ctx_ + "/app/z.c").c_str()), 0);
  WriteFile(ctx_ + "/app/z.c", "int main(){}");
  EXPECT_NE(linked, Hash(req));
}

TEST_F(HashSourcesTest, OwnersOnlyForFromSources) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  CopyRequest req = Req({"app"});
  Digest ctx0 = Hash(req, nullptr, false), stage0 = Hash(req, nullptr, true);
  ASSERT_EQ(::chown((ctx_ + "/app/main.c").c_str(), 1000, 1000), 0);
  EXPECT_EQ(ctx0, Hash(req, nullptr, false));   // context files become 0:0
  EXPECT_NE(stage0, Hash(req, nullptr, true));  // stage files keep their owners
  req.chown = std::make_pair(5u, 5u);
  Digest chowned = Hash(req, nullptr, true);
  ASSERT_EQ(::chown((ctx_ + "/app/main.c").c_str(), 0, 0), 0);
  EXPECT_EQ(chowned, Hash(req, nullptr, true));  // --chown replaces them
}

TEST_F(HashSourcesTest, InlineSourcesUrlsAndErrors) {
  CopyRequest a = Req({}, "/x/");
  a.inline_sources.push_back({"f", "hello", true});
  CopyRequest b = a;
  b.inline_sources[0].data = "hello2";
  CopyRequest c = a;
  c.inline_sources[0].path = "g";
  EXPECT_NE(Hash(a), Hash(b));
  EXPECT_NE(Hash(a), Hash(c));
  CopySource src;
  src.root = ctx_;
  // A URL without --checksum is never cached; with one, the URL and checksum are the key.
  CopyRequest url = Req({"https://example.com/a.tgz"});
  url.add = true;
  auto r = HashCopySources(src, url);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->has_value());
  url.checksum = "sha256:" + std::string(64, 'a');
  Digest u1 = Hash(url);
  url.checksum = "sha256:" + std::string(64, 'b');
  EXPECT_NE(u1, Hash(url));
  // A missing source or a git URL is an error (the copy reports it).
  EXPECT_EQ(HashCopySources(src, Req({"nope"})).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(HashCopySources(src, Req({"nope*"})).status().code(), ErrorCode::kNotFound);
  CopyRequest git = Req({"https://github.com/a/b.git"});
  git.add = true;
  EXPECT_FALSE(HashCopySources(src, git).ok());
  EXPECT_FALSE(HashCopySources(src, Req({"https://x/y"})).ok());  // COPY of a URL
}

TEST_F(HashSourcesTest, FromKeySources) {
  CopyRequest req = Req({"/out/bin"});
  Digest a = CopyFromKeySources(D("stage1"), req);
  EXPECT_NE(a, CopyFromKeySources(D("stage2"), req));
  EXPECT_NE(a, CopyFromKeySources(D("stage1"), Req({"/out/lib"})));
  EXPECT_EQ(a, CopyFromKeySources(D("stage1"), req));
}

// The oracle: ExecuteCopy itself. For every file of the context, changing it must change the hash
// exactly when it changes what the copy produces.
std::string TreeSnapshot(const std::string& root) {
  std::string out;
  kiln::testing::RunShell("cd '" + root + "' && find . -printf '%p %y %m %l\\n' | sort && find . -type f | sort | xargs -r cat",
                          &out);
  return out;
}

TEST_F(HashSourcesTest, AgreesWithExecuteCopyOnWhatIsRead) {
  WriteFile(ctx_ + "/app/keep.md", "keep");
  WriteFile(ctx_ + "/lib/a/x.txt", "x");
  WriteFile(ctx_ + "/lib/b/y.txt", "y");
  WriteFile(ctx_ + "/lib/b/skip.tmp", "t");
  auto ignore = dockerfile::IgnoreMatcher::Create(dockerfile::ReadIgnorePatterns("app/*.md\n!app/keep.md\n*.env\n"));
  ASSERT_TRUE(ignore.ok());
  std::vector<std::string> files = {"app/main.c", "app/util.c",   "app/notes.md", "app/keep.md", "app/build/out.o",
                                    "README",     "secret.env",   "lib/a/x.txt",  "lib/b/y.txt", "lib/b/skip.tmp"};
  std::vector<CopyRequest> requests;
  requests.push_back(Req({"app"}));
  requests.push_back(Req({"app/*.c", "README"}));
  CopyRequest ex = Req({"lib"});
  ex.excludes = {"**/*.tmp"};
  requests.push_back(ex);
  CopyRequest parents = Req({"lib/*/y.txt"});
  parents.parents = true;
  requests.push_back(parents);
  requests.push_back(Req({"."}));
  int n = 0;
  for (const CopyRequest& req : requests) {
    SCOPED_TRACE("request " + std::to_string(n));
    CopySource src;
    src.root = ctx_;
    src.ignore = &*ignore;
    auto copy = [&]() {
      std::string root = dir_.Sub("rootfs" + std::to_string(n++));
      ::mkdir(root.c_str(), 0755);
      auto r = ExecuteCopy(src, root, req, nullptr);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      return TreeSnapshot(root);
    };
    std::string tree0 = copy();
    Digest h0 = Hash(req, &*ignore);
    int changed = 0, unchanged = 0;
    for (const std::string& f : files) {
      std::string before = kiln::testing::ReadFile(ctx_ + "/" + f);
      WriteFile(ctx_ + "/" + f, before + "+");
      bool copy_changed = copy() != tree0;
      bool hash_changed = Hash(req, &*ignore) != h0;
      EXPECT_EQ(copy_changed, hash_changed) << f;
      (copy_changed ? changed : unchanged)++;
      WriteFile(ctx_ + "/" + f, before);
    }
    // Both outcomes occur for every request, so the comparison is not vacuous.
    EXPECT_GT(changed, 0);
    EXPECT_GT(unchanged, 0);
  }
}

}  // namespace
}  // namespace kiln::executor
