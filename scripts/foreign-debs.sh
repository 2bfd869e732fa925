#!/usr/bin/env bash
# Unpacks Debian 12 packages built for another architecture into a directory:
#   scripts/foreign-debs.sh OUT-DIR ARCH PACKAGE...
# e.g. `scripts/foreign-debs.sh /tmp/root arm64 busybox-static` puts an arm64 /bin/busybox there.
# For the tests of RUN on a foreign platform (qemu-user under the ptrace tracer): a rootfs for
# linux/ARCH needs programs of that architecture, and Debian's mirror is the one place we can get
# them from. The packages are downloaded with apt-get into a private apt state (the machine's own apt
# configuration, architectures and package lists are left alone) and unpacked with dpkg-deb, without
# their maintainer scripts (OUT-DIR holds their files only; no dependencies are added).
#
# The .deb files are cached: $KILN_CACHE_DIR (default /var/cache/kiln-test)/debs-ARCH keeps them.
# Delete it to download again. Concurrent callers wait on a lock.
#
# Exit status: 0 with the packages unpacked; 3 when they cannot be had (no network, no mirror, an
# unknown package), with the reason on stderr (tests skip on it); 2 on wrong usage.
#
# Environment: KILN_CACHE_DIR, DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

usage() { echo "usage: $0 OUT-DIR ARCH PACKAGE..." >&2; exit 2; }
[[ $# -ge 3 && -n "$1" && "$1" != -* ]] || usage
out="$1"
arch="$2"
shift 2
[[ "$arch" =~ ^[a-z0-9]+$ ]] || usage
for p in "$@"; do [[ "$p" =~ ^[a-z0-9][a-z0-9+.-]*$ ]] || usage; done

cache_dir="${KILN_CACHE_DIR:-/var/cache/kiln-test}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
debs="$cache_dir/debs-$arch"

mkdir -p "$debs"
exec 9>"$debs/.lock"
flock 9

missing=()
for p in "$@"; do
  compgen -G "$debs/${p}_*_$arch.deb" >/dev/null || compgen -G "$debs/${p}_*_all.deb" >/dev/null || missing+=("$p")
done

if [[ ${#missing[@]} -gt 0 ]]; then
  for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "foreign-debs.sh: $tool is missing" >&2; exit 3; }
  done
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [[ -r "$keyring" ]] || { echo "foreign-debs.sh: no Debian archive keyring at $keyring" >&2; exit 3; }
  work=$(mktemp -d "$cache_dir/.debs-$arch-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/deb"
  echo "deb [arch=$arch signed-by=$keyring] $mirror bookworm main" >"$work/sources.list"
  apt_opts=(
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::status=/dev/null" -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
    # The private directories belong to root; apt's _apt user need not write them.
    -o "APT::Sandbox::User=root"
  )
  if ! apt-get "${apt_opts[@]}" -qq update >"$work/log" 2>&1; then
    echo "foreign-debs.sh: apt-get update for $arch from $mirror failed:" >&2
    cat "$work/log" >&2
    exit 3
  fi
  names=()
  for p in "${missing[@]}"; do names+=("$p:$arch"); done
  if ! (cd "$work/deb" && apt-get "${apt_opts[@]}" -qq download "${names[@]}") >"$work/log" 2>&1; then
    echo "foreign-debs.sh: apt-get download ${names[*]} failed:" >&2
    cat "$work/log" >&2
    exit 3
  fi
  mv -f "$work"/deb/*.deb "$debs/"
fi

mkdir -p "$out"
for p in "$@"; do
  for deb in "$debs/${p}"_*_"$arch".deb "$debs/${p}"_*_all.deb; do
    [[ -e "$deb" ]] && dpkg-deb -x "$deb" "$out"
  done
done
exit 0
