#!/usr/bin/env bash
# report.sh - webgw's performance as users run it, against HAProxy, nginx and h2o (issue 14).
# Drives the real `webgw` daemon with its defaults (access log on, into a file) and the anchors
# with theirs, one worker each, one backend (nginx serving a 12-byte file), interleaved rounds,
# medians. Families (one file each, tests/bench/report_<family>.sh):
#   http     keep-alive requests/s, p99, CPU per request; access log on, then off everywhere
#   tls      HTTPS keep-alive requests/s and full TLS 1.3 handshakes/s
#   mem      RSS per idle keep-alive connection and per idle WebSocket (IDLE_CONNS of each)
#   bulk     1 GiB download, upload, TLS passthrough, WebSocket both ways: MB/s, CPU per MB
#   scale    2 workers against 1 (4+ cpus); the request path with 1M names routed against 3;
#            the start on 1M names (witnessed: a restart; unwitnessed: the first after an upgrade)
#   profile  the daemon's instructions per request under callgrind (steady on a busy machine)
# Writes OUT/report.md (a Markdown table with ratios), OUT/*.svg (gnuplot bar charts),
# OUT/raw.tsv (every round) and OUT/log.txt.
#
#   tests/bench/report.sh [--quick] [--out DIR] [--build DIR] [--only FAMILY[,FAMILY]]
#   env: ROUNDS=3 DURATION=5 CONNS=50 IDLE_CONNS=10000 BULK_BYTES=1073741824 NAMES=1000000 PIN=1
#        WEBGW_START_WAIT=600 (seconds webgw may take to answer /healthz)
# --quick: a smoke run (1 round of 2 s, 500 idle connections, 64 MiB bodies, 20,000 names).
# Needs: scripts/install-bench-deps.sh (haproxy nginx h2o wrk gnuplot), valgrind for profile,
# a built tree (cmake --build build: webgw, webgwctl, bench/bench_conns, bench_fill_names,
# bench_tls_client). Run as root on a quiet machine for figures worth quoting.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=build out="" only="" quick=0
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    --only) only=$2; shift ;;
    *) echo "usage: $0 [--quick] [--out DIR] [--build DIR] [--only FAMILY,...]" >&2; exit 2 ;;
    esac
    shift
done
build=$(cd "$build" && pwd)
rounds=${ROUNDS:-3} duration=${DURATION:-5} conns=${CONNS:-50} idle_conns=${IDLE_CONNS:-10000}
bulk_bytes=${BULK_BYTES:-1073741824} names_count=${NAMES:-1000000}
if [ $quick = 1 ]; then
    rounds=${ROUNDS:-1} duration=${DURATION:-2} idle_conns=${IDLE_CONNS:-500}
    bulk_bytes=${BULK_BYTES:-67108864} names_count=${NAMES:-20000}
