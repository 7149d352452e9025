#!/usr/bin/env bash
# The project's main job: real tcpcrypt between two unmodified programs.
#
# Creates two network namespaces joined by a veth pair ("client" 10.77.0.1, "server" 10.77.0.2,
# and fd77::1/fd77::2), runs tcpcryptd in each, serves a file holding a plaintext canary with
# python3's http.server in one and fetches it with curl from the other. It prints the session ID
# each side's `tcpcrypt` CLI reports (they must be equal), shows from a tcpdump capture that the
# SYN carries the TCP-ENO option (kind 69) and that the canary never crosses the wire in plain,
# then decrypts the capture with `tcpcrypt inspect` and the client daemon's key log (the debug
# mode of RFC 8547 §5, on for the demo only: the file is deleted with everything else) back to
# exactly canary.txt, then removes everything it created. Needs root; touches nothing in the host's namespace.
#
# Exit status 0 only if every check passed; the last line is the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "the demo creates network namespaces: run it as root (sudo ./scripts/demo.sh)" >&2
    exit 1
fi

# Under sudo, build with the invoking user's Rust toolchain and as that user, so target/ and
# ~/.cargo stay theirs.
build_as=()
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [ -x "$user_home/.cargo/bin/cargo" ]; then
        export PATH="$user_home/.cargo/bin:$PATH"
        build_as=(sudo -u "$SUDO_USER" env "HOME=$user_home" "PATH=$PATH")
    fi
fi
source scripts/prereqs.sh
for tool in curl python3 tcpdump ip ss; do
    command -v "$tool" >/dev/null 2>&1 || { echo "demo: $tool is missing (see scripts/prereqs.sh)" >&2; exit 1; }
done

PORT=8000
NS_C="tcdemo-client-$$"
NS_S="tcdemo-server-$$"
VETH_C="tcdemo${$}c"     # interface names: at most 15 characters
VETH_S="tcdemo${$}s"
IP_C=10.77.0.1
IP_S=10.77.0.2
IP6_S=fd77::2
TIMEOUT=10               # seconds, for every wait below

step_n=0
step() { step_n=$((step_n + 1)); printf '\n[%d] %s\n' "$step_n" "$*"; }
say() { printf '    %s\n' "$*"; }
indent() { sed 's/^/    | /'; }
fail() {
    local f
    printf '\nFAILED: %s\n' "$*" >&2
    for f in "$tmp"/*.log; do
        [ -s "$f" ] || continue
        printf '\nlast lines of %s:\n' "${f##*/}" >&2
        tail -n 15 "$f" >&2
    done
    exit 1
}

# Everything created is recorded here and undone by `cleanup`, on every exit path.
tmp=""
ns_made=()
pids=()            # background processes: http.server, tcpdump, curl
pid_daemon_c="" pid_daemon_s=""
daemons_clean=""
interrupted=""

stopped=""         # exit status of the last process stop_pid stopped
stop_pid() { # pid signal: signal it, wait up to 5 s, then SIGKILL; sets $stopped
    local pid=$1 sig=$2 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; stopped=$?; return 0; }
    kill "-$sig" "$pid" 2>/dev/null
    kill -CONT "$pid" 2>/dev/null   # http.server may be paused
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    stopped=$?
}

cleanup() {
    local rc=$? pid ns
    set +e
    trap 'interrupted=yes' INT TERM   # finish cleaning up even if interrupted again
    for pid in "${pids[@]}"; do
        stop_pid "$pid" TERM
    done
    pids=()
    # SIGTERM: each daemon removes its firewall rules, routes and control socket, exits 0.
    daemons_clean=yes
    for pid in $pid_daemon_c $pid_daemon_s; do
        stop_pid "$pid" TERM
        [ "$stopped" = 0 ] || daemons_clean=no
    done
    pid_daemon_c="" pid_daemon_s=""
    for ns in "${ns_made[@]}"; do
        # Anything still inside was started by this script.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    ns_made=()
    [ -n "$tmp" ] && rm -rf "$tmp"
    tmp=""
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_until() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "demo: timed out after ${secs}s waiting for $what" >&2; return 1; }
        sleep 0.1
    done
}

