# report_bulk.sh - large bodies and tunnels, webgw against HAProxy (which splices): a BULK_BYTES
# download (the backend nginx sends its file), the same upload (PUT to bench_conns's sink), the
# download over TLS passthrough (SNI pass.localhost, the backend nginx's HTTPS), and WebSocket
# tunnel throughput both ways (bench_conns tunnel). MB/s and the proxy's CPU per MB.
# Sourced by report.sh (family "bulk").

# bulk_one CONTENDER METRIC CMD...: CMD prints seconds on its last line
bulk_one() {
    local n=$1 m=$2 t0 t1 secs
    shift 2
    t0=$(ticks "${pidof[$n]}")
    secs=$("$@" | tail -1)
    t1=$(ticks "${pidof[$n]}")
    local mb
    mb=$(awk -v b="$bulk_bytes" 'BEGIN {printf "%.3f", b / 1e6}')
    if ! awk -v s="$secs" 'BEGIN {exit !(s > 0)}'; then
        say "  $n $m: failed"
        return 0
    fi
    local rate cpu
    rate=$(awk -v mb="$mb" -v s="$secs" 'BEGIN {printf "%.1f", mb / s}')
    cpu=$(cpu_per $((t1 - t0)) "$mb")
    record "bulk-$m" mb_per_s "$n" "$rate"
    record "bulk-$m" cpu_us_per_mb "$n" "$cpu"
    printf "  %-8s %-16s %8.1f MB/s  cpu %8.2f us/MB\n" "$n" "$m" "$rate" "$cpu" | tee -a "$out/log.txt"
}

curl_time() { # curl ARGS...: prints the transfer's seconds, or 0 on failure
    local o
    o=$(curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$@") || o="0 0"
    case $o in 2*) echo "${o#* }" ;; *) echo 0 ;; esac
}
tunnel_time() { # tunnel PORT PATH: prints seconds
    "$build/bench/bench_conns" tunnel --connect 127.0.0.1:"$1" --host sock.localhost --path "$2" |
        awk '{print $2}' || echo 0
}

family_bulk() {
    local i n p
    say "== bulk: $bulk_bytes bytes per transfer"
    for n in webgw haproxy; do start_contender "$n" on 1; done
    for i in $(seq 1 "$rounds"); do
        for n in $(rotate "$i" webgw haproxy); do
            p=${port_http[$n]}
            bulk_one "$n" download curl_time -H "Host: bench.localhost" "http://127.0.0.1:$p/big"
            bulk_one "$n" upload curl_time -H "Host: sock.localhost" -H "Expect:" -T "$work/www/big" \
                "http://127.0.0.1:$p/up"
            p=${port_pass[$n]}
            bulk_one "$n" tls-passthrough curl_time --cacert "$work/cert.pem" \
                --resolve "pass.localhost:$p:127.0.0.1" "https://pass.localhost:$p/big"
            bulk_one "$n" websocket-up tunnel_time "${port_http[$n]}" "/sink/$bulk_bytes"
            bulk_one "$n" websocket-down tunnel_time "${port_http[$n]}" "/source/$bulk_bytes"
        done
    done
}
