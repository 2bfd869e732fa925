#!/usr/bin/env bash
# Puts Debian 12's static busybox built for another architecture (default arm64) at OUT:
#   scripts/foreign-busybox.sh OUT [ARCH]
# For the tests of RUN on a foreign platform (qemu-user under the ptrace tracer): a rootfs for
# linux/ARCH needs a program of that architecture, and Debian's mirror is the one place we can get
# it from. busybox-static:ARCH is downloaded with apt-get into a private apt state (the machine's
# own apt configuration, architectures and package lists are left alone) and unpacked with dpkg-deb.
#
# The binary is cached: $KILN_CACHE_DIR (default /var/cache/kiln-test) keeps busybox-static-ARCH, and
# OUT is a copy of it. Delete it to download again. Concurrent callers wait on a lock.
#
# Exit status: 0 with OUT in place; 3 when the package cannot be had (no network, no mirror), with
# the reason on stderr (tests skip on it); 2 on wrong usage.
#
# Environment: KILN_CACHE_DIR, DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

usage() { echo "usage: $0 OUT [ARCH]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 && -n "$1" && "$1" != -* ]] || usage
out="$1"
arch="${2:-arm64}"
[[ "$arch" =~ ^[a-z0-9]+$ ]] || usage

cache_dir="${KILN_CACHE_DIR:-/var/cache/kiln-test}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cached="$cache_dir/busybox-static-$arch"

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.busybox-static-$arch.lock"
flock 9

place() {
  mkdir -p "$(dirname "$out")"
  cp "$cached" "$out.tmp.$$"
  chmod 0755 "$out.tmp.$$"
  mv -f "$out.tmp.$$" "$out"
}

if [[ -s "$cached" ]]; then
  place
  exit 0
fi

for tool in apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "foreign-busybox.sh: $tool is missing" >&2; exit 3; }
done
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r "$keyring" ]] || { echo "foreign-busybox.sh: no Debian archive keyring at $keyring" >&2; exit 3; }

work=$(mktemp -d "$cache_dir/.busybox-$arch-XXXXXX")
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
  echo "foreign-busybox.sh: apt-get update for $arch from $mirror failed:" >&2
  cat "$work/log" >&2
  exit 3
fi
if ! (cd "$work/deb" && apt-get "${apt_opts[@]}" -qq download "busybox-static:$arch") >"$work/log" 2>&1; then
  echo "foreign-busybox.sh: apt-get download busybox-static:$arch failed:" >&2
  cat "$work/log" >&2
  exit 3
fi
dpkg-deb -x "$work"/deb/busybox-static_*.deb "$work/root"
[[ -x "$work/root/bin/busybox" ]] || { echo "foreign-busybox.sh: the package has no /bin/busybox" >&2; exit 3; }
cp "$work/root/bin/busybox" "$cached.tmp"
mv -f "$cached.tmp" "$cached"
place
