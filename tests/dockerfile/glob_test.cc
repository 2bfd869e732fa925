// The glob matcher shared by COPY sources (Go's filepath.Match) and .dockerignore / --exclude
// (moby/patternmatcher). Expectations follow Go's documented filepath.Match grammar; the strict
// cases follow what patternmatcher rejects.
#include "executor/dockerfile/glob.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

namespace kiln::dockerfile {
namespace {

struct Case {
  const char* pattern;
  const char* name;
  bool match;
};

constexpr GlobOptions kDockerignore{.double_star = true, .strict_classes = true};

TEST(GlobTest, StarAndQuestionMarkStayInOneDirectory) {
  const Case cases[] = {
      {"*", "", true},           {"*", "abc", true},         {"*", "a/b", false},       {"*.txt", "a.txt", true},
      {"*.txt", ".txt", true},   {"*.txt", "a.txt2", false}, {"*.txt", "d/a.txt", false}, {"*/x", "d/x", true},
      {"a*b*c", "aXbYc", true},  {"a*b*c", "aXbYcZ", false}, {"a**c", "abc", true},     {"a**c", "a/c", false},
      {"?", "a", true},          {"?", "", false},           {"?", "ab", false},        {"?", "/", false},
      {"a?c", "abc", true},      {"a?c", "a/c", false},      {"", "", true},            {"", "a", false},
      {"abc", "abc", true},      {"abc", "ab", false},       {"ab", "abc", false},
  };
  for (const Case& c : cases) EXPECT_EQ(GlobMatch(c.pattern, c.name), c.match) << c.pattern << " ~ " << c.name;
}

TEST(GlobTest, ClassesRangesAndNegation) {
  const Case cases[] = {
      {"[abc]", "b", true},      {"[abc]", "d", false},     {"[abc]", "", false},     {"[abc]", "ab", false},
      {"[a-c]x", "bx", true},    {"[a-c]x", "dx", false},   {"[a-cx-z]", "y", true},  {"[a-cx-z]", "m", false},
      {"[^a-c]x", "bx", false},  {"[^a-c]x", "dx", true},   {"[^a]", "", false},
      // '!' is an ordinary byte in Go's classes: no negation.
      {"[!a]", "!", true},       {"[!a]", "a", true},       {"[!a]", "b", false},
      // A class is one byte and, unlike '?', may be '/'.
      {"a[/]b", "a/b", true},    {"a[^x]b", "a/b", true},
      // '[' is an ordinary member; ']' right after '[' is not (Go reads it as an empty class).
      {"[[]", "[", true},        {"[]a]", "]", false},      {"[]a]", "a", false},
      // A range high < low is empty in filepath.Match, so its negation matches any byte.
      {"[z-a]", "m", false},     {"[^z-a]", "m", true},
      // Bytes above 0x7f.
      {"[\xc3]?", "\xc3\xa9", true},
  };
  for (const Case& c : cases) EXPECT_EQ(GlobMatch(c.pattern, c.name), c.match) << c.pattern << " ~ " << c.name;
}

TEST(GlobTest, Escapes) {
  const Case cases[] = {
      {"\\*", "*", true},        {"\\*", "a", false},       {"\\?", "?", true},        {"\\?", "a", false},
      {"\\[a]", "[a]", true},    {"\\a", "a", true},        {"a\\\\", "a\\", true},    {"[\\]]", "]", true},
      {"[\\-]", "-", true},      {"[\\^x]", "^", true},     {"[a\\-c]", "b", false},   {"[a\\-c]", "-", true},
      {"[\\a-\\c]", "b", true},
  };
  for (const Case& c : cases) EXPECT_EQ(GlobMatch(c.pattern, c.name), c.match) << c.pattern << " ~ " << c.name;
}

TEST(GlobTest, MalformedPatternsAreErrorsAndMatchNothing) {
  // Each is ErrBadPattern in Go's filepath.Match.
  for (const char* p : {"[", "[a", "[^", "[]", "[^]", "a[", "[a-", "[a-]", "[-a]", "[a--]", "\\", "a\\", "[\\",
                        "[a\\", "*[", "x*[a"}) {
    Result<Glob> g = Glob::Compile(p);
    ASSERT_FALSE(g.ok()) << p;
    EXPECT_EQ(g.status().code(), ErrorCode::kInvalidArgument) << p;
    EXPECT_NE(g.status().message().find("syntax error in pattern"), std::string::npos) << g.status().message();
    EXPECT_FALSE(GlobMatch(p, p)) << p;
    EXPECT_FALSE(GlobMatch(p, "a")) << p;
    EXPECT_FALSE(GlobMatch(p, "")) << p;
  }
}

TEST(GlobTest, StrictClassesRejectWhatPatternmatchersRegexpCannotMean) {
  for (const char* p : {"[z-a]", "[*]", "[?]", "[a-*]", "[\\*]"}) {
    EXPECT_TRUE(Glob::Compile(p).ok()) << p << " is valid for filepath.Match";
    EXPECT_FALSE(Glob::Compile(p, kDockerignore).ok()) << p << " is malformed for .dockerignore";
  }
  EXPECT_TRUE(GlobMatch("[*]", "*"));
  EXPECT_TRUE(GlobMatch("[?]", "?"));
  ASSERT_TRUE(Glob::Compile("[a-a]", kDockerignore).ok());
}

TEST(GlobTest, DoubleStarCrossesDirectoriesOnlyWhenAsked) {
  const Case cases[] = {
      {"**", "a/b/c", true},     {"**/c", "c", true},       {"**/c", "a/b/c", true},   {"**/c", "a/bc", false},
      {"a/**", "a/b/c", true},   {"a/**", "a", false},      {"a/**/c", "a/c", true},   {"a/**/c", "a/b/d/c", true},
      {"a**/*.txt", "a/d/f.txt", true},                     {"**/*.go", "x/y.go", true}, {"**/*.go", "x/y.c", false},
  };
  for (const Case& c : cases) {
    Result<Glob> g = Glob::Compile(c.pattern, kDockerignore);
    ASSERT_TRUE(g.ok()) << g.status().message();
    EXPECT_EQ(g->Match(c.name), c.match) << c.pattern << " ~ " << c.name;
  }
  // Without double_star, "**" is "*": it stays in one directory.
  EXPECT_FALSE(GlobMatch("**", "a/b"));
  EXPECT_TRUE(GlobMatch("**", "ab"));
  EXPECT_FALSE(GlobMatch("a/**/c", "a/c"));
  EXPECT_TRUE(GlobMatch("a/**/c", "a/b/c"));
}

// Found by fuzz/dockerignore_fuzz: backtracking over many stars was exponential, so one .dockerignore
// line of ~100 bytes held a build for minutes per context file. Each case below took far longer than
// the bound before matching remembered the (token, offset) pairs it had already ruled out.
TEST(GlobTest, ManyStarsMatchInPolynomialTime) {
  std::string stars, name(80, 'a');
  for (int i = 0; i < 30; ++i) stars += "*a";
  std::string double_stars, path;
  for (int i = 0; i < 30; ++i) double_stars += "**/*/";
  for (int i = 0; i < 60; ++i) path += "d/";
  const auto start = std::chrono::steady_clock::now();
  auto stars_glob = Glob::Compile(stars + "b");
  ASSERT_TRUE(stars_glob.ok());
  EXPECT_FALSE(stars_glob->Match(name));
  EXPECT_TRUE(stars_glob->Match(name + "b"));
  auto dirs_glob = Glob::Compile(double_stars + "x", kDockerignore);
  ASSERT_TRUE(dirs_glob.ok());
  EXPECT_FALSE(dirs_glob->Match(path + "y"));
  EXPECT_TRUE(dirs_glob->Match(path + "x"));
  // The fuzzer's own input, as a .dockerignore pattern against a deep path.
  auto found = Glob::Compile("\xff/*.(l/*(/*(*/**/***/**/**/**/**/***/**/**/**/u/****/****/**/**/**/**/***/**/**/**/u/**/**%**/u/*/*/x",
                             kDockerignore);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->Match("\xff/a.(l/b(/c(d/" + path + "u/" + path + "u/" + path + "%/u/e/f/y"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

// A run of "**/" matched one recursion level per "**": a .dockerignore line of 200000 of them (600 KB)
// overflowed the stack and killed kiln. Such a run means what one "**/" means.
TEST(GlobTest, LongRunsOfDoubleStarsDoNotRecursePerStar) {
  std::string line;
  for (int i = 0; i < 200000; ++i) line += "**/";
  auto g = Glob::Compile(line + "x", kDockerignore);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->Match("x"));
  EXPECT_TRUE(g->Match("a/b/c/x"));
  EXPECT_FALSE(g->Match("a/b/c/y"));
  auto end = Glob::Compile(line + "**", kDockerignore);
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->Match("a/b"));
  // Same answers as one "**/".
  auto one = Glob::Compile("**/x", kDockerignore);
  for (const char* name : {"x", "a/x", "a/b/x", "ax", "a/xb", "/x"}) EXPECT_EQ(one->Match(name), g->Match(name)) << name;
}

TEST(GlobTest, DoubleStarThenLiteralsIsReported) {
  auto classify = [](const char* p) {
    Result<Glob> g = Glob::Compile(p, kDockerignore);
    EXPECT_TRUE(g.ok()) << p;
    return g.ok() && g->IsDoubleStarThenLiterals();
  };
  EXPECT_TRUE(classify("**/foo/bar"));
  EXPECT_TRUE(classify("**"));
  EXPECT_TRUE(classify("**file"));
  EXPECT_FALSE(classify("**/*.txt"));
  EXPECT_FALSE(classify("a/**"));
  EXPECT_FALSE(classify("foo"));
  ASSERT_TRUE(Glob::Compile("**/foo").ok());
  EXPECT_FALSE(Glob::Compile("**/foo")->IsDoubleStarThenLiterals());  // "**" is "*" without double_star
}

}  // namespace
}  // namespace kiln::dockerfile
