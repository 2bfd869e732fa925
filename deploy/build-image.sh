#!/bin/sh
# Builds kiln's own image with kiln: stages the files deploy/Dockerfile copies into a context
# directory, then runs `kiln build` on it. Every argument this script does not know is passed on to
# `kiln build` (--destination, --insecure, --state-dir, --oci-layout-path, ...).
#
#   deploy/build-image.sh [--kiln BIN] [--target release|debug] [--context-dir DIR] [--no-strip]
#                         [--busybox BIN] [--credential-helper BIN]... [--no-credential-helpers]
#                         [--qemu "MACHINE..."] [KILN-BUILD-FLAGS...]
#
#   --kiln BIN         the kiln binary to put in the image and to build with (default: kiln on PATH)
#   --target T         release (default: /kaniko/executor only) or debug (adds busybox in /busybox
#                      and the GitLab job script as /kaniko/bin/kiln-gitlab-build)
#   --context-dir DIR  stage into DIR (must not exist yet) and keep it; default a temp dir, removed
#   --no-strip         keep the binary's debug information (default: objcopy --strip-debug)
#   --busybox BIN      a static busybox for the debug target (default: busybox on PATH)
#   --credential-helper BIN
#                      a docker-credential-* program to put in /kaniko (repeatable). Default: those
#                      of Kaniko's image found on PATH: docker-credential-ecr-login (Debian package
#                      amazon-ecr-credential-helper), docker-credential-gcr, docker-credential-acr-env
#   --no-credential-helpers  put none in
#   --qemu "MACHINE..." static qemu-user emulators to put in /kaniko/bin, by qemu's machine name
#                      (aarch64, arm, ppc64le, s390x, riscv64; "" for none; about 12 MB each). kiln runs
#                      RUN steps of a foreign --custom-platform through them under its ptrace tracer
#                      when the node has no binfmt_misc handler (a default pod never has one).
#                      Default: none (the image stays small); e.g. --qemu aarch64 for linux/arm64 builds.
#
# The binary's shared libraries (and each credential helper's) are the ones `ldd` lists, copied to
# the same paths (plus the dynamic loader), so the image runs exactly the libraries kiln was linked
# and tested against. The CA bundle is $SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt; it is
# both libcurl's default file and, as in Kaniko's image, /kaniko/ssl/certs/ca-certificates.crt.
# Layers are reproducible (--reproducible): the same binaries give the same image digest.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
kiln=$(command -v kiln 2>/dev/null || true)
target=release
context_dir=
keep_context=false
strip=true
busybox=$(command -v busybox 2>/dev/null || true)
helpers=
helpers_given=false
qemu_machines=

die() { echo "build-image.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --kiln) kiln=$2; shift 2 ;;
    --kiln=*) kiln=${1#*=}; shift ;;
    --target) target=$2; shift 2 ;;
    --target=*) target=${1#*=}; shift ;;
    --context-dir) context_dir=$2; keep_context=true; shift 2 ;;
    --context-dir=*) context_dir=${1#*=}; keep_context=true; shift ;;
    --no-strip) strip=false; shift ;;
    --busybox) busybox=$2; shift 2 ;;
    --busybox=*) busybox=${1#*=}; shift ;;
    --credential-helper) helpers="$helpers $2"; helpers_given=true; shift 2 ;;
    --credential-helper=*) helpers="$helpers ${1#*=}"; helpers_given=true; shift ;;
    --no-credential-helpers) helpers=; helpers_given=true; shift ;;
    --qemu) qemu_machines=$2; shift 2 ;;
    --qemu=*) qemu_machines=${1#*=}; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done

[ -n "$kiln" ] && [ -x "$kiln" ] || die "no kiln binary: pass --kiln BIN or put kiln on PATH"
case "$target" in release|debug) ;; *) die "--target must be release or debug, not '$target'" ;; esac
if [ "$target" = debug ]; then
  [ -n "$busybox" ] && [ -x "$busybox" ] || die "the debug target needs a static busybox (--busybox BIN)"
  if ldd "$busybox" >/dev/null 2>&1; then die "$busybox is dynamically linked; the debug target needs a static one"; fi
