#!/usr/bin/env bash
# Installs, from Debian 12's packages, what the benchmarks in tests/bench/ compare against:
# HAProxy, nginx (with its stream module, for TLS passthrough) and h2o (anchors and backend),
# wrk (load generator), linux-perf (profiling), gnuplot (report.sh charts).
# Idempotent (scripts/apt-install.sh skips apt when every package is already installed).
set -euo pipefail

packages=(haproxy nginx libnginx-mod-stream h2o wrk linux-perf gnuplot-nox dnsperf nsd)

"$(dirname "$0")/apt-install.sh" install-bench-deps "${packages[@]}"
