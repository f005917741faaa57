# report_scale.sh - scale: webgw requests/s with 2 workers against 1 (wrk pinned, -c2xCONNS),
# and the request path's cost with NAMES_COUNT names routed (a data dir filled by
# bench_fill_names) against 3 names. Access log on. Sourced by report.sh (family "scale").

family_scale() {
    local i w saved=$conns
    say "== scale: webgw --workers 1 and 2, wrk -t1 -c$((2 * conns)) pinned to cpu $cpu_wrk"
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

    say "== scale: $names_count names routed against 3"
    local big=$work/webgw-names
    if [ ! -d "$big" ]; then
        "$build/bench/bench_fill_names" "$big" "$names_count" 127.0.0.1:$BACKEND | tee -a "$out/log.txt"
    fi
    for i in $(seq 1 "$rounds"); do
        for w in $(rotate "$i" few many); do
            if [ "$w" = many ]; then webgw_data=$big; else webgw_data=; fi
            start_contender webgw on 1
            pin "$cpu_wrk" wrk -t1 -c"$conns" -d1s -H 'Host: bench.localhost' \
                "http://127.0.0.1:$WEBGW_HTTP/file" >/dev/null
            wrk_measure "scale-names-$w" webgw "http://127.0.0.1:$WEBGW_HTTP/file"
        done
    done
    webgw_data=
    stop_contender webgw
}
