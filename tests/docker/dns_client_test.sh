#!/usr/bin/env bash
# dns_client_test.sh - webgw-dns-client (docker/dns_client.c, the compose cluster's round-robin
# client) on loopback, without Docker: what it does when the first address of a name does not
# take the connection. In a private mount namespace (unshare -rm) a scratch /etc/hosts gives
# rr.test two addresses, 127.0.0.2 (nothing listens) then 127.0.0.3 (a demo backend), so
# getaddrinfo hands the client a dead address first, deterministically.
#
#   1. the refused first address is skipped: ok via 127.0.0.3, tried=2, both in the answers;
#   2. no address takes the connection: one fail line, tried=2, exit status 1;
#   3. an address that answers with the wrong page is a failure, not a reason to try the next
#      (the gateway is alive): fail, tried=1;
#   4. an address that takes the connection and closes it before any response byte (a gateway
#      killed under the request) is skipped like a refused one: ok via 127.0.0.3, tried=2;
#   5. a name that does not resolve: fail with the resolver's reason, tried=0;
#   6. bad arguments: one line on stderr, exit status 2.
#
#   tests/docker/dns_client_test.sh BIN-DIR      (exit 77: no mount namespace here, skipped)
set -uo pipefail
bin=${1:?usage: dns_client_test.sh BIN-DIR}
client=$bin/webgw-dns-client
backend=$bin/webgw-demo-backend
[ -x "$client" ] && [ -x "$backend" ] || { echo "FAIL: no $client or $backend"; exit 1; }

if [ "${DNS_CLIENT_TEST_INNER:-}" != 1 ]; then
    # Re-run inside a private mount namespace (root, or a user namespace when allowed).
    if ! unshare -rm true 2>/dev/null; then
        echo "SKIP: unshare -rm is not permitted here (needs root or user namespaces)"
        exit 77
    fi
    DNS_CLIENT_TEST_INNER=1 exec unshare -rm bash "$0" "$@"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/webgw-dns-client-XXXXXX")
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
failed=0
fail() {
    echo "FAIL: $*"
    failed=1
}
check() { # check N TEXT CONDITION...: prints ok N TEXT when CONDITION holds, else FAIL
    local n=$1 text=$2
    shift 2
    if "$@"; then echo "ok $n: $text"; else fail "$n. $text"; fi
}

printf '127.0.0.2 rr.test\n127.0.0.3 rr.test\n' >"$work/hosts"
mount --bind "$work/hosts" /etc/hosts || { echo "FAIL: cannot bind-mount /etc/hosts"; exit 1; }
port=$((20000 + RANDOM % 20000))
"$backend" --listen "127.0.0.3:$port" --name backend-b >"$work/backend.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.3/$port") 2>/dev/null && break
    sleep 0.1
done

out=$("$client" rr.test --port "$port" --count 1 --interval-ms 0 2>/dev/null)
rc=$?
check 1 "127.0.0.2 refused, the client goes on to 127.0.0.3 (status $rc): $out" \
    [ "$rc" = 0 -a "${out#* ok via=127.0.0.3 tried=2 answers=127.0.0.2,127.0.0.3 status=200 first=hello_from_backend-b}" = "" ]

kill "$pid" && wait "$pid" 2>/dev/null
pid=""
out=$("$client" rr.test --port "$port" --count 1 --interval-ms 0 2>/dev/null)
rc=$?
check 2 "no address takes the connection: one fail line after 2 tries (status $rc): $out" \
    [ "$rc" = 1 -a "${out#* fail reason=connect:Connection_refused tried=2 answers=127.0.0.2,127.0.0.3}" = "" ]

"$backend" --listen "127.0.0.2:$port" --name backend-a >>"$work/backend.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.2/$port") 2>/dev/null && break
    sleep 0.1
done
out=$("$client" rr.test --port "$port" --count 1 --interval-ms 0 --expect "not on the page" 2>/dev/null)
rc=$?
check 3 "a wrong page from a live address is a failure, not retried (status $rc): $out" \
    [ "$rc" = 1 -a "${out#* fail reason=status_200_unexpected_body tried=1 answers=127.0.0.2,127.0.0.3}" = "" ]

kill "$pid" && wait "$pid" 2>/dev/null
pid=""
python3 -c '
import socket, struct, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.2", int(sys.argv[1]))); s.listen(8)
while True:
    c, _ = s.accept(); c.recv(4096)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
' "$port" &
pid=$!
"$backend" --listen "127.0.0.3:$port" --name backend-b >>"$work/backend.log" 2>&1 &
pid2=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.3/$port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.2/$port") 2>/dev/null && break
    sleep 0.1
done
out=$("$client" rr.test --port "$port" --count 1 --interval-ms 0 2>/dev/null)
rc=$?
kill "$pid2" && wait "$pid2" 2>/dev/null
check 4 "127.0.0.2 resets the request before answering, the GET goes to 127.0.0.3 (status $rc): $out" \
    [ "$rc" = 0 -a "${out#* ok via=127.0.0.3 tried=2 answers=127.0.0.2,127.0.0.3 status=200 first=hello_from_backend-b}" = "" ]

out=$("$client" nothing.invalid --count 1 --interval-ms 0 2>/dev/null)
rc=$?
check 5 "an unresolvable name fails with the resolver's reason (status $rc): $out" \
    [ "$rc" = 1 -a "${out#* fail reason=resolve:*tried=0 answers=-}" = "" ]

for args in "" "a b" "x --count abc" "x --port" "--bogus 1 x"; do
    # shellcheck disable=SC2086
    err=$("$client" $args --count 1 2>&1 >/dev/null)
    rc=$?
    check 6 "arguments '$args': one line and status 2 ($rc): $err" \
        [ "$rc" = 2 -a "$(printf '%s\n' "$err" | wc -l)" = 1 -a "${err#webgw-dns-client: }" != "$err" ]
done

[ "$failed" = 0 ] && echo "PASS: webgw-dns-client" || exit 1