fi
families=${only:-http,tls,mem,bulk,scale,profile}
out=${out:-$root/bench-report/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
: >"$out/raw.tsv"
: >"$out/log.txt"

for tool in haproxy nginx h2o wrk gnuplot curl openssl taskset unshare; do
    command -v $tool >/dev/null || { echo "report: $tool missing (scripts/install-bench-deps.sh)"; exit 1; }
done
for b in bin/webgw bin/webgwctl bench/bench_conns bench/bench_fill_names bench/bench_tls_client; do
    [ -x "$build/$b" ] || { echo "report: $build/$b missing (cmake --build $build)"; exit 1; }
done

# 10,000 client connections plus as many to the backend for WebSockets: every process needs
# twice that in descriptors; where the hard limit is lower (a container), fewer connections
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
nofile=$(ulimit -n)
if [ $((2 * idle_conns + 1000)) -gt "$nofile" ]; then
    idle_conns=$(((nofile - 1000) / 2))
    echo "report: open files limited to $nofile: $idle_conns idle connections instead"
fi
renice -n -10 $$ >/dev/null 2>&1 || true

work=$(mktemp -d /tmp/webgw-report.XXXXXX)
# shellcheck source=tests/bench/report_lib.sh
. tests/bench/report_lib.sh
for f in ${families//,/ }; do
    [ -f "tests/bench/report_$f.sh" ] || fail "no family $f"
    # shellcheck disable=SC1090
    . "tests/bench/report_$f.sh"
done
cleanup() {
    stop_all
    mkdir -p "$out/logs"
    cp "$work"/logs/*.err "$work"/*.conf "$work"/*.cfg "$out/logs/" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(uname -srm), $ncpu cpus, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "versions: $(haproxy -v | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1); $(h2o -v | head -1); webgw $(git -C "$root" rev-parse --short HEAD)"
    echo "settings: rounds=$rounds duration=${duration}s conns=$conns idle_conns=$idle_conns bulk_bytes=$bulk_bytes names=$names_count pin=${PIN:-1} (wrk cpu $cpu_wrk, backend cpu $cpu_backend, proxies cpu $cpu_proxy)"
} | tee "$out/setup.txt"

busy=$(ss -ltnH 2>/dev/null | awk '{print $4}' | grep -E ':18(2[0-4][0-9])$' || true)
[ -z "$busy" ] || fail "ports in use (an earlier run left processes?): $busy"
bench_setup_files
start_backend
for f in ${families//,/ }; do "family_$f"; done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/setup.txt"
stop_all

# ---- the report ---------------------------------------------------------------------------
awk -F'\t' '{k = $1 "\t" $2 "\t" $3; v[k] = v[k] " " $4; if (!(k in seen)) {seen[k] = 1; order[++n] = k}}
    END {for (i = 1; i <= n; i++) {
        split(v[order[i]], a, " "); m = 0; for (j in a) m++
        # sort numerically (insertion), take the median
        for (x = 2; x <= m; x++) {t = a[x] + 0; y = x - 1; while (y > 0 && a[y] + 0 > t) {a[y + 1] = a[y]; y--}; a[y + 1] = t}
        print order[i] "\t" a[int((m + 1) / 2)] "\t" m}}' "$out/raw.tsv" >"$out/medians.tsv"

lower_better() { case $1 in cpu* | p99* | bytes* | instr* | syscalls*) return 0 ;; *) return 1 ;; esac; }
{
    cat "$out/setup.txt" | sed 's/^/    /'
    echo
    echo "Medians of interleaved rounds. Ratio: webgw against the best anchor (higher is better"
    echo "for rates, lower for CPU, p99 and bytes)."
    echo
    echo "| measurement | metric | webgw | HAProxy | nginx | h2o | webgw / best anchor |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    cut -f1,2 "$out/medians.tsv" | awk '!s[$0]++' | while IFS=$'\t' read -r fam metric; do
        case $fam in scale-*) continue ;; esac
        declare -A v=()
        while IFS=$'\t' read -r _ _ who val _; do v[$who]=$val; done < <(awk -F'\t' -v f="$fam" -v m="$metric" '$1 == f && $2 == m' "$out/medians.tsv")
        best="" ratio=""
        for a in haproxy nginx h2o; do
            [ -n "${v[$a]:-}" ] || continue
            if [ -z "$best" ]; then best=${v[$a]}; continue; fi
            if lower_better "$metric"; then
                awk -v x="${v[$a]}" -v b="$best" 'BEGIN {exit !(x < b)}' && best=${v[$a]}
            else
                awk -v x="${v[$a]}" -v b="$best" 'BEGIN {exit !(x > b)}' && best=${v[$a]}
            fi
        done
        [ -n "$best" ] && [ -n "${v[webgw]:-}" ] &&
            ratio=$(awk -v w="${v[webgw]}" -v b="$best" 'BEGIN {if (b > 0) printf "%.2fx", w / b}')
        echo "| $fam | $metric | ${v[webgw]:--} | ${v[haproxy]:--} | ${v[nginx]:--} | ${v[h2o]:--} | ${ratio:--} |"
        unset v
    done
    if grep -q '^scale-' "$out/medians.tsv"; then
        echo
        echo "| scale | metric | value A | value B | B / A |"
        echo "|---|---|---:|---:|---:|"
        for pair in "workers-1 workers-2" "names-few names-many"; do
            set -- $pair
            for metric in rps cpu_us_per_req p99_ms; do
                a=$(awk -F'\t' -v f="scale-$1" -v m="$metric" '$1 == f && $2 == m {print $4}' "$out/medians.tsv")
                b=$(awk -F'\t' -v f="scale-$2" -v m="$metric" '$1 == f && $2 == m {print $4}' "$out/medians.tsv")
                [ -n "$a" ] && [ -n "$b" ] || continue
                echo "| $1 -> $2 | $metric | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN {if (a > 0) printf "%.2fx", b / a}') |"
            done
        done
        for kind in witnessed unwitnessed; do
            a=$(awk -F'\t' -v f="scale-start-$kind" '$1 == f && $2 == "start_s" {print $4}' "$out/medians.tsv")
            b=$(awk -F'\t' -v f="scale-start-$kind" '$1 == f && $2 == "start_cpu_s" {print $4}' "$out/medians.tsv")
            [ -n "$a" ] || continue
            echo "| start on $names_count names, $kind | seconds to /healthz, CPU seconds | $a | $b | |"
        done
    fi
} >"$out/report.md"

# one bar chart per measurement and metric with more than one contender
cut -f1,2 "$out/medians.tsv" | awk '!s[$0]++' | while IFS=$'\t' read -r fam metric; do
    awk -F'\t' -v f="$fam" -v m="$metric" '$1 == f && $2 == m {print $3, $4}' "$out/medians.tsv" \
        >"$work/chart.dat"
    [ "$(wc -l <"$work/chart.dat")" -gt 1 ] || continue
    gnuplot <<GP 2>>"$out/log.txt" || true
set terminal svg size 520,320 font "sans,11"
set output "$out/$fam-$metric.svg"
set title "$fam: $metric"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set grid ytics
unset key
plot "$work/chart.dat" using 2:xtic(1) linecolor rgb "#4472c4"
GP
done
cat "$out/report.md"
echo "report: $out/report.md, charts $out/*.svg"
