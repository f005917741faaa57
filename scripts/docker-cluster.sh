#!/usr/bin/env bash
# docker-cluster.sh - the 3-node webgw cluster in Docker containers, with a demo app.
#
#   scripts/docker-cluster.sh [up]   build webgw:dev, start docker/compose.yml, expose "demo"
#   scripts/docker-cluster.sh down   stop and remove the containers, network and volumes
#   scripts/docker-cluster.sh status containers and each gateway's member list
#
# Needs a Docker engine and Compose (scripts/install-docker-deps.sh installs Debian's). No
# image is pulled: docker/build-image.sh makes webgw:dev FROM scratch out of this checkout.
# gw1, gw2 and gw3 gossip (encrypted with a fresh cluster key) on an internal network with two
# demo backends; their HTTP and API ports are published on 127.0.0.1 only (18081..18083 and
# 19081..19083). "demo" is reserved and exposed through gw1 with a fresh owner key. The keys
# live in docker/.state/ (cluster.key, owner.key, and fleet.keys: the gateways' node keys,
# remade when `down` removed their volumes), kept across `down` so a restarted cluster keeps its
# owner.
#
# Environment: WEBGW_NO_BUILD=1 (use the image as it is), WEBGW_NET (cluster subnet's first
# three octets, default 10.89.53), WEBGW_PROJECT (compose project, default webgw).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. "$root/scripts/docker-lib.sh"

project=${WEBGW_PROJECT:-webgw}
export WEBGW_STATE=${WEBGW_STATE:-$root/docker/.state}
export WEBGW_NET=${WEBGW_NET:-10.89.53}
export WEBGW_IMAGE=${WEBGW_IMAGE:-webgw:dev}
export WEBGW_KEY=$WEBGW_STATE/owner.key
ctl="${WEBGW_DOCKER_BUILD:-$root/build-docker}/bin/webgwctl"

case "${1:-up}" in
down)
    docker_compose down -v --remove-orphans -t 15
    exit 0
    ;;
status)
    docker_compose ps
    for i in 1 2 3; do
        echo "-- gw$i's view"
        "$ctl" --api "http://127.0.0.1:1908$i" members || true
    done
    exit 0
    ;;
up) ;;
*)
    echo "usage: $0 [up|down|status]" >&2
    exit 2
    ;;
esac

[ "${WEBGW_NO_BUILD:-0}" = 1 ] || "$root/docker/build-image.sh" "$WEBGW_IMAGE"
docker_make_cluster_key "$WEBGW_STATE/cluster.key"
docker_make_fleet_keys "$WEBGW_STATE/fleet.keys"
echo "== starting gw1 gw2 gw3 and backend-a backend-b on $WEBGW_NET.0/24"
docker_compose up -d

api1=http://127.0.0.1:19081
cluster_formed() {
    local i
    for i in 1 2 3; do
        [ "$("$ctl" --api "http://127.0.0.1:1908$i" --json members |
            grep -o '"state": *"alive"' | wc -l)" = 3 ] || return 1
    done
}
docker_wait 60 "three alive members on every gateway" cluster_formed ||
    { docker_compose logs --tail 20; exit 1; }

echo "== reserving and exposing demo through gw1"
[ -s "$WEBGW_KEY" ] || "$ctl" keygen >/dev/null
"$ctl" --api "$api1" reserve demo 2>/dev/null || "$ctl" --api "$api1" show demo >/dev/null
"$ctl" --api "$api1" expose demo --backend "http://$WEBGW_NET.21:8000" \
    --backend "http://$WEBGW_NET.22:8000"
for i in 1 2 3; do
    docker_wait 30 "gw$i to serve demo" curl -fsS -m 3 "http://demo.localhost:1808$i/"
done
"$ctl" --api "$api1" members
gw2=$(docker inspect -f '{{.Name}}' "$(docker_container gw2)" | tr -d /)
gw3=$(docker inspect -f '{{.Name}}' "$(docker_container gw3)" | tr -d /)
client=$(docker inspect -f '{{.Name}}' "$(docker_container client)" | tr -d /)

cat <<EOT

webgw docker cluster is up: 3 gateways in containers, each serving demo.localhost from the
demo backends (backend-a, backend-b) on the internal network $WEBGW_NET.0/24.

  curl http://demo.localhost:18081/     (gw1; also :18082 gw2, :18083 gw3)
  dashboard:  http://127.0.0.1:19081/dashboard   (19082, 19083)
  CLI:        export WEBGW_API=$api1 WEBGW_KEY=$WEBGW_KEY
              $ctl names
  logs:       docker logs -f $gw2
  fleet DNS:  dig @$WEBGW_NET.11 demo.localhost A        (every gateway answers on :53)
              docker logs -f $client   # demo.localhost by name, resolver = the gateways
  try:        docker kill $gw2        # gw1 and gw3 keep serving, see gw2 dead, drop it from DNS
              docker network disconnect ${project}_cluster $gw3   # partition
              docker network connect --ip $WEBGW_NET.13 ${project}_cluster $gw3   # heal
  stop:       scripts/docker-cluster.sh down
EOT
