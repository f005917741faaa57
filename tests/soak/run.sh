#!/usr/bin/env bash
# run.sh - the soak and fault suite in one command (as root): builds webgw if needed, starts
# 5 gateways, 4 backends and the load clients in network namespaces, runs a profile's traffic,
# churn and fault schedule, judges the invariants and writes report.md with SVG plots.
#
#   tests/soak/run.sh                      # 3-minute profile (what .ci/run runs), build/
#   tests/soak/run.sh --profile hour       # 60 minutes
#   tests/soak/run.sh --build build-asan   # gateways under ASan+UBSan (any profile)
#   tests/soak/run.sh --help               # every option
# Exit status: 0 every invariant held, 1 one failed, 2 the fleet could not be set up.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=build
for ((i = 1; i <= $#; i++)); do
    if [ "${!i}" = --build ]; then j=$((i + 1)); build=${!j}; fi
done
if [ "$(id -u)" -ne 0 ]; then
    echo "soak: needs root (network namespaces, iptables)" >&2
    exit 2
fi
for tool in ip iptables openssl gnuplot; do
    command -v "$tool" >/dev/null || { echo "soak: $tool missing: run scripts/install-deps.sh" >&2; exit 2; }
done
if [ ! -x "$build/bin/webgw" ] || [ ! -x "$build/bin/webgwctl" ]; then
    san=
    case $build in *asan*) san=address ;; esac
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEBGW_SANITIZE="$san" >/dev/null
    cmake --build "$build" -j"${JOBS:-2}" --target webgw webgwctl >/dev/null
fi
# Debian's python3 (stdlib only), not a user's shim in front of it
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" tests/soak/soak.py "$@"
