#!/usr/bin/env bash
# debian-image.sh - makes a clean Debian 12 image (default tag webgw-debian:12) for
# tests/install/deb_test.sh without any registry: debootstrap (minbase) from Debian's own
# packages into a temporary folder, then `docker import`.
set -euo pipefail
tag=${1:-webgw-debian:12}
command -v debootstrap >/dev/null || apt-get install -y debootstrap
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
debootstrap --variant=minbase bookworm "$dir/rootfs"
tar -C "$dir/rootfs" -c . | docker import - "$tag"
echo "debian-image: $tag"
