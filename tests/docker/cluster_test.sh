#!/usr/bin/env bash
# cluster_test.sh - the docker cluster end to end: three webgw containers and two demo backends
# on a private Docker network (docker/compose.yml), driven from the host the way an operator
# and a user would, with webgwctl against the published API ports and curl against the
# published HTTP ports. Heavy (builds the image, about two minutes), so it is opt-in: run it
# directly, or configure with -DWEBGW_DOCKER_TESTS=ON and run `ctest -L docker`.
#
# What it proves, in order:
#   1. the image builds from this checkout with no registry, and the three nodes form one
#      cluster: every node sees three alive members;
#   2. a name reserved and exposed through gw1 is served by gw1, gw2 and gw3, each request
#      reaching a demo backend with X-Forwarded-Host set, and both backends take requests;
#      Docker's healthcheck (webgwctl inside the image) passes and the dashboard answers;
#   3. the fleet's DNS (docker/compose.yml: every gateway --dns-listen 0.0.0.0:53; a client
#      container whose `dns:` is the three gateways resolves demo.localhost before every
#      request and tries the next address when one does not connect): every gateway answers
#      with all three addresses and the client reaches the demo by name; then gw2, gw3 and
#      gw1 are each killed in turn (docker kill): the other two answer every request meanwhile,
#      drop the dead one from their DNS answers within 5 s (measured with dig) and see it dead;
#      the client's requests all succeed and its answers lose the address within 9 s (5 s +
#      Docker's 4 s forwarding timeout); docker start: it is alive again everywhere, serves
#      the name from its own state and is back in every answer;
#   4. docker kill backend-a: every node comes to see it down and serves from backend-b;
#   5. docker network disconnect gw3 (a partition): gw1/gw2 and gw3 see each other dead;
#      while cut off, gw1 exposes a new name, re-exposes demo and releases a third name;
#      gw3 does not serve the new name and still holds the released one (the partition is
#      real); after docker network connect every node sees three alive members, gw3 serves
#      the new name, no longer serves the released one, and the three nodes list identical
#      records;
#   6. docker stop gw1 (SIGTERM, PID 1 in its container): it exits 0, gw2 and gw3 list it as
#      left (a graceful leave, not a death) and go on serving.
# Everything (containers, network, volumes, keys) is removed at the end, pass or fail.
#
# Environment: WEBGW_IMAGE (default webgw:dev), WEBGW_NO_BUILD=1 (use the image as it is),
# WEBGW_KEEP=1 (leave the cluster running for a look; remove it with the printed command).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
# shellcheck source=../../scripts/docker-lib.sh
. "$root/scripts/docker-lib.sh"

project=webgwtest$$
state=$(mktemp -d "${TMPDIR:-/tmp}/webgw-docker-XXXXXX")
ctlbin=${WEBGW_DOCKER_BUILD:-$root/build-docker}/bin/webgwctl
nodes=(gw1 gw2 gw3)
declare -A cid
failed=0
t0=$(date +%s)

export WEBGW_IMAGE=${WEBGW_IMAGE:-webgw:dev}
export WEBGW_STATE=$state
# Empty host ports: Docker picks free ones, so a running demo cluster does not collide.
export WEBGW_GW1_HTTP= WEBGW_GW1_API= WEBGW_GW2_HTTP= WEBGW_GW2_API= WEBGW_GW3_HTTP= WEBGW_GW3_API=
export WEBGW_KEY=$state/owner.key

cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
        echo "== logs of the failed run (last 30 lines per container)"
        docker_compose logs --no-color --tail 30 2>&1 | sed 's/^/  /'
    fi
    if [ "${WEBGW_KEEP:-0}" = 1 ]; then
        echo "WEBGW_KEEP=1: cluster left running; remove it with:"
        echo "  WEBGW_STATE=$state docker-compose -p $project -f $root/docker/compose.yml down -v"
        return
    fi
    docker_compose down -v --remove-orphans -t 5 >/dev/null 2>&1 ||
        echo "cluster_test: compose down failed; remove project $project by hand" >&2
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*"
    failed=1
    exit 1
}

