#!/usr/bin/env bash
# The benchmark suite of issue 6: tcpcrypt against what users would run instead (plain TCP,
# stunnel, wireguard-go), measured side by side in one run, between two network namespaces
# joined by a veth pair, rounds interleaving the systems so machine noise hits all alike.
#
#   sudo ./scripts/bench.sh [--quick] [--rounds N] [--out PREFIX] [--systems A,B,...]
#
# --systems runs only those (plain, tcpcrypt-aes128gcm, tcpcrypt-aes256gcm,
# tcpcrypt-chacha20poly1305, tcpcrypt-aes128gcm-resumed, tcpcrypt-client-only, stunnel,
# stunnel-resumed, wireguard-go, relay-floor), e.g. to measure a daemon change quickly; docs/
# holds the full run. tcpcrypt-client-only runs tcpcryptd in the client's namespace only,
# against a server without tcpcrypt: what the daemon costs connections to servers that lack it.
# relay-floor is two null relays (tcpcrypt-load relay) with the shape of any transparent proxy
# and no work of their own: the report judges it by the same targets as tcpcrypt.
#
# Builds tcpcryptd, the tcpcrypt CLI and tcpcrypt-load in release mode, installs stunnel4,
# wireguard-go, wireguard-tools, wrk, nginx-light and ethtool with apt-get when missing, then
# for each round and each system sets the system up, measures it (bulk 1 and 4 streams,
# connection rate with tcpcrypt-load and with wrk + nginx, latency, bytes on the wire, CPU per
# GB, daemon memory per idle connection) and tears it down. Writes PREFIX.json (raw per-round
# records), PREFIX.md (tables) and PREFIX.svg (plot); PREFIX defaults to docs/performance.
# Everything it creates (namespaces, processes, files in its temporary directory) is removed on
# every exit path; the host's namespace is untouched.
#
# Debugging: BENCH_RUST_LOG=info (the daemons' log level; default warn), BENCH_DEBUG_SS=1
# (socket and conntrack counts before each system), BENCH_FRESH_DAEMONS=1 (a fresh tcpcryptd
# pair for each measurement instead of one for all of a system's measurements in a round);
# when anything failed, the logs are
# kept in /tmp/tcpcrypt-bench-logs-PID.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
QUICK=""
ROUNDS=""
OUT=docs/performance
ALL_SYSTEMS="plain tcpcrypt-aes128gcm tcpcrypt-aes256gcm tcpcrypt-chacha20poly1305 tcpcrypt-aes128gcm-resumed tcpcrypt-client-only stunnel stunnel-resumed wireguard-go relay-floor"
ONLY=""
while (($#)); do
    case $1 in
        --quick) QUICK=yes ;;
        --rounds) ROUNDS=${2:?--rounds N}; shift ;;
        --out) OUT=${2:?--out PREFIX}; shift ;;
        --systems) ONLY=" ${2//,/ } "; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ -n "$QUICK" ]; then
    ROUNDS=${ROUNDS:-1} BULK_SECS=2 RATE_SECS=2 LAT_COUNT=200 ECHO_COUNT=500
    WIRE_BYTES=$((64 << 20)) IDLE_COUNT=10000
else
    ROUNDS=${ROUNDS:-3} BULK_SECS=5 RATE_SECS=5 LAT_COUNT=500 ECHO_COUNT=2000
    WIRE_BYTES=$((256 << 20)) IDLE_COUNT=10000
fi
CONCURRENCY=8
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench: --rounds wants a positive number" >&2; exit 2; }

if [ "$(id -u)" -ne 0 ]; then
    echo "bench: it creates network namespaces: run it as root (sudo ./scripts/bench.sh)" >&2
    exit 1
fi

# Under sudo, build as the invoking user with their toolchain (as demo.sh does).
build_as=()
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [ -x "$user_home/.cargo/bin/cargo" ]; then
        export PATH="$user_home/.cargo/bin:$PATH"
        build_as=(sudo -u "$SUDO_USER" env "HOME=$user_home" "PATH=$PATH")
    fi
