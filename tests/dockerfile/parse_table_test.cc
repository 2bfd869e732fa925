// Table-driven parser cases, each checked against the Dockerfile reference (parser directives,
// escape, line continuation, heredocs, every instruction's forms and flags) and, where the reference
// is silent, against BuildKit's parser (frontend/dockerfile/parser, instructions/parse.go, bflag.go).
#include <gtest/gtest.h>

#include "executor/dockerfile/parser.h"
#include "executor/dockerfile/plan.h"

namespace kiln::dockerfile {
namespace {

// Every instruction of `df` in file order as "LINE:END_LINE ORIGINAL", joined with "|".
std::string Summary(const Dockerfile& df) {
  std::vector<const Instruction*> all;
  for (const Instruction& a : df.meta_args) all.push_back(&a);
  for (const ParsedStage& s : df.stages) {
    all.push_back(&s.from);
    for (const Instruction& c : s.commands) all.push_back(&c);
  }
  std::string out;
  for (const Instruction* i : all) {
    if (!out.empty()) out += "|";
    out += std::to_string(i->loc.line) + ":" + std::to_string(i->loc.end_line) + " " + i->original;
  }
  return out;
}

const Instruction& Last(const Dockerfile& df) {
  const ParsedStage& s = df.stages.back();
  return s.commands.empty() ? s.from : s.commands.back();
}

struct LexCase {
  const char* text;
  const char* summary;
  size_t warnings;  // empty continuation lines
};

const LexCase kLexCases[] = {
    {"FROM a\nRUN a \\\n b\n", "1:1 FROM a|2:3 RUN a  b", 0},
    {"FROM a\nRUN a \\  \t\n b\n", "1:1 FROM a|2:3 RUN a  b", 0},  // blanks after the escape
    {"FROM a\nRUN a \\\n# comment\n b\n", "1:1 FROM a|2:4 RUN a  b", 0},
    {"FROM a\nRUN a \\\n   # indented comment\n b\n", "1:1 FROM a|2:4 RUN a  b", 0},
    {"FROM a\nRUN a \\\n\n b\n", "1:1 FROM a|2:4 RUN a  b", 1},
    {"FROM a\nRUN a \\\n \t \n b\n", "1:1 FROM a|2:4 RUN a  b", 1},
    {"FROM a\nRUN a \\\n", "1:1 FROM a|2:2 RUN a", 0},  // continuation into the end of the file
    {"FROM a\nRUN a \\\n# trailing comment\n", "1:1 FROM a|2:3 RUN a", 0},
    // The continuation regexp only looks at the last character: an escaped escape still continues.
    {"FROM a\nRUN echo \\\\\nRUN x\n", "1:1 FROM a|2:3 RUN echo \\RUN x", 0},
    {"FROM a\n# a comment ending in \\\nRUN x\n", "1:1 FROM a|3:3 RUN x", 0},
    {"FROM a\r\nRUN a \\\r\n b\r\n", "1:1 FROM a|2:3 RUN a  b", 0},
    {"FROM a\nRUN \\\n echo hi\n", "1:1 FROM a|2:3 RUN  echo hi", 0},
    {"FROM \\\n alpine \\\n AS b\n", "1:3 FROM  alpine  AS b", 0},
    {"  FROM a\n\t RUN x\n", "1:1 FROM a|2:2 RUN x", 0},
    {"FROM a\n   \n\nRUN x\n", "1:1 FROM a|4:4 RUN x", 0},
    {"FROM a\nRUN x # not a comment\n", "1:1 FROM a|2:2 RUN x # not a comment", 0},
    {"FROM a\nRUN a \\\nb \\\nc\n", "1:1 FROM a|2:4 RUN a b c", 0},
    {"FROM a\nRUN a\\\nb\n", "1:1 FROM a|2:3 RUN ab", 0},  // nothing is inserted at the join
    {"# escape=`\nFROM a\nRUN a `\n b\n", "2:2 FROM a|3:4 RUN a  b", 0},
    {"# escape=`\nFROM a\nRUN dir c:\\\nRUN x\n", "2:2 FROM a|3:3 RUN dir c:\\|4:4 RUN x", 0},
    {"# escape=`\nFROM a\nRUN a `  \n b\n", "2:2 FROM a|3:4 RUN a  b", 0},
    {"#escape=`\nFROM a\nRUN a `\n# c\n\n b\n", "2:2 FROM a|3:6 RUN a  b", 1},
    {"ARG A=1\nARG B\nFROM a\n", "1:1 ARG A=1|2:2 ARG B|3:3 FROM a", 0},
    {"FROM a\nRUN <<EOF\nline \\\nEOF\nRUN y\n", "1:1 FROM a|2:4 RUN <<EOF|5:5 RUN y", 0},  // no joining in bodies
};

TEST(ParseTableTest, ContinuationsCommentsAndBlankLines) {
  for (const LexCase& c : kLexCases) {
    Result<Dockerfile> df = Parse(c.text);
    ASSERT_TRUE(df.ok()) << c.text << "\n" << df.status().message();
    EXPECT_EQ(Summary(*df), c.summary) << c.text;
    EXPECT_EQ(df->warnings.size(), c.warnings) << c.text;
  }
}

struct DirectiveCase {
  const char* text;
  char escape;
  const char* syntax;
  const char* check;
};

const DirectiveCase kDirectiveCases[] = {
    {"# syntax=docker/dockerfile:1.7\nFROM a\n", '\\', "docker/dockerfile:1.7", ""},
    {"#syntax=x\n#escape=`\nFROM a\n", '`', "x", ""},
    {"# ESCAPE=`\nFROM a\n", '`', "", ""},  // names are case-insensitive
    {"#  escape  =  `  \nFROM a\n", '`', "", ""},
    {"# check=error=true\nFROM a\n", '\\', "", "error=true"},
    {"# escape=`\n# syntax=s\n# check=skip=all\nFROM a\n", '`', "s", "skip=all"},
    {"\xEF\xBB\xBF# escape=`\nFROM a\n", '`', "", ""},  // after a byte order mark
    {"  # escape=`\nFROM a\n", '`', "", ""},
    {"# escape=\nFROM a\n", '\\', "", ""},  // no value: a comment
    {"# syntax = a b \nFROM a\n", '\\', "a b", ""},
    {"# hello\n# escape=`\nFROM a\n", '\\', "", ""},  // after a comment: a comment
    {"# unknown=1\n# escape=`\nFROM a\n", '\\', "", ""},  // an unknown directive ends them
    {"FROM a\n# escape=`\n", '\\', "", ""},
    {"#escape=`\n\n# syntax=x\nFROM a\n", '`', "", ""},  // a blank line ends them
    {"# escape = \\\nFROM a\n", '\\', "", ""},
    {"# 1escape=`\nFROM a\n", '\\', "", ""},
    {"# escape=`\n\n# escape=\\\nFROM a\n", '`', "", ""},  // the second is only a comment
};

TEST(ParseTableTest, ParserDirectives) {
  for (const DirectiveCase& c : kDirectiveCases) {
    Result<Dockerfile> df = Parse(c.text);
    ASSERT_TRUE(df.ok()) << c.text << "\n" << df.status().message();
    EXPECT_EQ(df->directives.escape, c.escape) << c.text;
    EXPECT_EQ(df->directives.syntax, c.syntax) << c.text;
    EXPECT_EQ(df->directives.check, c.check) << c.text;
  }
}

struct FormCase {
  const char* text;
  const char* details;  // InstructionDetailsJson of the last instruction
};

const FormCase kFormCases[] = {
    // FROM
    {"FROM alpine", R"({"image":"alpine","as":"","platform":""})"},
    {"FROM alpine:3.19 AS build", R"({"image":"alpine:3.19","as":"build","platform":""})"},
    {"from alpine as Build", R"({"image":"alpine","as":"build","platform":""})"},
    {"FROM --platform=linux/arm64 alpine", R"({"image":"alpine","as":"","platform":"linux/arm64"})"},
    {"FROM ${IMG}:${TAG:-latest} AS x.y_z-1", R"({"image":"${IMG}:${TAG:-latest}","as":"x.y_z-1","platform":""})"},
    {"FROM scratch", R"({"image":"scratch","as":"","platform":""})"},
    // RUN
    {"FROM a\nRUN echo hi", R"({"form":"shell","args":["echo hi"]})"},
    {"FROM a\nRUN [\"echo\",\"hi\"]", R"({"form":"exec","args":["echo","hi"]})"},
    {"FROM a\nRUN [ \"a\" , \"b c\" ]", R"({"form":"exec","args":["a","b c"]})"},
    {"FROM a\nRUN []", R"({"form":"exec","args":[]})"},
    {"FROM a\nRUN [\"a\", 'b']", R"({"form":"shell","args":["[\"a\", 'b']"]})"},  // not JSON: shell form
    {"FROM a\nrun   echo   spaced", R"({"form":"shell","args":["echo   spaced"]})"},
    {"FROM a\nRUN --network=none --security=insecure true",
     R"({"form":"shell","args":["true"],"network":"none","security":"insecure"})"},
    {"FROM a\nRUN --network=host --network=default x", nullptr},  // duplicate: see errors
    {"FROM a\nRUN --mount=type=cache,target=/c make", R"({"form":"shell","args":["make"],"mounts":["type=cache,target=/c"]})"},
    {"FROM a\nRUN --mount=type=bind,target=/x --mount=type=tmpfs,target=/t ls",
     R"({"form":"shell","args":["ls"],"mounts":["type=bind,target=/x","type=tmpfs,target=/t"]})"},
    {"FROM a\nRUN -- --help", R"({"form":"shell","args":["--help"]})"},  // "--" ends the flags
    {"FROM a\nRUN --mount=\"type=secret,id=x\" cat", R"({"form":"shell","args":["cat"],"mounts":["type=secret,id=x"]})"},
    // CMD, ENTRYPOINT, SHELL
    {"FROM a\nCMD [\"nginx\", \"-g\", \"daemon off;\"]", R"({"form":"exec","args":["nginx","-g","daemon off;"]})"},
    {"FROM a\nCMD echo $HOME", R"({"form":"shell","args":["echo $HOME"]})"},
    {"FROM a\nCMD", R"({"form":"shell","args":[]})"},
    {"FROM a\nCMD []", R"({"form":"exec","args":[]})"},
    {"FROM a\nENTRYPOINT [\"/bin/tini\", \"--\"]", R"({"form":"exec","args":["/bin/tini","--"]})"},
    {"FROM a\nENTRYPOINT exec top -b", R"({"form":"shell","args":["exec top -b"]})"},
    {"FROM a\nENTRYPOINT", R"({"form":"shell","args":[]})"},
    {"FROM a\nSHELL [\"powershell\", \"-command\"]", R"({"shell":["powershell","-command"]})"},
    // LABEL, MAINTAINER
    {"FROM a\nLABEL a=b", R"({"labels":[{"key":"a","value":"b"}]})"},
    {"FROM a\nLABEL \"x y\"=\"1 2\" z=3", R"({"labels":[{"key":"\"x y\"","value":"\"1 2\""},{"key":"z","value":"3"}]})"},
    {"FROM a\nLABEL description=\"This text illustrates \\\nthat label-values can span multiple lines.\"",
     R"({"labels":[{"key":"description","value":"\"This text illustrates that label-values can span multiple lines.\""}]})"},
    {"FROM a\nLABEL a b c", R"({"labels":[{"key":"a","value":"b c"}]})"},
    {"FROM a\nMAINTAINER Jane <j@x>", R"({"maintainer":"Jane <j@x>"})"},
    // EXPOSE
    {"FROM a\nEXPOSE 80", R"({"ports":["80"]})"},
    {"FROM a\nEXPOSE 80/tcp 80/udp 443", R"({"ports":["443","80/tcp","80/udp"]})"},
    {"FROM a\nEXPOSE $PORT", R"({"ports":["$PORT"]})"},
    // COPY
    {"FROM a\nCOPY a b", R"({"sources":["a"],"dest":"b"})"},
    {"FROM a\nCOPY a b c /d/", R"({"sources":["a","b","c"],"dest":"/d/"})"},
    {"FROM a\nCOPY [\"a\",\"b\"]", R"({"sources":["a"],"dest":"b"})"},
    {"FROM a\nCOPY --from=build /out /app", R"({"from":"build","sources":["/out"],"dest":"/app"})"},
    {"FROM a\nCOPY --chown=55:mygroup files* /somedir/", R"({"sources":["files*"],"dest":"/somedir/","chown":"55:mygroup"})"},
    {"FROM a\nCOPY --chmod=644 a b", R"({"sources":["a"],"dest":"b","chmod":"644"})"},
    {"FROM a\nCOPY --link a b", R"({"sources":["a"],"dest":"b","link":true})"},
    {"FROM a\nCOPY --link=false a b", R"({"sources":["a"],"dest":"b"})"},
    {"FROM a\nCOPY --link=TRUE a b", R"({"sources":["a"],"dest":"b","link":true})"},
    {"FROM a\nCOPY --parents ./x/a.txt /d/", R"({"sources":["./x/a.txt"],"dest":"/d/","parents":true})"},
    {"FROM a\nCOPY --exclude=*.txt --exclude=tmp . /d", R"({"sources":["."],"dest":"/d","exclude":["*.txt","tmp"]})"},
    {"FROM a\nCOPY <<EOF /etc/x\nhello\nEOF", R"({"sources":[],"inline_sources":[{"path":"EOF","expand":true,"data":"hello\n"}],"dest":"/etc/x"})"},
    {"FROM a\nCOPY a <<X b\nbody\nX", R"({"sources":["a"],"inline_sources":[{"path":"X","expand":true,"data":"body\n"}],"dest":"b"})"},
    {"FROM a\nCOPY --chmod=755 <<'EOF' /bin/x\n#!/bin/sh\necho $0\nEOF",
     R"({"sources":[],"inline_sources":[{"path":"EOF","expand":false,"data":"#!/bin/sh\necho $0\n"}],"dest":"/bin/x","chmod":"755"})"},
    {"FROM a\nCOPY <<-EOF /x\n\tz\n\tEOF", R"({"sources":[],"inline_sources":[{"path":"EOF","expand":true,"data":"z\n"}],"dest":"/x"})"},
    // ADD
    {"FROM a\nADD https://x/a.tgz /", R"({"sources":["https://x/a.tgz"],"dest":"/"})"},
    {"FROM a\nADD --checksum=sha256:24454f8 https://x/a /a", R"({"sources":["https://x/a"],"dest":"/a","checksum":"sha256:24454f8"})"},
    {"FROM a\nADD --keep-git-dir=true git@github.com:moby/buildkit.git /bk",
     R"({"sources":["git@github.com:moby/buildkit.git"],"dest":"/bk","keep_git_dir":true})"},
    {"FROM a\nADD --chown=1 --chmod=600 --link a b", R"({"sources":["a"],"dest":"b","chown":"1","chmod":"600","link":true})"},
    {"FROM a\nADD [\"a b\", \"/c\"]", R"({"sources":["a b"],"dest":"/c"})"},
    {"FROM a\nADD <<EOF /x\ny\nEOF", R"({"sources":[],"inline_sources":[{"path":"EOF","expand":true,"data":"y\n"}],"dest":"/x"})"},
    // VOLUME, USER, WORKDIR, STOPSIGNAL
    {"FROM a\nVOLUME /data", R"({"paths":["/data"]})"},
    {"FROM a\nVOLUME [\"/a\", \"/b\"]", R"({"paths":["/a","/b"]})"},
    {"FROM a\nVOLUME /a /b", R"({"paths":["/a","/b"]})"},
    {"FROM a\nVOLUME [\" /spaced \"]", R"({"paths":["/spaced"]})"},
    {"FROM a\nUSER 1000:1000", R"({"user":"1000:1000"})"},
    {"FROM a\nUSER $U", R"({"user":"$U"})"},
    {"FROM a\nWORKDIR /a/b", R"({"path":"/a/b"})"},
    {"FROM a\nWORKDIR relative/dir", R"({"path":"relative/dir"})"},
    {"FROM a\nSTOPSIGNAL SIGTERM", R"({"signal":"SIGTERM"})"},
    {"FROM a\nSTOPSIGNAL 9", R"({"signal":"9"})"},
    // ARG
    {"FROM a\nARG A", R"({"args":[{"name":"A","default":null}]})"},
    {"FROM a\nARG A=1", R"({"args":[{"name":"A","default":"1"}]})"},
    {"FROM a\nARG A=", R"({"args":[{"name":"A","default":""}]})"},
    {"FROM a\nARG A=1 B C=\"x y\"",
     R"({"args":[{"name":"A","default":"1"},{"name":"B","default":null},{"name":"C","default":"\"x y\""}]})"},
    {"FROM a\nARG A=$B", R"({"args":[{"name":"A","default":"$B"}]})"},
    // ONBUILD
    {"FROM a\nONBUILD RUN make", R"({"trigger":"RUN make"})"},
    {"FROM a\nonbuild  ADD . /app/src", R"({"trigger":"ADD . /app/src"})"},
    {"FROM a\nONBUILD RUN <<EOF\necho hi\nEOF", R"({"trigger":"RUN <<EOF\necho hi\nEOF"})"},
    {"FROM a\nONBUILD COPY <<-X /y\n\tz\n\tX", R"({"trigger":"COPY <<-X /y\nz\nX"})"},
    {"FROM a\nONBUILD RUN --mount=type=cache,target=/c <<EOF\nmake\nEOF", R"({"trigger":"RUN --mount=type=cache,target=/c <<EOF\nmake\nEOF"})"},
    {"FROM a\nONBUILD RUN [\"cat\", \"<<EOF\"]", R"({"trigger":"RUN [\"cat\", \"<<EOF\"]"})"},
    {"FROM a\nONBUILD ENV A=<<EOF", R"({"trigger":"ENV A=<<EOF"})"},  // ENV takes no heredoc
    // HEALTHCHECK
    {"FROM a\nHEALTHCHECK NONE",
     R"({"test":["NONE"],"interval_ns":0,"timeout_ns":0,"start_period_ns":0,"start_interval_ns":0,"retries":0})"},
    {"FROM a\nHEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://localhost/ || exit 1",
     R"({"test":["CMD-SHELL","curl -f http://localhost/ || exit 1"],"interval_ns":300000000000,"timeout_ns":3000000000,"start_period_ns":0,"start_interval_ns":0,"retries":0})"},
    {"FROM a\nHEALTHCHECK CMD [\"/bin/check\", \"-v\"]",
     R"({"test":["CMD","/bin/check","-v"],"interval_ns":0,"timeout_ns":0,"start_period_ns":0,"start_interval_ns":0,"retries":0})"},
    {"FROM a\nhealthcheck cmd true",
     R"({"test":["CMD-SHELL","true"],"interval_ns":0,"timeout_ns":0,"start_period_ns":0,"start_interval_ns":0,"retries":0})"},
    {"FROM a\nHEALTHCHECK --retries=0 --interval=0s CMD x",
     R"({"test":["CMD-SHELL","x"],"interval_ns":0,"timeout_ns":0,"start_period_ns":0,"start_interval_ns":0,"retries":0})"},
    // BuildKit does not read the flags of HEALTHCHECK NONE.
    {"FROM a\nHEALTHCHECK --interval=5s NONE",
     R"({"test":["NONE"],"interval_ns":0,"timeout_ns":0,"start_period_ns":0,"start_interval_ns":0,"retries":0})"},
    {"FROM a\nHEALTHCHECK --start-interval=1ms --start-period=2h CMD x",
     R"({"test":["CMD-SHELL","x"],"interval_ns":0,"timeout_ns":0,"start_period_ns":7200000000000,"start_interval_ns":1000000,"retries":0})"},
};