pass() {
    echo "ok: $*"
}

api() { echo "http://127.0.0.1:$(docker_host_port "${cid[$1]}" 9080)"; }
ctl() {
    local node=$1
    shift
    "$ctlbin" --api "$(api "$node")" "$@"
}

# member_state VIEWER MEMBER: MEMBER's state in VIEWER's member list ("" if not listed).
member_state() {
    ctl "$1" --json members | jq -r --arg m "$2" '[.[] | select(.name == $m) | .state][0] // ""'
}
member_is() { [ "$(member_state "$1" "$2")" = "$3" ]; }
member_in() { # member_in VIEWER MEMBER STATE...: MEMBER's state is one of STATE...
    local s
    s=$(member_state "$1" "$2")
    shift 2
    for want; do [ "$s" = "$want" ] && return 0; done
    return 1
}
all_alive() {
    local v m
    for v in "$@"; do
        [ "$(ctl "$v" --json members | jq length)" = 3 ] || return 1
        for m in "${nodes[@]}"; do member_is "$v" "$m" alive || return 1; done
    done
}

# fetch NODE NAME: the body of GET / for NAME.localhost through NODE's HTTP port.
fetch() {
    curl -sS -m 5 -H "Host: $2.localhost" "http://127.0.0.1:$(docker_host_port "${cid[$1]}" 8080)/"
}
serves() { # serves NODE NAME: NODE answers NAME with a demo backend's page
    local body
    body=$(fetch "$1" "$2") && [[ "$body" == "hello from backend-"* ]]
}
status_of() {
    curl -s -o /dev/null -m 5 -w '%{http_code}' -H "Host: $2.localhost" \
        "http://127.0.0.1:$(docker_host_port "${cid[$1]}" 8080)/"
}
answers_404() { [ "$(status_of "$1" "$2")" = 404 ]; }
backend_health() { # backend_health NODE IP: the fleet's verdict on http://IP:8000 at NODE
    ctl "$1" --json health |
        jq -r --arg b "http://$2:8000" '[.backends[] | select(.backend == $b) | .health][0] // ""'
}
backend_down_everywhere() {
    local n
    for n in "${nodes[@]}"; do [ "$(backend_health "$n" "$1")" = down ] || return 1; done
}
names_digest() { # the records a node holds, in a form comparable across nodes
    ctl "$1" --json names |
        jq -S -c '[.[] | {name, owner, version, backends, tls_passthrough}] | sort_by(.name)'
}
names_agree() {
    local a b c
    a=$(names_digest gw1) && b=$(names_digest gw2) && c=$(names_digest gw3) &&
        [ "$a" = "$b" ] && [ "$b" = "$c" ] && [ "$a" != "[]" ]
}

for tool in docker jq curl dig; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-docker-deps.sh)"
done
docker info >/dev/null 2>&1 || fail "the Docker engine is not reachable"

echo "== 1. image and cluster"
if [ "${WEBGW_NO_BUILD:-0}" != 1 ]; then
    "$root/docker/build-image.sh" "$WEBGW_IMAGE" | tail -n 1 || fail "image build"
fi
[ -x "$ctlbin" ] || fail "no webgwctl at $ctlbin (docker/build-image.sh builds it)"
WEBGW_NET=$(docker_free_net) || fail "no free subnet"
export WEBGW_NET
docker_make_cluster_key "$state/cluster.key"
docker_make_fleet_keys "$state/fleet.keys" || fail "node keys for the fleet roster"
"$ctlbin" keygen >/dev/null 2>&1 || fail "webgwctl keygen"
docker_compose up -d >"$state/up.log" 2>&1 || {
    cat "$state/up.log"
    fail "compose up"
}
for n in "${nodes[@]}" backend-a backend-b client; do
    cid[$n]=$(docker_container "$n")
    [ -n "${cid[$n]}" ] || fail "no container for $n"
