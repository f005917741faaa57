#!/usr/bin/env bash
# Builds and runs the state benchmark (tests/bench/bench_state.c) in its own release build
# directory and prints its tables. Arguments go to bench_state, e.g.
#   tests/bench/state.sh --records 1000000 --seconds 3
# Needs ~2 GiB of RAM for 1M records and writes its stores under /dev/shm and /var/tmp
# (removed at exit).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${BUILD_DIR:-build-bench}
mkdir -p "$dir"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DWEBGW_SANITIZE= >"$dir/state-bench.configure.log" 2>&1 ||
    { tail -n 30 "$dir/state-bench.configure.log"; exit 1; }
cmake --build "$dir" -j"${JOBS:-2}" --target bench_state >"$dir/state-bench.build.log" 2>&1 ||
    { tail -n 30 "$dir/state-bench.build.log"; exit 1; }
exec "$dir/bench/bench_state" "$@"
