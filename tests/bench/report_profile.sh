# report_profile.sh - per-request work that a busy machine does not move, for every contender
# with one worker: webgw --workers 1, HAProxy nbthread 1, nginx with master_process off (its
# one worker is the process itself) and h2o num-threads 1, each with its access log on and then
# off as in the http family, proxying GET /file (12 bytes) to the same backend.
#   instr_per_req     user-space instructions per request under callgrind (valgrind
#                     --tool=callgrind; counters zeroed after a 2 s warm-up, then a fixed
#                     wrk -t1 -c10 run; every thread of the process counted)
#   https / tls-handshake  user-space instructions per HTTPS keep-alive request and per full
#                     TLS 1.3 handshake under callgrind, access log on (profile_callgrind_tls)
#   syscalls_per_req  system calls per request (perf stat -e raw_syscalls:sys_enter on every
#                     thread of the process, not under valgrind, over a wrk -t1 -c10 run), and
#                     the calls that make them up in the log (read, writev, epoll_wait, ...)
# PROFILE_CONTENDERS="webgw" measures only those. Sourced by report.sh (family "profile").

PROFILE_SYSCALLS="read write readv writev recvfrom sendto recvmsg sendmsg epoll_wait epoll_pwait
epoll_ctl accept4 close connect setsockopt getsockopt ioctl futex clock_gettime openat"

# Starts NAME with log LOG (under $contender_wrap when set) and waits until it serves.
profile_start() {
    local n=$1
    stop_contender "$n"
    "start_$n" "$2" 1
    wait_http "${port_http[$n]}" bench.localhost || wait_http "${port_http[$n]}" bench.localhost ||
        wait_http "${port_http[$n]}" bench.localhost ||
        fail "$n does not serve the file under '${contender_wrap:-no wrapper}' ($work/logs/$n.err)"
}

# The process of NAME and its children, comma-separated (nginx's worker when it has a master).
profile_pids() {
    local p=${pidof[$1]}
    echo "$p $(pgrep -P "$p" || true)" | xargs | tr ' ' ','
}

profile_callgrind() { # NAME LOG
    local n=$1 log=$2 f=$out/callgrind.$1-log-$2.out o reqs ir per
    rm -f "$f" "$f".*
    contender_wrap="valgrind --tool=callgrind --callgrind-out-file=$f" nginx_master="master_process off;"
    profile_start "$n" "$log"
    contender_wrap="" nginx_master=""
    wrk -t1 -c10 -d2s -H 'Host: bench.localhost' "http://127.0.0.1:${port_http[$n]}/file" >/dev/null
    timeout 60 callgrind_control -z "${pidof[$n]}" >/dev/null 2>&1 ||
        { say "  $n log $log: callgrind_control could not zero the counters"; stop_contender "$n"; return 0; }
    o=$(wrk -t1 -c10 -d"${duration}s" -H 'Host: bench.localhost' "http://127.0.0.1:${port_http[$n]}/file")
    reqs=$(echo "$o" | awk '/requests in/ {print $1}')
    timeout 60 callgrind_control -d "${pidof[$n]}" >/dev/null 2>&1 || true
    sleep 1
    stop_contender "$n"
    # the dump after the zeroing: $f.1 (and one per thread where a program splits them)
    ir=$(cat "$f".* 2>/dev/null | awk '/^summary:/ {s += $2} END {print s + 0}')
    rm -f "$f"
    [ "${reqs:-0}" -gt 0 ] && [ "$ir" -gt 0 ] || { say "  $n log $log: no callgrind figure (requests ${reqs:-0}, instructions $ir)"; return 0; }
    per=$(awk -v i="$ir" -v n="$reqs" 'BEGIN {printf "%.0f", i / n}')
    record "profile-log-$log" instr_per_req "$n" "$per"
    printf "  %-8s log %-3s %8d requests  %7d instructions per request (callgrind_annotate %s.1)\n" \
        "$n" "$log" "$reqs" "$per" "$f" | tee -a "$out/log.txt"
}

profile_syscalls() { # NAME LOG
    local n=$1 log=$2 f=$out/syscalls.$1-log-$2.txt o reqs sp total ev=raw_syscalls:sys_enter c
    for c in $PROFILE_SYSCALLS; do
        [ -d "/sys/kernel/tracing/events/syscalls/sys_enter_$c" ] && ev="$ev,syscalls:sys_enter_$c"
    done
    profile_start "$n" "$log"
    wrk -t1 -c10 -d1s -H 'Host: bench.localhost' "http://127.0.0.1:${port_http[$n]}/file" >/dev/null
    perf stat -x, -e "$ev" -p "$(profile_pids "$n")" -o "$f" &
    sp=$!
    sleep 0.2
    o=$(wrk -t1 -c10 -d"${duration}s" -H 'Host: bench.localhost' "http://127.0.0.1:${port_http[$n]}/file")
    kill -INT $sp
    wait $sp 2>/dev/null || true
    stop_contender "$n"
    reqs=$(echo "$o" | awk '/requests in/ {print $1}')
    total=$(awk -F, '$3 == "raw_syscalls:sys_enter" {print $1}' "$f")
    [ "${reqs:-0}" -gt 0 ] && [ -n "$total" ] && [ "$total" != "<not" ] ||
        { say "  $n log $log: no system call count (perf stat: $(tail -1 "$f"))"; return 0; }
    record "profile-log-$log" syscalls_per_req "$n" "$(awk -v t="$total" -v n="$reqs" 'BEGIN {printf "%.2f", t / n}')"
    printf "  %-8s log %-3s %8d requests  %6.2f system calls per request: %s\n" "$n" "$log" "$reqs" \
        "$(awk -v t="$total" -v n="$reqs" 'BEGIN {print t / n}')" \
        "$(awk -F, -v n="$reqs" '$3 ~ /^syscalls:sys_enter_/ && $1 + 0 > 0 {sub(/syscalls:sys_enter_/, "", $3); printf "%s %.2f ", $3, $1 / n}' "$f")" |
        tee -a "$out/log.txt"
}