done
netname=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' \
    "${cid[gw1]}" | tr ' ' '\n' | grep '_cluster$') || fail "gw1 is not on the cluster network"
docker_wait 60 "three alive members on every node" all_alive "${nodes[@]}" ||
    fail "the cluster did not form"
pass "cluster on $WEBGW_NET.0/24 formed in ${DOCKER_WAITED_MS} ms: gw1 gw2 gw3 alive everywhere"

echo "== 2. a name exposed through gw1 is served by every node"
ctl gw1 reserve demo >/dev/null || fail "reserve demo"
ctl gw1 expose demo --backend "http://$WEBGW_NET.21:8000" --backend "http://$WEBGW_NET.22:8000" \
    >/dev/null || fail "expose demo"
for n in "${nodes[@]}"; do
    docker_wait 30 "$n to serve demo" serves "$n" demo || fail "$n does not serve demo"
    body=$(fetch "$n" demo)
    [[ "$body" == *$'\nx-forwarded-host: demo.localhost'* ]] ||
        fail "$n: backend saw no X-Forwarded-Host: demo.localhost: $body"
    pass "$n serves demo.localhost (after ${DOCKER_WAITED_MS} ms)"
done
seen=$(for _ in $(seq 1 10); do fetch gw2 demo | head -n 1; done | sort -u | tr '\n' ' ')
case "$seen" in
*backend-a*backend-b*) pass "10 requests through gw2 reached both backends ($seen)" ;;
*) fail "10 requests through gw2 did not reach both backends: $seen" ;;
esac

healthy() {
    local n
    for n in "${nodes[@]}"; do
        [ "$(docker inspect -f '{{.State.Health.Status}}' "${cid[$n]}")" = healthy ] || return 1
    done
}
docker_wait 30 "Docker to report every gateway healthy" healthy ||
    fail "a gateway's healthcheck (webgwctl health inside the image) does not pass"
pass "Docker reports gw1 gw2 gw3 healthy (webgwctl health, run inside the image)"
page=$(curl -fsS -m 5 "$(api gw3)/dashboard") && [[ "${page,,}" == *"<html"* ]] ||
    fail "gw3 serves no dashboard"
pass "gw3's dashboard answers on its published API port"

echo "== 3. the fleet's DNS: each gateway killed in turn (docker kill), then restarted"
# The client container resolves demo.localhost through Docker's embedded DNS, which forwards
# to the three gateways (compose `dns:`), before every request, and tries the next address
# when one does not connect. dig asks the survivors directly from the host.
#
# The bound: a gateway leaves the answers when a survivor suspects it (docker/compose.yml
# leaves gossip at its defaults: probe every 500 ms, round-robin over the 2 peers, so the
# dead one is probed within 1 s; no ack within the 250 ms direct timeout nor from the
# indirect probes by the period's end makes it suspect; the suspicion reaches the other
# survivor in the next gossip round). About 2 s; asserted at 5 s (as tests/node/test_dns.c
# does for kill -9). Dead (the suspicion timeout, 2 to 12 s at 3 members) comes later and is
# shown beside it. The client sees it through Docker's forwarder, which waits 4 s on a dead
# upstream before it asks the next one (moby's extIOTimeout), so gw1 (listed first) costs
# every lookup 4 s while it is down: the client's bound is 5 + 4 s.
dns_bound_ms=5000
client_bound_ms=9000
ip_of() { echo "$WEBGW_NET.1${1#gw}"; } # gw1 -> .11: the fixed address, also its --public-addr
dns_answer() { # dns_answer NODE: NODE's A answer for demo.localhost, sorted, comma-joined
    dig +short +time=1 +tries=1 "@$(ip_of "$1")" demo.localhost A | sort | paste -sd, -
}
dns_lacks() { # dns_lacks NODE IP: NODE answered, and IP is not in its answer
    local ans
    ans=$(dns_answer "$1") && [ -n "$ans" ] && [[ ",$ans," != *",$2,"* ]]
}
all_three=$(for n in "${nodes[@]}"; do ip_of "$n"; done | sort | paste -sd, -)
dns_full() { # every running gateway answers with all three addresses
    local n
    for n in "${nodes[@]}"; do [ "$(dns_answer "$n")" = "$all_three" ] || return 1; done
}
client_lines_since() { # client_lines_since MS: the client's lines for requests started at MS or later
    docker logs "${cid[client]}" 2>/dev/null | awk -v t0="$1" '(substr($1, 3) + 0) >= (t0 + 0)'
}
client_saw() { # client_saw MS SHELL-PATTERN: a request since MS succeeded with answers=PATTERN
    local line
    while read -r line; do
        # shellcheck disable=SC2254
        case "$line" in *" ok "*"answers=$2 "*) return 0 ;; esac
    done < <(client_lines_since "$1")
    return 1
}
docker_wait 30 "every gateway's DNS to answer demo.localhost with all three" dns_full ||
    fail "DNS answers for demo.localhost: gw1 '$(dns_answer gw1)', gw2 '$(dns_answer gw2)'," \
        "gw3 '$(dns_answer gw3)' (want $all_three)"
