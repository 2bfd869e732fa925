#!/usr/bin/env bash
# Builds and runs bench/layer_bench: kiln's layer write/extract next to tar|gzip, tar|pigz, zstd -T,
# tar -x on the same generated tree (~1 GB in ~50,000 files by default).
#   bench/layer_bench.sh                 # full size, tree on disk under $TMPDIR or /tmp
#   bench/layer_bench.sh --size 100      # quick try
#   bench/layer_bench.sh --tmpfs         # tree in /dev/shm (takes ~3x the size in RAM)
# Extra flags go to layer_bench (--files N, --runs N, --seed S, --gzip-level L, --keep, --no-floors).
# BUILD_DIR selects the build directory (default: build-bench).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$repo/build-bench}"
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j2 --target layer_bench >/dev/null
for tool in tar gzip pigz zstd sha256sum; do
  command -v "$tool" >/dev/null || { echo "layer_bench.sh: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
if [[ " $* " == *" --tmpfs "* ]]; then
  avail_kb=$(df -k --output=avail /dev/shm | tail -1)
  size_mb=1024
  args=("$@")
  for ((i = 0; i < ${#args[@]}; i++)); do [[ "${args[$i]}" == "--size" ]] && size_mb="${args[$((i + 1))]}"; done
  if (( avail_kb < size_mb * 1024 * 4 )); then
    echo "layer_bench.sh: /dev/shm has $((avail_kb / 1024)) MB free, needs ~$((size_mb * 4)) MB; drop --tmpfs" >&2
    exit 1
  fi
fi
exec "$build/bench/layer_bench" "$@"
