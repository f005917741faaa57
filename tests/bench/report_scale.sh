# report_scale.sh - scale: webgw requests/s with 2 workers against 1 (wrk pinned, -c2xCONNS;
# only where the proxies have 2 cores of their own beside wrk and the backend), the request
# path's cost with NAMES_COUNT names routed against 3 names, and the time to start on those
# names (a data dir filled by bench_fill_names: witnessed, as a gateway that served the names
# restarts; and once not, as the first start after an upgrade from before witnesses, when the
# daemon countersigns every name). Access log on. Sourced by report.sh (family "scale").

# start_timed FAMILY: starts webgw on $webgw_data, records the seconds to /healthz and the CPU
# seconds it took (start_webgw fails with a clear message past WEBGW_START_WAIT).
start_timed() {
    start_contender webgw on 1
    record "$1" start_s webgw "$webgw_up_s"
    record "$1" start_cpu_s webgw "$webgw_up_cpu_s"
    say "  webgw    $1: /healthz after $webgw_up_s s ($webgw_up_cpu_s s of CPU, RSS $(rss_kib "${pidof[webgw]}") KiB)"
}

family_scale() {
    local i w saved=$conns
    # wrk on cpu_wrk, the backend on cpu_backend, the proxies on cpu_proxy: 2 workers on one
    # core measure the second worker's overhead, not scaling
    local proxy_cores
    proxy_cores=$(awk -v l="$cpu_proxy" 'BEGIN {n = split(l, a, "-"); print (n == 2 ? a[2] - a[1] + 1 : 1)}')
    if [ "${PIN:-1}" = 1 ] && [ "$proxy_cores" -lt 2 ]; then
        say "== scale: workers skipped: $ncpu cpus leave the proxies cpu $cpu_proxy alone (wrk $cpu_wrk, backend $cpu_backend); 2 workers need 2 cores of their own (4 cpus)"
    else
        say "== scale: webgw --workers 1 and 2, wrk -t1 -c$((2 * conns)) pinned to cpu $cpu_wrk, proxies to $cpu_proxy"
        conns=$((2 * conns))
        for i in $(seq 1 "$rounds"); do
            for w in $(rotate "$i" 1 2); do
                start_contender webgw on "$w"
                pin "$cpu_wrk" wrk -t1 -c"$conns" -d1s -H 'Host: bench.localhost' \
                    "http://127.0.0.1:$WEBGW_HTTP/file" >/dev/null
                wrk_measure "scale-workers-$w" webgw "http://127.0.0.1:$WEBGW_HTTP/file"
            done
        done
        conns=$saved
        stop_contender webgw
    fi

    say "== scale: $names_count names routed against 3"
    local big=$work/webgw-names
    if [ ! -d "$big" ]; then
        "$build/bench/bench_fill_names" "$big" "$names_count" 127.0.0.1:$BACKEND --witnessed |
            tee -a "$out/log.txt"
    fi
    for i in $(seq 1 "$rounds"); do
        for w in $(rotate "$i" few many); do
            if [ "$w" = many ]; then
                # past the default --max-records (100,000) the bench's own names are refused
                webgw_data=$big webgw_flags="--max-records $((names_count + 1000))"
                start_timed scale-start-witnessed
            else
                webgw_data="" webgw_flags=""
                start_contender webgw on 1
            fi
            pin "$cpu_wrk" wrk -t1 -c"$conns" -d1s -H 'Host: bench.localhost' \
                "http://127.0.0.1:$WEBGW_HTTP/file" >/dev/null
            wrk_measure "scale-names-$w" webgw "http://127.0.0.1:$WEBGW_HTTP/file"
        done
    done
    stop_contender webgw

    say "== scale: first start on $names_count names it has not witnessed (one signature each)"
    rm -rf "$big"
    "$build/bench/bench_fill_names" "$big" "$names_count" 127.0.0.1:$BACKEND | tee -a "$out/log.txt"
    webgw_data=$big webgw_flags="--max-records $((names_count + 1000))"
    start_timed scale-start-unwitnessed
    webgw_data="" webgw_flags=""
    stop_contender webgw
    rm -rf "$big"
}