pass "gw1, gw2 and gw3 answer demo.localhost A with $all_three"
t_all=$(date +%s%3N)
docker_wait 30 "the client to reach demo.localhost by name" client_saw "$t_all" "$all_three" ||
    fail "the client (dns: the gateways) never reached demo.localhost: $(client_lines_since 0 | tail -n 3)"
pass "the client container resolves demo.localhost through the fleet ($all_three) and gets the demo page"

for victim in gw2 gw3 gw1; do
    others=()
    for n in "${nodes[@]}"; do [ "$n" = "$victim" ] || others+=("$n"); done
    vip=$(ip_of "$victim")
    k0=$(date +%s%3N)
    docker kill "${cid[$victim]}" >/dev/null || fail "docker kill $victim"
    requests=0
    errors=0
    dead_ms=""
    dns_ms=""
    while [ -z "$dead_ms" ] || [ -z "$dns_ms" ]; do
        for n in "${others[@]}"; do
            requests=$((requests + 1))
            serves "$n" demo || errors=$((errors + 1))
        done
        if [ -z "$dns_ms" ] && dns_lacks "${others[0]}" "$vip" && dns_lacks "${others[1]}" "$vip"; then
            dns_ms=$(($(date +%s%3N) - k0))
        fi
        if [ -z "$dead_ms" ] && member_is "${others[0]}" "$victim" dead &&
            member_is "${others[1]}" "$victim" dead; then
            dead_ms=$(($(date +%s%3N) - k0))
        fi
        [ $(($(date +%s%3N) - k0)) -lt 60000 ] ||
            fail "60 s after killing $victim: ${others[0]} sees it '$(member_state "${others[0]}" "$victim")'" \
                "and answers '$(dns_answer "${others[0]}")', ${others[1]} '$(member_state "${others[1]}" "$victim")'" \
                "and '$(dns_answer "${others[1]}")'"
        sleep 0.1
    done
    [ "$errors" -eq 0 ] || fail "$errors of $requests requests to ${others[*]} failed while $victim died"
    [ "$dns_ms" -le "$dns_bound_ms" ] ||
        fail "$victim ($vip) left ${others[*]}'s DNS answers after $dns_ms ms (bound $dns_bound_ms ms)"
    pass "$victim killed: $vip left ${others[0]}'s and ${others[1]}'s DNS answers within $dns_ms ms" \
        "(bound $dns_bound_ms), both saw it dead within $dead_ms ms; $requests requests to them, 0 failed"
    # the client: its first answer without the victim, counted from the kill to that answer
    client_gone() { # prints the ms from the kill to the client's first answer without $vip
        client_lines_since "$k0" | awk -v k0="$k0" -v ip="$vip" '$3 == "ok" {
            for (i = 4; i <= NF; i++) if ($i ~ /^answers=/) a = "," substr($i, 9) ","
            if (index(a, "," ip ",") == 0) { print substr($1, 3) + substr($2, 12) - k0; exit } }'
    }
    client_gone_ms() { [ -n "$(client_gone)" ]; }
    docker_wait 30 "the client to get answers without $vip" client_gone_ms ||
        fail "the client still gets $vip 30 s after $victim died: $(client_lines_since "$k0" | tail -n 2)"
    c_ms=$(client_gone)
    [ "$c_ms" -le "$client_bound_ms" ] ||
        fail "the client's answers lost $vip only $c_ms ms after the kill (bound $client_bound_ms ms)"
    docker start "${cid[$victim]}" >/dev/null || fail "docker start $victim"
    docker_wait 60 "$victim back and alive everywhere" all_alive "${nodes[@]}" ||
        fail "$victim did not rejoin"
    docker_wait 30 "$victim to serve demo after its restart" serves "$victim" demo ||
        fail "$victim lost demo"
    docker_wait 30 "every gateway's DNS to answer with $vip again" dns_full ||
        fail "after $victim's restart: gw1 '$(dns_answer gw1)', gw2 '$(dns_answer gw2)', gw3 '$(dns_answer gw3)'"
    back=$(date +%s%3N)
    docker_wait 30 "the client to get all three again" client_saw "$back" "$all_three" ||
        fail "the client does not get $all_three after $victim's restart"
    lines=$(client_lines_since "$k0" | wc -l)
    bad=$(client_lines_since "$k0" | grep -c ' fail ')
    retried=$(client_lines_since "$k0" | grep -c ' ok .* tried=[2-9]')
    [ "$bad" -eq 0 ] || fail "the client failed $bad of $lines requests around $victim's death:" \
        "$(client_lines_since "$k0" | grep ' fail ' | head -n 3)"
    pass "client: $lines requests by name from the kill to the restart, 0 failed ($retried" \
        "retried the next address); its answers lost $vip $c_ms ms after the kill (bound" \
        "$client_bound_ms); $victim restarted, serves demo and is back in every answer"
