#!/bin/bash
# Builds the mailvault agent image without a registry: stages a rootfs with the mailvault binary
# and its ldd closure, then `docker build` of deploy/Dockerfile (FROM scratch, legacy builder).
#
# Usage: deploy/build-image.sh [--bin PATH] [--tag NAME]
#   --bin   the mailvault binary (default: $MAILVAULT_BIN, else build/agent/mailvault)
#   --tag   the image name (default: $MAILVAULT_IMAGE, else local/mailvault:latest)
# DOCKER_HOST selects the engine, as for the docker CLI. $DOCKER is the CLI (default docker).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${MAILVAULT_BIN:-$here/../build/agent/mailvault}"
tag="${MAILVAULT_IMAGE:-local/mailvault:latest}"
docker="${DOCKER:-docker}"
while (($#)); do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    *) echo "usage: $0 [--bin PATH] [--tag NAME]" >&2; exit 2 ;;
  esac
done
[[ -x "$bin" ]] || { echo "build-image: no mailvault binary at $bin; build it first" \
                          "(cmake --build build) or pass --bin" >&2; exit 1; }

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/repo" "$root/var/run"
chmod 1777 "$root/tmp"
cp "$bin" "$root/usr/local/bin/mailvault"
strip --strip-debug "$root/usr/local/bin/mailvault" 2>/dev/null || true

# The ldd closure: every "=> /path" plus the dynamic loader, copied with their directories
# (symlinks resolved, so each library lands under the name the loader asks for).
ldd "$bin" | awk '/=> \// { print $3 } /^\t\// { print $1 }' | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
if ldd "$bin" | grep -q 'not found'; then
  echo "build-image: $bin needs libraries that are not installed:" >&2
  ldd "$bin" | grep 'not found' >&2; exit 1
fi
# Names for uid/gid 0 and 8 (mail) in logs, and host lookups from files only.
printf 'root:x:0:0:root:/:/nonexistent\nmail:x:8:8:mail:/:/nonexistent\n' >"$root/etc/passwd"
printf 'root:x:0:\nmail:x:8:\n' >"$root/etc/group"
printf 'hosts: files\npasswd: files\ngroup: files\n' >"$root/etc/nsswitch.conf"

cp "$here/Dockerfile" "$ctx/Dockerfile"
DOCKER_BUILDKIT=0 "$docker" build -q -t "$tag" "$ctx" >/dev/null
echo "built $tag ($(du -sh "$root" | cut -f1) rootfs) from $bin"
