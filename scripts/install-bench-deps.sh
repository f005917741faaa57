#!/usr/bin/env bash
# Installs, from Debian 12's packages, what the benchmarks in tests/bench/ compare against:
# HAProxy and nginx (anchors and backend), wrk (load generator), linux-perf (profiling).
# Idempotent (scripts/apt-install.sh skips apt when every package is already installed).
set -euo pipefail

packages=(haproxy nginx wrk linux-perf dnsperf nsd)

"$(dirname "$0")/apt-install.sh" install-bench-deps "${packages[@]}"
