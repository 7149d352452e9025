#!/usr/bin/env bash
# The robustness matrix (issue 5): runs the hostile-network matrix (crates/tcpcryptd/tests/
# hostile.rs, through the tcpcrypt-netsim middlebox), the daemon-fault, bad-input and soak tests,
# collects the rows they record (TCPCRYPT_ROBUSTNESS_OUT) and regenerates docs/robustness.md.
#
#   sudo ./scripts/robustness.sh           # quick: the same sizes ./scripts/test.sh runs
#   sudo ./scripts/robustness.sh --long    # long matrix: 24 MiB each way per transfer, 4 trials
#   sudo ./scripts/robustness.sh --soak    # also the 10-minute soak (tests/soak.rs, `soak`)
#
# Root is needed (network namespaces, firewall rules, AF_PACKET). Exits non-zero if any test
# failed or any recorded scenario did not hold; the document is written either way, so a
# failing row shows as "NO".
set -euo pipefail
cd "$(dirname "$0")/.."

long=0
soak=0
for arg in "$@"; do
    case "$arg" in
        --long) long=1 ;;
        --soak) soak=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "robustness.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" -ne 0 ]; then
    echo "robustness.sh: needs root (network namespaces, iptables, AF_PACKET): sudo -E $0 $*" >&2
    exit 1
fi
source scripts/prereqs.sh

# The recorded rows are kept (target/robustness-rows.jsonl) so the document can be rendered
# again: cargo run -p tcpcrypt-netsim --bin robustness-report -- --input ... --output ...
mkdir -p target
rows=target/robustness-rows.jsonl
: > "$rows"
export TCPCRYPT_ROBUSTNESS_OUT="$PWD/$rows"
if ((long)); then
    export TCPCRYPT_MATRIX=long
    mode="long (TCPCRYPT_MATRIX=long: hostile-network transfers of 24 MiB each way, 4 MiB for negotiation and tampering, 4 trials per scenario)"
else
    mode="quick (as in ./scripts/test.sh: hostile-network transfers of 2 MiB each way, 512 KiB for negotiation and tampering, 2 trials per scenario)"
fi

# The source the tests are built from: the commit, and whether the tree differs from it.
tree_state() {
    local c
    c="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(git status --porcelain --untracked-files=no -- . ':!docs/robustness.md' 2>/dev/null)" ]; then
        c="$c with uncommitted changes"
    fi
    echo "$c"
}
start_commit="$(tree_state)"

status=0
run() {
    echo "robustness.sh: cargo test $*" >&2
    cargo test "$@" || status=1
}
run -p tcpcryptd --test hostile -- --nocapture
for t in faults bad_input soak; do
    if [ -f "crates/tcpcryptd/tests/$t.rs" ]; then
        run -p tcpcryptd --test "$t" -- --nocapture
    fi
done
if ((soak)); then
    mode="$mode; with the 10-minute soak"
    run -p tcpcryptd --test soak -- --ignored --nocapture
fi

commit="$(tree_state)"
if [ "$commit" != "$start_commit" ]; then
    commit="$start_commit at the start, $commit at the end (the tree changed during the run)"
fi
machine="$(uname -sr), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
cargo run -q -p tcpcrypt-netsim --bin robustness-report -- \
    --input "$rows" --output docs/robustness.md \
    --mode "$mode" --machine "$machine" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --command "scripts/robustness.sh${*:+ $*}" --commit "commit $commit" || status=1
echo "robustness.sh: docs/robustness.md written ($(grep -c '^| ' docs/robustness.md || true) table lines)" >&2
exit $status
