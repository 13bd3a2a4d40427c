#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, integration, the real
# dovecot checks and the real-swarm end-to-end test). Exits non-zero if any test fails.
#   tests/run.sh                 everything
#   tests/run.sh -L unit         only the GoogleTest suite;  -L e2e: only the swarm end-to-end test
set -euo pipefail
cd "$(dirname "$0")/.."
# The layer table first: a violation fails in a second, before anything is built.
bash tests/check_layers.sh
bash deploy/install-deps.sh --test
# Build errors must fail loudly here (install-deps filters the build log).
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure --timeout 3000 "$@"
