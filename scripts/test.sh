#!/usr/bin/env bash
# Installs what is missing, then builds and runs every test three times over:
#   build/        release build, the whole suite
#   build-asan/   ASan + UBSan, the whole suite
#   build-tsan/   TSan, the tests labelled "tsan" (where threads meet: RCU readers, workers)
# Ends with one line "N passed, N failed" summing the three runs.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh || { echo "install-deps failed"; exit 1; }

jobs=${JOBS:-2}
passed=0
failed=0

run_suite() { # run_suite DIR SANITIZER [ctest args...]
    local dir=$1 san=$2
    shift 2
    echo "=== $dir (sanitizer: ${san:-none}) ==="
    if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEBGW_SANITIZE="$san" >"$dir.configure.log" 2>&1 ||
        ! cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1; then
        tail -n 40 "$dir.configure.log" "$dir.build.log" 2>/dev/null
        echo "$dir: build FAILED"
        failed=$((failed + 1))
        return
    fi
    local out
    out=$(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
        ctest --test-dir "$dir" --output-on-failure "$@" 2>&1)
    echo "$out" | tail -n 60
    local line total bad
    line=$(echo "$out" | grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' | tail -n 1)
    if [ -z "$line" ]; then
        echo "$dir: no ctest summary"
        failed=$((failed + 1))
        return
    fi
    total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
    bad=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed.*/\1/')
    passed=$((passed + total - bad))
    failed=$((failed + bad))
}

run_suite build ""
run_suite build-asan address
run_suite build-tsan thread -L tsan

echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
