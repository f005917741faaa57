#!/usr/bin/env bash
# Installs the given Debian packages that are not installed yet; the install-*-deps.sh scripts
# call it with their lists. Idempotent: it skips apt entirely when every package is installed.
# Usage: scripts/apt-install.sh WHO PKG...   (WHO names the caller in the one line it prints)
set -euo pipefail

who=$1
shift

missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "$who: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
