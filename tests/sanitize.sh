#!/usr/bin/env bash
# `tests/run.sh --sanitize`: the whole project built with clang++, AddressSanitizer and
# UndefinedBehaviorSanitizer (undefined behaviour is fatal) in build/sanitize; then the unit suite
# runs against it (the tests that run the CLI run the sanitized binary) and each libFuzzer target
# in tests/fuzz runs for MAILVAULT_FUZZ_SECONDS (default 50) from a copy of its seed corpus, so
# the committed corpus does not grow. Exits non-zero on a test failure, an unexpected skip, or a
# fuzzer finding (the crashing input is left in build/sanitize/fuzz-findings/).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=$src/build/sanitize
seconds=${MAILVAULT_FUZZ_SECONDS:-50}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
command -v clang++ >/dev/null || { echo "sanitize: clang++ is missing: run deploy/install-deps.sh --test" >&2; exit 1; }

cmake -S . -B "$out" -DCMAKE_BUILD_TYPE="${MAILVAULT_BUILD_TYPE:-RelWithDebInfo}" -DCMAKE_CXX_COMPILER=clang++ \
  -DMAILVAULT_SANITIZE=ON -DMAILVAULT_WERROR=ON "${launcher[@]}" >/dev/null
cmake --build "$out" -j"$(nproc)" --target mailvault mv_tests mv_fuzz 2>&1 \
  | { grep -vE '^\[ *[0-9]+%\] (Building|Linking|Built)' || true; }

# A decoder that allocates beyond 2 GiB for an input of a few KB is a defect: fail on it.
export ASAN_OPTIONS=allocator_may_return_null=0:max_allocation_size_mb=2048:detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$src/tests/lsan.supp:print_suppressions=0
symbolizer=$(command -v llvm-symbolizer || ls /usr/lib/llvm-*/bin/llvm-symbolizer 2>/dev/null | head -1 || true)
[[ -n "$symbolizer" ]] && export ASAN_SYMBOLIZER_PATH=$symbolizer

# ResticEquivalence spends its two minutes in restic (the oracle of retention semantics), not in
# our code, and the main suite runs it: it is left out here.
echo "sanitize: unit suite under ASan+UBSan" >&2
(cd "$out" && ctest -L unit -E '^ResticEquivalence\.' --output-on-failure --timeout 3000 -j"$(nproc)") \
  | tee "$out/ctest.log"
bash tests/check_skips.sh "$out/ctest.log"

findings=$out/fuzz-findings
rm -rf "$findings"; mkdir -p "$findings"
failed=()
for corpus in tests/fuzz/corpus/*/; do
  name=$(basename "$corpus")
  work=$(mktemp -d)
  cp -r "$corpus/." "$work/"
  dict=()
  case $name in
    cron) dict=(-dict=tests/fuzz/cron.dict) ;;
    s3_xml) dict=(-dict=tests/fuzz/s3_xml.dict) ;;
    config | manifest | index | engine | held | headers) dict=(-dict=tests/fuzz/json.dict) ;;
  esac
  echo "sanitize: fuzzing $name for ${seconds}s" >&2
  if ! "$out/tests/fuzz/mv_fuzz_$name" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
       -print_final_stats=1 -artifact_prefix="$findings/$name-" "$work" >"$out/fuzz-$name.log" 2>&1; then
    failed+=("$name")
    tail -n 60 "$out/fuzz-$name.log" >&2
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$out/fuzz-$name.log" \
    | sed "s/^/  $name /" >&2 || true
  rm -rf "$work"
done
if ((${#failed[@]})); then
  echo "sanitize: the fuzzers found defects in: ${failed[*]} (inputs in $findings; logs in $out/fuzz-*.log)" >&2
  exit 1
fi
echo "sanitize: unit suite and fuzzers passed" >&2
