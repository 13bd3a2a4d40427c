#!/usr/bin/env bash
# Installs what mailvault needs to build and test on Debian 12 (as root), then builds it into
# ./build. Idempotent: installs only what is missing, rebuilds incrementally.
#   deploy/install-deps.sh [--test]     --test also installs what the test suite uses
#   deploy/install-deps.sh --demo       builds only the mailvault binary, showing progress
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS=(build-essential cmake pkg-config libarchive-dev libzstd-dev libsqlitecpp-dev libsqlite3-dev
  libxxhash-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev
  libyaml-cpp-dev libcurl4-openssl-dev libssl-dev libexpat1-dev libsodium-dev zstd sqlite3 tar)
# dovecot's doveadm reads restored Maildirs in the tests; docker.io, debootstrap and busybox-static
# run the real-swarm end-to-end test (tests/e2e installs them itself too); node_exporter checks
# that the Prometheus textfile of `mailvault report` is accepted; acl (setfacl) sets the ACLs that the
# backup must keep; clang with its sanitizer and libFuzzer runtimes (libclang-rt-14-dev, only
# recommended by clang) and llvm's symbolizer build and run `tests/run.sh --sanitize`;
# clang-format checks the committed format (tests/check_format.sh); promtool (package prometheus)
# lints the report's Prometheus textfile; restic is the reference whose `forget` the retention
# policy must match (tests/retention_restic_test.cpp); radosgw, ceph-mon, ceph-osd and ceph-common
# run the real S3 engine of tests/s3_rgw_test.cpp (tests/s3/rgw.sh); age (and age-keygen) is the
# reference that the age files of storage/crypto must match (tests/age_test.cpp).
TEST_PKGS=(prometheus dovecot-core dovecot-imapd docker.io debootstrap busybox-static prometheus-node-exporter curl haproxy acl
  clang libclang-rt-14-dev llvm-14 clang-format restic radosgw ceph-mon ceph-osd ceph-common age)

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

# The test path treats warnings as errors (CMake option MAILVAULT_WERROR); a plain build only
# shows them.
werror=OFF
[[ "${1:-}" == "--test" ]] && werror=ON
# MAILVAULT_BUILD_TYPE: CMake's build type (CI uses Check, see CMakeLists.txt).
cmake -S . -B build -DCMAKE_BUILD_TYPE="${MAILVAULT_BUILD_TYPE:-RelWithDebInfo}" \
  -DMAILVAULT_WERROR=$werror >/dev/null
if [[ "${1:-}" == "--demo" ]]; then
  # The demo needs the binary only, not the test suite; say how far the build is every 10%.
  echo "building mailvault into ./build (the binary only; a few minutes on 2 cores)" >&2
  if ! cmake --build build -j"$(nproc)" --target mailvault 2>&1 |
      awk '/^\[ *[0-9]+%\] (Building|Linking|Built)/ { p = $0; sub(/^\[ */, "", p); p = p + 0;
             if (p >= shown + 10) { printf "  build %d%%\n", p > "/dev/stderr"; shown = p }; next }
           { print }'; then
    echo "mailvault: build failed (see the messages above, or run: cmake --build build)" >&2
    exit 1
  fi
  exit 0
fi
# The build log without its progress lines, so every warning and error is seen.
if ! cmake --build build -j"$(nproc)" 2>&1 | { grep -vE '^\[ *[0-9]+%\] (Building|Linking|Built)' || true; }; then
  echo "mailvault: build failed (see the messages above, or run: cmake --build build)" >&2
  exit 1
fi
