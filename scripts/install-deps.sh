#!/usr/bin/env bash
# Installs, from Debian 12's packages, everything webgw needs to build, test and demo.
# Idempotent (scripts/apt-install.sh skips apt when every package is already installed).
set -euo pipefail

packages=(
    cmake make gcc clang clang-format pkg-config
    libclang-rt-14-dev           # libFuzzer and the sanitizer runtimes of the fuzz targets
    libuv1-dev libssl-dev libmsgpack-dev liburcu-dev libcmocka-dev
    node-llhttp libjansson-dev libyaml-dev libc-ares-dev libsystemd-dev
    libcurl4-openssl-dev pebble
    libldns-dev                  # the fleet's DNS server: wire format (dns/)
    bind9-dnsutils knot-dnsutils python3-dnspython   # dig, kdig, dnspython: the DNS tests
    curl python3 iproute2 procps
    dpkg-dev groff-base          # the .deb (cpack calls dpkg-shlibdeps); man page checks
    openssl iptables faketime gnuplot-nox   # the soak suite: certificates, partitions and loss, a skewed clock, plots
    chromium                     # the dashboard test renders /dashboard headless
    serf                         # the gossip benchmark's anchor (tests/bench/gossip_vs_serf.sh)
)

"$(dirname "$0")/apt-install.sh" install-deps "${packages[@]}"
