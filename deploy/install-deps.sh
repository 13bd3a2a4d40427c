#!/usr/bin/env bash
# Installs what mailvault needs to build and test on Debian 12 (as root), then builds it into
# ./build. Idempotent: installs only what is missing, rebuilds incrementally.
#   deploy/install-deps.sh [--test]     --test also installs what the test suite uses
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS=(build-essential cmake pkg-config libarchive-dev libzstd-dev libsqlitecpp-dev libsqlite3-dev
  libxxhash-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev
  libyaml-cpp-dev libcurl4-openssl-dev zstd sqlite3 tar)
# dovecot's doveadm reads restored Maildirs in the tests; docker.io, debootstrap and busybox-static
# run the real-swarm end-to-end test (tests/e2e installs them itself too); node_exporter checks
# that the Prometheus textfile of `mailvault report` is accepted; acl (setfacl) sets the ACLs that the
# backup must keep.
TEST_PKGS=(dovecot-core dovecot-imapd docker.io debootstrap busybox-static prometheus-node-exporter curl haproxy acl)

want=("${BUILD_PKGS[@]}")
[[ "${1:-}" == "--test" ]] && want+=("${TEST_PKGS[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "mailvault: missing packages: ${missing[*]}; run this as root (or install them) and retry" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io \
    -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" 2>&1 | grep -E "error|warning: unused|^make.*Error" || true
test -x build/agent/mailvault || { echo "mailvault: build failed (see: cmake --build build)" >&2; exit 1; }
