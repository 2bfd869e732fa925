#!/usr/bin/env bash
# Installs every build and test dependency of kiln from Debian 12's packages.
# Safe to run twice: apt-get install is idempotent and the package list is refreshed only when stale.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config git
  libarchive-dev libssl-dev libcurl4-openssl-dev nlohmann-json3-dev libzstd-dev zlib1g-dev
  libcli11-dev libgtest-dev libgmock-dev libdeflate-dev
  # --policy files (YAML or JSON): executor/policy.
  libyaml-cpp-dev
  # --sbom reads RPM databases (rpmdb.sqlite): executor/image/rpm_db.
  libsqlite3-dev
  # libarchive is linked statically (cmake/StaticLibarchive.cmake): the libraries its tar code needs.
  libbz2-dev liblzma-dev liblz4-dev
)
TEST_PKGS=(
  docker-registry skopeo umoci apache2-utils openssl curl python3 ca-certificates
  uidmap libcap2-bin util-linux pigz zstd time jq busybox-static debootstrap
  groff-base man-db bsdextrautils tmux
  # RUN --mount=type=ssh tests: a test agent and key (ssh-agent, ssh-keygen, ssh-add).
  openssh-client
  # RUN for a foreign platform without a binfmt_misc handler: static qemu-user under the ptrace tracer
  # (tests/cmd/build_foreign_test.cc, whose arm64 programs scripts/foreign-debs.sh downloads).
  qemu-user-static
  # --sbom tests: a real rpmdb.sqlite made by rpm and rpmbuild.
  rpm
  # Put into kiln's image by deploy/build-image.sh, as Kaniko's image has it (tests/deploy checks).
  amazon-ecr-credential-helper
)
# The libFuzzer targets (scripts/fuzz.sh, run by scripts/test.sh): clang and its fuzzer/sanitizer runtimes.
FUZZ_PKGS=(
  clang libclang-rt-14-dev
)
# Benchmarks only: the builder kiln is compared with, and a command timer.
BENCH_PKGS=(
  buildah hyperfine fuse-overlayfs
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${FUZZ_PKGS[@]}" "${BENCH_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#BUILD_PKGS[@]} build and ${#TEST_PKGS[@]} test packages already installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/periodic/update-success-stamp
if [ ! -e /var/lib/apt/lists/lock ] || [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  $SUDO apt-get update -qq
fi
# docker-registry's postinst starts the system service; kiln's tests run their own registries, so keep
# the packaged one from starting (policy-rc.d refuses service starts during this install only).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ] && [ -z "$SUDO" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ "$created_policy" -eq 1 ] && rm -f "$policy"
echo "setup: done"