step "build tcpcryptd and the tcpcrypt CLI (release)"
"${build_as[@]}" cargo build --release --locked --quiet -p tcpcryptd -p tcpcrypt-cli
target_dir=$("${build_as[@]}" cargo metadata --format-version 1 --no-deps --locked \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
TCPCRYPTD="$target_dir/release/tcpcryptd"
TCPCRYPT="$target_dir/release/tcpcrypt"
say "$TCPCRYPTD"
say "$TCPCRYPT"

step "two network namespaces joined by a veth pair"
tmp=$(mktemp -d /tmp/tcpcrypt-demo.XXXXXX)
chmod 755 "$tmp"
for ns in "$NS_C" "$NS_S"; do
    ip netns add "$ns"
    ns_made+=("$ns")
    ip -n "$ns" link set lo up
done
ip link add "$VETH_C" netns "$NS_C" type veth peer name "$VETH_S" netns "$NS_S"
ip -n "$NS_C" addr add "$IP_C/24" dev "$VETH_C"
ip -n "$NS_S" addr add "$IP_S/24" dev "$VETH_S"
ip -n "$NS_C" addr add fd77::1/64 dev "$VETH_C" nodad
ip -n "$NS_S" addr add "$IP6_S/64" dev "$VETH_S" nodad
ip -n "$NS_C" link set "$VETH_C" up
ip -n "$NS_S" link set "$VETH_S" up
say "client: $NS_C  $VETH_C  $IP_C fd77::1"
say "server: $NS_S  $VETH_S  $IP_S $IP6_S"

step "tcpcryptd in each namespace"
start_daemon() { # name ns -> sets pid_daemon_<name>
    local name=$1 ns=$2 pid
    RUST_LOG=info ip netns exec "$ns" "$TCPCRYPTD" --control "$tmp/$name.sock" \
        --keylog "$tmp/$name.keys" </dev/null >/dev/null 2>"$tmp/tcpcryptd-$name.log" &
    pid=$!
    printf -v "pid_daemon_$name" '%s' "$pid"
    wait_until "$TIMEOUT" "tcpcryptd ($name) to answer on its control socket" \
        "$TCPCRYPT" --control "$tmp/$name.sock" status \
        || fail "tcpcryptd did not start in $ns (its log is below)"
    say "$name: tcpcryptd pid $pid, control socket $tmp/$name.sock"
}
start_daemon c "$NS_C"
start_daemon s "$NS_S"
"$TCPCRYPT" --control "$tmp/s.sock" status | sed -n '/^policy:/,/^$/p' | sed '/^$/d' | indent

step "server: python3 -m http.server $PORT, serving a file with a plaintext canary"
canary="tcpcrypt-demo-canary-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
mkdir "$tmp/www"
# 1 MiB of it: enough segments on the wire to look for the canary in.
python3 - "$canary" "$tmp/www/canary.txt" <<'EOF'
import sys
canary, path = sys.argv[1], sys.argv[2]
with open(path, "w") as f:
    n = 0
    while f.tell() < 1 << 20:
        f.write(f"{canary} line {n:06d}: this text must never be seen on the wire\n")
        n += 1
EOF
echo "hello over IPv6, $canary" >"$tmp/www/hello.txt"
ip netns exec "$NS_S" python3 -m http.server "$PORT" --bind :: --directory "$tmp/www" \
    </dev/null >"$tmp/http.log" 2>&1 &
pid_http=$!
pids+=("$pid_http")
listening() { [ -n "$(ip netns exec "$NS_S" ss -Htln "sport = :$PORT")" ]; }
wait_until "$TIMEOUT" "http.server to listen on port $PORT" listening \
    || fail "http.server did not start"
say "canary: $canary ($(wc -c <"$tmp/www/canary.txt") bytes of canary.txt)"

step "tcpdump on the client's veth"
pcap="$tmp/wire.pcap"
ip netns exec "$NS_C" tcpdump -i "$VETH_C" -w "$pcap" --immediate-mode -U -s 0 -B 65536 -Z root tcp \
    </dev/null >/dev/null 2>"$tmp/tcpdump.log" &
pid_dump=$!
pids+=("$pid_dump")
wait_until "$TIMEOUT" "tcpdump to start" grep -q "listening on" "$tmp/tcpdump.log" \
    || fail "tcpdump did not start"
say "writing $pcap"

step "client: curl http://$IP_S:$PORT/canary.txt"
# A finished connection leaves the daemons' tables. To ask both daemons about curl's connection
# while it is open, http.server is paused (SIGSTOP): the kernel still accepts the connection and
# both daemons still run their tcpcrypt handshake, but no answer comes until it is resumed.
kill -STOP "$pid_http"
say "http.server paused (SIGSTOP), so that curl's connection stays open until step $((step_n + 2))"
ip netns exec "$NS_C" curl -sS --max-time 30 -o "$tmp/got.txt" \
    "http://$IP_S:$PORT/canary.txt" </dev/null 2>"$tmp/curl.log" &
pid_curl=$!
pids+=("$pid_curl")

# The connection's row on each daemon, once its handshake is done: the client daemon lists it
# by curl's remote address; the server daemon by http.server's local port (it hands the
# connection to the service over loopback, so the address there is 127.0.0.1).
session_row() { # side json-file -> "session_id tep aead role" of the one matching row
    python3 - "$1" "$2" "$IP_S" "$PORT" <<'EOF'
import json, sys
side, path, ip, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def wanted(r):
    if side == "c":
        return r["direction"] == "outgoing" and r["remote"] == f"{ip}:{port}"
    return r["direction"] == "incoming" and r["local"].rsplit(":", 1)[1] == port
rows = [r for r in json.load(open(path)) if wanted(r) and r["session_id"]]
if len(rows) != 1:
    sys.exit(1)
r = rows[0]
print(r["session_id"], r["tep"], r["aead"], r["role"])
EOF
}
both_listed() {
    "$TCPCRYPT" --control "$tmp/c.sock" sessions --json >"$tmp/c.json" \
        && "$TCPCRYPT" --control "$tmp/s.sock" sessions --json >"$tmp/s.json" \
        && session_row c "$tmp/c.json" >/dev/null && session_row s "$tmp/s.json" >/dev/null
}
wait_until "$TIMEOUT" "both daemons to list the encrypted connection" both_listed \
    || { cat "$tmp/c.json" "$tmp/s.json" >&2; fail "the connection is not listed as encrypted on both sides"; }

step "the session, as each side's CLI reports it"
say "client namespace: tcpcrypt --control $tmp/c.sock sessions"
"$TCPCRYPT" --control "$tmp/c.sock" sessions | indent
say "server namespace: tcpcrypt --control $tmp/s.sock sessions"
"$TCPCRYPT" --control "$tmp/s.sock" sessions | indent
say "(the server's daemon hands the connection to http.server over loopback: LOCAL 127.0.0.1)"
read -r sid_c tep aead role_c < <(session_row c "$tmp/c.json")
read -r sid_s _ _ role_s < <(session_row s "$tmp/s.json")
# What curl itself would get through the session-ID API (tcpcrypt_getsessid): its socket's
# addresses, from ss, asked of the client daemon.
curl_local=$(ip netns exec "$NS_C" ss -Htnp state established "( dport = :$PORT )" \
    | awk '/"curl"/ && !found {print $3; found = 1}')
[ -n "$curl_local" ] || fail "curl's socket not found (ss)"
sid_app=$("$TCPCRYPT" --control "$tmp/c.sock" session-id --local "$curl_local" --remote "$IP_S:$PORT")
say "TEP $tep, AEAD $aead"
say "client session ID (role $role_c): $sid_c"
say "server session ID (role $role_s): $sid_s"
say "curl's socket $curl_local -> $IP_S:$PORT, session-id API: $sid_app"
[ "$role_c" != "$role_s" ] || fail "both ends claim role $role_c"
if [ "$sid_c" = "$sid_s" ] && [ "$sid_c" = "$sid_app" ]; then
    say "equal: yes"
else
    say "equal: NO"
    fail "the two ends computed different session IDs"
fi

step "curl's download, once http.server is resumed (SIGCONT)"
kill -CONT "$pid_http"
wait_until 40 "curl to finish" bash -c "! kill -0 $pid_curl"
wait "$pid_curl" || fail "curl failed (curl.log below)"
cmp -s "$tmp/got.txt" "$tmp/www/canary.txt" || fail "curl's body differs from canary.txt"
say "received $(wc -c <"$tmp/got.txt") bytes, identical to canary.txt; first line:"
head -n 1 "$tmp/got.txt" | indent
got6=$(ip netns exec "$NS_C" curl -sS -g --max-time 10 "http://[$IP6_S]:$PORT/hello.txt")
[ "$got6" = "$(cat "$tmp/www/hello.txt")" ] || fail "the IPv6 fetch returned: $got6"
say "IPv6 too: curl http://[$IP6_S]:$PORT/hello.txt -> \"$got6\""
encrypted=$("$TCPCRYPT" --control "$tmp/c.sock" status --json \
    | python3 -c 'import json,sys; c=json.load(sys.stdin)["counters"]; print(c["connections_encrypted"], c["connections_plain"])')
say "client daemon counters: $encrypted (encrypted, plain)"
[ "$encrypted" = "2 0" ] || fail "expected 2 encrypted and 0 plain connections, got $encrypted"

step "what tcpdump saw"
sleep 0.3
stop_pid "$pid_dump" TERM
[ "$stopped" = 0 ] || fail "tcpdump exited with status $stopped"
say "$(grep -E 'packets captured' "$tmp/tcpdump.log"), $(grep -E 'dropped by kernel' "$tmp/tcpdump.log")"
say "the SYN and SYN-ACK carry the TCP-ENO option (kind 69, tcpdump: unknown-69):"
syns=$(tcpdump -r "$pcap" -nn -v -c 2 "host $IP_S and tcp[tcpflags] & tcp-syn != 0" 2>/dev/null)
printf '%s\n' "$syns" | indent
[ "$(grep -c 'unknown-69' <<<"$syns")" = 2 ] || fail "no ENO option in the SYN/SYN-ACK"
say "the first large segment from the server (it carries the start of canary.txt):"
# Whole outputs first, then cut: a reader that stops early could fail the writer (SIGPIPE).
segment=$(tcpdump -r "$pcap" -nn -X -c 1 "ip and tcp src port $PORT and greater 1000" 2>/dev/null)
head -n 8 <<<"$segment" | indent
wire_bytes=$(wc -c <"$pcap")
((wire_bytes > 1 << 20)) || fail "the capture holds only $wire_bytes bytes: it missed the transfer"
if grep -a -q -F -e "$canary" -e "must never be seen on the wire" "$pcap"; then
    fail "the plaintext canary appears in the capture"
fi
say "canary in the capture ($wire_bytes bytes): no"

step "the capture decrypted: tcpcrypt inspect with the client daemon's key log"
say "debug mode: the daemons ran with --keylog (file mode $(stat -c %a "$tmp/c.keys")); whoever has"
say "that file can decrypt the capture, so it lives and dies with this demo's temporary directory"
"$TCPCRYPT" inspect "$pcap" --keylog "$tmp/c.keys" --dump "$tmp/dump" >"$tmp/inspect.txt" \
    || fail "tcpcrypt inspect failed"
"$TCPCRYPT" inspect "$pcap" --keylog "$tmp/c.keys" --json >"$tmp/inspect.json" \
    || fail "tcpcrypt inspect --json failed"
# The connection with the session ID both CLIs reported: decrypted cleanly, and the server's
# bytes end with exactly canary.txt (after http.server's response headers).
conn=$(python3 - "$tmp/inspect.json" "$sid_c" "$tmp/dump" "$tmp/www/canary.txt" <<'EOF'
import json, sys
report, sid, dump, canary = sys.argv[1:]
conns = json.load(open(report))["connections"]
hits = [(i, c) for i, c in enumerate(conns, 1) if c["session_id"] == sid]
if len(hits) != 1:
    sys.exit(f"session {sid} not found by the inspector")
n, c = hits[0]
if (c["outcome"], c["keys"], c["end"], c["anomalies"]) != ("tcpcrypt", "known", "finp", []):
    sys.exit(f"not a clean decryption: {json.dumps(c)}")
body = open(f"{dump}/conn{n:03d}.server_to_client.bin", "rb").read()
if not body.endswith(open(canary, "rb").read()):
    sys.exit("the decrypted response does not end with canary.txt")
print(n)
EOF
) || fail "the inspector did not recover canary.txt from the capture"
sed -n "/^#$conn /,/^\$/p" "$tmp/inspect.txt" | sed '/^$/d' | indent
say "session ID equal to both CLIs', keys known, FINp both ways, canary.txt recovered exactly: yes"

step "clean up"
cleanup
[ -z "$interrupted" ] || exit 130
[ "$daemons_clean" = yes ] || fail "a daemon did not exit cleanly on SIGTERM"
say "daemons stopped with SIGTERM (their rules removed), namespaces and $(basename "${pcap%/*}") deleted"

echo
echo "ok: curl <-> http.server encrypted with tcpcrypt ($tep, $aead); session IDs equal; no plaintext on the wire"
