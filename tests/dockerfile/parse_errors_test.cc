// Errors the parser reports, each with its exact text: "Dockerfile:LINE:COL: message", the line and a
// caret. Messages follow BuildKit's (instructions/parse.go, bflag.go, parser.go) with kiln's
// additions where BuildKit says less (which instruction owns a flag, "did you mean").
#include <gtest/gtest.h>

#include "executor/dockerfile/parser.h"

namespace kiln::dockerfile {
namespace {

struct ErrorCase {
  const char* text;
  const char* message;
};

const ErrorCase kDirectiveAndHeredocErrors[] = {
    {"# syntax=a\n# syntax=b\nFROM a\n", "Dockerfile:2:3: only one syntax parser directive can be used\n# syntax=b\n  ^"},
    {"# check=a\n#check=b\nFROM a\n", "Dockerfile:2:2: only one check parser directive can be used\n#check=b\n ^"},
    {"# escape=``\nFROM a\n", "Dockerfile:1:3: invalid escape token '``' does not match ` or \\\n# escape=``\n  ^"},
    {"# escape=`\nFROM a\nRUN <<EOF\n", "Dockerfile:3:5: unterminated heredoc EOF\nRUN <<EOF\n    ^"},
    {"FROM a\nRUN <<A <<B\n1\nA\n", "Dockerfile:2:9: unterminated heredoc B\nRUN <<A <<B\n        ^"},
    {"FROM a\nRUN 2<<EOF\n", "Dockerfile:2:5: unterminated heredoc EOF\nRUN 2<<EOF\n    ^"},
    {"FROM a\nONBUILD RUN <<EOF\nx\n", "Dockerfile:2:13: unterminated heredoc EOF\nONBUILD RUN <<EOF\n            ^"},
    {"FROM a\nCOPY <<EOF /x\nEOF \n", "Dockerfile:2:6: unterminated heredoc EOF\nCOPY <<EOF /x\n     ^"},
    // JSON form: "<<EOF" is a plain argument, so the body lines are instructions.
    {"FROM a\nRUN [\"cat\", \"<<EOF\"]\nEOF\n", "Dockerfile:3:1: unknown instruction: EOF (did you mean ENV?)\nEOF\n^"},
    {"FROM a\nADD a <<EOF\nx\nEOF\n", "Dockerfile:2:7: ADD cannot accept a heredoc as a destination\nADD a <<EOF\n      ^"},
};

const ErrorCase kFlagErrors[] = {
    {"FROM --platform a\n", "Dockerfile:1:6: missing a value on flag: --platform\nFROM --platform a\n     ^"},
    {"FROM --platform=x --platform=y a\n", "Dockerfile:1:19: duplicate flag specified: --platform\nFROM --platform=x --platform=y a\n                  ^"},
    {"FROM a\nADD --from=x a b\n", "Dockerfile:2:5: flag --from is not allowed on ADD (it belongs to COPY)\nADD --from=x a b\n    ^"},
    {"FROM a\nADD --parents a b\n", "Dockerfile:2:5: flag --parents is not allowed on ADD (it belongs to COPY)\nADD --parents a b\n    ^"},
    {"FROM a\nCOPY --checksum=x a b\n", "Dockerfile:2:6: flag --checksum is not allowed on COPY (it belongs to ADD)\nCOPY --checksum=x a b\n     ^"},
    {"FROM a\nCOPY --keep-git-dir a b\n", "Dockerfile:2:6: flag --keep-git-dir is not allowed on COPY (it belongs to ADD)\nCOPY --keep-git-dir a b\n     ^"},
    {"FROM a\nCOPY --FROM=x a b\n", "Dockerfile:2:6: unknown flag: --FROM (did you mean --from?)\nCOPY --FROM=x a b\n     ^"},
    {"FROM a\nCOPY --chwon=1 a b\n", "Dockerfile:2:6: unknown flag: --chwon (did you mean --chown?)\nCOPY --chwon=1 a b\n     ^"},
    {"FROM a\nCOPY --link= a b\n", "Dockerfile:2:6: missing a value on flag: --link\nCOPY --link= a b\n     ^"},
    {"FROM a\nCOPY --parents=maybe a b\n", "Dockerfile:2:6: expecting boolean value for flag --parents, not: maybe\nCOPY --parents=maybe a b\n     ^"},
    {"FROM a\nCOPY --chown a b\n", "Dockerfile:2:6: missing a value on flag: --chown\nCOPY --chown a b\n     ^"},
    {"FROM a\nADD --checksum a b\n", "Dockerfile:2:5: missing a value on flag: --checksum\nADD --checksum a b\n    ^"},
    {"FROM a\nADD --keep-git-dir=1 a b\n", "Dockerfile:2:5: expecting boolean value for flag --keep-git-dir, not: 1\nADD --keep-git-dir=1 a b\n    ^"},
    {"FROM a\nADD --unpack=yes a.tar /x/\n", "Dockerfile:2:5: expecting boolean value for flag --unpack, not: yes\nADD --unpack=yes a.tar /x/\n    ^"},
    {"FROM a\nCOPY --unpack a b\n", "Dockerfile:2:6: flag --unpack is not allowed on COPY (it belongs to ADD)\nCOPY --unpack a b\n     ^"},
    {"FROM a\nADD --unpack= a b\n", "Dockerfile:2:5: missing a value on flag: --unpack\nADD --unpack= a b\n    ^"},
    {"FROM a\nRUN --mount x\n", "Dockerfile:2:5: missing a value on flag: --mount\nRUN --mount x\n    ^"},
    {"FROM a\nRUN --network x\n", "Dockerfile:2:5: missing a value on flag: --network\nRUN --network x\n    ^"},
    {"FROM a\nRUN --network=host --network=none x\n", "Dockerfile:2:20: duplicate flag specified: --network\nRUN --network=host --network=none x\n                   ^"},
    {"FROM a\nRUN --mnt=type=bind x\n", "Dockerfile:2:5: unknown flag: --mnt (did you mean --mount?)\nRUN --mnt=type=bind x\n    ^"},
    {"FROM a\nRUN --chmod=7 x\n", "Dockerfile:2:5: flag --chmod is not allowed on RUN (it belongs to ADD and COPY)\nRUN --chmod=7 x\n    ^"},
    {"FROM a\nHEALTHCHECK --interval CMD x\n", "Dockerfile:2:13: missing a value on flag: --interval\nHEALTHCHECK --interval CMD x\n            ^"},
    {"FROM a\nHEALTHCHECK --intervl=1s CMD x\n", "Dockerfile:2:13: unknown flag: --intervl (did you mean --interval?)\nHEALTHCHECK --intervl=1s CMD x\n            ^"},
    {"FROM a\nHEALTHCHECK --start-period=1x CMD x\n", "Dockerfile:2:13: time: unknown unit \"x\" in duration \"1x\"\nHEALTHCHECK --start-period=1x CMD x\n            ^"},
    {"FROM a\nHEALTHCHECK --retries=1.5 CMD x\n", "Dockerfile:2:13: invalid value for --retries: \"1.5\" is not a number\nHEALTHCHECK --retries=1.5 CMD x\n            ^"},
    {"FROM a\nHEALTHCHECK --interval=1s --interval=2s CMD x\n", "Dockerfile:2:27: duplicate flag specified: --interval\nHEALTHCHECK --interval=1s --interval=2s CMD x\n                          ^"},
    {"FROM a\nHEALTHCHECK --mount=x CMD y\n", "Dockerfile:2:13: flag --mount is not allowed on HEALTHCHECK (it belongs to RUN)\nHEALTHCHECK --mount=x CMD y\n            ^"},
    {"FROM a\nLABEL --x=1 a=b\n", "Dockerfile:2:7: unknown flag: --x (LABEL takes no flags)\nLABEL --x=1 a=b\n      ^"},
    {"FROM a\nUSER --platform=x u\n", "Dockerfile:2:6: flag --platform is not allowed on USER (it belongs to FROM); USER takes no flags\nUSER --platform=x u\n     ^"},
    {"FROM a\nCMD --mount=x y\n", "Dockerfile:2:5: flag --mount is not allowed on CMD (it belongs to RUN); CMD takes no flags\nCMD --mount=x y\n    ^"},
    {"FROM a\nEXPOSE --x 80\n", "Dockerfile:2:8: unknown flag: --x (EXPOSE takes no flags)\nEXPOSE --x 80\n       ^"},
    {"FROM a\nARG --x A\n", "Dockerfile:2:5: unknown flag: --x (ARG takes no flags)\nARG --x A\n    ^"},
    {"FROM a\nONBUILD --x RUN y\n", "Dockerfile:2:9: unknown flag: --x (ONBUILD takes no flags)\nONBUILD --x RUN y\n        ^"},
    {"FROM a\nSTOPSIGNAL --x 9\n", "Dockerfile:2:12: unknown flag: --x (STOPSIGNAL takes no flags)\nSTOPSIGNAL --x 9\n           ^"},
    {"FROM a\nVOLUME --x /v\n", "Dockerfile:2:8: unknown flag: --x (VOLUME takes no flags)\nVOLUME --x /v\n       ^"},
    {"FROM a\nSHELL --x [\"a\"]\n", "Dockerfile:2:7: unknown flag: --x (SHELL takes no flags)\nSHELL --x [\"a\"]\n      ^"},
    {"FROM a\nENTRYPOINT --x y\n", "Dockerfile:2:12: unknown flag: --x (ENTRYPOINT takes no flags)\nENTRYPOINT --x y\n           ^"},
    {"FROM a\nMAINTAINER --x y\n", "Dockerfile:2:12: unknown flag: --x (MAINTAINER takes no flags)\nMAINTAINER --x y\n           ^"},
    {"FROM a\nWORKDIR --link /x\n", "Dockerfile:2:9: flag --link is not allowed on WORKDIR (it belongs to ADD and COPY); WORKDIR takes no flags\nWORKDIR --link /x\n        ^"},
    {"FROM a\nENV --x=1 A=b\n", "Dockerfile:2:5: unknown flag: --x (ENV takes no flags)\nENV --x=1 A=b\n    ^"},
};

const ErrorCase kInstructionErrors[] = {
    {"FORM a\n", "Dockerfile:1:1: unknown instruction: FORM (did you mean FROM?)\nFORM a\n^"},
    {"FROM a\nENTRYPOIN x\n", "Dockerfile:2:1: unknown instruction: ENTRYPOIN (did you mean ENTRYPOINT?)\nENTRYPOIN x\n^"},
    {"FROM a\nHEALTHCHEK x\n", "Dockerfile:2:1: unknown instruction: HEALTHCHEK (did you mean HEALTHCHECK?)\nHEALTHCHEK x\n^"},
    {"FROM a\nworkdri /x\n", "Dockerfile:2:1: unknown instruction: workdri (did you mean WORKDIR?)\nworkdri /x\n^"},
    {"FROM a\nONBUILD\n", "Dockerfile:2:1: ONBUILD requires at least one argument\nONBUILD\n^"},
    {"FROM a\nONBUILD MAINTAINER x\n", "Dockerfile:2:9: MAINTAINER isn't allowed as an ONBUILD trigger\nONBUILD MAINTAINER x\n        ^"},
    {"FROM a AS x\nFROM b AS x\n", "Dockerfile:2:11: duplicate stage name \"x\" (first defined on line 1)\nFROM b AS x\n          ^"},
    {"FROM a AS x\nRUN y\nFROM b AS X\n", "Dockerfile:3:11: duplicate stage name \"x\" (first defined on line 1)\nFROM b AS X\n          ^"},
    {"FROM a AS b-c\nFROM b AS c\nFROM d as B-C\n", "Dockerfile:3:11: duplicate stage name \"b-c\" (first defined on line 1)\nFROM d as B-C\n          ^"},
    {"FROM a AS _x\n", "Dockerfile:1:11: invalid name for build stage: \"_x\", name can't start with a number or contain symbols\nFROM a AS _x\n          ^"},
    {"FROM a AS x!\n", "Dockerfile:1:11: invalid name for build stage: \"x!\", name can't start with a number or contain symbols\nFROM a AS x!\n          ^"},
    {"FROM a AS\n", "Dockerfile:1:6: FROM requires either one or three arguments\nFROM a AS\n     ^"},
    {"FROM a AS b c\n", "Dockerfile:1:6: FROM requires either one or three arguments\nFROM a AS b c\n     ^"},
    {"FROM a TO b\n", "Dockerfile:1:6: FROM requires either one or three arguments\nFROM a TO b\n     ^"},
    {"FROM a\nSTOPSIGNAL\n", "Dockerfile:2:1: STOPSIGNAL requires exactly one argument\nSTOPSIGNAL\n^"},
    {"FROM a\nWORKDIR\n", "Dockerfile:2:1: WORKDIR requires exactly one argument\nWORKDIR\n^"},
    {"FROM a\nMAINTAINER\n", "Dockerfile:2:1: MAINTAINER requires exactly one argument\nMAINTAINER\n^"},
    {"FROM a\nLABEL\n", "Dockerfile:2:1: LABEL requires at least one argument\nLABEL\n^"},
    {"FROM a\nLABEL a\n", "Dockerfile:2:7: LABEL must have two arguments\nLABEL a\n      ^"},
    {"FROM a\nVOLUME\n", "Dockerfile:2:1: VOLUME requires at least one argument\nVOLUME\n^"},
    {"FROM a\nHEALTHCHECK\n", "Dockerfile:2:1: HEALTHCHECK requires at least one argument\nHEALTHCHECK\n^"},
    {"FROM a\nENTRYPOINT [\"a\", {}]\n", "Dockerfile:2:12: when using JSON array syntax, arrays must be comprised of strings only\nENTRYPOINT [\"a\", {}]\n           ^"},
    {"FROM a\nRUN [1]\n", "Dockerfile:2:5: when using JSON array syntax, arrays must be comprised of strings only\nRUN [1]\n    ^"},
    {"FROM a\nCOPY [\"a\", 2]\n", "Dockerfile:2:6: when using JSON array syntax, arrays must be comprised of strings only\nCOPY [\"a\", 2]\n     ^"},
    {"FROM a\nCOPY [\"a\"]\n", "Dockerfile:2:6: COPY requires at least two arguments, but only one was provided. Destination could not be determined\nCOPY [\"a\"]\n     ^"},
    {"FROM a\nENV A=1 =2\n", "Dockerfile:2:9: ENV names can not be blank\nENV A=1 =2\n        ^"},
    {"FROM a\nARG A=1 =2\n", "Dockerfile:2:9: ARG names can not be blank\nARG A=1 =2\n        ^"},
    {"ENV A=1\nFROM a\n", "Dockerfile:1:1: no build stage in current context: ENV comes before the first FROM (only ARG may come before FROM)\nENV A=1\n^"},
    {"# only\n# comments\n", "Dockerfile: file with no instructions"},
    {"ARG A\nARG B\n", "Dockerfile: the Dockerfile has no FROM instruction, so there are no stages to build"},
};

void Check(const ErrorCase& c) {
  Result<Dockerfile> df = Parse(c.text);
  ASSERT_FALSE(df.ok()) << c.text;
  EXPECT_EQ(df.status().code(), ErrorCode::kInvalidArgument) << c.text;
  EXPECT_EQ(df.status().message(), c.message) << c.text;
}

TEST(ParseErrorsTest, DirectivesAndHeredocs) {
  for (const ErrorCase& c : kDirectiveAndHeredocErrors) Check(c);
}

TEST(ParseErrorsTest, UnknownAndMalformedFlags) {
  for (const ErrorCase& c : kFlagErrors) Check(c);
}

TEST(ParseErrorsTest, Instructions) {
  for (const ErrorCase& c : kInstructionErrors) Check(c);
}

TEST(ParseErrorsTest, TriggersAreCheckedWhenRead) {
  struct {
    const char* expression;
    const char* message;
  } cases[] = {
      {"ONBUILD RUN x", "base:1:1: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed\nONBUILD RUN x\n^"},
      {"MAINTAINER me", "base:1:1: MAINTAINER isn't allowed as an ONBUILD trigger\nMAINTAINER me\n^"},
      {"RUN a\nRUN b", "base: an ONBUILD trigger must be exactly one instruction"},
      {"BOGUS x", "base:1:1: unknown instruction: BOGUS\nBOGUS x\n^"},
      {"COPY --form=x a b", "base:1:6: unknown flag: --form (did you mean --from?)\nCOPY --form=x a b\n     ^"},
  };
  for (const auto& c : cases) {
    Result<Instruction> t = ParseTrigger(c.expression, '\\', "base");
    ASSERT_FALSE(t.ok()) << c.expression;
    EXPECT_EQ(t.status().message(), c.message) << c.expression;
  }
}

}  // namespace
}  // namespace kiln::dockerfile
