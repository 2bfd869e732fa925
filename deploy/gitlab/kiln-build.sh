#!/bin/sh
# The script of the GitLab CI job in kiln.gitlab-ci.yml: builds $KILN_CONTEXT with kiln and pushes it
# to $KILN_IMAGE (default $CI_REGISTRY_IMAGE), as the usual Kaniko job does. Ships in kiln's debug
# image as /kaniko/bin/kiln-gitlab-build; POSIX sh, so busybox runs it.
#
# Registry credentials, first match wins:
#   DOCKER_AUTH_CONFIG                           a whole docker config.json (a CI/CD variable)
#   CI_REGISTRY + CI_REGISTRY_USER/PASSWORD      GitLab's predefined registry credentials
#   CI_REGISTRY + CI_JOB_TOKEN                   as user gitlab-ci-token
# They are written to config.json in a private directory on tmpfs (/dev/shm when writable), never in
# the build context, and only kiln's DOCKER_CONFIG points there; the directory is removed on exit.
# The variables themselves are taken out of kiln's environment, so `--build-arg NAME` cannot pick
# them up by accident and no RUN step ever sees them (kiln gives RUN steps no environment of its own).
#
# Tags: $CI_COMMIT_SHA always, $CI_COMMIT_TAG for tag pipelines, latest only with KILN_TAG_LATEST=true.
# Other knobs: KILN_CONTEXT (default $CI_PROJECT_DIR), KILN_DOCKERFILE (relative to the context),
# KILN_BUILD_ARGS (extra kiln build flags, split on blanks), KILN_REGISTRY_CA (a CA file for
# $CI_REGISTRY; default $CI_SERVER_TLS_CA_FILE), KILN_EXECUTOR (default executor, from PATH),
# KILN_DOTENV (default kiln.env: KILN_IMAGE_DIGEST and KILN_IMAGE_REF for a dotenv report).
#
# Multi-platform from per-platform jobs (a `parallel: matrix:` of runners, one per architecture):
# each job builds with KILN_BUILD_ARGS="--custom-platform linux/ARCH" into its own repository
# (KILN_IMAGE=$CI_REGISTRY_IMAGE/build-ARCH); a last job sets KILN_INDEX_OF to those repositories
# (blank-separated) and, instead of building, merges their $CI_COMMIT_SHA images into one index
# pushed under every tag above (`kiln index create`; KILN_BIN, default kiln, from PATH).
set -eu
set +x  # never trace: the credentials pass through variables below

section_start() {  # name, header; collapsed unless $3 is "open"
  collapsed=true
  [ "${3:-}" = open ] && collapsed=false
  printf '\033[0Ksection_start:%s:%s[collapsed=%s]\r\033[0K%s\n' "$(date +%s)" "$1" "$collapsed" "$2"
}
section_end() {
  printf '\033[0Ksection_end:%s:%s\r\033[0K\n' "$(date +%s)" "$1"
}
die() { echo "kiln-build: $*" >&2; exit 1; }

context=${KILN_CONTEXT:-${CI_PROJECT_DIR:-}}
[ -n "$context" ] || die "set KILN_CONTEXT (or run in GitLab CI, where CI_PROJECT_DIR is set)"
context=$(cd "$context" && pwd -P) || die "context $KILN_CONTEXT is not a directory"
image=${KILN_IMAGE:-${CI_REGISTRY_IMAGE:-}}
[ -n "$image" ] || die "set KILN_IMAGE (or CI_REGISTRY_IMAGE) to the repository to push to"
executor=${KILN_EXECUTOR:-executor}

