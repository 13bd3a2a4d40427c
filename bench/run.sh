#!/usr/bin/env bash
# Benchmark: mailvault vs restic vs borg vs tar|zstd on one generated Mailu volume set.
#
#   bench/run.sh                                   # 50 users x 2000 messages (~100k msgs, ~3 GB)
#   bench/run.sh --users 5 --messages 200          # quick run
#   bench/run.sh --out /tmp/mv-bench --repeat 2    # all options: bench/run.sh --help
#
# Needs the corpus generator ($MAILVAULT_CORPUS_GEN, default <repo>/../shared/corpus/gen_maildir.py)
# and the mailvault binary ($MAILVAULT_BIN, default <repo>/build/agent/mailvault). Installs restic,
# borgbackup, zstd and python3 with apt-get when they are missing (run as root on Debian 12).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

need=()
command -v python3 >/dev/null || need+=(python3)
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
command -v zstd >/dev/null || need+=(zstd)
command -v tar >/dev/null || need+=(tar)
[[ -x /usr/bin/time ]] || need+=(time)   # peak RSS (bench/measure.py)
if ((${#need[@]})); then
  echo "bench: installing ${need[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "bench: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

export MAILVAULT_BIN="${MAILVAULT_BIN:-$repo/build/agent/mailvault}"
export MAILVAULT_CORPUS_GEN="${MAILVAULT_CORPUS_GEN:-$repo/../shared/corpus/gen_maildir.py}"
if [[ ! -x "$MAILVAULT_BIN" ]]; then
  echo "bench: warning: no mailvault binary at $MAILVAULT_BIN (build it: cmake -S $repo -B $repo/build" \
       "-DCMAKE_BUILD_TYPE=Release && cmake --build $repo/build -j2); its column will show FAILED" >&2
fi
exec python3 "$here/bench.py" "$@"
