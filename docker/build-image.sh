#!/usr/bin/env bash
# build-image.sh - builds the webgw image (default tag webgw:dev) from this checkout, offline.
#
#   docker/build-image.sh [TAG]
#
# No base image can be pulled here, so the image is FROM scratch: this script builds webgw,
# webgwctl, webgw-demo-backend and webgw-dns-client (the compose cluster's DNS round-robin
# client) with CMake (RelWithDebInfo, the configuration CI tests, then stripped), stages them
# with exactly the shared libraries ldd says they load and the dynamic loader, adds a minimal
# /etc/passwd and /etc/group, /tmp (1777) and /data (the data dir, owned by nobody), and runs
# `docker build` on that staging dir with docker/Dockerfile. File times are set to the last
# commit's time so the same commit stages the same bytes. At the end each program runs once
# in the image (--help) to prove the loader finds everything it needs.
#
# Environment: WEBGW_DOCKER_BUILD (CMake build dir, default build-docker), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tag=${1:-${WEBGW_IMAGE:-webgw:dev}}
build=${WEBGW_DOCKER_BUILD:-$root/build-docker}
jobs=${JOBS:-2}
programs=(webgw webgwctl webgw-demo-backend webgw-dns-client)

die() {
    echo "build-image: $*" >&2
    exit 1
}

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running?)"

echo "== building ${programs[*]} in $build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEBGW_SANITIZE= >"$build.configure.log" 2>&1 ||
    { tail -n 30 "$build.configure.log"; die "cmake configure failed"; }
cmake --build "$build" -j"$jobs" --target "${programs[@]}" >"$build.build.log" 2>&1 ||
    { tail -n 30 "$build.build.log"; die "build failed"; }

ctx=$build/image
rootfs=$ctx/rootfs
rm -rf "$ctx"
mkdir -p "$rootfs/usr/bin" "$rootfs/etc" "$rootfs/tmp" "$ctx/data"
chmod 1777 "$rootfs/tmp"
chmod 0755 "$ctx/data"

# stage_file SRC DEST: copies SRC (following symlinks) to DEST inside the rootfs.
stage_file() {
    mkdir -p "$(dirname "$rootfs$2")"
    cp -L "$1" "$rootfs$2"
}

for p in "${programs[@]}"; do
    stage_file "$build/bin/$p" "/usr/bin/$p"
    strip --strip-unneeded "$rootfs/usr/bin/$p" 2>/dev/null || true
    # ldd lines: "libx.so.1 => /path/libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
    # Each library is staged under the path the loader resolved, the loader under its own
    # path (the binaries' PT_INTERP), so no ld.so.cache or LD_LIBRARY_PATH is needed.
    libs=$(ldd "$build/bin/$p" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
    [ -n "$libs" ] || die "ldd found no libraries for $p (static binary?)"
    for lib in $libs; do
        [ -e "$rootfs$lib" ] || stage_file "$lib" "$lib"
    done
done

cat >"$rootfs/etc/passwd" <<'EOT'
root:x:0:0:root:/:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
EOT
cat >"$rootfs/etc/group" <<'EOT'
root:x:0:
nogroup:x:65534:
EOT
cp docker/Dockerfile "$ctx/Dockerfile"

epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
find "$ctx" -exec touch -h -d "@$epoch" {} +

echo "== staged $(find "$rootfs" -type f | wc -l) files, $(du -sh "$rootfs" | cut -f1):"
(cd "$rootfs" && find . -type f | sort | sed 's/^\./  /')

echo "== docker build -t $tag"
docker build -t "$tag" "$ctx" >"$build.docker.log" 2>&1 ||
    { tail -n 30 "$build.docker.log"; die "docker build failed"; }

echo "== checking that every program starts inside the image"
for p in "${programs[@]}"; do
    docker run --rm --network none --entrypoint "/usr/bin/$p" "$tag" --help >/dev/null ||
        die "$p does not start inside $tag (a library or the loader is missing)"
done
echo "== built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.1f MB", $1 / 1e6 }'))"