TEST(ParseTableTest, EveryInstructionForm) {
  for (const FormCase& c : kFormCases) {
    Result<Dockerfile> df = Parse(c.text);
    if (c.details == nullptr) {
      EXPECT_FALSE(df.ok()) << c.text;
      continue;
    }
    ASSERT_TRUE(df.ok()) << c.text << "\n" << df.status().message();
    EXPECT_EQ(InstructionDetailsJson(Last(*df)), c.details) << c.text;
  }
}

struct HeredocCase {
  const char* text;  // after "FROM a\n"; the first instruction is checked
  const char* heredocs;  // "NAME(fd,expand,chomp)=content;..." with content's "\n" kept
  const char* script;  // RunScriptWithHeredocs, or nullptr for COPY/ADD
};

std::string DescribeHeredocs(const std::vector<Heredoc>& hs) {
  std::string out;
  for (const Heredoc& h : hs) {
    out += h.name + "(" + std::to_string(h.fd) + "," + (h.expand ? "e" : "-") + "," + (h.chomp ? "c" : "-") + ")=" + h.content + ";";
  }
  return out;
}

const HeredocCase kHeredocCases[] = {
    {"RUN <<EOF\nx\nEOF\n", "EOF(0,e,-)=x\n;", "x\n"},
    {"RUN <<-EOF\n\tx\n\t\ty\n\tEOF\n", "EOF(0,e,c)=x\ny\n;", "x\ny\n"},
    {"RUN <<'EOF'\n$x\nEOF\n", "EOF(0,-,-)=$x\n;", "$x\n"},
    {"RUN <<\"EOF\"\n$x\nEOF\n", "EOF(0,-,-)=$x\n;", "$x\n"},
    {"RUN <<EOF bash\necho\nEOF\n", "EOF(0,e,-)=echo\n;", "<<EOF bash\necho\nEOF"},
    {"RUN python3 <<EOF\nprint(1)\nEOF\n", "EOF(0,e,-)=print(1)\n;", "python3 <<EOF\nprint(1)\nEOF"},
    {"RUN <<A <<B\n1\nA\n2\nB\n", "A(0,e,-)=1\n;B(0,e,-)=2\n;", "<<A <<B\n1\nA\n2\nB"},
    {"RUN 3<<EOF cat /dev/fd/3\nz\nEOF\n", "EOF(3,e,-)=z\n;", "3<<EOF cat /dev/fd/3\nz\nEOF"},
    {"RUN <<EOF\n  EOF\nEOF\n", "EOF(0,e,-)=  EOF\n;", "  EOF\n"},  // only an exact line ends it
    {"RUN <<-EOF\n\t\tx\n    EOF\nEOF\n", "EOF(0,e,c)=x\n    EOF\n;", "x\n    EOF\n"},  // <<- strips tabs only
    {"RUN echo '<<EOF'\n", "", "echo '<<EOF'"},  // quoted: not a heredoc
    {"RUN echo \"a\" <<<EOF\n", "", "echo \"a\" <<<EOF"},  // a here-string is not a heredoc
    {"RUN cat <<EOF > /x\nhello\nEOF\n", "EOF(0,e,-)=hello\n;", "cat <<EOF > /x\nhello\nEOF"},
    {"RUN <<EOF\nEOF\n", "EOF(0,e,-)=;", ""},
    {"RUN <<EOF\n\nEOF\n", "EOF(0,e,-)=\n;", "\n"},
    {"RUN \\\n<<EOF\nx\nEOF\n", "EOF(0,e,-)=x\n;", "x\n"},
    {"RUN <<E\"O\"F\n$y\nEOF\n", "EOF(0,-,-)=$y\n;", "$y\n"},  // any quoted part disables expansion
    {"RUN --mount=type=cache,target=/c <<EOF\nmake\nEOF\n", "EOF(0,e,-)=make\n;", "make\n"},
    {"COPY <<A <<B /dst/\n1\nA\n2\nB\n", "A(0,e,-)=1\n;B(0,e,-)=2\n;", nullptr},
};

