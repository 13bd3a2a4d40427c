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
  [storage/crypto]="storage"
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
  [agent/cli]="agent/sidecar agent/stack agent/jobs agent/archiver agent/restorer agent/common retention transfer verify hooks storage storage/mailfiles storage/s3 storage/crypto"
)

violations=0
fail() { echo "check_layers: $1" >&2; violations=$((violations + 1)); }

dirs=(storage hooks verify retention transfer agent)
mapfile -t sources < <(find "${dirs[@]}" \( -name '*.cpp' -o -name '*.h' \) 2>/dev/null | sort)
# One pass of each tool over every file (a process per file made this take minutes on a slow
# machine). Folders first: a file outside the table is reported once and not looked at further.
declare -A unknown=()
for f in "${sources[@]}"; do
  layer=${f%/*}
  if [[ -z ${allowed[$layer]+set} ]]; then
    fail "$f: folder $layer is not in the layer table (add it to tests/check_layers.sh and docs/LAYERS.md)"
    unknown[$f]=1
  fi
done
# Includes: FILE:LINE:#include "dir/x.h"
re='^([^:]+):([0-9]+):.*"([^"]+)"'
while IFS= read -r hit; do
  [[ $hit =~ $re ]] || continue
  f=${BASH_REMATCH[1]} line=${BASH_REMATCH[2]} inc=${BASH_REMATCH[3]}
  [[ -n ${unknown[$f]+set} ]] && continue
  layer=${f%/*}
  dir=.
  [[ $inc == */* ]] && dir=${inc%/*}
  [[ $dir == "$layer" ]] && continue
  ok=0
  for a in ${allowed[$layer]}; do [[ $dir == "$a" ]] && ok=1; done
  ((ok)) || fail "$f:$line: includes \"$inc\": $layer may include only from: $layer ${allowed[$layer]}"
done < <(grep -HnoE '^\s*#\s*include\s+"[^"]+"' "${sources[@]}")
# Output, exit codes and CLI11 outside agent/cli. Comments are not code: // comments are
# stripped before looking for output and exit codes. Prints KIND:FILE:LINE:MATCH.
others=()
for f in "${sources[@]}"; do
  [[ ${f%/*} == agent/cli || -n ${unknown[$f]+set} ]] || others+=("$f")
done
while IFS= read -r hit; do
  kind=${hit%%:*} rest=${hit#*:}
  file=${rest%%:*} rest=${rest#*:}
  where=$file:${rest%%:*} what=${rest#*:}
  case $kind in
    print) fail "$where: prints ($what): only agent/cli writes to the terminal; return the text or a Status" ;;
    exit) fail "$where: exit code or process exit ($what): only agent/cli picks exit codes; return a Status or an outcome" ;;
    cli) fail "$where: uses CLI11 ($what): only agent/cli parses the command line" ;;
  esac
done < <( ((${#others[@]})) && perl -ne '
  my $raw = $_;
  if ($raw =~ /(#\s*include\s*<CLI\/)/) { print "cli:$ARGV:$.:$1\n" }
  (my $code = $raw) =~ s{//.*$}{};
  while ($code =~ /(std::(?:cout|cerr|clog)|\b(?:printf|fprintf|puts|perror)\s*\()/g) { print "print:$ARGV:$.:$1\n" }
  while ($code =~ /(\b(?:std::)?(?:exit|_Exit|quick_exit)\s*\(|\bkExit[A-Z][A-Za-z]*)/g) { print "exit:$ARGV:$.:$1\n" }
  close ARGV if eof;' "${others[@]}")

while IFS= read -r hit; do
  fail "$hit: links a layer PUBLIC: link the layers below PRIVATE"
done < <(grep -rnE 'PUBLIC[^)]*\bmv_[a-z_]+' --include=CMakeLists.txt "${dirs[@]}" 2>/dev/null)

if ((violations)); then
  echo "check_layers: $violations violation(s) of the layer table (docs/LAYERS.md)" >&2
  exit 1
fi
echo "check_layers: ${#sources[@]} files follow the layer table"