done

echo "== 4. docker kill backend-a"
docker kill "${cid[backend-a]}" >/dev/null || fail "docker kill backend-a"
docker_wait 60 "every node to see backend-a down" backend_down_everywhere "$WEBGW_NET.21" ||
    fail "backend-a is not down everywhere: gw1 '$(backend_health gw1 "$WEBGW_NET.21")'," \
        "gw2 '$(backend_health gw2 "$WEBGW_NET.21")', gw3 '$(backend_health gw3 "$WEBGW_NET.21")'"
pass "every node sees backend-a down within ${DOCKER_WAITED_MS} ms"
for n in "${nodes[@]}"; do
    for _ in 1 2 3 4; do
        first=$(fetch "$n" demo | head -n 1)
        [ "$first" = "hello from backend-b" ] || fail "$n answered '$first' with backend-a down"
    done
done
pass "with backend-a down, 12 requests through the three nodes all went to backend-b"
docker start "${cid[backend-a]}" >/dev/null || fail "docker start backend-a"

echo "== 5. partition gw3 (docker network disconnect) and heal"
ctl gw1 reserve gone >/dev/null && ctl gw1 expose gone --backend "http://$WEBGW_NET.22:8000" \
    >/dev/null || fail "expose gone"
docker_wait 30 "gw3 to serve gone" serves gw3 gone || fail "gw3 does not serve gone"
docker network disconnect "$netname" "${cid[gw3]}" || fail "docker network disconnect gw3"
cut_side() { member_in gw1 gw3 dead && member_in gw2 gw3 dead; }
far_side() { member_in gw3 gw1 dead && member_in gw3 gw2 dead; }
docker_wait 60 "gw1 and gw2 to see gw3 dead" cut_side || fail "gw1/gw2 still see gw3" \
    "'$(member_state gw1 gw3)'/'$(member_state gw2 gw3)'"
