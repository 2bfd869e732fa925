#!/usr/bin/env bash
# kiln's benchmark suite, one command: builds kiln (and the C++ benches) if needed, generates the
# inputs, starts a local registry, seeds base images and runs every scenario with kiln and Buildah,
# alternating them, next to the machine's floor. Prints a Markdown table; writes
# bench/results/<timestamp>.json and .md.
#   sudo bench/run.sh                      # everything, 3 runs each (~25 min)
#   sudo bench/run.sh --quick              # scenario 1 at ~200 MB / 10,000 files, 1 run (a few min)
#   sudo bench/run.sh --runs 5 --scenarios 1,2,3,5
# Other flags: --size-mb, --files, --big-mb, --no-overlay, --workdir DIR, --keep (see --help).
# BUILD_DIR selects kiln's build directory (default: build); KILN=/path/to/kiln uses that binary as
# is (no build), e.g. one built from a clean `git archive HEAD` while others edit the tree.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
build="${BUILD_DIR:-$repo/build}"
[[ "$build" = /* ]] || build="$repo/$build"
if [[ "$(id -u)" -ne 0 ]]; then
  echo "bench/run.sh: must run as root (Buildah's chroot isolation, debootstrap, overlay mounts); try: sudo $0 $*" >&2
  exit 1
fi
if [[ -n "${KILN:-}" ]]; then
  exec python3 "$repo/bench/suite.py" --kiln "$KILN" "$@"
fi
if [[ " $* " != *" --help "* && " $* " != *" -h "* ]]; then
  if [[ ! -f "$build/build.ninja" ]]; then
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_BUILD_BENCH=ON >/dev/null
  fi
  echo "bench/run.sh: building kiln in $build" >&2
  cmake --build "$build" -j2 --target kiln >&2
fi
exec python3 "$repo/bench/suite.py" --kiln "$build/kiln" "$@"
