#!/usr/bin/env bash
# Installs, from Debian 12's packages, what the docker cluster (scripts/docker-cluster.sh) and
# its test (tests/docker/cluster_test.sh) need beyond scripts/install-deps.sh: the Docker
# engine, Compose, jq, curl and dig (the fleet DNS step), and debootstrap (the clean Debian 12
# image of tests/install/deb_test.sh). Idempotent. Starts dockerd when it
# is installed but not running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

scripts/apt-install.sh install-docker-deps docker.io docker-compose jq curl bind9-dnsutils \
    debootstrap
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
# Without systemd (containers, CI sandboxes) the engine has to be started by hand.
if ! docker info >/dev/null 2>&1; then
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        $SUDO systemctl start docker
    else
        $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
        for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    fi
fi
docker info >/dev/null 2>&1 || { echo "install-docker-deps: dockerd is not running" >&2; exit 1; }
