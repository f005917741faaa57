# report_lib.sh - shared pieces of tests/bench/report.sh and its measurement families
# (report_*.sh): the backend, the contenders (the real webgw daemon, HAProxy, nginx, h2o) as
# users run them, CPU time and RSS from /proc, wrk runs, medians and the raw results file.
# Sourced, not run. Every result goes to $out/raw.tsv as "family<TAB>metric<TAB>contender<TAB>
# value", one line per round; report.sh takes the medians.

# ---- settings (report.sh sets them from its flags) -------------------------------------
: "${build:=build}"
: "${rounds:=3}"
: "${duration:=5}"
: "${conns:=50}"
: "${idle_conns:=10000}"
: "${bulk_bytes:=1073741824}"
: "${names_count:=1000000}"
: "${nofile:=$(ulimit -n)}"

BACKEND=18200 BACKEND_TLS=18201 TUNNEL=18202
# The Upgrade backend answers on one loopback address per contender: 10,000 tunnels closed by
# one contender leave 10,000 ports in TIME_WAIT towards its address, which the next one must
# not run out of (the ephemeral range is about 28,000 ports per destination).
declare -A tunnel_ip=([webgw]=127.0.0.1 [haproxy]=127.0.0.2 [nginx]=127.0.0.3 [h2o]=127.0.0.4)
WEBGW_HTTP=18210 WEBGW_HTTPS=18211 WEBGW_API=18212 WEBGW_GOSSIP=18213
HAPROXY_HTTP=18220 HAPROXY_HTTPS=18221 HAPROXY_PASS=18222
NGINX_HTTP=18230 NGINX_HTTPS=18231 NGINX_PASS=18232
H2O_HTTP=18240 H2O_HTTPS=18241

declare -A pidof port_http port_https port_pass
port_http=([webgw]=$WEBGW_HTTP [haproxy]=$HAPROXY_HTTP [nginx]=$NGINX_HTTP [h2o]=$H2O_HTTP)
port_https=([webgw]=$WEBGW_HTTPS [haproxy]=$HAPROXY_HTTPS [nginx]=$NGINX_HTTPS [h2o]=$H2O_HTTPS)
port_pass=([webgw]=$WEBGW_HTTPS [haproxy]=$HAPROXY_PASS [nginx]=$NGINX_PASS)
hz=$(getconf CLK_TCK)
ncpu=$(nproc)

say() { echo "$*" | tee -a "$out/log.txt"; }
fail() {
    echo "report: $*" >&2
    exit 1
}

