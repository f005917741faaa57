# report_profile.sh - instructions per request of the daemon (valgrind --tool=callgrind, counters
# zeroed after a warm-up, then a fixed wrk run), access log on and off: a figure a busy machine
# does not move, for judging per-request work. Sourced by report.sh (family "profile").

family_profile() {
    local log ir n o
    command -v valgrind >/dev/null || { say "== profile: valgrind missing, skipped"; return 0; }
    for log in on off; do
        say "== profile: callgrind, access log $log, wrk -t1 -c10 -d${duration}s"
        stop_contender webgw
        local accesslog=off
        [ "$log" = on ] && accesslog=$work/logs/webgw.access.log
        valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.log-$log.out" \
            "$build/bin/webgw" --node-name bench --data-dir "$work/webgw-data" \
            --http 127.0.0.1:$WEBGW_HTTP --https 127.0.0.1:$WEBGW_HTTPS \
            --api 127.0.0.1:$WEBGW_API --gossip 127.0.0.1:$WEBGW_GOSSIP \
            --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --allow-loopback-backends \
            --max-conns-per-ip 0 --workers 1 --access-log "$accesslog" >>"$work/logs/webgw.err" 2>&1 &
        pidof[webgw]=$!
        for _ in $(seq 1 600); do
            curl -fsS "http://127.0.0.1:$WEBGW_API/healthz" >/dev/null 2>&1 && break
            sleep 0.1
        done
        webgw_expose
        wait_http $WEBGW_HTTP bench.localhost || wait_http $WEBGW_HTTP bench.localhost ||
            fail "webgw under callgrind does not serve"
        wrk -t1 -c10 -d2s -H 'Host: bench.localhost' "http://127.0.0.1:$WEBGW_HTTP/file" >/dev/null
        callgrind_control -z "${pidof[webgw]}" >/dev/null
        o=$(wrk -t1 -c10 -d"${duration}s" -H 'Host: bench.localhost' "http://127.0.0.1:$WEBGW_HTTP/file")
        n=$(echo "$o" | awk '/requests in/ {print $1}')
        callgrind_control -d "${pidof[webgw]}" >/dev/null
        sleep 1
        ir=$(cat "$out/callgrind.log-$log.out".* 2>/dev/null | awk '/^summary:/ {s += $2} END {print s + 0}')
        rm -f "$out/callgrind.log-$log.out"
        record "profile-log-$log" instr_per_req webgw "$(awk -v i="$ir" -v n="$n" 'BEGIN {printf "%.0f", i / n}')"
        say "  webgw log $log: $n requests, $(awk -v i="$ir" -v n="$n" 'BEGIN {printf "%.0f", i / n}') instructions per request (callgrind: $out/callgrind.log-$log.out.*)"
        stop_contender webgw
    done
}
