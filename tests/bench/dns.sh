#!/usr/bin/env bash
# dns.sh - the fleet's DNS against NSD serving an equivalent static zone (issue 12), same
# machine, same run, one thread each:
#   webgw  one node answering gw.bench: --dns-listen, --dns-rrl 0, three --public-addr; its DNS
#          server runs on the node's control loop (one thread; --workers 1 is the HTTP proxy)
#   NSD    server-count: 1 (one server process, one thread), rrl-ratelimit: 0, a zone file
#          holding the same records (SOA, NS + glue, demo A x3)
#   load   dnsperf -c 1 -T 1 -q 200 (one client thread, 200 queries in flight), alternating
#          "demo.gw.bench A" (3 records) and "nothing.gw.bench A" (NXDOMAIN), DURATION seconds
# ROUNDS interleaved rounds (webgw, then NSD); prints the settings, each round with both
# rates, CPU per query and the ratio, then the medians and their ratio (webgw/nsd). RRL is
# off on both sides (Debian's NSD has it on): one client would otherwise be rate-limited by
# design.
#
#   tests/bench/dns.sh [build-dir]      (env: ROUNDS=3 DURATION=10 JOBS=2)
#
# Works from a clean clone: installs nsd and dnsperf (scripts/install-bench-deps.sh) and the
# build and test tools (scripts/install-deps.sh: dig, python3) when missing, and builds webgw
# and webgwctl (RelWithDebInfo) in build-dir (default build) when they are not there. Refuses
# a sanitizer build (its figures mean nothing). Servers listen on 127.0.0.91 only.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; }
if ! have dig || ! have python3 || ! have pgrep || ! have cmake; then
    scripts/install-deps.sh || { echo "dns.sh: scripts/install-deps.sh failed"; exit 1; }
fi
if ! have nsd || ! have dnsperf; then
    scripts/install-bench-deps.sh || { echo "dns.sh: scripts/install-bench-deps.sh failed"; exit 1; }
fi
NSD=$(command -v nsd || echo /usr/sbin/nsd)
if [ ! -x "$build/bin/webgw" ] || [ ! -x "$build/bin/webgwctl" ]; then
    echo "dns.sh: building webgw and webgwctl in $build (RelWithDebInfo)"
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.dns-bench.log" 2>&1 &&
        cmake --build "$build" -j"${JOBS:-2}" --target webgw webgwctl >>"$build.dns-bench.log" 2>&1 ||
        { tail -n 20 "$build.dns-bench.log"; echo "dns.sh: build failed"; exit 1; }
fi
if grep -Eq '^WEBGW_SANITIZE:STRING=.+' "$build/CMakeCache.txt" 2>/dev/null; then
    echo "dns.sh: $build is a sanitizer build; benchmark a plain one (tests/bench/dns.sh build)"
    exit 1
fi
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null)