fi

if [ "$helpers_given" = false ]; then
  for h in docker-credential-ecr-login docker-credential-gcr docker-credential-acr-env; do
    if p=$(command -v "$h" 2>/dev/null); then helpers="$helpers $p"; fi
  done
fi
for h in $helpers; do
  [ -x "$h" ] || die "credential helper $h is not an executable"
  case "$(basename "$h")" in docker-credential-*) ;; *) die "credential helper $h must be named docker-credential-NAME" ;; esac
done

if [ -n "$context_dir" ]; then
  [ ! -e "$context_dir" ] || die "--context-dir $context_dir already exists"
  mkdir -p "$context_dir"
else
  context_dir=$(mktemp -d "${TMPDIR:-/tmp}/kiln-image.XXXXXX")
fi
cleanup() { if [ "$keep_context" = false ]; then rm -rf "$context_dir"; fi; }
trap cleanup EXIT

root=$context_dir/rootfs
umask 022
mkdir -p "$root/kaniko/.docker" "$root/kaniko/bin" "$root/kaniko/ssl/certs" "$root/etc/ssl/certs" "$root/workspace" \
         "$root/root" "$root/var/lib/kiln" "$root/tmp" "$context_dir/debug"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root" "$root/var/lib/kiln"
# As in Kaniko's image, a job running as any uid can write its config.json and append its CA
# (GitLab's recipe: >> /kaniko/ssl/certs/additional-ca-cert-bundle.crt). Sticky: nobody but root can
# replace what root put there. No RUN step ever sees /kaniko (kiln builds under its state dir).
chmod 1777 "$root/kaniko" "$root/kaniko/.docker" "$root/kaniko/ssl/certs"

# kiln as /kaniko/executor (argv[0] "executor" selects Kaniko's command line) and as kiln.
cp "$kiln" "$root/kaniko/executor"
if [ "$strip" = true ] && command -v objcopy >/dev/null 2>&1; then
  objcopy --strip-debug "$root/kaniko/executor"
fi
chmod 0755 "$root/kaniko/executor"
mkdir -p "$root/usr/local/bin"
ln -s ../../../kaniko/executor "$root/usr/local/bin/kiln"

# Shared libraries and the loader of a program, at the paths ldd resolved them to. A static program
# has none.
copy_libs() {
  if ldd "$1" >"$context_dir/ldd.txt" 2>&1; then
    if grep -q 'not found' "$context_dir/ldd.txt"; then
      cat "$context_dir/ldd.txt" >&2
      die "$1 needs libraries this machine does not have"
    fi
    # Lines are "libfoo.so.1 => /lib/.../libfoo.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)";
    # linux-vdso has no file.
    sed -n -e 's/^.*=> \(\/[^ ]*\) (0x[0-9a-f]*)$/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (0x[0-9a-f]*)$/\1/p' \
      "$context_dir/ldd.txt" | sort -u | while read -r lib; do
      [ -e "$root$lib" ] && continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
      chmod 0755 "$root$lib"
    done
  fi
  rm -f "$context_dir/ldd.txt"
}
copy_libs "$kiln"

# Registry credential helpers, where Kaniko's image has them (/kaniko is on PATH).
for h in $helpers; do
  cp "$h" "$root/kaniko/$(basename "$h")"
  chmod 0755 "$root/kaniko/$(basename "$h")"
  copy_libs "$h"
done

# ssh-agent and ssh-add (openssh-client) for `--ssh ID=KEYFILE`: kiln loads the keys into an agent
# of its own for the build. Without them, --ssh with a forwarded socket still works.
for p in ssh-agent ssh-add; do
  if bin=$(command -v "$p" 2>/dev/null); then
    cp "$bin" "$root/kaniko/bin/$p"
    chmod 0755 "$root/kaniko/bin/$p"
    copy_libs "$bin"
  fi