# ---- CPU placement: wrk on the last core, the backend on the one before it (with 2 cores it
# shares wrk's), the contenders on the rest; PIN=0 leaves everything to the scheduler.
cpu_wrk=$((ncpu - 1))
cpu_backend=$((ncpu > 2 ? ncpu - 2 : ncpu - 1))
cpu_proxy=0
[ "$ncpu" -gt 3 ] && cpu_proxy=0-$((ncpu - 3))
pin_prefix() { # the taskset command line that pins to CPULIST, or nothing
    if [ "${PIN:-1}" = 1 ] && [ "$ncpu" -gt 1 ]; then echo taskset -c "$1"; fi
}
pin() { # pin CPULIST CMD...: runs CMD on those CPUs when pinning is on
    local cpus=$1
    shift
    if [ "${PIN:-1}" = 1 ] && [ "$ncpu" -gt 1 ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

# with_hosts CMD...: runs CMD where bench.localhost, sock.localhost and pass.localhost resolve to
# 127.0.0.1 (a private mount of $work/hosts over /etc/hosts), for wrk's https URLs and SNI.
with_hosts() {
    unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$work/hosts" "$@"
}

# ---- /proc ------------------------------------------------------------------------------
# CPU ticks (user + system) of a process and its children.
ticks() {
    local t=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo $t
}
# Resident set of a process and its children, KiB.
rss_kib() {
    local t=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        [ -r "/proc/$p/status" ] || continue
        t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
    done
    echo $t
}
# us of CPU per unit: cpu_per TICKS UNITS
cpu_per() { awk -v d="$1" -v n="$2" -v hz="$hz" 'BEGIN {printf "%.3f", (n > 0 ? d * 1e6 / hz / n : 0)}'; }

# record FAMILY METRIC CONTENDER VALUE
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$out/raw.tsv"; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Interleaved order for round I over the contenders given: each round starts one further.
rotate() { # rotate I NAME...
    local i=$1
    shift
    local a=("$@") k
    for k in $(seq 0 $((${#a[@]} - 1))); do echo "${a[$(((i - 1 + k) % ${#a[@]}))]}"; done
}

# ---- wrk ---------------------------------------------------------------------------------
# wrk_measure FAMILY CONTENDER URL [HOST] [extra wrk args]: one run; records rps, p99 (ms)
# and cpu (us per request of the contender's processes).
wrk_measure() {
    local fam=$1 name=$2 url=$3 host=${4:-bench.localhost} t0 t1 o r l n c
    shift 4 || shift $#
    t0=$(ticks "${pidof[$name]}")
    o=$(with_hosts $(pin_prefix "$cpu_wrk") wrk -t1 -c"$conns" -d"${duration}s" --latency -H "Host: $host" "$@" "$url")
    t1=$(ticks "${pidof[$name]}")
    r=$(echo "$o" | awk '/Requests\/sec/ {print $2}')
    n=$(echo "$o" | awk '/requests in/ {print $1}')
    l=$(echo "$o" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000}
        else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}')
    c=$(cpu_per $((t1 - t0)) "$n")
    if echo "$o" | grep -q "Non-2xx\|Socket errors"; then
        say "  $name: errors in $fam"
        echo "$o" >>"$out/log.txt"
    fi
    record "$fam" rps "$name" "$r"
    record "$fam" p99_ms "$name" "$l"
    record "$fam" cpu_us_per_req "$name" "$c"
    printf "  %-8s %-14s %10.0f req/s  p99 %8.3f ms  cpu %7.2f us/req\n" "$name" "$fam" "$r" "$l" "$c" |
        tee -a "$out/log.txt"
}

# ---- shared files: page, big file, certificate ---------------------------------------------
bench_setup_files() {
    mkdir -p "$work/www" "$work/logs"
    chmod 755 "$work" "$work/www" "$work/logs" # nginx workers run as www-data
    printf 'hello world\n' >"$work/www/file"  # 12 bytes
    truncate -s "$bulk_bytes" "$work/www/big"
    chmod 644 "$work/www/file" "$work/www/big"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=bench.localhost \
        -addext "subjectAltName=DNS:bench.localhost,DNS:sock.localhost,DNS:pass.localhost,DNS:localhost" \
        -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
    cat "$work/cert.pem" "$work/key.pem" >"$work/haproxy.pem"
    printf '127.0.0.1 localhost bench.localhost sock.localhost pass.localhost\n' >"$work/hosts"
}

wait_http() { # wait_http PORT HOST [https]: until the port serves the 12-byte file
    local port=$1 host=$2 scheme=${3:-http} i out
    for i in $(seq 1 100); do
        if [ "$scheme" = https ]; then
            out=$(curl -s --cacert "$work/cert.pem" --resolve "$host:$port:127.0.0.1" \
                "https://$host:$port/file" 2>/dev/null) || true
        else
            out=$(curl -s -H "Host: $host" "http://127.0.0.1:$port/file" 2>/dev/null) || true
        fi
        [ "$out" = "hello world" ] && return 0
        sleep 0.1
    done
    return 1
}

# ---- the backend: nginx with the 12-byte file (HTTP) and the big file (HTTP and HTTPS, the
# latter behind the passthrough proxies), bench_conns's Upgrade/sink server ---------------
start_backend() {
    cat >"$work/backend.conf" <<CONF
daemon off; worker_processes 1; pid $work/backend.pid; error_log $work/logs/backend.err;
worker_rlimit_nofile $nofile;
events { worker_connections $((nofile - 200)); }
http { access_log off; keepalive_requests 1000000; sendfile on;
  server { listen 127.0.0.1:$BACKEND backlog=4096; root $work/www; }
  server { listen 127.0.0.1:$BACKEND_TLS ssl; root $work/www;
    ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; } }
CONF
    $(pin_prefix "$cpu_backend") nginx -c "$work/backend.conf" -p "$work" &
    pidof[backend]=$!
    $(pin_prefix "$cpu_backend") "$build/bench/bench_conns" tunnel-server \
        --listen 127.0.0.1:$TUNNEL --listen 127.0.0.2:$TUNNEL --listen 127.0.0.3:$TUNNEL \
        --listen 127.0.0.4:$TUNNEL &
    pidof[tunnel]=$!
    wait_http $BACKEND bench.localhost || fail "the backend nginx does not start ($work/logs/backend.err)"
}

# ---- contenders ---------------------------------------------------------------------------
# start_contender NAME LOG WORKERS: LOG is on or off. Each serves bench.localhost (the 12-byte
# file and the big file from the backend), sock.localhost (Upgrade to bench_conns) and, for
# webgw/HAProxy/nginx, pass.localhost by TLS passthrough on its passthrough port.
start_contender() {
    local name=$1 log=$2 workers=${3:-1}
    stop_contender "$name"
    "start_$name" "$log" "$workers"
    wait_http "${port_http[$name]}" bench.localhost ||
        fail "$name does not serve the file ($work/logs/$name.err)"
}

stop_contender() {
    local p=${pidof[$1]:-}
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    pidof[$1]=
}

# contender_wrap: a command the contenders run under (valgrind in the profile family);
# nginx_master: "master_process off;" there, so that nginx's one worker is the process itself
contender_wrap="" nginx_master=""
# webgw_data: another data dir (report_scale.sh's 1M names); webgw_flags: flags it needs there
webgw_data="" webgw_flags=""
start_webgw() { # the daemon with its defaults, except what one machine and the test need
    local log=$1 workers=$2 accesslog=off
    [ "$log" = on ] && accesslog=$work/logs/webgw.access.log
    local data=${webgw_data:-$work/webgw-data}
    local t0ns
    t0ns=$(date +%s%N)
    $(pin_prefix "$cpu_proxy") $contender_wrap "$build/bin/webgw" --node-name bench --data-dir "$data" \
        --http 127.0.0.1:$WEBGW_HTTP --https 127.0.0.1:$WEBGW_HTTPS --api 127.0.0.1:$WEBGW_API \
        --gossip 127.0.0.1:$WEBGW_GOSSIP --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" \
        --allow-loopback-backends --max-conns-per-ip 0 --workers "$workers" \
        --access-log "$accesslog" $webgw_flags >>"$work/logs/webgw.err" 2>&1 &
    pidof[webgw]=$!
    # a data dir of 1M names takes 16 s to load (66 s when the daemon must witness every name,
    # at load 5 on the 2-core VM): WEBGW_START_WAIT seconds, then a clear failure
    local wait=${WEBGW_START_WAIT:-600} t0=$SECONDS
    until curl -fsS "http://127.0.0.1:$WEBGW_API/healthz" >/dev/null 2>&1; do
        kill -0 "${pidof[webgw]}" 2>/dev/null ||
            fail "webgw exited while starting on $data (tail of $work/logs/webgw.err: $(tail -2 "$work/logs/webgw.err" | tr '\n' ' '))"
        [ $((SECONDS - t0)) -lt "$wait" ] ||
            fail "webgw is not up after $wait s on $data ($(ls "$data" | tr '\n' ' ')); WEBGW_START_WAIT=SECONDS waits longer"
        sleep 0.1
    done
    # what report_scale.sh records: seconds from exec to /healthz, CPU seconds until then
    webgw_up_s=$(awk -v a="$t0ns" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}')
    webgw_up_cpu_s=$(awk -v t="$(ticks "${pidof[webgw]}")" -v hz="$hz" 'BEGIN {printf "%.1f", t / hz}')
    webgw_expose
}

# The names exist once per data dir: reserve and expose them on the first start only.
webgw_expose() {
    local data=${webgw_data:-$work/webgw-data}
    [ -e "$data/.bench-exposed" ] && return 0
    local ctl=(env WEBGW_API=http://127.0.0.1:$WEBGW_API WEBGW_KEY=$work/owner.key "$build/bin/webgwctl")
    [ -s "$work/owner.key" ] || "${ctl[@]}" keygen >/dev/null
    local n
    for n in bench sock pass; do
        "${ctl[@]}" reserve $n >/dev/null || fail "webgwctl reserve $n failed on webgw ($data)"
    done
    "${ctl[@]}" expose bench --backend http://127.0.0.1:$BACKEND >/dev/null &&
        "${ctl[@]}" expose sock --backend http://${tunnel_ip[webgw]}:$TUNNEL >/dev/null &&
        "${ctl[@]}" expose pass --backend 127.0.0.1:$BACKEND_TLS --tls-passthrough >/dev/null ||
        fail "webgwctl expose failed on webgw ($data)"
    touch "$data/.bench-exposed"
}

start_haproxy() {
    local log=$1 workers=$2 logcfg="" deflog=""
    if [ "$log" = on ]; then
        logcfg="    log stdout format raw local0"
        deflog="    log global
    option httplog"
    fi
    cat >"$work/haproxy.cfg" <<CONF
global
    nbthread $workers
    maxconn $(((nofile - 200) / 2))
$logcfg
defaults
    mode http
$deflog
    timeout connect 3s
    timeout client 60s
    timeout server 60s
    timeout tunnel 300s
    option forwardfor
    http-reuse safe
frontend fe
    bind 127.0.0.1:$HAPROXY_HTTP
    bind 127.0.0.1:$HAPROXY_HTTPS ssl crt $work/haproxy.pem alpn http/1.1
    use_backend ws if { hdr(host) -m beg sock. }
    default_backend be
backend be
    server s1 127.0.0.1:$BACKEND
backend ws
    server s1 ${tunnel_ip[haproxy]}:$TUNNEL
frontend pass
    mode tcp
    bind 127.0.0.1:$HAPROXY_PASS
    tcp-request inspect-delay 5s
    tcp-request content accept if { req_ssl_hello_type 1 }
    use_backend passbe if { req_ssl_sni -i pass.localhost }
backend passbe
    mode tcp
    server s1 127.0.0.1:$BACKEND_TLS
CONF
    $(pin_prefix "$cpu_proxy") $contender_wrap haproxy -f "$work/haproxy.cfg" -q >>"$work/logs/haproxy.access.log" \
        2>>"$work/logs/haproxy.err" &
    pidof[haproxy]=$!
}

start_nginx() {
    local log=$1 workers=$2 access="access_log off;"
    [ "$log" = on ] && access="access_log $work/logs/nginx.access.log combined buffer=64k;"
    local stream=""
    [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] &&
        stream="load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
    # worker_connections is nginx's table of connections, both sides of a proxied one, and
    # it ran out before the descriptors did: at nofile - 200 (19,800) the 9,279th idle
    # WebSocket was cut ("worker_connections are not enough, reusing connections") with
    # 18,558 sockets open. The open-files limit is what binds every contender, so nginx gets
    # twice that in slots (and warns that they exceed it).
    cat >"$work/nginx.conf" <<CONF
$stream
daemon off; $nginx_master worker_processes $workers; pid $work/nginx.pid; error_log $work/logs/nginx.err;
worker_rlimit_nofile $nofile;
events { worker_connections $((2 * nofile)); }
http { $access keepalive_requests 1000000;
  ssl_protocols TLSv1.2 TLSv1.3;
  upstream be { server 127.0.0.1:$BACKEND; keepalive 64; }
  upstream ws { server ${tunnel_ip[nginx]}:$TUNNEL; }
  server { listen 127.0.0.1:$NGINX_HTTP backlog=4096; listen 127.0.0.1:$NGINX_HTTPS ssl;
    ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$remote_addr; } }
  server { listen 127.0.0.1:$NGINX_HTTP; listen 127.0.0.1:$NGINX_HTTPS ssl;
    server_name sock.localhost;
    ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
    location / { proxy_pass http://ws; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection "upgrade";
      proxy_read_timeout 300s; proxy_send_timeout 300s; } } }
stream { map \$ssl_preread_server_name \$passbe { pass.localhost 127.0.0.1:$BACKEND_TLS; }
  server { listen 127.0.0.1:$NGINX_PASS; ssl_preread on; proxy_pass \$passbe; } }
CONF
    $(pin_prefix "$cpu_proxy") $contender_wrap nginx -c "$work/nginx.conf" -p "$work" 2>>"$work/logs/nginx.err" &
    pidof[nginx]=$!
}

start_h2o() {
    local log=$1 workers=$2 access=""
    [ "$log" = on ] && access="access-log: $work/logs/h2o.access.log"
    # under valgrind h2o stays root (it setuids to nobody otherwise, and callgrind_control
    # cannot reach a process that changed its user)
    local user=""
    [ -n "$contender_wrap" ] && user="user: root"
    cat >"$work/h2o.conf" <<CONF
num-threads: $workers
$user
$access
listen:
  host: 127.0.0.1
  port: $H2O_HTTP
listen:
  host: 127.0.0.1
  port: $H2O_HTTPS
  ssl:
    certificate-file: $work/cert.pem
    key-file: $work/key.pem
    ocsp-update-interval: 0
hosts:
  "bench.localhost":
    paths:
      "/":
        proxy.reverse.url: http://127.0.0.1:$BACKEND/
        proxy.preserve-host: ON
CONF
    $(pin_prefix "$cpu_proxy") $contender_wrap h2o -c "$work/h2o.conf" >>"$work/logs/h2o.err" 2>&1 &
    pidof[h2o]=$!
}

stop_all() {
    local n
    for n in webgw haproxy nginx h2o backend tunnel; do stop_contender "$n"; done
}
