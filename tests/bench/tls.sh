#!/usr/bin/env bash
# tls.sh - HTTPS benchmark: webgw's TLS termination against HAProxy, same machine, same run,
# same certificate (issue 5). One backend: nginx serving a 12-byte file. Each proxy runs one
# worker/thread. Three measurements per round, ROUNDS interleaved rounds of DURATION each:
#   full      new TLS 1.3 handshakes per second (bench_tls_client, THREADS threads, SNI)
#   resumed   TLS 1.3 handshakes resuming a session ticket, per second
#   keepalive HTTPS requests per second on kept-alive connections (wrk -t1 -cCONNS)
# For each it prints the median rate and the proxy's CPU time per operation (a machine shared
# with other work moves rates a lot, CPU per operation much less), then webgw/HAProxy ratios.
#
#   tests/bench/tls.sh [build-dir]      (env: ROUNDS=3 DURATION=5 CONNS=50 THREADS=2)
# Needs: haproxy nginx wrk openssl (scripts/install-bench-deps.sh), a built bench/bench_tls.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
rounds=${ROUNDS:-3}
duration=${DURATION:-5}
conns=${CONNS:-50}
threads=${THREADS:-2}
bin=$build/bench/bench_tls
client=$build/bench/bench_tls_client
for tool in haproxy nginx wrk openssl curl; do
    command -v $tool >/dev/null || { echo "tls.sh: $tool missing (scripts/install-bench-deps.sh)"; exit 1; }
done
[ -x "$bin" ] && [ -x "$client" ] || { echo "tls.sh: $bin or $client missing (cmake --build $build)"; exit 1; }

work=$(mktemp -d /tmp/webgw-bench-tls.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

BACKEND=18190 HAPROXY=18191 WEBGW=18192
mkdir -p "$work/www"
chmod 755 "$work" "$work/www" # nginx workers run as www-data
printf 'hello world\n' >"$work/www/file" # 12 bytes
chmod 644 "$work/www/file"

# one ECDSA P-256 certificate for "localhost", used by both proxies
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" >"$work/haproxy.pem"

cat >"$work/backend.conf" <<CONF
daemon off; worker_processes 1; pid $work/backend.pid; error_log $work/backend.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACKEND; root $work/www; } }
CONF
cat >"$work/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4096
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 3s
    timeout client 60s
    timeout server 60s
    option forwardfor
    http-reuse safe
frontend fe
    bind 127.0.0.1:$HAPROXY ssl crt $work/haproxy.pem alpn http/1.1
    default_backend be
backend be
    server s1 127.0.0.1:$BACKEND
CONF

nginx -c "$work/backend.conf" -p "$work" & pids+=($!)
haproxy -f "$work/haproxy.cfg" -q & pids+=($!)
"$bin" --https 127.0.0.1:$WEBGW --cert "$work/cert.pem" --key "$work/key.pem" \
    --backend 127.0.0.1:$BACKEND --host localhost --workers 1 2>"$work/webgw.err" & pids+=($!)
sleep 1
for port in $HAPROXY $WEBGW; do
    out=$(curl -s --cacert "$work/cert.pem" "https://localhost:$port/file") || true
    [ "$out" = "hello world" ] || { echo "tls.sh: port $port does not serve the file over HTTPS"; cat "$work"/*.err; exit 1; }
done

ticks() { # CPU ticks of a process and its children
    local t=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo $t
}
hz=$(getconf CLK_TCK)
declare -A rate cpu pidof
pidof[haproxy]=${pids[1]} pidof[webgw]=${pids[2]}

# measure NAME PORT KIND: one measurement, appended to rate[NAME.KIND] and cpu[NAME.KIND]
measure() {
    local name=$1 port=$2 kind=$3 out r n t0 t1 c
    t0=$(ticks "${pidof[$name]}")
    case $kind in
    full | resumed)
        out=$("$client" --connect 127.0.0.1:"$port" --sni localhost --threads "$threads" \
            --seconds "$duration" $([ "$kind" = resumed ] && echo --resume))
        r=$(echo "$out" | awk '{print $4}' | tr -d '/s')
        n=$(echo "$out" | awk '{print $2}')
        if [ "$kind" = resumed ] && [ "$(echo "$out" | awk '{print $6}')" -lt "$n" ]; then
            echo "tls.sh: $name resumed only $(echo "$out" | awk '{print $6}') of $n"
        fi
        [ "$(echo "$out" | awk '{print $8}')" = 0 ] || echo "tls.sh: $name: $out"
        ;;
    keepalive)
        out=$(wrk -t1 -c"$conns" -d"${duration}s" "https://localhost:$port/file")
        r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        n=$(echo "$out" | awk '/requests in/ {print $1}')
        if echo "$out" | grep -q "Non-2xx\|Socket errors"; then echo "tls.sh: $name: errors"; echo "$out"; fi
        ;;
    esac
    t1=$(ticks "${pidof[$name]}")
    c=$(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$hz" 'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
    rate[$name.$kind]+="$r "
    cpu[$name.$kind]+="$c "
    printf "  %-8s %-9s %10.0f /s  cpu %7.2f us/op\n" "$name" "$kind" "$r" "$c"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "TLS 1.3, ECDSA P-256, ${duration}s per measurement, $rounds interleaved rounds;" \
    "handshakes from $threads client threads, keep-alive with wrk -t1 -c$conns"
for i in $(seq 1 "$rounds"); do
    echo "round $i"
    for kind in full resumed keepalive; do
        measure webgw $WEBGW $kind
        measure haproxy $HAPROXY $kind
    done
done
echo "medians"
for kind in full resumed keepalive; do
    for n in webgw haproxy; do
        printf "  %-8s %-9s %10.0f /s  cpu %7.2f us/op\n" "$n" "$kind" \
            "$(echo ${rate[$n.$kind]} | median)" "$(echo ${cpu[$n.$kind]} | median)"
    done
done
echo "ratios webgw/haproxy (rate: higher is better; cpu per op: lower is better)"
for kind in full resumed keepalive; do
    awk -v k="$kind" -v w="$(echo ${rate[webgw.$kind]} | median)" \
        -v h="$(echo ${rate[haproxy.$kind]} | median)" -v wc="$(echo ${cpu[webgw.$kind]} | median)" \
        -v hc="$(echo ${cpu[haproxy.$kind]} | median)" \
        'BEGIN {printf "  %-9s rate %.2f  cpu/op %.2f\n", k, w / h, wc / hc}'
done
