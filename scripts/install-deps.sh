#!/usr/bin/env bash
# Installs, from Debian 12's packages, everything webgw needs to build, test and demo.
# Idempotent: it skips apt entirely when every package is already installed.
set -euo pipefail

packages=(
    cmake make gcc clang clang-format pkg-config
    libuv1-dev libssl-dev libmsgpack-dev liburcu-dev libcmocka-dev
    node-llhttp libjansson-dev libyaml-dev libc-ares-dev libsystemd-dev
    libcurl4-openssl-dev pebble
    curl python3 iproute2 procps
    chromium                     # the dashboard test renders /dashboard headless
    serf                         # the gossip benchmark's anchor (tests/bench/gossip_vs_serf.sh)
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
