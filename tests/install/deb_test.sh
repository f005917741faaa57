#!/usr/bin/env bash
# deb_test.sh - the .deb installs on a clean Debian 12 and gives an operator what they expect:
# dpkg -i works (once the dependencies its control file names are installed from Debian's
# packages), webgw --version runs, the systemd unit, the config, the man pages and the bash
# completion are where Debian puts them, and `systemd-analyze verify` accepts the unit.
#
#   tests/install/deb_test.sh [DEB] [IMAGE]
#
# DEB defaults to the one scripts/package-deb.sh builds. IMAGE is a clean Debian 12 image
# (default webgw-debian:12; nothing is pulled from a registry: make it once with
# tests/install/debian-image.sh, which uses debootstrap and Debian's own packages).
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=${1:-}
image=${2:-webgw-debian:12}
if [ -z "$deb" ]; then
    deb=$(scripts/package-deb.sh | tail -n 1)
fi
[ -f "$deb" ] || { echo "deb_test: no package at $deb" >&2; exit 1; }
docker image inspect "$image" >/dev/null 2>&1 ||
    { echo "deb_test: no image $image (make it with tests/install/debian-image.sh)" >&2; exit 1; }
deps=$(dpkg-deb -f "$deb" Depends | sed -E 's/\([^)]*\)//g; s/,/ /g')
echo "== $deb on $image (depends: $deps)"
docker run --rm -i -v "$PWD/$deb:/tmp/webgw.deb:ro" "$image" bash -s -- $deps <<'IN'
set -euo pipefail
trap 'echo "deb_test: FAIL at line $LINENO: $BASH_COMMAND"' ERR
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" systemd >/dev/null
dpkg -i /tmp/webgw.deb
webgw --version
webgwctl --version
for f in /usr/lib/systemd/system/webgw.service /etc/webgw/webgw.yaml \
    /usr/share/doc/webgw/webgw.example.yaml /usr/share/man/man8/webgw.8 \
    /usr/share/man/man1/webgwctl.1 /usr/share/bash-completion/completions/webgw \
    /usr/share/bash-completion/completions/webgwctl; do
    test -s "$f" || { echo "missing $f"; exit 1; }
done
grep -q '^ExecStart=/usr/bin/webgw ' /usr/lib/systemd/system/webgw.service
dpkg-query -W -f='${Conffiles}\n' webgw | grep -q /etc/webgw/webgw.yaml
systemd-analyze verify /usr/lib/systemd/system/webgw.service
# the installed config is accepted (all defaults): a bad --workers fails after it loads
out=$(webgw --config /etc/webgw/webgw.yaml --workers 100000 2>&1 || true)
grep -q '^webgw: --workers: ' <<<"$out"
echo "deb_test: PASS"
IN