fi
source scripts/prereqs.sh
# What the comparison needs, from Debian's archive.
bench_pkgs=()
command -v stunnel >/dev/null 2>&1 || bench_pkgs+=(stunnel4)
command -v wireguard-go >/dev/null 2>&1 || bench_pkgs+=(wireguard-go)
command -v wg >/dev/null 2>&1 || bench_pkgs+=(wireguard-tools)
command -v ethtool >/dev/null 2>&1 || bench_pkgs+=(ethtool)
command -v openssl >/dev/null 2>&1 || bench_pkgs+=(openssl)
command -v wrk >/dev/null 2>&1 || bench_pkgs+=(wrk)
command -v nginx >/dev/null 2>&1 || bench_pkgs+=(nginx-light)
if ((${#bench_pkgs[@]})); then
    echo "bench: installing ${bench_pkgs[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${bench_pkgs[@]}" >/dev/null
fi

NS_A="tcbench-a-$$"
NS_B="tcbench-b-$$"
VETH_A="tcb${$}a"
VETH_B="tcb${$}b"
WG_A="tcw${$}a"
WG_B="tcw${$}b"
IP_A=10.88.0.1
IP_B=10.88.0.2
WGIP_A=10.89.0.1
WGIP_B=10.89.0.2
# Every measurement of plain TCP, tcpcrypt and wireguard-go goes to a server port of its own
# (the load server listens on FRESH_BASE.., nginx on HTTP_FRESH_BASE..), so that no TIME_WAIT
# left by an earlier measurement (plain TCP's tens of thousands of connections per second)
# collides with a new connection's addresses; stunnel's backends use the fixed last port.
FRESH_BASE=6000
HTTP_FRESH_BASE=7000
FRESH_PORTS=399
PORT=$((FRESH_BASE + FRESH_PORTS))          # load server for stunnel (and its check)
HTTP_PORT=$((HTTP_FRESH_BASE + FRESH_PORTS)) # nginx for stunnel
PORT_SEQ=0
TLS_PORT=5301      # stunnel server in B
STUNNEL_LOCAL=5302 # stunnel client in A (127.0.0.1)
HTTP_TLS_PORT=5303 # stunnel server in B for nginx
HTTP_LOCAL=5304    # stunnel client in A for nginx (127.0.0.1)
RELAY_PORT=5311       # relay floor in B (to the load server)
RELAY_LOCAL=5312      # relay floor in A (127.0.0.1)
RELAY_HTTP_PORT=5313  # relay floor in B for nginx
RELAY_HTTP_LOCAL=5314 # relay floor in A for nginx (127.0.0.1)
WG_PORT=51820
TIMEOUT=15

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

tmp=""
FAILED=0
ns_made=()
sys_pids=()      # processes of the system under test
pid_server=""     # load server and nginx in B, for the whole run
cleanup() {
    local rc=$? pid ns
    set +e
    trap '' INT TERM
    for pid in "${sys_pids[@]}" $pid_server; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${sys_pids[@]}" $pid_server; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for ns in "${ns_made[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    if [ -n "$tmp" ] && { [ "$rc" -ne 0 ] || [ "$FAILED" -ne 0 ]; }; then
        # Something failed: keep the logs (daemons, stunnel, wireguard-go, load tool) to look at.
        mkdir -p "/tmp/tcpcrypt-bench-logs-$$" && cp "$tmp"/*.log "/tmp/tcpcrypt-bench-logs-$$/" 2>/dev/null
        log "logs kept in /tmp/tcpcrypt-bench-logs-$$"
    fi
    [ -n "$tmp" ] && rm -rf "$tmp"
    if [ "$rc" -ne 0 ]; then log "failed (exit $rc); everything it created is removed"; fi
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_until() { # seconds what command...
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { log "timed out after ${secs}s waiting for $what"; return 1; }
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------------------------
log "build (release): tcpcryptd, tcpcrypt, tcpcrypt-load"
"${build_as[@]}" cargo build --release --quiet -p tcpcryptd -p tcpcrypt-cli -p tcpcrypt-bench
target_dir=$("${build_as[@]}" cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
TCPCRYPTD="$target_dir/release/tcpcryptd"
TCPCRYPT="$target_dir/release/tcpcrypt"
LOAD="$target_dir/release/tcpcrypt-load"

tmp=$(mktemp -d /tmp/tcpcrypt-bench.XXXXXX)
chmod 755 "$tmp"
RAW="$tmp/raw.jsonl"
META="$tmp/meta.tsv"
CONF="$tmp/configs"
mkdir "$CONF"
: >"$RAW"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }

# 10,000 idle connections: descriptors for the load tool and the daemons (inherited; each
# daemon holds two per proxied connection). Where the hard limit cannot be raised (no
# CAP_SYS_RESOURCE, e.g. in a container), as many idle connections as it allows.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
IDLE_NOTE="$IDLE_COUNT idle connections"
if [ "$NOFILE" != unlimited ] && ((IDLE_COUNT > (NOFILE - 2000) / 2)); then
    IDLE_NOTE="$(((NOFILE - 2000) / 2)) idle connections, not $IDLE_COUNT: the open-file limit here is $NOFILE and cannot be raised (each daemon needs two descriptors per connection)"
    IDLE_COUNT=$(((NOFILE - 2000) / 2))
    log "$IDLE_NOTE"
fi

log "two network namespaces joined by a veth pair ($IP_A, $IP_B)"
for ns in "$NS_A" "$NS_B"; do
    ip netns add "$ns"
    ns_made+=("$ns")
    ip -n "$ns" link set lo up
    # The same for every system: deep accept queues for the connection-rate runs; TIME_WAIT
    # reuse stays the kernel's default (the servers close first, so TIME_WAIT is on B's side).
    # The client's port range is widened (equally for every system), as load generators do.
    # Reserved from it: the daemons' listener ports, the servers' ports, WireGuard's.
    ip netns exec "$ns" sysctl -q -w net.core.somaxconn=8192 net.ipv4.tcp_max_syn_backlog=8192 \
        net.ipv4.ip_local_port_range="1024 65535" \
        net.ipv4.ip_local_reserved_ports="4750-4999,5300-5310,6000-6399,7000-7399,51820"
done
ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B"
ip -n "$NS_A" addr add "$IP_A/24" dev "$VETH_A"
ip -n "$NS_B" addr add "$IP_B/24" dev "$VETH_B"
ip -n "$NS_A" link set "$VETH_A" up
ip -n "$NS_B" link set "$VETH_B" up

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# Background processes are started with `ip netns exec` itself (it execs the program), never
# through a shell function, so that $! is the program's own PID (to stop it and read its CPU).
ip netns exec "$NS_B" "$LOAD" serve --listen "0.0.0.0:$FRESH_BASE" --ports $((FRESH_PORTS + 1)) </dev/null >"$tmp/server.log" 2>&1 &
pid_server=$!
wait_until "$TIMEOUT" "the load server" in_b ss -Htln "sport = :$PORT"

# nginx in B for the wrk runs: a 100-byte file, keep-alive off, as its documentation
# recommends for speed otherwise (worker per CPU, no access log, sendfile).
mkdir -p "$tmp/www" "$tmp/nginx"
head -c 100 /dev/zero | tr '\0' x >"$tmp/www/100b"
cat >"$tmp/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 0;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
$(for ((p = HTTP_FRESH_BASE; p <= HTTP_PORT; p++)); do echo "        listen 0.0.0.0:$p backlog=8192;"; done)
        root $tmp/www;
    }
}
EOF
sed -e "s|$tmp|/tmp/DIR|g" -e "/listen 0.0.0.0:$((HTTP_FRESH_BASE + 1)) /,/listen 0.0.0.0:$HTTP_PORT /d" \
    -e "s|\(listen 0.0.0.0:$HTTP_FRESH_BASE .*\)$|\1  # and so on: one line per port, $HTTP_FRESH_BASE-$HTTP_PORT|" \
    "$tmp/nginx.conf" >"$CONF/nginx (namespace B, for wrk)"
ip netns exec "$NS_B" nginx -c "$tmp/nginx.conf" </dev/null >/dev/null 2>>"$tmp/nginx.log" &
pid_server="$pid_server $!"
wait_until "$TIMEOUT" "nginx" in_b ss -Htln "sport = :$HTTP_PORT"

offloads() { # on|off: TSO, GSO, GRO of both veth ends
    in_a ethtool -K "$VETH_A" tso "$1" gso "$1" gro "$1" >/dev/null 2>&1 || true
    in_b ethtool -K "$VETH_B" tso "$1" gso "$1" gro "$1" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
# The systems. Each *_up sets TARGET and sys_pids; *_down stops them.
TARGET=""          # host:port, fixed (stunnel)
TARGET_HOST=""     # or a host, each measurement on a fresh port
HTTP_TARGET=""     # host:port for wrk, fixed (stunnel)
stop_sys() {
    local pid
    for pid in "${sys_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${sys_pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    sys_pids=()
}

plain_up() { TARGET_HOST=$IP_B; sys_pids=(); }

TCPCRYPTD_FLAGS=()
POLICY_SHOWN=""
DAEMON_STARTS=0
# Starts tcpcryptd in each of SIDES ("a b", or "a" alone) with ARGS and waits until each
# answers. (Called in an `if`, where set -e is off: every step that can fail returns.)
tcpcryptd_up() { # sides args...
    local sides=$1 side ns ports
    shift
    # Fresh listener ports for each daemon pair, so that no pair depends on the previous one's
    # leftovers (the listeners set SO_REUSEADDR, so reusing the ports would work too).
    ports=(--client-port $((4760 + 2 * (DAEMON_STARTS % 100))) --server-port $((4761 + 2 * (DAEMON_STARTS % 100))))
    DAEMON_STARTS=$((DAEMON_STARTS + 1))
    for side in $sides; do
        ns=$NS_A; [ "$side" = b ] && ns=$NS_B
        rm -f "$tmp/tcpcryptd-$side.sock"
        RUST_LOG=${BENCH_RUST_LOG:-warn} ip netns exec "$ns" "$TCPCRYPTD" --control "$tmp/tcpcryptd-$side.sock" \
            "$@" "${ports[@]}" "${TCPCRYPTD_FLAGS[@]}" \
            </dev/null >/dev/null 2>>"$tmp/tcpcryptd-$side.log" &
        sys_pids+=($!)
    done
    for side in $sides; do
        wait_until "$TIMEOUT" "tcpcryptd (${side^^})" "$TCPCRYPT" --control "$tmp/tcpcryptd-$side.sock" status || return 1
    done
}
tcpcrypt_up() { # aead resumption(true|false)
    tcpcryptd_up "a b" --aeads "$1" --resumption "$2" || return 1
    if [ -z "$POLICY_SHOWN" ]; then
        POLICY_SHOWN=yes
        {
            echo "# the client daemon's policy as it reports it (tcpcrypt status), first daemon pair:"
            "$TCPCRYPT" --control "$tmp/tcpcryptd-a.sock" status | sed -n '/^policy:/,/^$/p' \
                | sed "s|$tmp|/tmp/DIR|g"
            "$TCPCRYPT" --control "$tmp/tcpcryptd-a.sock" status | grep 'ENO option path' || true
        } >>"$CONF/tcpcryptd (both namespaces)"
    fi
    TARGET_HOST=$IP_B
}
# tcpcryptd on the client only: the server's namespace runs none.
client_only_up() {
    tcpcryptd_up a --resumption false || return 1
    TARGET_HOST=$IP_B
}
# Checks that nothing was encrypted and counts the connections that went direct.
client_only_down() { # system-name
    local name=$1 enc res pl direct
    read -r enc res pl direct < <(tcpcrypt_counters a) || true
    [[ $enc =~ ^[0-9]+$ && $pl =~ ^[0-9]+$ && $direct =~ ^[0-9]+$ ]] || { enc=0 pl=0 direct=0; }
    log "  $name: client daemon counted $pl plain, $direct of them direct (cached), $enc encrypted"
    CK_PL[$name]=$((${CK_PL[$name]:-0} + pl))
    CK_DIRECT[$name]=$((${CK_DIRECT[$name]:-0} + direct))
    if [ "$enc" -ne 0 ] || [ "$pl" -eq 0 ]; then
        log "  $name: NOT as expected: the records of this run are marked failed"
        BAD_RUN=yes
    fi
    stop_sys
}
# Counters of one daemon: "encrypted resumed plain direct" (direct: the plain connections
# that went direct to a cached server without tcpcrypt).
tcpcrypt_counters() {
    "$TCPCRYPT" --control "$tmp/tcpcryptd-$1.sock" status --json | python3 -c '
import json, sys
def find(o):
    if isinstance(o, dict):
        if "connections_encrypted" in o:
            return o
        for v in o.values():
            r = find(v)
            if r: return r
    return None
c = find(json.load(sys.stdin)) or {}
print(c.get("connections_encrypted", 0), c.get("connections_resumed", 0), c.get("connections_plain", 0),
      c.get("fallbacks", {}).get("direct: cached peer without tcpcrypt", 0))'
}
tcpcrypt_down() { # system-name resumption: checks what was measured was encrypted
    local name=$1 resume=$2 enc res pl
    read -r enc res pl _ < <(tcpcrypt_counters a) || true
    [[ $enc =~ ^[0-9]+$ && $res =~ ^[0-9]+$ && $pl =~ ^[0-9]+$ ]] || { enc=0 res=0 pl=0; }
    log "  $name: client daemon counted $enc encrypted ($res resumed), $pl plain"
    CK_ENC[$name]=$((${CK_ENC[$name]:-0} + enc))
    CK_RES[$name]=$((${CK_RES[$name]:-0} + res))
    CK_PL[$name]=$((${CK_PL[$name]:-0} + pl))
    # Every measured connection should be encrypted; a few fallbacks (under 1%) are reported
    # (here and in the document) but do not void the run.
    if [ "$enc" -eq 0 ] || [ $((pl * 100)) -gt "$enc" ] \
        || { [ "$resume" = false ] && [ "$res" -ne 0 ]; } \
        || { [ "$resume" = true ] && [ "$res" -eq 0 ]; }; then
        log "  $name: NOT as expected: the records of this run are marked failed"
        BAD_RUN=yes
    fi
    stop_sys
}

STUNNEL_COMMON="foreground = yes
pid =
debug = 3
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
sslVersionMin = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256
curves = X25519"
stunnel_setup() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=tcbench -keyout "$tmp/stunnel.key" -out "$tmp/stunnel.crt" 2>/dev/null
    cat >"$tmp/stunnel-server.conf" <<EOF
$STUNNEL_COMMON
[bench]
accept = $IP_B:$TLS_PORT
connect = 127.0.0.1:$PORT
cert = $tmp/stunnel.crt
key = $tmp/stunnel.key
[http]
accept = $IP_B:$HTTP_TLS_PORT
connect = 127.0.0.1:$HTTP_PORT
cert = $tmp/stunnel.crt
key = $tmp/stunnel.key
EOF
    for resume in yes no; do
        cat >"$tmp/stunnel-client-$resume.conf" <<EOF
$STUNNEL_COMMON
[bench]
client = yes
accept = 127.0.0.1:$STUNNEL_LOCAL
connect = $IP_B:$TLS_PORT
sessionResume = $resume
[http]
client = yes
accept = 127.0.0.1:$HTTP_LOCAL
connect = $IP_B:$HTTP_TLS_PORT
sessionResume = $resume
EOF
    done
    sed "s|$tmp|/tmp/DIR|g" "$tmp/stunnel-server.conf" >"$CONF/stunnel server (namespace B)"
    {
        sed "s|$tmp|/tmp/DIR|g" "$tmp/stunnel-client-no.conf"
        echo "# resumed runs: the same with sessionResume = yes (stunnel's default)"
    } >"$CONF/stunnel client (namespace A)"
    echo "certificate: self-signed ECDSA P-256 (openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1)" \
        >>"$CONF/stunnel server (namespace B)"
}
stunnel_up() { # yes|no (client resumes sessions) [config-suffix]
    local sfx=${2:-}
    ip netns exec "$NS_B" stunnel "$tmp/stunnel-server.conf$sfx" </dev/null >/dev/null 2>>"$tmp/stunnel-b$sfx.log" &
    sys_pids+=($!)
    ip netns exec "$NS_A" stunnel "$tmp/stunnel-client-$1.conf$sfx" </dev/null >/dev/null 2>>"$tmp/stunnel-a$sfx.log" &
    sys_pids+=($!)
    wait_until "$TIMEOUT" "stunnel (B)" in_b ss -Htln "sport = :$TLS_PORT" || return 1
    wait_until "$TIMEOUT" "stunnel (A)" in_a ss -Htln "sport = :$STUNNEL_LOCAL" || return 1
    TARGET="127.0.0.1:$STUNNEL_LOCAL" HTTP_TARGET="127.0.0.1:$HTTP_LOCAL" TARGET_HOST=""
}
# Once, before the rounds: the same configurations with stunnel's debug log on, 10 connections
# each, to show from stunnel's own log that "full" negotiates every session and "resumed"
# reuses them. Sets STUNNEL_CHECK.
STUNNEL_CHECK=""
stunnel_check() {
    local resume f new reused
    for f in server client-yes client-no; do
        sed 's/^debug = .*/debug = 7/' "$tmp/stunnel-$f.conf" >"$tmp/stunnel-$f.conf.debug"
    done
    for resume in no yes; do
        rm -f "$tmp/stunnel-a.debug.log"
        if stunnel_up "$resume" .debug; then
            in_a "$LOAD" latency --target "$TARGET" --count 10 --warmup 0 >/dev/null 2>&1 || true
        fi
        stop_sys
        new=$(grep -c 'TLS connected: new session negotiated' "$tmp/stunnel-a.debug.log" 2>/dev/null || true)
        reused=$(grep -c 'TLS connected: previous session reused' "$tmp/stunnel-a.debug.log" 2>/dev/null || true)
        STUNNEL_CHECK+="sessionResume = $resume: of 10 connections, ${new:-0} negotiated a new session, ${reused:-0} reused one (stunnel client's log at debug = 7). "
    done
    log "stunnel check: $STUNNEL_CHECK"
}


wg_setup() {
    umask 077
    wg genkey >"$tmp/wg-a.key"
    wg genkey >"$tmp/wg-b.key"
    umask 022
    WG_PUB_A=$(wg pubkey <"$tmp/wg-a.key")
    WG_PUB_B=$(wg pubkey <"$tmp/wg-b.key")
    cat >"$CONF/wireguard-go" <<EOF
# namespace A (B is symmetric: $WGIP_B, endpoint $IP_A:$WG_PORT)
wireguard-go -f $WG_A          # TUN device, user-space WireGuard, default settings
wg set $WG_A private-key <generated> listen-port $WG_PORT \\
    peer <B's public key> allowed-ips $WGIP_B/32 endpoint $IP_B:$WG_PORT
ip addr add $WGIP_A/24 dev $WG_A; ip link set $WG_A up   # MTU: wireguard-go's default
EOF
}
wg_up() {
    local side ns dev key peer_pub peer_ip peer_wg my_wg
    for side in a b; do
        if [ "$side" = a ]; then
            ns=$NS_A dev=$WG_A key=$tmp/wg-a.key peer_pub=$WG_PUB_B peer_ip=$IP_B peer_wg=$WGIP_B my_wg=$WGIP_A
        else
            ns=$NS_B dev=$WG_B key=$tmp/wg-b.key peer_pub=$WG_PUB_A peer_ip=$IP_A peer_wg=$WGIP_A my_wg=$WGIP_B
        fi
        WG_PROCESS_FOREGROUND=1 ip netns exec "$ns" wireguard-go -f "$dev" \
            </dev/null >>"$tmp/wg-$side.log" 2>&1 &
        sys_pids+=($!)
        wait_until "$TIMEOUT" "wireguard-go ($side)" ip -n "$ns" link show "$dev" || return 1
        ip netns exec "$ns" wg set "$dev" private-key "$key" listen-port "$WG_PORT" \
            peer "$peer_pub" allowed-ips "$peer_wg/32" endpoint "$peer_ip:$WG_PORT" || return 1
        ip -n "$ns" addr add "$my_wg/24" dev "$dev" || return 1
        ip -n "$ns" link set "$dev" up || return 1
    done
    TARGET_HOST=$WGIP_B
}


# ---------------------------------------------------------------------------------------------
# Measurements: each appends one record to $RAW.
BAD_RUN=""
declare -A CK_ENC=() CK_RES=() CK_PL=() CK_DIRECT=()
WRK_RETRIES=()
load() { # system test-args...
    local system=$1 pids out target=$TARGET
    shift
    pids=$(IFS=,; echo "${sys_pids[*]}")
    if [ -n "$TARGET_HOST" ]; then
        target="$TARGET_HOST:$((FRESH_BASE + PORT_SEQ % FRESH_PORTS))"
        PORT_SEQ=$((PORT_SEQ + 1))
    fi
    if out=$(in_a "$LOAD" "$@" --target "$target" --system "$system" --round "$round" \
        ${pids:+--pids "$pids"} 2>>"$tmp/load.log"); then
        :
    else
        FAILED=$((FAILED + 1))
        log "  $system: $* failed: $(tail -n 1 "$tmp/load.log")"
    fi
    [ -n "$out" ] && echo "$out" >>"$tmp/run.jsonl"
    return 0
}
# Moves the run's records to $RAW, marked failed when the system's own check failed.
commit_run() {
    if [ -n "$BAD_RUN" ]; then
        python3 - "$tmp/run.jsonl" <<'EOF' >>"$RAW"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    r.setdefault("error", "the daemons' counters did not show the expected encrypted/resumed connections")
    print(json.dumps(r))
EOF
    else
        cat "$tmp/run.jsonl" >>"$RAW"
    fi
    : >"$tmp/run.jsonl"
    BAD_RUN=""
}
: >"$tmp/run.jsonl"

bulk_tests() { # system
    load "$1" bulk --streams 1 --seconds "$BULK_SECS"
    load "$1" bulk --streams 4 --seconds "$BULK_SECS"
}
rate_test() { # system
    load "$1" rate --concurrency "$CONCURRENCY" --seconds "$RATE_SECS"
}
latency_test() { # system
    load "$1" latency --count "$LAT_COUNT"
}
# The same connection rate with standard tools: wrk (2 threads, the same number of
# connections) fetching a 100-byte file from nginx with "Connection: close" (nginx's
# keepalive_timeout 0): one new connection per request. Record test "rate_http".
http_rate() { # system
    local out try target=$HTTP_TARGET
    if [ -n "$TARGET_HOST" ]; then
        target="$TARGET_HOST:$((HTTP_FRESH_BASE + PORT_SEQ % FRESH_PORTS))"
        PORT_SEQ=$((PORT_SEQ + 1))
    fi
    for try in 1 2; do
        out=$(in_a wrk -t2 -c"$CONCURRENCY" -d"${RATE_SECS}s" --timeout 5s -H 'Connection: close' \
            "http://$target/100b" 2>&1) || true
        # wrk gives up the whole run when one of its first connections fails: once more.
        grep -q 'Requests/sec' <<<"$out" && break
        log "  $1: wrk (attempt $try): $(tail -n 1 <<<"$out")"
        WRK_RETRIES+=("$1 round $round: $(tail -n 1 <<<"$out")")
    done
    printf '%s' "$out" | "$LOAD" wrk-record --system "$1" --round "$round" >>"$tmp/run.jsonl" \
        || { FAILED=$((FAILED + 1)); log "  $1: wrk failed: $(printf '%s' "$out" | tail -n 2)"; }
}

idle_test() { # system
    load "$1" idle --count "$IDLE_COUNT"
}
wire_tests() { # system
    offloads off
    load "$1" bulk --streams 1 --bytes "$WIRE_BYTES" --test wire_bulk --iface "$VETH_A"
    load "$1" echo --count "$ECHO_COUNT" --iface "$VETH_A"
    offloads on
}

# The relay floor: one null relay in each namespace (tcpcrypt-load relay), in front of the same
# backends as stunnel; the client connects to A's as it does to stunnel's.
relay_up() {
    ip netns exec "$NS_B" "$LOAD" relay --listen "$IP_B:$RELAY_PORT" --to "127.0.0.1:$PORT" \
        --listen "$IP_B:$RELAY_HTTP_PORT" --to "127.0.0.1:$HTTP_PORT" \
        </dev/null >/dev/null 2>>"$tmp/relay-b.log" &
    sys_pids+=($!)
    ip netns exec "$NS_A" "$LOAD" relay --listen "127.0.0.1:$RELAY_LOCAL" --to "$IP_B:$RELAY_PORT" \
        --listen "127.0.0.1:$RELAY_HTTP_LOCAL" --to "$IP_B:$RELAY_HTTP_PORT" \
        </dev/null >/dev/null 2>>"$tmp/relay-a.log" &
    sys_pids+=($!)
    wait_until "$TIMEOUT" "relay (B)" in_b ss -Htln "sport = :$RELAY_HTTP_PORT" || return 1
    wait_until "$TIMEOUT" "relay (A)" in_a ss -Htln "sport = :$RELAY_HTTP_LOCAL" || return 1
    TARGET="127.0.0.1:$RELAY_LOCAL" HTTP_TARGET="127.0.0.1:$RELAY_HTTP_LOCAL" TARGET_HOST=""
}

stunnel_setup
wg_setup
cat >"$CONF/relay floor (both namespaces)" <<EOF
# B: tcpcrypt-load relay --listen $IP_B:$RELAY_PORT --to 127.0.0.1:$PORT --listen $IP_B:$RELAY_HTTP_PORT --to 127.0.0.1:$HTTP_PORT
# A: tcpcrypt-load relay --listen 127.0.0.1:$RELAY_LOCAL --to $IP_B:$RELAY_PORT --listen 127.0.0.1:$RELAY_HTTP_LOCAL --to $IP_B:$RELAY_HTTP_PORT
# Each accepted connection: connect to the upstream, TCP_NODELAY on both, tokio's
# copy_bidirectional with 64 KiB buffers, shutdown of the write side at each end of stream.
# Release build, tokio multi-threaded runtime with its default worker count (one per CPU).
# No encryption, no key exchange, no netfilter rules: the cost of the proxy shape alone.
EOF
cat >"$CONF/tcpcryptd (both namespaces)" <<EOF
tcpcryptd --control /tmp/DIR/tcpcryptd-{a,b}.sock --aeads AEAD --resumption BOOL
# AEAD: aes128gcm, aes256gcm or chacha20poly1305.
# --resumption false for the bulk, fresh-rate, fresh-latency and wire runs; true (the default)
# for the resumed runs and the idle connections. One daemon pair per system and round (all its measurements), the
# k-th pair with --client-port/--server-port 4760+2k/4761+2k for the k-th pair.
# Everything else is the default (client and server roles, the default TEP list, no port of
# the benchmark excluded, worker threads: half the CPUs, option path auto: the BPF option path
# where its program loads, as the status line below says), release build.
# tcpcrypt-client-only: tcpcryptd --resumption false in namespace A only (the same flags
# otherwise), none in B; plain_peer_cache_secs at its default (300).
EOF

# ---------------------------------------------------------------------------------------------
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta command "scripts/bench.sh${QUICK:+ --quick} --rounds $ROUNDS"
meta commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' (with uncommitted changes in crates/)')"
meta machine "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
meta kernel "$(uname -r)"
meta "load average at start" "$(cut -d' ' -f1-3 /proc/loadavg)"
meta durations "bulk ${BULK_SECS} s per run; rate ${RATE_SECS} s with $CONCURRENCY client threads; latency $LAT_COUNT sequential connections; wire: $((WIRE_BYTES >> 20)) MiB bulk and $ECHO_COUNT echoed 100-byte messages; $IDLE_NOTE"
meta tcpcryptd "$("$TCPCRYPTD" --version 2>/dev/null | head -n1), release build"
meta stunnel "$(stunnel -version 2>&1 | grep -m1 '^stunnel'); $(stunnel -version 2>&1 | grep -m1 'Compiled with')"
meta "wrk, nginx" "$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); $(nginx -v 2>&1 | sed 's/^nginx version: //')"
meta wireguard-go "$(wireguard-go --version 2>&1 | head -n1); $(wg --version 2>&1 | cut -d' ' -f1-2)"
meta rustc "$("${build_as[@]}" rustc --version)"

stunnel_check
meta "stunnel check" "$STUNNEL_CHECK"
started=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round of $ROUNDS"
    # Alternate the order each round so that no system always runs first or last.
    systems=()
    for system in $ALL_SYSTEMS; do
        [ -z "$ONLY" ] || [[ $ONLY == *" $system "* ]] && systems+=("$system")
    done
    if ((round % 2 == 0)); then
        reversed=()
        for ((i = ${#systems[@]} - 1; i >= 0; i--)); do reversed+=("${systems[i]}"); done
        systems=("${reversed[@]}")
    fi
    for system in "${systems[@]}"; do
        log "  $system"
        if [ -n "${BENCH_DEBUG_SS:-}" ]; then
            log "    A: $(in_a ss -s | grep -m1 '^TCP:')"
            log "    B: $(in_b ss -s | grep -m1 '^TCP:')"
            log "    A conntrack: $(in_a cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null)"
            log "    A time-wait sample: $(in_a ss -Htan state time-wait | head -n 3 | tr -s ' ' | tr '\n' ';')"
            log "    A conntrack sample: $(in_a conntrack -L 2>/dev/null | head -n 2 | tr '\n' ';')"
        fi
        all=(bulk_tests rate_test http_rate latency_test wire_tests)
        case $system in
            plain) up=(plain_up) tests=("${all[@]}") down=(stop_sys) ;;
            tcpcrypt-aes128gcm)
                up=(tcpcrypt_up aes128gcm false) tests=("${all[@]}")
                down=(tcpcrypt_down "$system" false) ;;
            tcpcrypt-aes256gcm | tcpcrypt-chacha20poly1305)
                up=(tcpcrypt_up "${system#tcpcrypt-}" false) tests=(bulk_tests)
                down=(tcpcrypt_down "$system" false) ;;
            tcpcrypt-aes128gcm-resumed)
                # Idle first: right after the daemons start, before the connection-rate runs
                # leave thousands of TIME_WAIT sockets on the client daemon's listener port.
                up=(tcpcrypt_up aes128gcm true) tests=(idle_test rate_test http_rate latency_test)
                down=(tcpcrypt_down "$system" true) ;;
            tcpcrypt-client-only)
                # Each measurement on a fresh port: bulk's connections are the first to their
                # destination (relayed plain by the daemon); most of the rate and latency
                # connections find it cached and go direct.
                up=(client_only_up) tests=(bulk_tests rate_test http_rate latency_test)
                down=(client_only_down "$system") ;;
            stunnel) up=(stunnel_up no) tests=("${all[@]}") down=(stop_sys) ;;
            stunnel-resumed) up=(stunnel_up yes) tests=(rate_test http_rate latency_test) down=(stop_sys) ;;
            wireguard-go) up=(wg_up) tests=("${all[@]}") down=(stop_sys) ;;
            relay-floor) up=(relay_up) tests=(bulk_tests rate_test http_rate latency_test) down=(stop_sys) ;;
        esac
        # One daemon pair for all of a system's measurements in a round, as a host would run it
        # (BENCH_FRESH_DAEMONS=1: a pair for each measurement).
        units=("${tests[*]}")
        if [[ $system == tcpcrypt-* && -n ${BENCH_FRESH_DAEMONS:-} ]]; then units=("${tests[@]}"); fi
        for unit in "${units[@]}"; do
            if "${up[@]}"; then
                for t in $unit; do "$t" "$system"; done
                "${down[@]}"
            else
                # Recorded as a failed measurement; the run goes on.
                log "  $system: did not start; its logs are kept"
                stop_sys
                FAILED=$((FAILED + 1))
                printf '{"round":%d,"system":"%s","test":"setup","error":"did not start (see the logs)"}\n' \
                    "$round" "$system" >>"$tmp/run.jsonl"
            fi
            commit_run
        done
    done