pass "gw1 and gw2 see gw3 dead ${DOCKER_WAITED_MS} ms after the disconnect"
docker_wait 60 "gw3 to see gw1 and gw2 dead" far_side || fail "gw3 still sees gw1" \
    "'$(member_state gw3 gw1)', gw2 '$(member_state gw3 gw2)'"
pass "gw3 sees gw1 and gw2 dead"
ctl gw1 reserve late >/dev/null && ctl gw1 expose late --backend "http://$WEBGW_NET.21:8000" \
    >/dev/null || fail "expose late during the partition"
ctl gw1 expose demo --backend "http://$WEBGW_NET.22:8000" >/dev/null ||
    fail "re-expose demo during the partition"
ctl gw1 release gone >/dev/null || fail "release gone during the partition"
docker_wait 30 "gw2 to serve late" serves gw2 late || fail "gw2 does not serve late"
answers_404 gw3 late || fail "gw3 serves late while cut off: the partition leaks"
# gw3 cannot reach the backends while cut off, so ask its API: it must still hold gone.
ctl gw3 show gone >/dev/null 2>&1 || fail "gw3 dropped gone while cut off: the partition leaks"
pass "during the partition gw1/gw2 serve the new name late; gw3 answers 404 and still holds gone"
docker network connect --ip "$WEBGW_NET.13" "$netname" "${cid[gw3]}" ||
    fail "docker network connect gw3"
heal_start=$(date +%s%N)
docker_wait 60 "three alive members everywhere after the heal" all_alive "${nodes[@]}" ||
    fail "membership did not heal"
pass "membership healed: alive everywhere ${DOCKER_WAITED_MS} ms after reconnecting gw3"
docker_wait 60 "gw3 to serve late" serves gw3 late || fail "gw3 never got late"
pass "gw3 serves late $((($(date +%s%N) - heal_start) / 1000000)) ms after the heal"
docker_wait 30 "gw3 to stop serving the released name" answers_404 gw3 gone ||
    fail "gw3 still serves gone after the heal: a released name came back"
pass "gw3 answers 404 for the released gone $((($(date +%s%N) - heal_start) / 1000000)) ms after the heal"
docker_wait 30 "identical records on every node" names_agree || fail "records differ after the heal"
heal_ms=$((($(date +%s%N) - heal_start) / 1000000))
pass "the three nodes list identical records ${heal_ms} ms after the heal"
[ "$(ctl gw3 --json show demo | jq -c '.backends')" = "[\"http://$WEBGW_NET.22:8000\"]" ] ||
    fail "gw3 has a stale demo: $(ctl gw3 --json show demo)"
pass "gw3 holds the demo update made during the partition"

echo "== 6. docker stop gw1 (SIGTERM: drain, leave, exit 0)"
docker stop -t 30 "${cid[gw1]}" >/dev/null || fail "docker stop gw1"
code=$(docker inspect -f '{{.State.ExitCode}}' "${cid[gw1]}")
[ "$code" = 0 ] || fail "gw1 exited with status $code after SIGTERM"
left() { member_is gw2 gw1 left && member_is gw3 gw1 left; }
docker_wait 30 "gw2 and gw3 to see gw1 left" left ||
    fail "after gw1's stop gw2 sees '$(member_state gw2 gw1)', gw3 '$(member_state gw3 gw1)'"
pass "gw1 exited 0 on SIGTERM; gw2 and gw3 list it as left, not dead"
serves gw2 demo && serves gw3 demo || fail "gw2/gw3 stopped serving demo after gw1 left"
pass "gw2 and gw3 still serve demo"

echo "PASS: docker cluster test in $(($(date +%s) - t0)) s"
