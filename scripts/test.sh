#!/usr/bin/env bash
# Installs what is missing, then builds and runs every test three times over:
#   build/        release build, the whole suite
#   build-asan/   ASan + UBSan, the whole suite
#   build-tsan/   TSan, the tests labelled "tsan" (where threads meet: RCU readers, workers)
# Builds with -DWEBGW_WERROR=ON (warnings are errors here, not in users' builds). Prints the build
# steps and each test as it finishes; ends with one line "N passed, N failed" summing the runs.
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
    # configure and build print as they go (cmake's [ NN%] lines), and are kept in DIR.*.log
    if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEBGW_SANITIZE="$san" \
        -DWEBGW_WERROR=ON 2>&1 | tee "$dir.configure.log" ||
        ! cmake --build "$dir" -j"$jobs" 2>&1 | tee "$dir.build.log"; then
        echo "$dir: build FAILED (see $dir.configure.log, $dir.build.log)"
        failed=$((failed + 1))
        return
    fi
    # each test is printed as it finishes; the whole run is kept in DIR.ctest.log for the tally
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
        ctest --test-dir "$dir" --output-on-failure "$@" 2>&1 | tee "$dir.ctest.log"
    local line total bad
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$dir.ctest.log" | tail -n 1)
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