done
meta "load average at end" "$(cut -d' ' -f1-3 /proc/loadavg)"
meta "measuring time" "$(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
for name in "${!CK_ENC[@]}"; do
    meta "tcpcrypt check: $name" "the client daemons counted ${CK_ENC[$name]} encrypted connections (${CK_RES[$name]} resumed) and ${CK_PL[$name]} plain over all rounds"
done
for name in "${!CK_DIRECT[@]}"; do
    meta "tcpcrypt check: $name" "the client daemon counted ${CK_PL[$name]} plain connections over all rounds, ${CK_DIRECT[$name]} of them direct (the destination cached as a server without tcpcrypt), none encrypted"
done
((${#WRK_RETRIES[@]} == 0)) || meta "wrk runs that failed to start" "$(IFS=';'; echo "${WRK_RETRIES[*]}")"

mkdir -p "$(dirname "$OUT")"
"$LOAD" report --records "$RAW" --meta "$META" --configs "$CONF" --out "$OUT"
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    chown "$SUDO_USER:" "$OUT.json" "$OUT.md" "$OUT.svg" 2>/dev/null || true
fi
log "wrote $OUT.md, $OUT.svg, $OUT.json ($FAILED measurement(s) failed)"
sed -n '/^## Targets/,/^## Bulk/p' "$OUT.md" | sed '$d'
