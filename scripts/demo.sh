#!/usr/bin/env bash
# Installs kiln's dependencies (Debian 12), builds kiln, and runs a real build:
#  1. starts a local registry (Debian's docker-registry, plain HTTP on 127.0.0.1, a free port),
#  2. seeds it with a small busybox base image (made from Debian's busybox-static: no Docker Hub),
#  3. builds examples/hello (two stages, RUN, COPY --from, heredoc, USER, metadata) and pushes it,
#  4. reads the result back with skopeo and umoci, two independent tools, and runs it in a chroot.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target kiln
KILN="$PWD/$BUILD_DIR/kiln"

work=$(mktemp -d /tmp/kiln-demo-XXXXXX)
registry_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REGISTRY=127.0.0.1:$port
cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: $REGISTRY}
YAML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://$REGISTRY/v2/" >/dev/null && break; sleep 0.1; done
echo "== local registry on $REGISTRY"

echo "== seeding $REGISTRY/busybox:latest (Debian's busybox-static, packed by kiln pack, pushed by kiln copy)"
bash scripts/seed-busybox.sh "$KILN" "$REGISTRY" busybox:latest

echo "== kiln build examples/hello"
"$KILN" build --context examples/hello --build-arg "BASE=$REGISTRY/busybox:latest" \
  --destination "$REGISTRY/demo/hello:1" --insecure --insecure-pull \
  --state-dir "$work/state" --digest-file "$work/digest"
echo "== pushed $REGISTRY/demo/hello:1@$(cat "$work/digest")"

echo "== skopeo reads the image config"
skopeo inspect --tls-verify=false --config "docker://$REGISTRY/demo/hello:1" | jq '.config'
echo "== umoci unpacks it"
skopeo copy -q --src-tls-verify=false "docker://$REGISTRY/demo/hello:1" "oci:$work/layout:hello"
umoci unpack --image "$work/layout:hello" "$work/bundle" >/dev/null
ls -ln "$work/bundle/rootfs/opt/app"
echo "== running the image's entrypoint in a chroot as uid 1000:"
chroot --userspec=1000:1000 "$work/bundle/rootfs" /opt/app/app.sh world
