# report_tls.sh - HTTPS: keep-alive requests (wrk over TLS, SNI bench.localhost) and full TLS
# 1.3 handshakes per second (bench_tls_client, ECDSA P-256), each contender with its access
# log on. Sourced by report.sh (family "tls"). One client thread spends about twice a server's
# CPU on a handshake (logged as "client ... us"), so on 2 cpus the handshake rate is mostly
# the client's share of its cpu: CPU per handshake, and the profile family's instructions per
# handshake, compare the servers.

family_tls() {
    local i n t0 t1 o r cnt
    say "== tls: keep-alive wrk -t1 -c$conns; full handshakes bench_tls_client --threads 1"
    for n in webgw haproxy nginx h2o; do start_contender "$n" on 1; done
    for i in $(seq 1 "$rounds"); do
        for n in $(rotate "$i" webgw haproxy nginx h2o); do
            wrk_measure tls-keepalive "$n" "https://bench.localhost:${port_https[$n]}/file"
        done
        for n in $(rotate "$i" webgw haproxy nginx h2o); do
            t0=$(ticks "${pidof[$n]}")
            o=$(pin "$cpu_wrk" "$build/bench/bench_tls_client" --connect 127.0.0.1:"${port_https[$n]}" \
                --sni bench.localhost --threads 1 --seconds "$duration")
            t1=$(ticks "${pidof[$n]}")
            cnt=$(echo "$o" | awk '{print $2}')
            r=$(echo "$o" | awk '{print $4}' | tr -d '/s')
            [ "$(echo "$o" | awk '{print $8}')" = 0 ] || say "  $n: $o"
            record tls-handshake rate "$n" "$r"
            record tls-handshake cpu_us_per_op "$n" "$(cpu_per $((t1 - t0)) "$cnt")"
            printf "  %-8s %-14s %10.0f /s     cpu %7.2f us/handshake (client %s us)\n" "$n" tls-handshake \
                "$r" "$(cpu_per $((t1 - t0)) "$cnt")" "$(echo "$o" | awk '{print $10}')" | tee -a "$out/log.txt"
        done
    done
}
