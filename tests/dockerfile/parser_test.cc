// Parser cases checked against the Dockerfile reference and BuildKit's parser tests.
#include "executor/dockerfile/parser.h"

#include <gtest/gtest.h>

#include "executor/dockerfile/flags.h"
#include "executor/dockerfile/mount.h"

namespace kiln::dockerfile {
namespace {

Dockerfile MustParse(const std::string& text) {
  Result<Dockerfile> df = Parse(text);
  EXPECT_TRUE(df.ok()) << df.status().message();
  return df.ok() ? std::move(*df) : Dockerfile{};
}

template <typename T>
const T& Cmd(const Dockerfile& df, size_t i) {
  return std::get<T>(df.stages.at(0).commands.at(i).cmd);
}

struct ErrorCase {
  const char* text;
  const char* message;  // the whole formatted message
};

const ErrorCase kErrorCases[] = {
    {"FROM alpine\nRUNN echo hi\n", "Dockerfile:2:1: unknown instruction: RUNN (did you mean RUN?)\nRUNN echo hi\n^"},
    {"FROM alpine\n  CPOY a b\n", "Dockerfile:2:3: unknown instruction: CPOY (did you mean COPY?)\n  CPOY a b\n  ^"},
    {"FROM alpine\nXYZZY\n", "Dockerfile:2:1: unknown instruction: XYZZY\nXYZZY\n^"},
    {"RUN echo\n", "Dockerfile:1:1: no build stage in current context: RUN comes before the first FROM (only ARG may come before FROM)\nRUN echo\n^"},
    {"ARG A=1\n", "Dockerfile: the Dockerfile has no FROM instruction, so there are no stages to build"},
    {"# just a comment\n\n", "Dockerfile: file with no instructions"},
    {"FROM a AS x\nFROM b AS X\n", "Dockerfile:2:11: duplicate stage name \"x\" (first defined on line 1)\nFROM b AS X\n          ^"},
    {"FROM a AS 1x\n", "Dockerfile:1:11: invalid name for build stage: \"1x\", name can't start with a number or contain symbols\nFROM a AS 1x\n          ^"},
    {"FROM a b\n", "Dockerfile:1:6: FROM requires either one or three arguments\nFROM a b\n     ^"},
    {"FROM\n", "Dockerfile:1:1: FROM requires either one or three arguments\nFROM\n^"},
    {"FROM --plat=x a\n", "Dockerfile:1:6: unknown flag: --plat (did you mean --platform?)\nFROM --plat=x a\n     ^"},
    {"FROM a\nCOPY --form=x a b\n", "Dockerfile:2:6: unknown flag: --form (did you mean --from?)\nCOPY --form=x a b\n     ^"},
    {"FROM a\nRUN --from=x make\n", "Dockerfile:2:5: flag --from is not allowed on RUN (it belongs to COPY)\nRUN --from=x make\n    ^"},
    {"FROM a\nENV --chown=1 A=b\n", "Dockerfile:2:5: flag --chown is not allowed on ENV (it belongs to ADD and COPY); ENV takes no flags\nENV --chown=1 A=b\n    ^"},
    {"FROM a\nWORKDIR --foo /x\n", "Dockerfile:2:9: unknown flag: --foo (WORKDIR takes no flags)\nWORKDIR --foo /x\n        ^"},
    {"FROM a\nCOPY --from a b\n", "Dockerfile:2:6: missing a value on flag: --from\nCOPY --from a b\n     ^"},
    {"FROM a\nCOPY --link=yes a b\n", "Dockerfile:2:6: expecting boolean value for flag --link, not: yes\nCOPY --link=yes a b\n     ^"},
    {"FROM a\nCOPY --from=x --from=y a b\n", "Dockerfile:2:15: duplicate flag specified: --from\nCOPY --from=x --from=y a b\n              ^"},
    {"FROM a\nCOPY onlyone\n", "Dockerfile:2:6: COPY requires at least two arguments, but only one was provided. Destination could not be determined\nCOPY onlyone\n     ^"},
    {"FROM a\nADD x\n", "Dockerfile:2:5: ADD requires at least two arguments, but only one was provided. Destination could not be determined\nADD x\n    ^"},
    {"FROM a\nCMD [\"echo\", 1]\n", "Dockerfile:2:5: when using JSON array syntax, arrays must be comprised of strings only\nCMD [\"echo\", 1]\n    ^"},
    {"FROM a\nSHELL /bin/bash -c\n", "Dockerfile:2:7: SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]\nSHELL /bin/bash -c\n      ^"},
    {"FROM a\nSHELL []\n", "Dockerfile:2:7: SHELL requires at least one argument\nSHELL []\n      ^"},
    {"FROM a\nRUN <<EOF\necho hi\n", "Dockerfile:2:5: unterminated heredoc EOF\nRUN <<EOF\n    ^"},
    {"FROM a\nCOPY a <<EOF\nx\nEOF\n", "Dockerfile:2:8: COPY cannot accept a heredoc as a destination\nCOPY a <<EOF\n       ^"},
    {"FROM a\nENV\n", "Dockerfile:2:1: ENV requires at least one argument\nENV\n^"},
    {"FROM a\nENV A\n", "Dockerfile:2:5: ENV must have two arguments\nENV A\n    ^"},
    {"FROM a\nENV A=1 B\n", "Dockerfile:2:9: syntax error - can't find = in \"B\". Must be of the form: name=value\nENV A=1 B\n        ^"},
    {"FROM a\nLABEL =x\n", "Dockerfile:2:7: LABEL names can not be blank\nLABEL =x\n      ^"},
    {"FROM a\nARG =x\n", "Dockerfile:2:5: ARG names can not be blank\nARG =x\n    ^"},
    {"FROM a\nARG\n", "Dockerfile:2:1: ARG requires at least one argument\nARG\n^"},
    {"FROM a\nUSER\n", "Dockerfile:2:1: USER requires exactly one argument\nUSER\n^"},
    {"FROM a\nEXPOSE\n", "Dockerfile:2:1: EXPOSE requires at least one argument\nEXPOSE\n^"},
    {"FROM a\nVOLUME [\"\"]\n", "Dockerfile:2:8: VOLUME specified can not be an empty string\nVOLUME [\"\"]\n       ^"},
    {"FROM a\nONBUILD ONBUILD RUN x\n", "Dockerfile:2:9: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed\nONBUILD ONBUILD RUN x\n        ^"},
    {"FROM a\nONBUILD from b\n", "Dockerfile:2:9: FROM isn't allowed as an ONBUILD trigger\nONBUILD from b\n        ^"},
    {"FROM a\nHEALTHCHECK NONE x\n", "Dockerfile:2:18: HEALTHCHECK NONE takes no arguments\nHEALTHCHECK NONE x\n                 ^"},
    {"FROM a\nHEALTHCHECK CMD\n", "Dockerfile:2:13: missing command after HEALTHCHECK CMD\nHEALTHCHECK CMD\n            ^"},
    {"FROM a\nHEALTHCHECK PING x\n", "Dockerfile:2:13: unknown type \"PING\" in HEALTHCHECK (try CMD)\nHEALTHCHECK PING x\n            ^"},
    {"FROM a\nHEALTHCHECK --interval=5 CMD x\n", "Dockerfile:2:13: time: missing unit in duration \"5\"\nHEALTHCHECK --interval=5 CMD x\n            ^"},
    {"FROM a\nHEALTHCHECK --timeout=10us CMD x\n", "Dockerfile:2:13: interval \"timeout\" cannot be less than 1ms\nHEALTHCHECK --timeout=10us CMD x\n            ^"},
    {"FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "Dockerfile:2:13: --retries cannot be negative (-1)\nHEALTHCHECK --retries=-1 CMD x\n            ^"},
    {"FROM a\nRUN --network=bridge x\n", "Dockerfile:2:5: unsupported network mode \"bridge\"\nRUN --network=bridge x\n    ^"},
    {"FROM a\nRUN --security=sandboxed x\n", "Dockerfile:2:5: unsupported security mode \"sandboxed\" (did you mean sandbox?)\nRUN --security=sandboxed x\n    ^"},
    {"FROM a\nRUN --mount=type=bind,from=$X x\n", "Dockerfile:2:5: 'from' doesn't support variable expansion, define alias stage instead\nRUN --mount=type=bind,from=$X x\n    ^"},
    {"FROM a\nRUN --mount=type=bind,a\\\"b x\n", "Dockerfile:2:5: failed to parse csv mounts: parse error on line 1, column 12: bare \" in non-quoted-field\nRUN --mount=type=bind,a\\\"b x\n    ^"},
    {"# escape=x\nFROM a\n", "Dockerfile:1:3: invalid escape token 'x' does not match ` or \\\n# escape=x\n  ^"},
    {"# escape=`\n# escape=\\\nFROM a\n", "Dockerfile:2:3: only one escape parser directive can be used\n# escape=\\\n  ^"},
    {"FROM a\nRUN echo \\\n  && oops \\\n  --\nFROMM x\n", "Dockerfile:5:1: unknown instruction: FROMM (did you mean FROM?)\nFROMM x\n^"},
    {"FROM a\n\tRUN x\nCOPY\t--chmod\ta b\n", "Dockerfile:3:6: missing a value on flag: --chmod\nCOPY\t--chmod\ta b\n    \t^"},
};

TEST(ParserTest, ErrorsPointAtTheProblem) {
  for (const ErrorCase& c : kErrorCases) {
    Result<Dockerfile> df = Parse(c.text);
    ASSERT_FALSE(df.ok()) << c.text;
    EXPECT_EQ(df.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(df.status().message(), c.message) << c.text;
  }
}

TEST(ParserTest, ContinuationsCommentsAndEmptyLines) {
  Dockerfile df = MustParse(
      "FROM alpine\n"
      "RUN echo a \\\n"
      "# a comment inside\n"
      "\n"
      "    && echo b \\\n"
      "  # indented comment\n"
      "  && echo c\n"
      "CMD x\n");
  const auto& run = Cmd<RunInst>(df, 0);
  EXPECT_EQ(run.cmd.args, std::vector<std::string>{"echo a     && echo b   && echo c"});
  EXPECT_EQ(df.stages[0].commands[0].loc.line, 2);
  EXPECT_EQ(df.stages[0].commands[0].loc.end_line, 7);
  EXPECT_EQ(df.stages[0].commands[1].loc.line, 8);
  ASSERT_EQ(df.warnings.size(), 1u);
  EXPECT_NE(df.warnings[0].find("Dockerfile:2:1: empty continuation line"), std::string::npos);
}

TEST(ParserTest, BacktickEscapeDirective) {
  // The example of the Dockerfile reference, plus a backtick continuation.
  Dockerfile df = MustParse("# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir `\n  c:\\\n");
  EXPECT_EQ(df.directives.escape, '`');
  const auto& copy = Cmd<CopyInst>(df, 0);
  EXPECT_EQ(copy.sources, std::vector<std::string>{"testfile.txt"});
  EXPECT_EQ(copy.dest, "c:\\");
  EXPECT_EQ(Cmd<RunInst>(df, 1).cmd.args, std::vector<std::string>{"dir   c:\\"});
}

TEST(ParserTest, DirectivesOnlyAtTheTop) {
  Dockerfile a = MustParse("# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended\n#escape = `\nFROM x\n");
  EXPECT_EQ(a.directives.syntax, "docker/dockerfile:1");
  EXPECT_EQ(a.directives.check, "skip=JSONArgsRecommended");
  EXPECT_EQ(a.directives.escape, '`');
  // After a comment, a blank line or an instruction, "directives" are plain comments.
  EXPECT_EQ(MustParse("# hello\n# escape=`\nFROM x\n").directives.escape, '\\');
  EXPECT_EQ(MustParse("\n# escape=`\nFROM x\n").directives.escape, '\\');
  EXPECT_EQ(MustParse("FROM x\n# escape=`\n").directives.escape, '\\');
  EXPECT_EQ(MustParse("# unknown=1\n# escape=`\nFROM x\n").directives.escape, '\\');
}

TEST(ParserTest, InstructionsAreCaseInsensitive) {
  Dockerfile df = MustParse("from alpine As Build\nrun echo\nCoPy a b\n");
  EXPECT_EQ(std::get<FromInst>(df.stages[0].from.cmd).stage_name, "build");
  EXPECT_EQ(df.stages[0].commands[0].keyword, "RUN");
  EXPECT_EQ(df.stages[0].commands[1].keyword, "COPY");
}

TEST(ParserTest, ExecAndShellForms) {
  Dockerfile df = MustParse(
      "FROM a\n"
      "RUN [\"echo\", \"hi there\"]\n"
      "RUN echo \"hi there\"\n"
      "CMD [ \"a\" ]\n"
      "ENTRYPOINT\n"
      "CMD [\"unterminated\"\n"
      "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n");
  const auto& exec = Cmd<RunInst>(df, 0).cmd;
  EXPECT_TRUE(exec.exec_form);
  EXPECT_EQ(exec.args, (std::vector<std::string>{"echo", "hi there"}));
  const auto& shell = Cmd<RunInst>(df, 1).cmd;
  EXPECT_FALSE(shell.exec_form);
  EXPECT_EQ(shell.args, std::vector<std::string>{"echo \"hi there\""});
  EXPECT_EQ(Cmd<CmdInst>(df, 2).cmd.args, std::vector<std::string>{"a"});
  EXPECT_TRUE(Cmd<EntrypointInst>(df, 3).cmd.args.empty());
  // Not valid JSON: Docker runs it through the shell, kiln warns.
  EXPECT_EQ(Cmd<CmdInst>(df, 4).cmd.args, std::vector<std::string>{"[\"unterminated\""});
  EXPECT_FALSE(Cmd<CmdInst>(df, 4).cmd.exec_form);
  EXPECT_EQ(df.warnings.size(), 1u);
  EXPECT_EQ(Cmd<ShellInst>(df, 5).shell, (std::vector<std::string>{"/bin/bash", "-o", "pipefail", "-c"}));
}

TEST(ParserTest, EnvAndLabelForms) {
  Dockerfile df = MustParse(
      "FROM a\n"
      "ENV MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog \\\n    MY_CAT=fluffy\n"
      "ENV LEGACY value with  spaces\n"
      "LABEL \"com.example.vendor\"=\"ACME Incorporated\" version=1.0\n"
      "ENV EMPTY=\"\"\n");
  const auto& env = Cmd<EnvInst>(df, 0).vars;
  ASSERT_EQ(env.size(), 3u);
  EXPECT_EQ(env[0].key, "MY_NAME");
  EXPECT_EQ(env[0].value, "\"John Doe\"");
  EXPECT_EQ(env[1].value, "Rex\\ The\\ Dog");
  EXPECT_EQ(env[2].value, "fluffy");
  const auto& legacy = Cmd<EnvInst>(df, 1).vars;
  ASSERT_EQ(legacy.size(), 1u);
  EXPECT_EQ(legacy[0].key, "LEGACY");
  EXPECT_EQ(legacy[0].value, "value with  spaces");
  const auto& labels = Cmd<LabelInst>(df, 2).labels;
  EXPECT_EQ(labels[0].key, "\"com.example.vendor\"");
  EXPECT_EQ(labels[0].value, "\"ACME Incorporated\"");
  EXPECT_EQ(Cmd<EnvInst>(df, 3).vars[0].value, "\"\"");
}

TEST(ParserTest, CopyAndAddFlags) {
  Dockerfile df = MustParse(
      "FROM a\n"
      "COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.tmp --exclude=.git ./a ./b /dst/\n"
      "ADD --checksum=sha256:abc --keep-git-dir=true --link=false https://x/y.tgz /opt/\n"
      "COPY [\"a b\", \"/c d/\"]\n"
      "COPY --chown=\"1 2\" x y\n"
      "ADD --unpack=false a.tar /x/\n"
      "ADD --unpack https://x/y.tgz /y/\n");
  EXPECT_FALSE(Cmd<AddInst>(df, 1).unpack.has_value());
  EXPECT_EQ(Cmd<AddInst>(df, 4).unpack, std::optional<bool>(false));
  EXPECT_EQ(Cmd<AddInst>(df, 5).unpack, std::optional<bool>(true));
  const auto& c = Cmd<CopyInst>(df, 0);
  EXPECT_EQ(c.from, "build");
  EXPECT_EQ(c.chown, "app:app");
  EXPECT_EQ(c.chmod, "0755");
  EXPECT_TRUE(c.link);
  EXPECT_TRUE(c.parents);
  EXPECT_EQ(c.excludes, (std::vector<std::string>{"*.tmp", ".git"}));
  EXPECT_EQ(c.sources, (std::vector<std::string>{"./a", "./b"}));
  EXPECT_EQ(c.dest, "/dst/");
  const auto& a = Cmd<AddInst>(df, 1);
  EXPECT_EQ(a.checksum, "sha256:abc");
  EXPECT_TRUE(a.keep_git_dir);
  EXPECT_FALSE(a.link);
  const auto& j = Cmd<CopyInst>(df, 2);
  EXPECT_TRUE(j.json);
  EXPECT_EQ(j.sources, std::vector<std::string>{"a b"});
  EXPECT_EQ(j.dest, "/c d/");
  EXPECT_EQ(Cmd<CopyInst>(df, 3).chown, "1 2");
}

TEST(ParserTest, Heredocs) {
  Dockerfile df = MustParse(
      "FROM a\n"
      "RUN <<EOF\n"
      "echo $HOME\n"
      "EOF\n"
      "RUN <<-\"EOT\" bash\n"
      "\t\techo tabs\n"
      "\tEOT\n"
      "RUN cat <<A > a && cat <<'B' > b\n"
      "one\n"
      "A\n"
      "two $x\n"
      "B\n"
      "COPY <<conf 2<<x /etc/\n"
      "k=v\n"
      "conf\n"
      "y\n"
      "x\n"
      "RUN [\"echo\", \"<<EOF\"]\n"
      "CMD done\n");
  const auto& r1 = Cmd<RunInst>(df, 0).cmd;
  ASSERT_EQ(r1.heredocs.size(), 1u);
  EXPECT_EQ(r1.heredocs[0].name, "EOF");
  EXPECT_EQ(r1.heredocs[0].content, "echo $HOME\n");
  EXPECT_TRUE(r1.heredocs[0].expand);
  EXPECT_EQ(RunScriptWithHeredocs(r1), "echo $HOME\n");
  EXPECT_EQ(df.stages[0].commands[0].loc.end_line, 4);

  const auto& r2 = Cmd<RunInst>(df, 1).cmd;
  ASSERT_EQ(r2.heredocs.size(), 1u);
  EXPECT_EQ(r2.heredocs[0].name, "EOT");
  EXPECT_TRUE(r2.heredocs[0].chomp);
  EXPECT_FALSE(r2.heredocs[0].expand);
  EXPECT_EQ(r2.heredocs[0].content, "echo tabs\n");

  const auto& r3 = Cmd<RunInst>(df, 2).cmd;
  ASSERT_EQ(r3.heredocs.size(), 2u);
  EXPECT_EQ(r3.heredocs[0].content, "one\n");
  EXPECT_TRUE(r3.heredocs[0].expand);
  EXPECT_EQ(r3.heredocs[1].content, "two $x\n");
  EXPECT_FALSE(r3.heredocs[1].expand);
  EXPECT_EQ(RunScriptWithHeredocs(r3), "cat <<A > a && cat <<'B' > b\none\nA\ntwo $x\nB");

  const auto& c = Cmd<CopyInst>(df, 3);
  ASSERT_EQ(c.inline_sources.size(), 2u);
  EXPECT_EQ(c.inline_sources[0].path, "conf");
  EXPECT_EQ(c.inline_sources[0].data, "k=v\n");
  EXPECT_EQ(c.inline_sources[1].path, "x");
  EXPECT_EQ(c.inline_sources[1].data, "y\n");
  EXPECT_TRUE(c.sources.empty());
  EXPECT_EQ(c.dest, "/etc/");

  EXPECT_TRUE(Cmd<RunInst>(df, 4).cmd.heredocs.empty());
  EXPECT_EQ(Cmd<CmdInst>(df, 5).cmd.args, std::vector<std::string>{"done"});
}

TEST(ParserTest, HeredocWords) {
  struct {
    const char* word;
    bool is;
    const char* name;
    bool expand;
    bool chomp;
    int fd;
  } cases[] = {
      {"<<EOF", true, "EOF", true, false, 0},     {"<<-EOF", true, "EOF", true, true, 0},
      {"<<\"EOF\"", true, "EOF", false, false, 0}, {"<<'EOF'", true, "EOF", false, false, 0},
      {"<<E\"O\"F", true, "EOF", false, false, 0}, {"3<<EOF", true, "EOF", true, false, 3},
      {"<<", false, "", false, false, 0},          {"cat<<EOF", false, "", false, false, 0},
      {"<<<EOF", false, "", false, false, 0},      {"<<EOF abc", false, "", false, false, 0},
  };
  for (const auto& c : cases) {
    Heredoc h;
    Result<bool> is = ParseHeredocWord(c.word, &h);
    ASSERT_TRUE(is.ok()) << c.word;
    EXPECT_EQ(*is, c.is) << c.word;
    if (!c.is) continue;
    EXPECT_EQ(h.name, c.name) << c.word;
    EXPECT_EQ(h.expand, c.expand) << c.word;
    EXPECT_EQ(h.chomp, c.chomp) << c.word;
    EXPECT_EQ(h.fd, c.fd) << c.word;
  }
}

TEST(ParserTest, OtherInstructions) {
  Dockerfile df = MustParse(
      "ARG VERSION=latest\n"
      "FROM --platform=$BUILDPLATFORM busybox:$VERSION AS b\n"
      "MAINTAINER someone\n"
      "EXPOSE 8080/udp 80\n"
      "VOLUME /data /logs\n"
      "VOLUME [\"/a\"]\n"
      "USER app:app\n"
      "WORKDIR /srv/$X\n"
      "ARG A B=2 C=\"x y\"\n"
      "ONBUILD   RUN make\n"
      "STOPSIGNAL SIGKILL\n"
      "HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1\n"
      "HEALTHCHECK NONE\n"
      "HEALTHCHECK CMD [\"/bin/check\"]\n");
  ASSERT_EQ(df.meta_args.size(), 1u);
  const auto& from = std::get<FromInst>(df.stages[0].from.cmd);
  EXPECT_EQ(from.image, "busybox:$VERSION");
  EXPECT_EQ(from.platform, "$BUILDPLATFORM");
  EXPECT_EQ(from.stage_name, "b");
  EXPECT_EQ(Cmd<MaintainerInst>(df, 0).name, "someone");
  EXPECT_EQ(Cmd<ExposeInst>(df, 1).ports, (std::vector<std::string>{"80", "8080/udp"}));
  EXPECT_EQ(Cmd<VolumeInst>(df, 2).paths, (std::vector<std::string>{"/data", "/logs"}));
  EXPECT_EQ(Cmd<VolumeInst>(df, 3).paths, std::vector<std::string>{"/a"});
  EXPECT_EQ(Cmd<UserInst>(df, 4).user, "app:app");
  EXPECT_EQ(Cmd<WorkdirInst>(df, 5).path, "/srv/$X");
  const auto& arg = Cmd<ArgInst>(df, 6).args;
  ASSERT_EQ(arg.size(), 3u);
  EXPECT_FALSE(arg[0].value.has_value());
  EXPECT_EQ(*arg[1].value, "2");
  EXPECT_EQ(*arg[2].value, "\"x y\"");
  EXPECT_EQ(Cmd<OnbuildInst>(df, 7).expression, "RUN make");
  EXPECT_EQ(Cmd<StopSignalInst>(df, 8).signal, "SIGKILL");
  const auto& h = Cmd<HealthcheckInst>(df, 9);
  EXPECT_EQ(h.test, (std::vector<std::string>{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}));
  EXPECT_EQ(h.interval_ns, 300'000'000'000);
  EXPECT_EQ(h.timeout_ns, 3'000'000'000);
  EXPECT_EQ(h.start_period_ns, 90'000'000'000);
  EXPECT_EQ(h.start_interval_ns, 500'000'000);
  EXPECT_EQ(h.retries, 3);
  EXPECT_EQ(Cmd<HealthcheckInst>(df, 10).test, std::vector<std::string>{"NONE"});
  EXPECT_EQ(Cmd<HealthcheckInst>(df, 11).test, (std::vector<std::string>{"CMD", "/bin/check"}));
}

TEST(ParserTest, RunFlagsAndMounts) {
  Dockerfile df = MustParse(
      "FROM a\n"
      "RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked --mount=type=secret,id=tok,required "
      "--network=none --security=insecure pip install x\n");
  const auto& r = Cmd<RunInst>(df, 0);
  EXPECT_EQ(r.network, "none");
  EXPECT_EQ(r.security, "insecure");
  ASSERT_EQ(r.mounts.size(), 2u);
  Result<Mount> cache = ResolveMount(r.mounts[0], {}, '\\');
  ASSERT_TRUE(cache.ok()) << cache.status().message();
  EXPECT_EQ(cache->type, MountType::kCache);
  EXPECT_EQ(cache->target, "/root/.cache");
  EXPECT_EQ(cache->id, "pip");
  EXPECT_EQ(cache->sharing, "locked");
  EXPECT_FALSE(cache->read_only);
  Result<Mount> secret = ResolveMount(r.mounts[1], {}, '\\');
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(secret->type, MountType::kSecret);
  EXPECT_TRUE(secret->required);
  EXPECT_TRUE(secret->read_only);
  EXPECT_EQ(r.cmd.args, std::vector<std::string>{"pip install x"});
}

TEST(ParserTest, MountResolution) {
  struct {
    const char* spec;
    const char* error;  // nullptr = ok
  } cases[] = {
      {"type=bind,source=/x,target=/y", nullptr},
      {"target=/y", nullptr},
      {"type=tmpfs,target=/t,size=64m", nullptr},
      {"type=ssh", nullptr},
      {"type=cache,target=/c,uid=1000,gid=1000,mode=0700", nullptr},
      {"type=secret,id=a,env=TOKEN", nullptr},
      {"type=volume,target=/x", "unsupported mount type \"volume\""},
      {"type=cahce,target=/x", "unsupported mount type \"cahce\" (did you mean cache?)"},
      {"type=bind,target=/x,uid=1", "uid not allowed for \"bind\" type mounts"},
      {"type=tmpfs,target=/x,mode=0700", "mode not allowed for \"tmpfs\" type mounts"},
      {"type=bind,target=/x,sharing=locked", "invalid cache sharing set for bind mount"},
      {"type=cache,target=/x,sharing=always", "unsupported sharing value \"always\""},
      {"type=secret", "invalid secret mount. one of source, target required"},
      {"type=secret,id=a,source=b", "both source and id can't be set"},
      {"type=secret,id=a,from=x", "secret mount should not have a from"},
      {"type=cache,target=/x,mode=999", "invalid value 999 for mode"},
      {"type=cache,target=/x,uid=abc", "invalid value abc for uid"},
      {"type=bind,target=/x,required", "unexpected key 'required' for mount type 'bind'"},
      {"type=bind,target=/x,ro=maybe", "invalid value for ro: maybe"},
      {"type=bind,target=/x,noexec", "invalid field 'noexec' must be a key=value pair"},
      {"type=bind,targte=/x", "unexpected key 'targte' in 'targte=/x' (did you mean target?)"},
      {"type=bind,size=1m", "unexpected key 'size' for mount type 'bind'"},
  };
  for (const auto& c : cases) {
    Result<MountSpec> spec = ParseMountSpec(c.spec);
    ASSERT_TRUE(spec.ok()) << c.spec;
    Result<Mount> m = ResolveMount(*spec, {}, '\\');
    if (c.error == nullptr) {
      EXPECT_TRUE(m.ok()) << c.spec << ": " << m.status().message();
    } else {
      ASSERT_FALSE(m.ok()) << c.spec;
      EXPECT_EQ(m.status().message(), c.error) << c.spec;
    }
  }
  Result<MountSpec> spec = ParseMountSpec("type=cache,target=$DIR,id=${ID:-dflt}");
  ASSERT_TRUE(spec.ok());
  Result<Mount> m = ResolveMount(*spec, Vars{{"DIR", "/cache"}}, '\\');
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->target, "/cache");
  EXPECT_EQ(m->id, "dflt");
  EXPECT_EQ(*ParseRamInBytes("64m"), 64 * 1024 * 1024);
  EXPECT_EQ(*ParseRamInBytes("1.5g"), 1536LL * 1024 * 1024);
  EXPECT_EQ(*ParseRamInBytes("100"), 100);
  EXPECT_EQ(*ParseRamInBytes("2KiB"), 2048);
  EXPECT_FALSE(ParseRamInBytes("lots").ok());
}

TEST(ParserTest, TriggersParseLikeInstructions) {
  Result<Instruction> t = ParseTrigger("COPY --from=x a b", '\\', "ONBUILD trigger of base");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->from_onbuild);
  EXPECT_EQ(std::get<CopyInst>(t->cmd).from, "x");
  Result<Instruction> bad = ParseTrigger("FROM x", '\\', "ONBUILD trigger of base");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "ONBUILD trigger of base:1:1: FROM isn't allowed as an ONBUILD trigger\nFROM x\n^");
}

TEST(ParserTest, OriginalTextAndBom) {
  Dockerfile df = MustParse("\xEF\xBB\xBF" "FROM a\r\nRUN   echo  \\\r\n  hi\r\n");
  EXPECT_EQ(df.stages[0].from.original, "FROM a");
  EXPECT_EQ(df.stages[0].commands[0].original, "RUN   echo    hi");
}

TEST(ParserTest, GoDurations) {
  struct {
    const char* in;
    int64_t ns;
  } ok[] = {{"0", 0}, {"1h", 3600'000'000'000}, {"1.5s", 1'500'000'000}, {"1m30s", 90'000'000'000}, {"250ms", 250'000'000}, {"2us", 2000}};
  for (const auto& c : ok) EXPECT_EQ(*ParseGoDuration(c.in), c.ns) << c.in;
  EXPECT_EQ(ParseGoDuration("abc").status().message(), "time: invalid duration \"abc\"");
  EXPECT_EQ(ParseGoDuration("5x").status().message(), "time: unknown unit \"x\" in duration \"5x\"");
}

}  // namespace
}  // namespace kiln::dockerfile
