#!/usr/bin/env bash
# Installs what is missing, then builds and runs every test three times over:
#   build/        release build, the whole suite
#   build-asan/   ASan + UBSan, the whole suite
#   build-tsan/   TSan, the tests labelled "tsan" (where threads meet: RCU readers, workers)
# then whole-system tests, one count each: the 3-minute soak (tests/soak/run.sh, gateways
# from build-asan/; WEBGW_SOAK_GATES=0 reports it without counting), the docker cluster test
# (tests/docker/cluster_test.sh) and the .deb on a clean Debian 12 (tests/install/deb_test.sh).
# Builds with -DWEBGW_WERROR=ON (warnings are errors here, not in users' builds). Prints the build
# steps and each test as it finishes; ends with one line "N passed, N failed" summing all of them.
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

run_step() { # run_step NAME LOG COMMAND...: one whole-system test, counted as one test
    local name=$1 log=$2
    shift 2
    echo "=== $name ==="
    local t0=$SECONDS
    # streamed as it runs (pipefail: the status is the command's), and kept in LOG
    if "$@" 2>&1 | tee "$log"; then
        echo "$name: passed in $((SECONDS - t0)) s"
        passed=$((passed + 1))
    else
        echo "$name: FAILED in $((SECONDS - t0)) s (full output: $log)"
        failed=$((failed + 1))
    fi
}

run_suite build ""
run_suite build-asan address
run_suite build-tsan thread -L tsan
# The fleet over time: 5 gateways (the ASan build) under traffic, churn and faults for 3 minutes
# (its report: build-asan/soak-ci/report.md), counted as one test. It was reported without being
# counted while its findings were open (night to 2026-12-05: a reset at SIGTERM, health verdicts
# starved by the setup's records, a use-after-free in the replay copy, a worker crash on a slow
# keep-alive reader, FD growth that was the backend pool); with all of them fixed, every ASan run
# since has passed all 7 invariants (two CI runs and three by hand on 2026-12-05).
# WEBGW_SOAK_GATES=0 runs and reports it without counting it.
if [ "${WEBGW_SOAK_GATES:-1}" = 1 ]; then
    run_step "soak (tests/soak, 3-minute profile, gateways under ASan)" build-asan/soak-ci.log \
        tests/soak/run.sh --profile ci --build build-asan --ctl-build build --out build-asan/soak-ci
else
    echo "=== soak (tests/soak, 3-minute profile, gateways under ASan; reported, not counted) ==="
    if tests/soak/run.sh --profile ci --build build-asan --ctl-build build --out build-asan/soak-ci 2>&1 |
        tee build-asan/soak-ci.log; then
        echo "soak: passed (not counted)"
    else
        echo "soak: FAILED (not counted; see build-asan/soak-ci/report.md)"
    fi
fi
# The docker compose cluster (builds its image from this checkout, no registry).
run_step "docker cluster (tests/docker/cluster_test.sh)" build-docker-test.log \
    bash -c 'scripts/install-docker-deps.sh && tests/docker/cluster_test.sh'

# The .deb on a clean Debian 12 container: a Release build without tests (scripts/package-deb.sh),
# the image made once by debootstrap from the Debian mirror (tests/install/debian-image.sh, 37 s
# here), then dpkg -i with the package's dependencies installed by apt inside the container (it
# needs the Debian mirror from the container's default bridge network; nothing else).
run_step "deb package on clean Debian 12 (tests/install/deb_test.sh)" build-deb-test.log \
    bash -c 'scripts/install-docker-deps.sh && { docker image inspect webgw-debian:12 \
        >/dev/null 2>&1 || tests/install/debian-image.sh; } && tests/install/deb_test.sh'

echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
