// Expansion cases from BuildKit's shell lexer test table (frontend/dockerfile/shell/envVarTest) and
// the Dockerfile reference ("Environment replacement").
#include "executor/dockerfile/shell_lex.h"

#include <gtest/gtest.h>

namespace kiln::dockerfile {
namespace {

const Vars kEnv = {{"PWD", "/home"}, {"SHELL", "bash"}, {"KOREAN", "한국어"}, {"NULL", ""},
                   {"path", "/usr/local/bin/tool.tar.gz"}};

struct WordCase {
  const char* in;
  const char* want;  // nullptr = error
};

const WordCase kWordCases[] = {
    {"hello", "hello"},
    {"he'll'o", "hello"},
    {"he'llo", nullptr},
    {"he\\'llo", "he'llo"},
    {"he\\\\'llo", nullptr},
    {"abc\\tdef", "abctdef"},
    {"\"abc\\tdef\"", "abc\\tdef"},
    {"\"abc\\\\tdef\"", "abc\\tdef"},
    {"'abc\\tdef'", "abc\\tdef"},
    {"hello\\", "hello"},
    {"hello\\\\", "hello\\"},
    {"\"hello", nullptr},
    {"\"hello\\\"", nullptr},
    {"\"hel'lo\"", "hel'lo"},
    {"'hello", nullptr},
    {"'hello\\'", "hello\\"},
    {"'hello\\there'", "hello\\there"},
    {"\"''\"", "''"},
    {"$.", "$."},
    {"he$1x", "hex"},
    {"he$.x", "he$.x"},
    {"he$pwd.", "he."},
    {"he$PWD", "he/home"},
    {"he\\$PWD", "he$PWD"},
    {"he\\\\$PWD", "he\\/home"},
    {"\"he\\$PWD\"", "he$PWD"},
    {"\"he\\\\$PWD\"", "he\\/home"},
    {"\\${}", "${}"},
    {"he\\${}xx", "he${}xx"},
    {"${}", nullptr},
    {"he${}xx", nullptr},
    {"he${hi}xx", "hexx"},
    {"he${PWD}", "he/home"},
    {"he${.}", nullptr},
    {"he${XXX:-000}xx", "he000xx"},
    {"he${PWD:-000}xx", "he/homexx"},
    {"he${XXX:-$PWD}xx", "he/homexx"},
    {"he${XXX:-${PWD:-yyy}}xx", "he/homexx"},
    {"he${XXX:-${YYY:-yyy}}xx", "heyyyxx"},
    {"he${XXX:YYY}", nullptr},
    {"he${XXX?}", nullptr},
    {"he${XXX:?}", nullptr},
    {"he${PWD?}", "he/home"},
    {"he${PWD:?}", "he/home"},
    {"he${NULL?}", "he"},
    {"he${NULL:?}", nullptr},
    {"he${XXX:+${PWD}}xx", "hexx"},
    {"he${PWD:+${XXX}}xx", "hexx"},
    {"he${PWD:+${SHELL}}xx", "hebashxx"},
    {"he${XXX:+000}xx", "hexx"},
    {"he${PWD:+000}xx", "he000xx"},
    {"'he${XX}'", "he${XX}"},
    {"\"he${PWD}\"", "he/home"},
    {"\"he'$PWD'\"", "he'/home'"},
    {"\"$PWD\"", "/home"},
    {"'$PWD'", "$PWD"},
    {"'\\$PWD'", "\\$PWD"},
    {"'\"hello\"'", "\"hello\""},
    {"he${PWD", nullptr},
    {"he${PWD:=000}xx", nullptr},
    {"he${PWD:+${PWD}:}xx", "he/home:xx"},
    {"he${XXX:-\\$PWD:}xx", "he$PWD:xx"},
    {"he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"},
    {"안녕$KOREAN", "안녕한국어"},
    {"안'녕'하세요", "안녕하세요"},
    {"${{aaa}", nullptr},
    {"${aaa}}", "}"},
    {"${aaa", nullptr},
    {"${aaa}}}", "}}"},
    // Unset vs empty: the colon forms treat empty as unset.
    {"${NULL-def}", ""},
    {"${NULL:-def}", "def"},
    {"${NULL+alt}", "alt"},
    {"${NULL:+alt}", ""},
    {"${XXX-def}", "def"},
    {"${XXX+alt}", ""},
    // Pattern removal and substitution (Dockerfile 1.7+).
    {"${path#*/}", "usr/local/bin/tool.tar.gz"},
    {"${path##*/}", "tool.tar.gz"},
    {"${path%.*}", "/usr/local/bin/tool.tar"},
    {"${path%%.*}", "/usr/local/bin/tool"},
    {"${path/local/opt}", "/usr/opt/bin/tool.tar.gz"},
    {"${path//o/0}", "/usr/l0cal/bin/t00l.tar.gz"},
    {"${path:#x}", nullptr},
};

TEST(ShellLexTest, ExpandWordTable) {
  for (const WordCase& c : kWordCases) {
    Result<std::string> got = ExpandWord(c.in, kEnv);
    if (c.want == nullptr) {
      EXPECT_FALSE(got.ok()) << c.in << " gave " << (got.ok() ? *got : "");
    } else {
      ASSERT_TRUE(got.ok()) << c.in << ": " << got.status().message();
      EXPECT_EQ(*got, c.want) << c.in;
    }
  }
}

TEST(ShellLexTest, ErrorMessagesMatchBuildKit) {
  struct {
    const char* in;
    const char* msg;
  } cases[] = {
      {"he${PWD", "failed to process \"he${PWD\": syntax error: missing '}'"},
      {"${}", "failed to process \"${}\": syntax error: bad substitution"},
      {"'x", "failed to process \"'x\": unexpected end of statement while looking for matching single-quote"},
      {"\"x", "failed to process \"\"x\": unexpected end of statement while looking for matching double-quote"},
      {"${XXX:?must be set}", "failed to process \"${XXX:?must be set}\": XXX: must be set"},
      {"${XXX?}", "failed to process \"${XXX?}\": XXX: is not allowed to be unset"},
      {"${NULL:?}", "failed to process \"${NULL:?}\": NULL: is not allowed to be empty"},
      {"${XXX:=a}", "failed to process \"${XXX:=a}\": unsupported modifier (:=) in substitution"},
  };
  for (const auto& c : cases) {
    Result<std::string> got = ExpandWord(c.in, kEnv);
    ASSERT_FALSE(got.ok()) << c.in;
    EXPECT_EQ(got.status().message(), c.msg);
  }
}

TEST(ShellLexTest, BacktickEscape) {
  struct {
    const char* in;
    const char* want;
  } cases[] = {
      {"C:\\path\\x", "C:\\path\\x"},  // backslash is an ordinary character with escape=`
      {"a`$PWD", "a$PWD"},
      {"\"a`\"b\"", "a\"b"},
      {"$PWD`", "/home"},
  };
  for (const auto& c : cases) {
    Result<std::string> got = ExpandWord(c.in, kEnv, '`');
    ASSERT_TRUE(got.ok()) << c.in;
    EXPECT_EQ(*got, c.want) << c.in;
  }
}

TEST(ShellLexTest, ExpandWordsSplitsUnquotedValues) {
  Vars env = {{"hi", "hi"}, {"space", "abc  def"}, {"leading", "  ab c"}};
  struct {
    const char* in;
    std::vector<std::string> want;
  } cases[] = {
      {"hello", {"hello"}},
      {"hello${hi}bye", {"hellohibye"}},
      {"hello${space}bye", {"helloabc", "defbye"}},
      {"hello\"${space}\"bye", {"helloabc  defbye"}},
      {"hello \"${space}\"bye", {"hello", "abc  defbye"}},
      {"hello${leading}def", {"hello", "ab", "cdef"}},
      {"hello\"${leading}\" def", {"hello  ab c", "def"}},
      {"80/tcp  443", {"80/tcp", "443"}},
      {"a \"\" b", {"a", "b"}},
      {"", {}},
  };
  for (const auto& c : cases) {
    Result<std::vector<std::string>> got = ExpandWords(c.in, env);
    ASSERT_TRUE(got.ok()) << c.in;
    EXPECT_EQ(*got, c.want) << c.in;
  }
}

TEST(ShellLexTest, ReportsVariablesThatWereSet) {
  std::set<std::string> used;
  ASSERT_TRUE(ExpandWord("$PWD ${XXX:-x} ${SHELL}", kEnv, '\\', &used).ok());
  EXPECT_EQ(used, (std::set<std::string>{"PWD", "SHELL"}));
}

TEST(ShellLexTest, SkipUnsetKeepsReferences) {
  LexOptions o;
  o.skip_unset = true;
  Result<std::string> got = ExpandWord("$XXX ${YYY} $PWD", kEnv, o);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "$XXX ${YYY} /home");
}

}  // namespace
}  // namespace kiln::dockerfile
