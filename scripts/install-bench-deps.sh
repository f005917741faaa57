#!/usr/bin/env bash
# Installs, from Debian 12's packages, what the benchmarks in tests/bench/ compare against:
# HAProxy and nginx (anchors and backend), wrk (load generator), linux-perf (profiling).
# Idempotent: it skips apt entirely when every package is already installed.
set -euo pipefail

packages=(haproxy nginx wrk linux-perf)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-bench-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
