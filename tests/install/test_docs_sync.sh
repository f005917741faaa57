#!/usr/bin/env bash
# test_docs_sync.sh - the installed documentation says what the programs do:
#   every option of `webgw --help` is a commented key of node/webgw.example.yaml and an entry of
#   docs/webgw.8; every command and option of `webgwctl --help` is in docs/webgwctl.1; the
#   example config loads (webgw accepts it); the man pages render without warnings; bash
#   completion offers webgw's options and webgwctl's commands.
# Usage: test_docs_sync.sh BINDIR SRCDIR. After adding an option: scripts/gen-docs.sh.
set -uo pipefail
bin=$1
src=$2
fail=0
bad() {
    echo "test_docs_sync: $*"
    fail=1
}

keys=$("$bin/webgw" --help | awk '/^  --/ { sub(/^--/, "", $1); print $1 }')
[ "$(echo "$keys" | wc -l)" -gt 40 ] || bad "webgw --help lists too few options: $keys"
for k in $keys; do
    case $k in help | version) ;;
    config) ;; # not allowed inside a config file
    *) grep -q "^#$k: " "$src/node/webgw.example.yaml" || bad "--$k missing from node/webgw.example.yaml (run scripts/gen-docs.sh)" ;;
    esac
    grep -q -- "\\\\-\\\\-${k//-/\\\\-}\\b" "$src/docs/webgw.8" ||
        bad "--$k missing from docs/webgw.8 (run scripts/gen-docs.sh)"
done
# no stale keys: every key of the example is still an option
for k in $(sed -n 's/^#\([a-z0-9-]*\): .*/\1/p' "$src/node/webgw.example.yaml"); do
    grep -qx -- "$k" <<<"$keys" || bad "node/webgw.example.yaml has $k, which webgw --help does not list"
done

ctl_words=$("$bin/webgwctl" --help | awk '/^  [a-z]/ { print $1 } /^  --/ { print $1 }' | tr -d '[]')
[ -n "$ctl_words" ] || bad "webgwctl --help lists nothing"
for w in $ctl_words; do
    pat=${w//-/\\\\-}
    grep -q -- "$pat" "$src/docs/webgwctl.1" || bad "webgwctl: $w missing from docs/webgwctl.1"
done

# the example config is accepted as it is (all defaults) and with a key uncommented: a bad
# --workers after it fails only once the file has loaded, so nothing is started
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's/^#domain: D$/domain: example.test/' "$src/node/webgw.example.yaml" >"$tmp/webgw.yaml"
grep -q '^domain: example.test$' "$tmp/webgw.yaml" || bad "no #domain: line in the example"
out=$("$bin/webgw" --config "$tmp/webgw.yaml" --workers 100000 2>&1)
grep -q '^webgw: --workers: ' <<<"$out" || bad "the example config is refused: $out"

# bash completion: webgw completes its options (read from --help), webgwctl its commands
complete_words() { # complete_words FUNCTION WORD...: what bash would offer for the last word
    PATH="$bin:$PATH" bash -c 'source "$1"; shift; f=$1; shift; COMP_WORDS=("$@");
        COMP_CWORD=$(($# - 1)); "$f" 2>/dev/null; echo "${COMPREPLY[*]}"' _ \
        "$src/node/webgw.bash-completion" "$@"
}
[ "$(complete_words _webgw webgw --htt)" = "--http --https --https-redirect" ] ||
    bad "completion: webgw --htt gives '$(complete_words _webgw webgw --htt)'"
[ "$(complete_words _webgw webgw --log-level w)" = "warn" ] || bad "completion: --log-level w"
[ "$(complete_words _webgwctl webgwctl ex)" = "expose" ] || bad "completion: webgwctl ex"
[ "$(complete_words _webgwctl webgwctl --json expose demo --b)" = "--backend" ] ||
    bad "completion: webgwctl expose --b"
[ "$(complete_words _webgwctl webgwctl keys u)" = "use" ] || bad "completion: webgwctl keys u"

for page in webgw.8 webgwctl.1; do
    warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 groff -man -ww -z "$src/docs/$page" 2>&1)
    [ -z "$warn" ] || bad "docs/$page: groff warns: $warn"
done

[ "$fail" -eq 0 ] && echo "test_docs_sync: ok ($(echo "$keys" | wc -l) webgw options, $(echo "$ctl_words" | wc -w) webgwctl words)"
exit "$fail"
