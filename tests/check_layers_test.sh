#!/usr/bin/env bash
# Proves tests/check_layers.sh catches what it is for: on a copy of the sources, each injected
# violation must make it fail and name the file; the real tree must pass.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
check="$src/tests/check_layers.sh"
bash "$check" "$src" >/dev/null || { echo "FAIL: the tree itself violates the layer table"; bash "$check" "$src"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
# case: file, line appended, text the report must contain
cases=(
  'storage/fs.cpp|#include "agent/cli/cli.h"|storage/fs.cpp'
  'verify/check.cpp|void F() { std::cout << 1; }|verify/check.cpp'
  'agent/archiver/backup.cpp|#include "agent/restorer/restore.h"|agent/archiver/backup.cpp'
  'agent/restorer/restore.cpp|#include "agent/stack/stack_ops.h"|agent/restorer/restore.cpp'
  'hooks/exec.cpp|#include "verify/check.h"|hooks/exec.cpp'
  'agent/sidecar/sidecar.cpp|int G() { return kExitError; }|agent/sidecar/sidecar.cpp'
  'agent/jobs/verify_run.cpp|void H() { std::exit(1); }|agent/jobs/verify_run.cpp'
  'storage/mailfiles/maildir.cpp|#include <CLI/CLI.hpp>|storage/mailfiles/maildir.cpp'
  'verify/CMakeLists.txt|target_link_libraries(mv_verify PUBLIC mv_storage)|verify/CMakeLists.txt'
)
for c in "${cases[@]}"; do
  IFS='|' read -r file line expect <<<"$c"
  rm -rf "$work/t" && mkdir "$work/t"
  (cd "$src" && tar -cf - storage hooks verify retention transfer agent) | tar -xf - -C "$work/t"
  echo "$line" >>"$work/t/$file"
  out=$(bash "$check" "$work/t" 2>&1) && { echo "FAIL: not caught: '$line' in $file"; status=1; continue; }
  grep -qF "$expect" <<<"$out" || { echo "FAIL: '$line' in $file: report does not name the file: $out"; status=1; continue; }
  echo "ok: caught '$line' in $file"
done
# A comment mentioning std::cout is not code.
rm -rf "$work/t" && mkdir "$work/t"
(cd "$src" && tar -cf - storage hooks verify retention transfer agent) | tar -xf - -C "$work/t"
echo '// never std::cout here; exit( is the CLI'"'"'s' >>"$work/t/verify/check.cpp"
bash "$check" "$work/t" >/dev/null 2>&1 || { echo "FAIL: a comment was taken for code"; status=1; }
exit $status
