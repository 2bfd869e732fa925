#!/usr/bin/env bash
# Installs kiln's dependencies (Debian 12), builds kiln, and shows what it does today:
# packs a directory into an image (OCI layout + docker-archive), then lets skopeo and umoci, two
# independent tools, read the result back.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target kiln
KILN="$PWD/$BUILD_DIR/kiln"

work=$(mktemp -d /tmp/kiln-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/app/etc" "$work/app/usr/share/app"
echo "hello from kiln" > "$work/app/etc/motd"
seq 1 50000 > "$work/app/usr/share/app/numbers.txt"
ln -s ../../etc/motd "$work/app/usr/share/app/motd-link"

echo "== kiln pack: one layer from a directory, streamed through tar, sha256 and parallel gzip"
"$KILN" pack "$work/app" --oci-layout-path "$work/layout:demo" --tar-path "$work/demo.tar" \
  --image-name kiln/demo:1 --cmd cat --cmd /etc/motd

echo "== skopeo reads the OCI layout"
skopeo inspect "oci:$work/layout:demo"
echo "== skopeo reads the docker-archive"
skopeo inspect --config "docker-archive:$work/demo.tar" | head -20
echo "== umoci unpacks the image"
umoci unpack --rootless --image "$work/layout:demo" "$work/bundle" >/dev/null
ls -l "$work/bundle/rootfs/etc/motd" "$work/bundle/rootfs/usr/share/app"
echo "== /etc/motd inside the image: $(cat "$work/bundle/rootfs/etc/motd")"