# Under callgrind: HTTPS keep-alive (wrk -t1 -c10 over TLS) and full TLS 1.3 handshakes
# (bench_tls_client --threads 1), log on. Every process of the contender is counted (h2o signs
# in a child, neverbleed). Per request: the run's instructions less its 10 connections'
# handshakes at the per-handshake figure measured right after in the same process.
profile_callgrind_tls() { # NAME
    local n=$1 f=$out/callgrind.$1-tls.out o reqs hs ir_req ir_hs p pids per_hs per_req
    rm -f "$f" "$f".*
    contender_wrap="valgrind --tool=callgrind --callgrind-out-file=$f.%p" nginx_master="master_process off;"
    profile_start "$n" on
    contender_wrap="" nginx_master=""
    pids=$(profile_pids "$n" | tr ',' ' ')
    profile_ir() { cat "$f".*.[0-9]* 2>/dev/null | awk '/^summary:/ {s += $2} END {print s + 0}'; }
    with_hosts wrk -t1 -c10 -d2s "https://bench.localhost:${port_https[$n]}/file" >/dev/null
    for p in $pids; do timeout 60 callgrind_control -z "$p" >/dev/null 2>&1 || true; done
    o=$(with_hosts wrk -t1 -c10 -d"${duration}s" "https://bench.localhost:${port_https[$n]}/file")
    for p in $pids; do timeout 60 callgrind_control -d "$p" >/dev/null 2>&1 || true; done
    ir_req=$(profile_ir)
    rm -f "$f".*.[0-9]*
    for p in $pids; do timeout 60 callgrind_control -z "$p" >/dev/null 2>&1 || true; done
    hs=$("$build/bench/bench_tls_client" --connect 127.0.0.1:"${port_https[$n]}" --sni bench.localhost \
        --threads 1 --seconds "$duration" | awk '{print $2}')
    for p in $pids; do timeout 60 callgrind_control -d "$p" >/dev/null 2>&1 || true; done
    ir_hs=$(profile_ir)
    sleep 1
    stop_contender "$n"
    reqs=$(echo "$o" | awk '/requests in/ {print $1}')
    [ "${reqs:-0}" -gt 0 ] && [ "${hs:-0}" -gt 0 ] && [ "$ir_req" -gt 0 ] && [ "$ir_hs" -gt 0 ] ||
        { say "  $n tls: no callgrind figure (requests ${reqs:-0}, handshakes ${hs:-0})"; return 0; }
    per_hs=$(awk -v i="$ir_hs" -v n="$hs" 'BEGIN {printf "%.0f", i / n}')
    per_req=$(awk -v i="$ir_req" -v h="$per_hs" -v n="$reqs" 'BEGIN {printf "%.0f", (i - 10 * h) / n}')
    record profile-https instr_per_req "$n" "$per_req"
    record profile-tls-handshake instr_per_handshake "$n" "$per_hs"
    printf "  %-8s https %8d requests %7d instructions per request; %5d full handshakes %9d per handshake\n" \
        "$n" "$reqs" "$per_req" "$hs" "$per_hs" | tee -a "$out/log.txt"
}

family_profile() {
    local log n
    if command -v valgrind >/dev/null; then
        for log in on off; do
            say "== profile: instructions per request (callgrind), access log $log, wrk -t1 -c10 -d${duration}s"
            for n in ${PROFILE_CONTENDERS:-webgw haproxy nginx h2o}; do profile_callgrind "$n" "$log"; done
        done
        say "== profile: instructions per HTTPS request and per full TLS 1.3 handshake (callgrind), access log on"
        for n in ${PROFILE_CONTENDERS:-webgw haproxy nginx h2o}; do profile_callgrind_tls "$n"; done
    else
        say "== profile: valgrind missing, no instruction counts"
    fi
    if perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
        for log in on off; do
            say "== profile: system calls per request (perf stat), access log $log, wrk -t1 -c10 -d${duration}s"
            for n in ${PROFILE_CONTENDERS:-webgw haproxy nginx h2o}; do profile_syscalls "$n" "$log"; done
        done
    else
        say "== profile: perf cannot count raw_syscalls:sys_enter here, no system call counts"
    fi
}