done

# Static qemu-user emulators (qemu-user-static) for RUN on a foreign platform without binfmt_misc:
# kiln finds them on its PATH (/kaniko/bin). Only static ones work under kiln's tracer.
for m in $qemu_machines; do
  q=/usr/bin/qemu-$m-static
  [ -x "$q" ] || die "--qemu $m: no $q (apt-get install qemu-user-static)"
  if ldd "$q" 2>/dev/null | grep -q "=>"; then die "$q is dynamically linked; kiln's tracer needs a static qemu"; fi
  cp "$q" "$root/kaniko/bin/qemu-$m-static"
  chmod 0755 "$root/kaniko/bin/qemu-$m-static"
done

# Debian's git for ADD of a git repository and git build contexts (kiln runs `git` from PATH): the
# program, also in its exec path as git-upload-pack (what a file:// fetch runs), git-remote-http(s)
# for https:// remotes, ssh for git@host: remotes. `git submodule` is a shell script: repositories
# with submodules need the debug image's shell. Without git, a git source fails with a clear message.
if git_bin=$(command -v git 2>/dev/null); then
  exec_path=$(git --exec-path)
  mkdir -p "$root/usr/bin" "$root$exec_path" "$root/usr/share/git-core/templates"
  cp "$git_bin" "$root/usr/bin/git"
  chmod 0755 "$root/usr/bin/git"
  copy_libs "$git_bin"
  ln "$root/usr/bin/git" "$root$exec_path/git"  # a hard link: the layer holds the bytes once
  ln -s git "$root$exec_path/git-upload-pack"
  for f in git-remote-http git-submodule git-sh-setup git-sh-i18n; do
    [ -f "$exec_path/$f" ] || continue
    cp "$exec_path/$f" "$root$exec_path/$f"
    chmod 0755 "$root$exec_path/$f"
  done
  [ -f "$root$exec_path/git-remote-http" ] && copy_libs "$root$exec_path/git-remote-http"
  ln -s git-remote-http "$root$exec_path/git-remote-https"
  if ssh_bin=$(command -v ssh 2>/dev/null); then
    cp "$ssh_bin" "$root/usr/bin/ssh"
    chmod 0755 "$root/usr/bin/ssh"
    copy_libs "$ssh_bin"
  fi
fi

ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$ca" ] || die "no CA bundle at $ca (set SSL_CERT_FILE)"
cp -L "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$root/etc/ssl/certs/ca-certificates.crt"
# Kaniko's place for it, in SSL_CERT_DIR; a hard link, so the layer holds the bytes once.
ln "$root/etc/ssl/certs/ca-certificates.crt" "$root/kaniko/ssl/certs/ca-certificates.crt"

# glibc without nsswitch.conf asks DNS before /etc/hosts; pods' hostAliases live in /etc/hosts.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"

# Users for USER/--chown-free operation and for tools that look the current uid up.
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
kiln:x:1000:1000:kiln:/workspace:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
kiln:x:1000:
nogroup:x:65534:
GROUP

if [ "$target" = debug ]; then
  mkdir -p "$context_dir/debug/busybox" "$context_dir/debug/bin"
  cp "$busybox" "$context_dir/debug/busybox/busybox"
  chmod 0755 "$context_dir/debug/busybox/busybox"
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$context_dir/debug/busybox/$applet"
  done
  ln -s ../busybox/sh "$context_dir/debug/bin/sh"
  # The GitLab job's script (deploy/gitlab/kiln.gitlab-ci.yml runs it).
  mkdir -p "$context_dir/debug/kaniko/bin"
  cp "$here/gitlab/kiln-build.sh" "$context_dir/debug/kaniko/bin/kiln-gitlab-build"
  chmod 0755 "$context_dir/debug/kaniko/bin/kiln-gitlab-build"
fi

exec_status=0
"$kiln" build --context "$context_dir" --dockerfile "$here/Dockerfile" --target "$target" --reproducible "$@" ||
  exec_status=$?
exit "$exec_status"
