# report_mem.sh - memory per idle connection: IDLE_CONNS keep-alive client connections that
# made one request each, then separately IDLE_CONNS WebSockets (Upgrade to bench_conns's
# backend, 101, then silence). RSS of the contender's processes before and after, divided by
# the count. Sourced by report.sh (family "mem").

family_mem() {
    local kind n r0 r1 hp
    say "== mem: $idle_conns idle keep-alive connections, then $idle_conns idle WebSockets"
    for kind in keepalive websocket; do
        for n in ${MEM_CONTENDERS:-webgw haproxy nginx h2o}; do
            local host=bench.localhost path=/file up=""
            if [ "$kind" = websocket ]; then
                [ "$n" = h2o ] && continue
                host=sock.localhost path=/hold up=--upgrade
            fi
            # a fresh process each time: memory freed by an earlier measurement would be reused
            start_contender "$n" on 1
            # one warm request first, so that the backend pools and lazily made state exist
            curl -s -o /dev/null -H "Host: bench.localhost" "http://127.0.0.1:${port_http[$n]}/file"
            sleep 0.5
            r0=$(rss_kib "${pidof[$n]}")
            rm -f "$work/hold.out"
            "$build/bench/bench_conns" hold --connect 127.0.0.1:"${port_http[$n]}" --host "$host" \
                --path "$path" --conns "$idle_conns" $up >"$work/hold.out" 2>>"$out/log.txt" &
            hp=$!
            for _ in $(seq 1 1200); do
                grep -q ready "$work/hold.out" 2>/dev/null && break
                kill -0 $hp 2>/dev/null || break
                sleep 0.1
            done
            if ! grep -q ready "$work/hold.out" 2>/dev/null; then
                say "  $n $kind: the connections did not all come up"
                kill $hp 2>/dev/null || true
                wait $hp 2>/dev/null || true
                continue
            fi
            sleep 1
            r1=$(rss_kib "${pidof[$n]}")
            kill $hp 2>/dev/null || true
            wait $hp 2>/dev/null || true
            local per
            per=$(awk -v a="$r0" -v b="$r1" -v n="$idle_conns" 'BEGIN {printf "%.0f", (b - a) * 1024 / n}')
            record "mem-$kind" bytes_per_conn "$n" "$per"
            printf "  %-8s %-10s RSS %7d KiB -> %7d KiB: %6d bytes per connection\n" "$n" "$kind" \
                "$r0" "$r1" "$per" | tee -a "$out/log.txt"
            stop_contender "$n"
            sleep 2 # closes settle before the next contender
        done
    done
}
