# docker-lib.sh - shell helpers shared by scripts/docker-cluster.sh and
# tests/docker/cluster_test.sh (sourced, not run). They drive docker/compose.yml.
#
# The caller sets: root (repo top), project (compose project name). Exported variables that
# docker/compose.yml reads (WEBGW_IMAGE, WEBGW_NET, WEBGW_STATE, WEBGW_GW*_*) pass through.

# docker_compose ARGS...: runs Compose v2 (`docker compose`) when present, else docker-compose
# v1 (Debian 12's package), on docker/compose.yml under the caller's project name.
docker_compose() {
    if [ -z "${DOCKER_COMPOSE_CMD:-}" ]; then
        if docker compose version >/dev/null 2>&1; then
            DOCKER_COMPOSE_CMD="docker compose"
        elif command -v docker-compose >/dev/null; then
            DOCKER_COMPOSE_CMD=docker-compose
        else
            echo "neither 'docker compose' nor docker-compose is installed" \
                "(scripts/install-docker-deps.sh installs it)" >&2
            return 1
        fi
    fi
    $DOCKER_COMPOSE_CMD -p "$project" -f "$root/docker/compose.yml" "$@"
}

# docker_container SERVICE: the container id of SERVICE (stable across docker kill/start).
docker_container() {
    docker_compose ps -q "$1"
}

# docker_host_port CONTAINER PORT: the 127.0.0.1 host port published for PORT/tcp, or nothing
# when the container is stopped. Asked each time: Docker may pick another one on a restart.
docker_host_port() {
    docker port "$1" "$2/tcp" 2>/dev/null | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -n 1
}

# docker_free_net: prints the first three octets of a 10.89.X.0/24 that no Docker network uses,
# starting at a random X so concurrent runs do not collide.
docker_free_net() {
    local used x i
    used=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' \
        $(docker network ls -q) 2>/dev/null)
    x=$((RANDOM % 200 + 20))
    for i in $(seq 0 199); do
        local cand=10.89.$(((x + i) % 200 + 20))
        case " $used " in
        *" $cand.0/24 "*) ;;
        *)
            echo "$cand"
            return 0
            ;;
        esac
    done
    echo "no free 10.89.X.0/24 subnet for the cluster network" >&2
    return 1
}

# docker_make_cluster_key FILE: one fresh base64 32-byte key, readable by the image's user
# (nobody, 65534) and nobody else; when not root, world-readable inside a 0700 directory.
docker_make_cluster_key() {
    local file=$1
    mkdir -p "$(dirname "$file")"
    chmod 700 "$(dirname "$file")"
    [ -s "$file" ] || head -c 32 /dev/urandom | base64 >"$file"
    if ! chown 65534:65534 "$file" 2>/dev/null || ! chmod 400 "$file"; then
        chmod 444 "$file"
    fi
}

# docker_make_fleet_keys FILE: the fleet roster (--fleet-keys) of gw1..gw3: each gateway's node
# key, made in its data volume by `webgw identity` (as the image's user, before the gateway
# first runs; an existing key is kept), one "KEY gwN" line each. Needs the image.
docker_make_fleet_keys() {
    local file=$1 i key
    [ -e "$file" ] || : >"$file" # compose mounts it: a missing file would become a directory
    echo "# node keys of the compose fleet (webgw identity --data-dir /data in each volume)" \
        >"$file.new"
    for i in 1 2 3; do
        key=$(docker_compose run --rm --no-deps -T --entrypoint /usr/bin/webgw "gw$i" \
            identity --data-dir /data 2>/dev/null | tail -n 1)
        case "$key" in
        [0-9a-f]*) [ "${#key}" = 64 ] || { echo "gw$i: no node key (\"$key\")" >&2; return 1; } ;;
        *) echo "gw$i: no node key (webgw identity printed \"$key\")" >&2; return 1 ;;
        esac
        echo "$key gw$i" >>"$file.new"
    done
    chmod 644 "$file.new"
    mv "$file.new" "$file"
}

# docker_wait SECONDS DESCRIPTION COMMAND...: polls COMMAND every half second until it succeeds;
# prints how long it took on success, returns 1 after SECONDS.
docker_wait() {
    local limit=$1 what=$2 start now
    shift 2
    start=$(date +%s%N)
    while :; do
        if "$@" >/dev/null 2>&1; then
            now=$(date +%s%N)
            DOCKER_WAITED_MS=$(((now - start) / 1000000))
            return 0
        fi
        now=$(date +%s%N)
        if [ $(((now - start) / 1000000000)) -ge "$limit" ]; then
            echo "timed out after ${limit}s waiting for $what" >&2
            return 1
        fi
        sleep 0.5
    done
}
