#!/usr/bin/env bash
# Builds kiln's libFuzzer targets (fuzz/, clang with ASan + UBSan) in their own build directory and
# runs each for SECONDS seconds (default 30), one at a time, starting from its seed corpus in
# fuzz/corpus/<target>/ and the corpus earlier runs grew. Prints a table: target, executions, crashes,
# seed count, and the size of the grown corpus after the run.
# Exits 1 when any target crashed (a sanitizer finding, a failed assertion, a timeout or an OOM).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
# Environment:
#   KILN_FUZZ_BUILD_DIR  build directory (default: build-fuzz)
#   KILN_FUZZ_OUT        where the grown corpora, the logs and the crash artifacts go
#                        (default: $KILN_FUZZ_BUILD_DIR/fuzz-out; crashes in its crashes/ folder)
#   KILN_FUZZ_TARGETS    space-separated subset of targets to run (default: all)
# Reproduce a crash:  $KILN_FUZZ_BUILD_DIR/fuzz/<target>_fuzz <artifact>
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-30}
build=${KILN_FUZZ_BUILD_DIR:-build-fuzz}
out=${KILN_FUZZ_OUT:-$build/fuzz-out}
case "$secs" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a number, not '$secs'" >&2; exit 2 ;; esac
if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found (bash scripts/setup.sh installs it)" >&2
  exit 2
fi

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_BUILD_FUZZERS=ON \
  -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
# -j2: the fuzz build shares the machine with the normal build and the tests.
cmake --build "$build" -j2 --target fuzzers | grep -v '^\[' || true
test -x "$build/fuzz/extract_fuzz" || { echo "fuzz.sh: the fuzz build failed" >&2; exit 1; }

targets=${KILN_FUZZ_TARGETS:-$(cd fuzz && ls -1 ./*_fuzz.cc | sed 's|^\./||; s|_fuzz\.cc$||')}
mkdir -p "$out/crashes" "$out/logs" "$out/corpus"
crashes_dir=$(cd "$out/crashes" && pwd)
# The extract target makes its scratch rootfs under TMPDIR; keep it inside $out.
export TMPDIR
TMPDIR=$(cd "$out" && pwd)/tmp
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

declare -A max_len=([extract]=65536 [decompress]=65536)
rows=()
failed=0
for t in $targets; do
  bin="$build/fuzz/${t}_fuzz"
  seeds="$root/fuzz/corpus/$t"
  corpus="$out/corpus/$t"
  log="$out/logs/$t.log"
  mkdir -p "$corpus"
  [ -x "$bin" ] || { echo "fuzz.sh: no target $t" >&2; exit 2; }
  nseeds=$( (find "$seeds" -type f 2>/dev/null || true) | wc -l)
  start_artifacts=$(find "$crashes_dir" -name "$t-*" -type f | wc -l)
  echo "fuzz.sh: $t for ${secs}s (log: $log)"
  # New inputs go to the first corpus dir ($out), the committed seeds are only read.
  set +e
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="${max_len[$t]:-16384}" \
    -print_final_stats=1 -artifact_prefix="$crashes_dir/$t-" "$corpus" "$seeds" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tr -d '#' | tail -1 || true)
  after=$(find "$corpus" -type f | wc -l)
  found=$(( $(find "$crashes_dir" -name "$t-*" -type f | wc -l) - start_artifacts ))
  if [ "$rc" -ne 0 ] && [ "$found" -eq 0 ]; then found=1; fi  # died without an artifact: still a failure
  if [ "$found" -gt 0 ]; then
    failed=1
    echo "fuzz.sh: $t FAILED (exit $rc); the finding:" >&2
    grep -E 'ERROR|runtime error|SUMMARY|_fuzz: |Test unit written' "$log" | awk '!seen[$0]++' | head -8 >&2 || true
  fi
  rows+=("$(printf '%-18s %12s %8s %6s %7s' "$t" "${execs:-?}" "$found" "$nseeds" "$after")")
done
rm -rf "$TMPDIR"

echo
printf '%-18s %12s %8s %6s %7s\n' target executions crashes seeds corpus
for r in "${rows[@]}"; do echo "$r"; done
echo "(${secs}s per target; crash artifacts: $crashes_dir)"
exit "$failed"
