#!/usr/bin/env bash
# package-deb.sh - builds the Debian package of this checkout: a Release build with prefix /usr
# (so the unit's ExecStart is /usr/bin/webgw and the config lands in /etc/webgw), without the
# tests, then cpack -G DEB. Prints the .deb's path on the last line.
#
#   scripts/package-deb.sh            -> build-deb/webgw_VERSION_ARCH.deb
#
# Environment: WEBGW_DEB_BUILD (build dir, default build-deb), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${WEBGW_DEB_BUILD:-build-deb}
echo "== configuring $build (Release, prefix /usr, no tests)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DWEBGW_TESTS=OFF \
    -DWEBGW_SANITIZE=
echo "== building webgw and webgwctl"
cmake --build "$build" -j"${JOBS:-2}" --target webgw webgwctl
echo "== cpack"
(cd "$build" && cpack -G DEB)
ls "$build"/webgw_*.deb | tail -n 1
