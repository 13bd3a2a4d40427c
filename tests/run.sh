#!/usr/bin/env bash
# Installs what is missing, builds (warnings are errors), and runs the whole test suite (unit,
# integration, the real dovecot checks and the real-swarm end-to-end test). Exits non-zero if
# any test fails or is skipped without a reason in tests/skip_allowlist.txt.
#   tests/run.sh                 everything
#   tests/run.sh -L unit         only the GoogleTest suite;  -L e2e: only the swarm end-to-end test
#   tests/run.sh --sanitize      the clang ASan+UBSan build (build/sanitize): the unit suite and
#                                each fuzz target for about a minute (tests/sanitize.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
# The layer table first: a violation fails in a second, before anything is built.
bash tests/check_layers.sh
bash deploy/install-deps.sh --test
bash tests/check_format.sh
if [[ "${1:-}" == "--sanitize" ]]; then
  shift
  exec bash tests/sanitize.sh "$@"
fi
cmake --build build -j"$(nproc)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
(cd build && ctest -j"$(nproc)" --output-on-failure --timeout 3000 "$@") | tee "$log"
bash tests/check_skips.sh "$log"
