#!/usr/bin/env bash
# Installs kiln's dependencies (Debian 12), builds it and runs every test with CTest.
# Usage: scripts/test.sh [ctest args...]     e.g. scripts/test.sh -R layers_
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_BUILD_TESTS=ON -DKILN_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
cd "$BUILD_DIR"
# Integration tests start their own registries on free loopback ports, so tests can run in parallel.
ctest --output-on-failure -j"$(nproc)" --timeout 900 "$@"
cd "$OLDPWD"  # back to the repository root

# A short run of every libFuzzer target (fuzz/, docs/hardening.md) where clang is installed; a crash
# fails the test run. Skipped when ctest arguments pick a subset, or with KILN_FUZZ_SECONDS=0.
fuzz_secs=${KILN_FUZZ_SECONDS:-10}
if [ "$#" -eq 0 ] && [ "$fuzz_secs" != 0 ] && command -v clang++ >/dev/null; then
  bash scripts/fuzz.sh "$fuzz_secs"
fi
