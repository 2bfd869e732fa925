// Build checks (executor/dockerfile/checks.h): each rule, the # check= directive, and BuildKit's
// secret-name test.
#include "executor/dockerfile/checks.h"

#include <gtest/gtest.h>

namespace kiln::dockerfile {
namespace {

std::vector<std::string> Rules(const std::string& text, const CheckConfig& config = {}) {
  auto df = Parse(text);
  EXPECT_TRUE(df.ok()) << df.status().ToString();
  std::vector<std::string> out;
  for (const CheckFinding& f : RunChecks(*df, config)) out.push_back(f.rule + "@" + std::to_string(f.loc.line));
  return out;
}

TEST(ChecksTest, SecretNamesAsBuildKitSeesThem) {
  for (const char* yes : {"GITHUB_TOKEN", "password", "DB_PASSWD", "AWS_SECRET_ACCESS_KEY", "API_KEY", "apikey",
                          "NPM_AUTH", "GOOGLE_CREDENTIALS", "token"}) {
    EXPECT_TRUE(LooksLikeSecretName(yes)) << yes;
  }
  for (const char* no : {"PUBLIC_KEY", "KEYBOARD", "TOKENIZER_VERSION", "MONKEY", "VERSION", "AUTHOR", ""}) {
    EXPECT_FALSE(LooksLikeSecretName(no)) << no;
  }
}

TEST(ChecksTest, EachRuleAtItsLine) {
  EXPECT_EQ(Rules("ARG NPM_TOKEN\nFROM scratch AS Build\nENV A=1 DB_PASSWORD=x\nCMD run it\nENTRYPOINT [\"/x\"]\n"
                  "from scratch AS next\nENTRYPOINT serve\n"),
            (std::vector<std::string>{"SecretsUsedInArgOrEnv@1", "StageNameCasing@2", "SecretsUsedInArgOrEnv@3",
                                      "JSONArgsRecommended@4", "FromAsCasing@6", "JSONArgsRecommended@7"}));
  EXPECT_TRUE(Rules("FROM scratch AS build\nARG VERSION\nCMD [\"/app\"]\n").empty());
}

TEST(ChecksTest, TheCheckDirectiveSkipsAndTurnsIntoErrors) {
  auto skip = ParseCheckDirective("skip=JSONArgsRecommended,StageNameCasing;error=true");
  ASSERT_TRUE(skip.ok()) << skip.status().ToString();
  EXPECT_TRUE(skip->error);
  EXPECT_EQ(Rules("FROM scratch AS Build\nCMD run\nARG TOKEN\n", *skip), (std::vector<std::string>{"SecretsUsedInArgOrEnv@3"}));
  auto all = ParseCheckDirective(" skip = all ");
  ASSERT_FALSE(all.ok());  // "skip " is not a key: spaces around '=' are not allowed, as in BuildKit
  all = ParseCheckDirective("skip=all");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(Rules("FROM scratch AS Build\nCMD run\n", *all).empty());
  EXPECT_FALSE(ParseCheckDirective("skip=NoSuchRule").ok());
  EXPECT_FALSE(ParseCheckDirective("error=maybe").ok());
  EXPECT_FALSE(ParseCheckDirective("severity=high").ok());
  EXPECT_TRUE(ParseCheckDirective("").ok());
}

TEST(ChecksTest, FindingsNameFileLineAndRule) {
  auto df = Parse("FROM scratch\nENV SECRET=x\n", "app/Dockerfile");
  ASSERT_TRUE(df.ok());
  auto f = RunChecks(*df, {});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].formatted.rfind("app/Dockerfile:2:1: SecretsUsedInArgOrEnv: ", 0), 0u) << f[0].formatted;
  // It says what to use instead.
  EXPECT_NE(f[0].formatted.find("kiln build --secret id=SECRET,env=SECRET"), std::string::npos) << f[0].formatted;
}

}  // namespace
}  // namespace kiln::dockerfile
