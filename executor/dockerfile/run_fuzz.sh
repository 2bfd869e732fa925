#!/bin/sh
# Builds the Dockerfile parser fuzzer with clang and runs it for N seconds (default 180).
# Usage: executor/dockerfile/run_fuzz.sh [seconds]   (KILN_FUZZ_BUILD_DIR overrides the build dir)
set -eu
secs=${1:-180}
root=$(cd "$(dirname "$0")/../.." && pwd)
build="${KILN_FUZZ_BUILD_DIR:-$root/build-fuzz}"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKILN_FUZZ=ON -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j2 --target dockerfile_parser_fuzz
corpus="$build/dockerfile_corpus"
mkdir -p "$corpus"
printf 'FROM alpine AS b\nRUN <<EOF\necho hi\nEOF\nCOPY --from=b --chown=1:1 a b\n' >"$corpus/seed1"
printf '# escape=`\nARG V=1\nFROM x:${V:-2}\nENV a="b c" d=e\nHEALTHCHECK --interval=5s CMD true\n' >"$corpus/seed2"
printf 'FROM a\nRUN --mount=type=cache,target=/c x\nCOPY <<-"X" /y\n\tz\n\tX\n' >"$corpus/seed3"
printf 'FROM a AS p\nONBUILD RUN <<EOF\nx\nEOF\nONBUILD COPY --from=0 a b\nFROM p\nCMD\n' >"$corpus/seed4"
"$build/executor/dockerfile/dockerfile_parser_fuzz" -max_total_time="$secs" -max_len=4096 -timeout=10 \
  -artifact_prefix="$build/" "$corpus"
