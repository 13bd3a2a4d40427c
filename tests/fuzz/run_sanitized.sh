#!/usr/bin/env bash
# Builds the decoder fuzzer with AddressSanitizer and UndefinedBehaviorSanitizer in its own build
# tree (only the storage layer and the fuzzer are compiled) and runs it. Registered in ctest as
# decoder_fuzz_sanitized:  run_sanitized.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 out=$2
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAILVAULT_SANITIZE=ON "${launcher[@]}" >/dev/null
cmake --build "$out" -j"$(nproc)" --target mv_decoder_fuzz 2>&1 | grep -E "error|Error" && exit 1
# An allocation beyond 1 GiB from a decoder of a few-KB input is a defect: fail on it.
export ASAN_OPTIONS=allocator_may_return_null=0:max_allocation_size_mb=1024:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
exec "$out/tests/fuzz/mv_decoder_fuzz"
