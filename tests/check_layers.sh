#!/usr/bin/env bash
# Enforces the layer table of docs/LAYERS.md on the sources:
#   - a file may include project headers only from its own folder and the folders its layer
#     lists below (nothing up, nothing sideways);
#   - only agent/cli prints (std::cout, std::cerr, printf, ...) or picks an exit code (exit,
#     _Exit, kExit*), and only agent/cli uses CLI11;
#   - libraries link the layers below them PRIVATE (no "PUBLIC mv_..." in a CMakeLists.txt).
# Usage: tests/check_layers.sh [SOURCE_ROOT]    exit 0 when clean, 1 with one line per violation.
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2

# layer folder -> the folders its files may include from (besides its own).
declare -A allowed=(
  [storage]=""
  [storage/s3]="storage"
  [storage/mailfiles]="storage"
  [hooks]="storage storage/mailfiles"
  [verify]="storage storage/mailfiles"
  [retention]="storage storage/mailfiles"
  [transfer]="storage"
  [agent/common]="storage"
  [agent/archiver]="agent/common hooks storage storage/mailfiles"
  [agent/restorer]="agent/common hooks storage storage/mailfiles"
  [agent/jobs]="agent/restorer agent/common verify storage storage/mailfiles"
  [agent/stack]="agent/archiver agent/restorer agent/common hooks storage storage/mailfiles"
  [agent/sidecar]="storage"
  [agent/cli]="agent/sidecar agent/stack agent/jobs agent/archiver agent/restorer agent/common retention transfer verify hooks storage storage/mailfiles storage/s3"
)

violations=0
fail() { echo "check_layers: $1" >&2; violations=$((violations + 1)); }

mapfile -t sources < <(find storage hooks verify retention transfer agent -name '*.cpp' -o -name '*.h' | sort)
for f in "${sources[@]}"; do
  layer=$(dirname "$f")
  if [[ -z ${allowed[$layer]+set} ]]; then
    fail "$f: folder $layer is not in the layer table (add it to tests/check_layers.sh and docs/LAYERS.md)"
    continue
  fi
  while IFS=: read -r line inc; do
    dir=$(dirname "$inc")
    [[ $dir == "$layer" ]] && continue
    ok=0
    for a in ${allowed[$layer]}; do [[ $dir == "$a" ]] && ok=1; done
    ((ok)) || fail "$f:$line: includes \"$inc\": $layer may include only from: $layer ${allowed[$layer]}"
  done < <(grep -noE '^\s*#\s*include\s+"[^"]+"' "$f" | sed -E 's/^([0-9]+):.*"([^"]+)"/\1:\2/')
  [[ $layer == agent/cli ]] && continue
  # Comments are not code: strip // comments before looking for output and exit codes.
  while IFS= read -r hit; do
    fail "$f:${hit%%:*}: prints (${hit#*:}): only agent/cli writes to the terminal; return the text or a Status"
  done < <(sed -E 's#//.*$##' "$f" | grep -noE 'std::(cout|cerr|clog)|\b(printf|fprintf|puts|perror)\s*\(' )
  while IFS= read -r hit; do
    fail "$f:${hit%%:*}: exit code or process exit (${hit#*:}): only agent/cli picks exit codes; return a Status or an outcome"
  done < <(sed -E 's#//.*$##' "$f" | grep -noE '\b(std::)?(exit|_Exit|quick_exit)\s*\(|\bkExit[A-Z][A-Za-z]*' )
  while IFS= read -r hit; do
    fail "$f:${hit%%:*}: uses CLI11 (${hit#*:}): only agent/cli parses the command line"
  done < <(grep -noE '#\s*include\s*<CLI/' "$f")
done

while IFS= read -r hit; do
  fail "$hit: links a layer PUBLIC: link the layers below PRIVATE"
done < <(grep -rnE 'PUBLIC[^)]*\bmv_[a-z_]+' --include=CMakeLists.txt storage hooks verify retention transfer agent)

if ((violations)); then
  echo "check_layers: $violations violation(s) of the layer table (docs/LAYERS.md)" >&2
  exit 1
fi
echo "check_layers: ${#sources[@]} files follow the layer table"
