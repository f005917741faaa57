# report_http.sh - HTTP keep-alive requests through each contender, access log on (as users
# run them: webgw --access-log FILE, HAProxy "log stdout format raw" into a file, nginx
# "access_log ... buffer=64k", h2o "access-log"), then the same with logging off everywhere.
# wrk -t1 -cCONNS, interleaved rounds. Sourced by report.sh (family "http").

family_http() {
    local log i n
    for log in on off; do
        say "== http, access log $log: wrk -t1 -c$conns -d${duration}s --latency, 12-byte file"
        for n in webgw haproxy nginx h2o; do start_contender "$n" "$log" 1; done
        for n in webgw haproxy nginx h2o; do # warm: backend connections, page cache
            pin "$cpu_wrk" wrk -t1 -c"$conns" -d1s -H 'Host: bench.localhost' \
                "http://127.0.0.1:${port_http[$n]}/file" >/dev/null
        done
        for i in $(seq 1 "$rounds"); do
            for n in $(rotate "$i" webgw haproxy nginx h2o); do
                wrk_measure "http-log-$log" "$n" "http://127.0.0.1:${port_http[$n]}/file"
            done
        done
    done
}
