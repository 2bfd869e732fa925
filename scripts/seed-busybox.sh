#!/usr/bin/env bash
# seed-busybox.sh KILN REGISTRY[:PORT] [REPO:TAG]
# Makes a small busybox base image from Debian's busybox-static (no Docker Hub needed), packs it with
# `kiln pack` and pushes it with `kiln copy` to a plain-HTTP registry.
set -euo pipefail
KILN=$1 REGISTRY=$2 NAME=${3:-busybox:latest}
work=$(mktemp -d /tmp/kiln-seed-XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/home" "$root/usr/bin" "$root/sbin"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$root/$(dirname "$applet")"
  ln -sf /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
"$KILN" pack "$root" --oci-layout-path "$work/layout:base" --image-name "$NAME" --cmd /bin/sh >/dev/null
"$KILN" copy --insecure-registry "$REGISTRY" -v error "oci:$work/layout:base" "docker://$REGISTRY/$NAME"