work=$(mktemp -d /tmp/webgw-bench-dns.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

IP=127.0.0.91 WEBGW_DNS=18591 NSD_PORT=18592 BACKEND=18593
A1=192.0.2.1 A2=192.0.2.2 A3=192.0.2.3

# --- webgw: one node, a name with a live backend (so the name is served, not NODATA) -----
/usr/bin/python3 -m http.server $BACKEND --bind $IP >/dev/null 2>&1 &
pids+=($!)
"$build/bin/webgw" --data-dir "$work/gw" --node-name gw1 --domain gw.bench \
    --http $IP:18594 --https $IP:18595 --gossip $IP:18596 --api $IP:18597 --workers 1 \
    --dns-listen $IP:$WEBGW_DNS --dns-rrl 0 --allow-loopback-backends \
    --public-addr $A1 --public-addr $A2 --public-addr $A3 --log-level warn 2>"$work/webgw.log" &
webgw_pid=$!
pids+=($webgw_pid)
sleep 1
export WEBGW_API=http://$IP:18597 WEBGW_KEY=$work/owner.key
"$build/bin/webgwctl" keygen >/dev/null 2>&1
"$build/bin/webgwctl" reserve demo >/dev/null
"$build/bin/webgwctl" expose demo --backend http://$IP:$BACKEND >/dev/null
for _ in $(seq 50); do
    [ "$(dig +short @$IP -p $WEBGW_DNS demo.gw.bench A | wc -l)" = 3 ] && break
    sleep 0.1
done

# --- NSD: the same records from a zone file -----------------------------------------------
mkdir -p "$work/nsd"
cat >"$work/nsd/gw.bench.zone" <<ZONE
\$ORIGIN gw.bench.
\$TTL 30
@        IN SOA ns-gw1.gw.bench. hostmaster.gw.bench. 1 3600 600 86400 30
@        IN NS  ns-gw1.gw.bench.
ns-gw1   IN A   $A1
ns-gw1   IN A   $A2
ns-gw1   IN A   $A3
demo     IN A   $A1
demo     IN A   $A2
demo     IN A   $A3
ZONE
cat >"$work/nsd/nsd.conf" <<CONF
server:
    ip-address: $IP@$NSD_PORT
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$work/nsd"
    database: ""
    zonelistfile: "$work/nsd/zone.list"
    xfrdfile: "$work/nsd/xfrd.state"
    xfrdir: "$work/nsd"
    pidfile: "$work/nsd/nsd.pid"
    logfile: "$work/nsd/nsd.log"
    verbosity: 0
    hide-version: yes
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: gw.bench
    zonefile: gw.bench.zone
CONF
"$NSD" -d -c "$work/nsd/nsd.conf" 2>>"$work/nsd/nsd.log" &
nsd_pid=$!
pids+=($nsd_pid)
for _ in $(seq 50); do
    [ "$(dig +short @$IP -p $NSD_PORT demo.gw.bench A | wc -l)" = 3 ] && break
    sleep 0.1
done
for port in $WEBGW_DNS $NSD_PORT; do
    [ "$(dig +short @$IP -p $port demo.gw.bench A | wc -l)" = 3 ] ||
        { echo "dns.sh: server on port $port does not answer demo.gw.bench"; cat "$work"/*.log "$work"/nsd/nsd.log; exit 1; }
done

printf 'demo.gw.bench A\nnothing.gw.bench A\n' >"$work/queries"

qps() { # port -> queries per second
    dnsperf -s $IP -p "$1" -d "$work/queries" -l "$duration" -c 1 -T 1 -q 200 2>/dev/null | tee -a "$work/dnsperf.log" |
        awk '/Queries per second/ {print int($4)}'
}
descendants() { # pid -> it and every process below it
    local p
    echo "$1"
    for p in $(pgrep -P "$1" || true); do descendants "$p"; done
}
cpu_ms() { # pid -> user+sys CPU ms so far of it and its descendants (NSD forks its server)
    local t=0 p
    for p in $(descendants "$1"); do
        # utime and stime, counted after the comm field (NSD's has spaces: "(nsd: main)")
        t=$((t + $(sed 's/.*) //' /proc/"$p"/stat | awk '{print $12 + $13}')))
    done
    echo $((t * 1000 / $(getconf CLK_TCK)))
}

echo "dns.sh: settings (one thread each):"
echo "  webgw  $("$build/bin/webgw" --version 2>&1 | head -n 1), ${btype:-?} build: --dns-listen $IP:$WEBGW_DNS --dns-rrl 0" \
    "--public-addr $A1 --public-addr $A2 --public-addr $A3 (DNS on the control loop)"
echo "  nsd    $("$NSD" -v 2>&1 | head -n 1): server-count 1, rrl-ratelimit 0, zone gw.bench (SOA, NS, glue, demo A x3)"
echo "  load   dnsperf -s $IP -c 1 -T 1 -q 200 -l $duration, demo.gw.bench A / nothing.gw.bench A alternating"
echo "  $rounds rounds of ${duration} s each side; load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
w=() n=()
for r in $(seq "$rounds"); do
    c0=$(cpu_ms $webgw_pid); a=$(qps $WEBGW_DNS); c1=$(cpu_ms $webgw_pid)
    d0=$(cpu_ms $nsd_pid); b=$(qps $NSD_PORT); d1=$(cpu_ms $nsd_pid)
    [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt 0 ] ||
        { echo "dns.sh: round $r: dnsperf reported no rate (webgw '$a', nsd '$b'); see $work/dnsperf.log"; tail -n 30 "$work/dnsperf.log"; exit 1; }
    w+=("$a") n+=("$b")
    echo "round $r: webgw $a q/s ($(( (c1 - c0) * 1000000 / (a * duration + 1) )) ns CPU/query)," \
         "nsd $b q/s ($(( (d1 - d0) * 1000000 / (b * duration + 1) )) ns CPU/query)," \
         "webgw/nsd $(awk "BEGIN {printf \"%.2f\", $a / $b}")"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
mw=$(median "${w[@]}") mn=$(median "${n[@]}")
echo "median: webgw $mw q/s, nsd $mn q/s, webgw/nsd $(awk "BEGIN {printf \"%.2f\", $mw / $mn}")" \
    "(goal: at least 0.50, within 2x of NSD)"
cat "$work/dnsperf.log" | grep -E "Queries (lost|completed)|Response codes" || true
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
