// .dockerignore matching checked against moby/patternmatcher's own table (TestMatches) and the
// .dockerignore section of the Docker build context documentation.
#include "executor/dockerfile/dockerignore.h"

#include <gtest/gtest.h>

#include <set>

namespace kiln::dockerfile {
namespace {

struct MatchCase {
  const char* pattern;
  const char* path;
  bool excluded;
};

const MatchCase kMatchCases[] = {
    {"**", "file", true},
    {"**", "file/", true},
    {"**/", "file", true},
    {"**", "dir/file", true},
    {"**/", "dir/file", true},
    {"**/**", "dir/file", true},
    {"dir/**", "dir/file", true},
    {"dir/**", "dir/dir2/file", true},
    {"**/dir", "dir", true},
    {"**/dir", "dir/file", true},
    {"**/dir2/*", "dir/dir2/file", true},
    {"**/dir2/**", "dir/dir2/dir3/file", true},
    {"**file", "file", true},
    {"**file", "dir/file", true},
    {"**/file", "dir/file", true},
    {"**file", "dir/dir/file", true},
    {"**/file", "dir/dir/file", true},
    {"**/file*", "dir/dir/file", true},
    {"**/file*", "dir/dir/file.txt", true},
    {"**/file*txt", "dir/dir/file.txt", true},
    {"**/file*.txt", "dir/dir/file.txt", true},
    {"**/file*.txt*", "dir/dir/file.txt", true},
    {"**/**/*.txt", "dir/dir/file.txt", true},
    {"**/**/*.txt2", "dir/dir/file.txt", false},
    {"**/*.txt", "file.txt", true},
    {"**/**/*.txt", "file.txt", true},
    {"a**/*.txt", "a/file.txt", true},
    {"a**/*.txt", "a/dir/file.txt", true},
    {"a**/*.txt", "a/dir/dir/file.txt", true},
    {"a/*.txt", "a/dir/file.txt", false},
    {"a/*.txt", "a/file.txt", true},
    {"a/*.txt**", "a/file.txt", true},
    {"a[b-d]e", "ae", false},
    {"a[b-d]e", "ace", true},
    {"a[b-d]e", "aae", false},
    {"a[^b-d]e", "aze", true},
    {".*", ".foo", true},
    {".*", "foo", false},
    {"abc.def", "abcdef", false},
    {"abc.def", "abc.def", true},
    {"abc.def", "abcZdef", false},
    {"abc?def", "abcZdef", true},
    {"abc?def", "abcdef", false},
    {"a\\\\", "a\\", true},
    {"**/foo/bar", "foo/bar", true},
    {"**/foo/bar", "dir/foo/bar", true},
    {"**/foo/bar", "dir/dir2/foo/bar", true},
    {"abc/**", "abc", false},
    {"abc/**", "abc/def", true},
    {"abc/**", "abc/def/ghi", true},
    {"**/.foo", ".foo", true},
    {"**/.foo", "bar.foo", false},
    {"a(b)c/def", "a(b)c/def", true},
    {"a(b)c/def", "a(b)c/xyz", false},
    {"a.|)$(}+{bc", "a.|)$(}+{bc", true},
    {"dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
    // A pattern that matches a directory excludes everything below it.
    {"node_modules", "node_modules/x/y.js", true},
    {"*/temp*", "somedir/temporary.txt", true},
    {"*/temp*", "somedir/temp", true},
    {"*/*/temp*", "somedir/subdir/temporary.txt", true},
    {"temp?", "tempa", true},
    {"temp?", "temp", false},
    // '*' never crosses '/', and patterns are anchored at the context root.
    {"*.go", "dir/a.go", false},
    {"*.go", "a.go", true},
    {"/foo", "foo", true},
    {"./foo/../bar", "bar/x", true},
    {"**/*.md", "docs/a/b.md", true},
};

TEST(DockerignoreTest, MatchesLikePatternmatcher) {
  for (const MatchCase& c : kMatchCases) {
    Result<IgnoreMatcher> m = IgnoreMatcher::Create(ReadIgnorePatterns(c.pattern));
    ASSERT_TRUE(m.ok()) << c.pattern << ": " << m.status().message();
    EXPECT_EQ(m->Excluded(c.path), c.excluded) << "pattern " << c.pattern << " path " << c.path;
  }
}

TEST(DockerignoreTest, ExceptionsApplyInOrder) {
  struct {
    const char* file;
    const char* path;
    bool excluded;
  } cases[] = {
      {"*.md\n!README.md", "README.md", false},
      {"*.md\n!README.md", "CHANGES.md", true},
      {"*.md\n!README*.md\nREADME-secret.md", "README-secret.md", true},
      {"*.md\n!README*.md\nREADME-secret.md", "README-public.md", false},
      {"docs\n!docs/README.md", "docs/README.md", false},
      {"docs\n!docs/README.md", "docs/other.md", true},
      {"!keep\n*", "keep", true},
      {"*\n!keep", "keep", false},
      {"*\n!keep", "other", true},
      {"!x", "x", false},
      {".", "anything", false},
  };
  for (const auto& c : cases) {
    Result<IgnoreMatcher> m = IgnoreMatcher::Create(ReadIgnorePatterns(c.file));
    ASSERT_TRUE(m.ok()) << c.file;
    EXPECT_EQ(m->Excluded(c.path), c.excluded) << c.file << " / " << c.path;
  }
}

TEST(DockerignoreTest, ContextRootIsNeverExcluded) {
  Result<IgnoreMatcher> m = IgnoreMatcher::Create({"**"});
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->Excluded("."));
  EXPECT_FALSE(m->Excluded(""));
  EXPECT_TRUE(m->Excluded("a"));
}

TEST(DockerignoreTest, ReadsPatternsLikeIgnorefile) {
  EXPECT_EQ(ReadIgnorePatterns("\xEF\xBB\xBF# comment\n/foo/../bar\n  baz  \n! /qux/\n\n  # not a comment\r\ndir//sub/.\n"),
            (std::vector<std::string>{"bar", "baz", "!qux", "# not a comment", "dir/sub"}));
  EXPECT_EQ(ReadIgnorePatterns(""), std::vector<std::string>{});
  EXPECT_EQ(ReadIgnorePatterns("/"), std::vector<std::string>{"/"});
}

TEST(DockerignoreTest, ExceptionsAreReported) {
  EXPECT_TRUE(IgnoreMatcher::Create({"a", "!b"})->HasExceptions());
  EXPECT_FALSE(IgnoreMatcher::Create({"a", "b"})->HasExceptions());
}

TEST(DockerignoreTest, BadPatterns) {
  struct {
    const char* pattern;
    const char* msg;
  } cases[] = {
      {"!", "illegal exclusion pattern: \"!\""},
      {"[", "syntax error in .dockerignore pattern \"[\""},
      {"a[b", "syntax error in .dockerignore pattern \"a[b\""},
      {"a\\", "syntax error in .dockerignore pattern \"a\\\""},
      {"[]a]", "syntax error in .dockerignore pattern \"[]a]\""},
      {"[z-a]", "syntax error in .dockerignore pattern \"[z-a]\""},
  };
  for (const auto& c : cases) {
    Result<IgnoreMatcher> m = IgnoreMatcher::Create(ReadIgnorePatterns(c.pattern));
    ASSERT_FALSE(m.ok()) << c.pattern;
    EXPECT_EQ(m.status().message(), c.msg);
  }
}

TEST(DockerignoreTest, CleanPathIsGoPathClean) {
  struct {
    const char* in;
    const char* out;
  } cases[] = {{"", "."}, {"a//b", "a/b"}, {"a/./b/", "a/b"}, {"a/../..", ".."}, {"/../a", "/a"}, {"./", "."}, {"/", "/"}};
  for (const auto& c : cases) EXPECT_EQ(CleanPath(c.in), c.out) << c.in;
}

TEST(DockerignoreTest, DockerfileSpecificIgnoreFileWins) {
  std::set<std::string> files = {"ctx/.dockerignore", "ctx/build/app.Dockerfile.dockerignore"};
  auto exists = [&](const std::string& p) { return files.count(p) > 0; };
  EXPECT_EQ(ChooseIgnoreFile("ctx", "ctx/build/app.Dockerfile", exists), "ctx/build/app.Dockerfile.dockerignore");
  EXPECT_EQ(ChooseIgnoreFile("ctx", "ctx/Dockerfile", exists), "ctx/.dockerignore");
  files.clear();
  EXPECT_EQ(ChooseIgnoreFile("ctx", "ctx/Dockerfile", exists), std::nullopt);
}

}  // namespace
}  // namespace kiln::dockerfile
