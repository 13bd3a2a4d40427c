#!/usr/bin/env bash
# Fails when a C++ file is not formatted as .clang-format says (run `clang-format -i FILE`).
# Run by tests/run.sh after install-deps (which installs clang-format).
set -uo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check_format: clang-format is missing: run deploy/install-deps.sh --test" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cpp' '*.h' 2>/dev/null || find agent hooks storage verify tests -name '*.cpp' -o -name '*.h')
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/check_format.$$; then
  grep -E '^[^ ].*: (error|warning):' /tmp/check_format.$$ | cut -d: -f1 | sort -u |
    sed 's/^/check_format: not formatted (clang-format -i): /' >&2
  rm -f /tmp/check_format.$$
  exit 1
fi
rm -f /tmp/check_format.$$
echo "check_format: ${#files[@]} files follow .clang-format"
