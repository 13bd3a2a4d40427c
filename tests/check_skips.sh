#!/usr/bin/env bash
# check_skips.sh CTEST_LOG: fails, naming each one, when ctest reported a test as skipped (a
# GTEST_SKIP, which gtest_discover_tests maps to "Skipped") that tests/skip_allowlist.txt does
# not allow.
set -euo pipefail
log=$1
allow="$(dirname "$0")/skip_allowlist.txt"
# ctest lists them at the end as "	 42 - Suite.Name (Skipped)".
mapfile -t skipped < <(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (Skipped)$/\1/p' "$log")
bad=()
for t in "${skipped[@]}"; do
  grep -v '^#' "$allow" | awk '{print $1}' | grep -qxF -- "$t" || bad+=("$t")
done
if ((${#bad[@]})); then
  printf 'tests/run.sh: test skipped but not in tests/skip_allowlist.txt (make it run here, or add it there with the reason): %s\n' "${bad[@]}" >&2
  exit 1
fi
((${#skipped[@]} == 0)) || echo "tests/run.sh: skipped as allowed (tests/skip_allowlist.txt): ${skipped[*]}" >&2