# --- credentials ---
section_start kiln_credentials "Registry credentials"
shm=${KILN_SECRETS_TMPDIR:-}
if [ -z "$shm" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then shm=/dev/shm; else shm=${TMPDIR:-/tmp}; fi
fi
old_umask=$(umask)
umask 077
config_dir=$(mktemp -d "$shm/kiln-docker-config.XXXXXX") || die "cannot create a private directory in $shm"
umask "$old_umask"
trap 'rm -rf "$config_dir"' EXIT
trap 'exit 130' INT TERM
case "$(cd "$config_dir" && pwd -P)/" in
  "$context"/*) die "the credentials directory $config_dir would be inside the build context; set KILN_SECRETS_TMPDIR" ;;
esac

if [ -n "${DOCKER_AUTH_CONFIG:-}" ]; then
  printf '%s' "$DOCKER_AUTH_CONFIG" >"$config_dir/config.json"
  echo "using DOCKER_AUTH_CONFIG"
elif [ -n "${CI_REGISTRY:-}" ]; then
  user=${CI_REGISTRY_USER:-}
  password=${CI_REGISTRY_PASSWORD:-}
  if [ -z "$user" ] || [ -z "$password" ]; then
    user=gitlab-ci-token
    password=${CI_JOB_TOKEN:-}
  fi
  [ -n "$password" ] || die "CI_REGISTRY is set but neither CI_REGISTRY_PASSWORD nor CI_JOB_TOKEN is"
  auth=$(printf '%s:%s' "$user" "$password" | base64 | tr -d '\n')
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$CI_REGISTRY" "$auth" >"$config_dir/config.json"
  unset auth password
  echo "using the credentials of $user for $CI_REGISTRY"
else
  echo '{}' >"$config_dir/config.json"
  echo "no credentials (neither DOCKER_AUTH_CONFIG nor CI_REGISTRY is set)"
fi
section_end kiln_credentials

# --- destinations ---
sanitize_tag() {  # a git ref name as a valid tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
  printf '%s' "$1" | tr -c 'A-Za-z0-9_.-' '-' | sed -e 's/^[.-]/_/' | cut -c1-128
}
tags=
if [ -n "${CI_COMMIT_SHA:-}" ]; then tags="$tags $(sanitize_tag "$CI_COMMIT_SHA")"; fi
if [ -n "${CI_COMMIT_TAG:-}" ]; then tags="$tags $(sanitize_tag "$CI_COMMIT_TAG")"; fi
if [ "${KILN_TAG_LATEST:-false}" = true ]; then tags="$tags latest"; fi
[ -n "$tags" ] || die "nothing to tag: CI_COMMIT_SHA and CI_COMMIT_TAG are empty and KILN_TAG_LATEST is not true"
set --
for t in $tags; do set -- "$@" --destination "$image:$t"; done

ca=${KILN_REGISTRY_CA:-${CI_SERVER_TLS_CA_FILE:-}}
certificate=
if [ -n "$ca" ] && [ -n "${CI_REGISTRY:-}" ]; then
  certificate="$CI_REGISTRY=$ca"
  set -- "$@" --registry-certificate "$certificate"
fi
dockerfile=${KILN_DOCKERFILE:-Dockerfile}
case "$dockerfile" in /*) ;; *) dockerfile=$context/$dockerfile ;; esac
dotenv=${KILN_DOTENV:-kiln.env}
digest_file="$config_dir/digest"

# --- or an index of per-platform images ---
if [ -n "${KILN_INDEX_OF:-}" ]; then
  [ -n "${CI_COMMIT_SHA:-}" ] || die "KILN_INDEX_OF needs CI_COMMIT_SHA: the per-platform images are tagged with it"
  sources=
  for repo in $KILN_INDEX_OF; do sources="$sources $repo:$(sanitize_tag "$CI_COMMIT_SHA")"; done
  section_start kiln_index "Merging$sources into $image" open
  status=0
  for t in $tags; do
    # shellcheck disable=SC2086  # $sources is a list of references
    env -u DOCKER_AUTH_CONFIG -u CI_REGISTRY_PASSWORD -u CI_JOB_TOKEN -u CI_DEPENDENCY_PROXY_PASSWORD \
        DOCKER_CONFIG="$config_dir" \
      "${KILN_BIN:-kiln}" index create --digest-file "$digest_file" \
      ${certificate:+--registry-certificate "$certificate"} "$image:$t" $sources || status=$?
    [ "$status" -eq 0 ] || break
  done
  section_end kiln_index
  [ "$status" -eq 0 ] || die "kiln index create failed (exit $status)"
  digest=$(cat "$digest_file")
  printf 'KILN_IMAGE_DIGEST=%s\nKILN_IMAGE_REF=%s@%s\n' "$digest" "$image" "$digest" >"$dotenv"
  echo "pushed the index $image@$digest"
  exit 0
fi

# --- build ---
section_start kiln_build "Building $image with kiln" open
echo "context $context, Dockerfile $dockerfile"
status=0
# shellcheck disable=SC2086  # KILN_BUILD_ARGS is a list of flags
env -u DOCKER_AUTH_CONFIG -u CI_REGISTRY_PASSWORD -u CI_JOB_TOKEN -u CI_DEPENDENCY_PROXY_PASSWORD \
    DOCKER_CONFIG="$config_dir" \
  "$executor" --context "dir://$context" --dockerfile "$dockerfile" --digest-file "$digest_file" \
  "$@" ${KILN_BUILD_ARGS:-} || status=$?
section_end kiln_build
[ "$status" -eq 0 ] || die "kiln failed (exit $status)"

digest=$(cat "$digest_file")
printf 'KILN_IMAGE_DIGEST=%s\nKILN_IMAGE_REF=%s@%s\n' "$digest" "$image" "$digest" >"$dotenv"
echo "pushed $image@$digest"