TEST(ParseTableTest, HeredocVariants) {
  for (const HeredocCase& c : kHeredocCases) {
    Result<Dockerfile> df = Parse(std::string("FROM a\n") + c.text + "CMD after\n");
    ASSERT_TRUE(df.ok()) << c.text << "\n" << df.status().message();
    const std::vector<Instruction>& cmds = df->stages[0].commands;
    ASSERT_EQ(cmds.size(), 2u) << c.text;  // the bodies were consumed, CMD still parses
    if (const auto* run = std::get_if<RunInst>(&cmds[0].cmd)) {
      EXPECT_EQ(DescribeHeredocs(run->cmd.heredocs), c.heredocs) << c.text;
      ASSERT_NE(c.script, nullptr) << c.text;
      EXPECT_EQ(RunScriptWithHeredocs(run->cmd), c.script) << c.text;
    } else {
      const auto& copy = std::get<CopyInst>(cmds[0].cmd);
      std::string got;
      for (const InlineSource& s : copy.inline_sources) got += s.path + "(0," + (s.expand ? "e" : "-") + ",-)=" + s.data + ";";
      EXPECT_EQ(got, c.heredocs) << c.text;
    }
  }
}

// ONBUILD triggers read back (as a child build does) into the instruction they were written as.
TEST(ParseTableTest, OnbuildTriggersRoundTrip) {
  struct {
    const char* line;
    const char* keyword;
    const char* details;
  } cases[] = {
      {"ONBUILD RUN <<EOF\necho hi\nEOF", "RUN",
       R"({"form":"shell","args":["<<EOF"],"heredocs":[{"name":"EOF","fd":0,"expand":true,"chomp":false,"content":"echo hi\n"}]})"},
      {"ONBUILD COPY --from=assets . /app", "COPY", R"({"from":"assets","sources":["."],"dest":"/app"})"},
      {"ONBUILD copy <<-X /y\n\tz\n\tX", "COPY", R"({"sources":[],"inline_sources":[{"path":"X","expand":true,"data":"z\n"}],"dest":"/y"})"},
      {"ONBUILD ENV A=1 B=\"2 3\"", "ENV", R"({"env":[{"key":"A","value":"1"},{"key":"B","value":"\"2 3\""}]})"},
  };
  for (const auto& c : cases) {
    Result<Dockerfile> df = Parse(std::string("FROM a\n") + c.line + "\n");
    ASSERT_TRUE(df.ok()) << c.line << "\n" << df.status().message();
    const auto& ob = std::get<OnbuildInst>(df->stages[0].commands.at(0).cmd);
    Result<Instruction> t = ParseTrigger(ob.expression, '\\', "ONBUILD trigger");
    ASSERT_TRUE(t.ok()) << c.line << "\n" << t.status().message();
    EXPECT_EQ(t->keyword, c.keyword);
    EXPECT_EQ(InstructionDetailsJson(*t), c.details) << c.line;
  }
}

}  // namespace
}  // namespace kiln::dockerfile
