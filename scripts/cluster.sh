#!/usr/bin/env bash
# cluster.sh - a local 3-node webgw cluster with a demo app, for trying webgw on one machine.
#
#   scripts/cluster.sh          install what is missing, build, start everything, print URLs
#   scripts/cluster.sh stop     stop the nodes and the demo backends
#   scripts/cluster.sh status   what is running
#
# Each node listens on its own loopback address (127.0.0.1, .2, .3) with the default ports
# (HTTP 8080, HTTPS 8443, gossip 7946, API 9080); nodes 2 and 3 join node 1, gossip is
# encrypted with a fresh cluster key, and only the three gateways' node keys (.cluster/fleet.keys,
# made with `webgw identity` before they start) may witness claims. Two demo backends (python3 http.server on 127.0.0.21
# and 127.0.0.22, port 8000) serve "demo", which is reserved and exposed through node 1's API
# with a fresh owner key. Everything lives in .cluster/ (data dirs, keys, logs, pids).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=$root/.cluster
bin=$root/build/bin
nodes=(1 2 3)

stop_all() {
    local pidfile pid
    for pidfile in "$dir"/*.pid; do
        [ -e "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
}

wait_for() { # wait_for DESCRIPTION COMMAND...
    local what=$1
    shift
    for _ in $(seq 1 100); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "cluster: timed out waiting for $what" >&2
    return 1
}

case "${1:-start}" in
stop)
    stop_all
    echo "cluster stopped"
    exit 0
    ;;
status)
    for pidfile in "$dir"/*.pid; do
        [ -e "$pidfile" ] || continue
        name=$(basename "$pidfile" .pid)
        if kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "$name: running"; else echo "$name: dead"; fi
    done
    exit 0
    ;;
start) ;;
*)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac

echo "== installing dependencies"
scripts/install-deps.sh
echo "== building webgw and webgwctl in build/ (half a minute the first time)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >build.configure.log 2>&1 ||
    { cat build.configure.log; exit 1; }
cmake --build build -j"$(nproc)" --target webgw webgwctl

stop_all
mkdir -p "$dir"
[ -s "$dir/cluster.key" ] || head -c 32 /dev/urandom | base64 >"$dir/cluster.key"
chmod 600 "$dir/cluster.key"
# the fleet roster: each gateway's node key, made before it first runs; only these witness
# claims (README "Trust model")
echo "# node keys of the demo fleet (webgw identity --data-dir DIR prints one)" >"$dir/fleet.keys.new"
for i in "${nodes[@]}"; do
    key=$("$bin/webgw" identity --data-dir "$dir/gw$i" 2>/dev/null)
    echo "$key gw$i" >>"$dir/fleet.keys.new"
done
mv "$dir/fleet.keys.new" "$dir/fleet.keys"

echo "== starting demo backends on 127.0.0.21:8000 and 127.0.0.22:8000"
for b in 21 22; do
    mkdir -p "$dir/www$b"
    printf 'hello from demo backend 127.0.0.%s\n' "$b" >"$dir/www$b/index.html"
    (cd "$dir/www$b" && exec python3 -m http.server 8000 --bind "127.0.0.$b" >"$dir/backend$b.log" 2>&1) &
    echo $! >"$dir/backend$b.pid"
done

echo "== starting gw1, gw2, gw3 on 127.0.0.1, 127.0.0.2, 127.0.0.3"
for i in "${nodes[@]}"; do
    ip=127.0.0.$i
    join=()
    [ "$i" = 1 ] || join=(--join 127.0.0.1:7946)
    "$bin/webgw" --node-name "gw$i" --data-dir "$dir/gw$i" --domain localhost \
        --http "$ip:8080" --https "$ip:8443" --gossip "$ip:7946" --api "$ip:9080" \
        --cluster-key "$dir/cluster.key" --fleet-keys "$dir/fleet.keys" \
        --allow-loopback-backends --workers 1 \
        "${join[@]}" >"$dir/gw$i.log" 2>&1 &
    echo $! >"$dir/gw$i.pid"
    wait_for "gw$i's API" curl -fsS "http://$ip:9080/healthz"
done
wait_for "the demo backends" curl -fsS http://127.0.0.21:8000/ http://127.0.0.22:8000/

echo "== reserving and exposing demo through gw1's API"
export WEBGW_API=http://127.0.0.1:9080 WEBGW_KEY=$dir/owner.key
[ -s "$WEBGW_KEY" ] || "$bin/webgwctl" keygen >/dev/null
"$bin/webgwctl" reserve demo
"$bin/webgwctl" expose demo --backend http://127.0.0.21:8000 --backend http://127.0.0.22:8000

for i in "${nodes[@]}"; do
    wait_for "gw$i to serve demo" curl -fsS -H "Host: demo.localhost" "http://127.0.0.$i:8080/"
done
"$bin/webgwctl" members

cat <<EOT

webgw cluster is up: 3 gateways, every one serves demo.localhost.

  curl http://demo.localhost:8080/                      (gw1; *.localhost is 127.0.0.1)
  curl -H 'Host: demo.localhost' http://127.0.0.2:8080/ (gw2)
  curl -H 'Host: demo.localhost' http://127.0.0.3:8080/ (gw3)

  dashboard:  http://127.0.0.1:9080/dashboard
  CLI:        export WEBGW_API=$WEBGW_API WEBGW_KEY=$WEBGW_KEY
              $bin/webgwctl names
  logs:       $dir/gw1.log (gw2.log, gw3.log)
  try:        kill -9 \$(cat $dir/gw2.pid)   # the others keep serving
  stop:       scripts/cluster.sh stop
EOT
