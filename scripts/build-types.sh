#!/usr/bin/env bash
# build-types.sh - builds every CMake build type a user might pick (Debug, Release,
# RelWithDebInfo, MinSizeRel), each with and without -DWEBGW_WERROR=ON, tests included, and
# fails if any build fails or prints a compiler warning. Each type optimises differently, so
# each can raise warnings the others do not (-O2's format-truncation analysis broke Release
# once, -Os broke MinSizeRel once).
#
#   scripts/build-types.sh [TYPE...]      build dirs: build-types/TYPE[-werror]
#
# Not part of scripts/test.sh: eight full builds cost about 8 x the one CI already does (ccache
# shares nothing across types, their flags differ). Environment: JOBS (default 2).
set -uo pipefail
cd "$(dirname "$0")/.."
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(Debug Release RelWithDebInfo MinSizeRel)
failed=0
for type in "${types[@]}"; do
    for werror in OFF ON; do
        dir=build-types/$type$([ $werror = ON ] && echo -werror)
        t0=$SECONDS
        log=$dir.log
        mkdir -p build-types
        if cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DWEBGW_WERROR=$werror \
            -DWEBGW_SANITIZE= >"$log" 2>&1 && cmake --build "$dir" -j"${JOBS:-2}" >>"$log" 2>&1; then
            warnings=$(grep -c 'warning:' "$log")
            if [ "$warnings" -gt 0 ]; then
                echo "$type WEBGW_WERROR=$werror: built with $warnings warnings (see $log)"
                failed=$((failed + 1))
            else
                echo "$type WEBGW_WERROR=$werror: ok, no warnings ($((SECONDS - t0)) s)"
            fi
        else
            echo "$type WEBGW_WERROR=$werror: FAILED ($((SECONDS - t0)) s, see $log)"
            grep -m5 -E 'error:|warning:' "$log"
            failed=$((failed + 1))
        fi
    done
done
[ "$failed" -eq 0 ]
