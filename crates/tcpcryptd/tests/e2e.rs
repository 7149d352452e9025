//! End to end, as root: two network namespaces joined by a veth pair, a `tcpcryptd` process in
//! each (own control socket), an echo service in B and a client in A; IPv4 and IPv6. Checks
//! the data, equal session IDs on both ends, no plaintext canary on the wire, fallback against
//! a host without the daemon (both directions), and ECONNREFUSED for a closed port.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::hosts::{
    capture, exchange, expect_reset, finish, sessions, status, wait_session, write_expect_reset,
    Net, TIMEOUT,
};
use tcpcrypt_control::{Client, Request, Response, SessionState};

fn encrypted_roundtrip(v6: bool) {
    encrypted_roundtrip_with(v6, "auto", "auto");
}

/// Runs both daemons with these `--option-path` values; each must say it runs the path asked
/// for (`auto` is `bpf` where the program loads, as on the machines CI runs on).
fn encrypted_roundtrip_with(v6: bool, path_a: &str, path_b: &str) {
    let net = Net::new();
    net.echo_service();
    let (_da, ca) = net.daemon_with(&net.a, "a", &["--option-path", path_a]);
    let (_db, cb) = net.daemon_with(&net.b, "b", &["--option-path", path_b]);
    for (control, asked) in [(&ca, path_a), (&cb, path_b)] {
        let status = status(control);
        let running = status
            .policy
            .option_path
            .expect("the daemon names its option path");
        let want = if asked == "auto" { "bpf" } else { asked };
        assert_eq!(running, want, "--option-path {asked}");
        // The SYN filters come with the BPF path (this machine has xt_bpf).
        assert_eq!(
            status.policy.syn_filters,
            Some(want == "bpf"),
            "--option-path {asked}"
        );
    }
    let pcap = net.dir.join("wire.pcap");
    let dump = capture(&net, &pcap, 0);
    let dst: SocketAddr = if v6 {
        "[fd77::2]:8080"
    } else {
        "10.77.0.2:8080"
    }
    .parse()
    .unwrap();
    let mut s = net.connect(dst).expect("connect through both daemons");
    let canary = b"CANARY-tcpcrypt-plaintext-must-not-appear-0123456789".repeat(50);
    exchange(&mut s, &canary);
    // A bulk transfer, both ways at once.
    let bulk: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    exchange(&mut s, &bulk);
    // The application's view of its connection on A, and the service's on B.
    let (local, remote) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
    let id_a = match Client::connect(&ca)
        .unwrap()
        .request(&Request::SessionId { local, remote })
        .unwrap()
    {
        Response::SessionId(r) => r.session_id,
        other => panic!("session_id on A: {other:?}\n{}", net.log("a")),
    };
    wait_session(&cb, id_a);
    let rows_a = sessions(&ca);
    assert_eq!(rows_a.len(), 1, "{rows_a:?}");
    assert!(rows_a[0].tep.is_some() && rows_a[0].aead.is_some());
    finish(s);
    std::thread::sleep(Duration::from_millis(300));
    drop(dump);
    let wire = std::fs::read(&pcap).expect("read the capture");
    assert!(wire.len() > 10_000, "the capture saw the transfer");
    assert!(
        !wire.windows(20).any(|w| w == &canary[..20]),
        "plaintext canary on the wire"
    );
    // With A's key log the inspector finds the same session ID and recovers the exact bytes.
    let ins = common::inspect::inspect(&pcap, &[&net.keys("a")]);
    assert_eq!(common::inspect::to_server(&ins, dst).len(), 1);
    let sent = [&canary[..], &bulk[..]].concat();
    let conn = common::inspect::by_session(&ins, &id_a.to_hex());
    common::inspect::assert_clean_tcpcrypt(conn, &id_a.to_hex(), &sent, &sent);
}

#[test]
fn encrypted_end_to_end_v4() {
    encrypted_roundtrip(false);
}

#[test]
fn encrypted_end_to_end_v6() {
    encrypted_roundtrip(true);
}

/// The NFQUEUE option path (kernels without the BPF one) gives the same result on the wire.
#[test]
fn the_nfqueue_option_path_end_to_end_v4_and_v6() {
    encrypted_roundtrip_with(false, "nfqueue", "nfqueue");
    encrypted_roundtrip_with(true, "nfqueue", "nfqueue");
}

/// A host on either path talks to a host on the other.
#[test]
fn the_two_option_paths_interoperate() {
    encrypted_roundtrip_with(false, "bpf", "nfqueue");
    encrypted_roundtrip_with(true, "nfqueue", "bpf");
}

fn plain_roundtrip(daemon_on_a: bool, option_path: &str) {
    let net = Net::new();
    net.echo_service();
    let (name, ns) = if daemon_on_a {
        ("a", &net.a)
    } else {
        ("b", &net.b)
    };
    let (_d, control) = net.daemon_with(ns, name, &["--option-path", option_path]);
    let pcap = net.dir.join("plain.pcap");
    let dump = capture(&net, &pcap, 0);
    for dst in ["10.77.0.2:8080", "[fd77::2]:8080"] {
        let mut s = net.connect(dst.parse().unwrap()).expect("connect");
        exchange(&mut s, b"hello over plain TCP");
        // The daemon's side relays it in plain (client side) or is not in the path at all.
        if daemon_on_a {
            let rows = sessions(&control);
            assert!(
                rows.iter().all(|r| r.state == SessionState::Plain),
                "{rows:?}"
            );
            assert_eq!(rows.len(), 1, "{rows:?}\n{}", net.log(name));
        } else {
            assert!(sessions(&control).is_empty());
        }
        finish(s);
    }
    if !daemon_on_a {
        // B counts both as plain, incoming without ENO: on the BPF path the kernel's filter
        // counted them, on the NFQUEUE path the daemon (a retransmitted SYN counts again).
        let st = status(&control);
        let reason =
            tcpcryptd::daemon::incoming_fallback(tcpcrypt_proto::eno::FallbackReason::MissingEno);
        let counted = st.counters.fallbacks.get(&reason).copied().unwrap_or(0);
        assert!(counted >= 2, "[{option_path}] {reason}: {st:?}");
        assert!(st.counters.connections_plain >= 2, "{st:?}");
        assert_eq!(st.counters.connections_encrypted, 0, "{st:?}");
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(dump);
    // The inspector reports both as plain TCP (with ENO only in A's SYN: a fallback).
    let ins = common::inspect::inspect(&pcap, &[&net.keys(name)]);
    for dst in ["10.77.0.2:8080", "[fd77::2]:8080"] {
        let conns = common::inspect::to_server(&ins, dst.parse().unwrap());
        assert_eq!(conns.len(), 1, "{}", ins.report.to_json());
        let data = b"hello over plain TCP";
        common::inspect::assert_plain(conns[0], data, data);
        let j = common::inspect::json(conns[0]);
        let expected = if daemon_on_a { "fallback" } else { "plain" };
        assert_eq!(j["outcome"], expected, "{j}");
    }
}

#[test]
fn fallback_when_only_the_client_runs_the_daemon() {
    plain_roundtrip(true, "bpf");
}

/// And B counts the plain clients, on either option path.
#[test]
fn fallback_when_only_the_server_runs_the_daemon() {
    plain_roundtrip(false, "bpf");
    plain_roundtrip(false, "nfqueue");
}

#[test]
fn closed_port_is_refused_through_both_daemons() {
    let net = Net::new();
    let (_da, _) = net.daemon(&net.a, "a");
    let (_db, _) = net.daemon(&net.b, "b");
    for dst in ["10.77.0.2:8081", "[fd77::2]:8081"] {
        let err = net
            .connect(dst.parse().unwrap())
            .expect_err("nothing listens");
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{dst}: {err}");
    }
}

#[test]
fn sigterm_removes_every_rule_and_a_taken_port_is_refused() {
    let net = Net::new();
    let before = net.a.run(common::snapshot).unwrap();
    let (mut daemon, _) = net.daemon(&net.a, "a");
    let during = net.a.run(common::snapshot).unwrap();
    assert!(during.contains("TCPCRYPT_C_MOUT"), "{during}");
    // A second daemon with the same listener ports must refuse to start, clearly.
    let second = Command::new("ip")
        .args([
            "netns",
            "exec",
            net.a.name(),
            env!("CARGO_BIN_EXE_tcpcryptd"),
        ])
        .args([
            "--control",
            "/nonexistent/never.sock",
            "--queue-base",
            "5000",
        ])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(
        msg.contains("bind listener") && msg.contains("--client-port"),
        "{msg}"
    );
    assert_eq!(
        net.a.run(common::snapshot).unwrap(),
        during,
        "the refused daemon changed nothing"
    );
    common::sh(&["kill", "-TERM", &daemon.0.id().to_string()]);
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "tcpcryptd ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{}", net.log("a"));
    assert_eq!(net.a.run(common::snapshot).unwrap(), before);
}

#[test]
fn a_reset_by_the_service_reaches_the_application_as_a_reset() {
    let net = Net::new();
    let listener = net
        .b
        .run(|| TcpListener::bind(("::", 8082)).expect("bind"))
        .unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 5];
            let _ = conn.read_exact(&mut buf);
            tcpcrypt_sys::sockopt::set_linger_zero(&conn).unwrap();
        }
    });
    let (_da, _) = net.daemon(&net.a, "a");
    let (_db, _) = net.daemon(&net.b, "b");
    for dst in ["10.77.0.2:8082", "[fd77::2]:8082"] {
        let mut s = net.connect(dst.parse().unwrap()).expect("connect");
        s.write_all(b"hello").unwrap();
        expect_reset(&mut s, dst);
    }
}

#[test]
fn a_mandatory_port_resets_instead_of_relaying_plain() {
    let net = Net::new();
    net.echo_service();
    let (_da, _) = net.daemon_with(&net.a, "a", &["--mandatory-ports", "8080"]);
    for dst in ["10.77.0.2:8080", "[fd77::2]:8080"] {
        // The reset may even beat connect() back to the application.
        match net.connect(dst.parse().unwrap()) {
            Ok(mut s) => {
                write_expect_reset(&mut s, b"secret", dst);
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{dst}: {e}"),
        }
    }
}

/// A's daemon against a host without tcpcrypt: connects to B's `port` from A and returns the
/// application's own address and the client address B's service saw (it writes it back).
fn connect_and_ask_who(net: &Net, dst: SocketAddr) -> (SocketAddr, SocketAddr, TcpStream) {
    let mut s = net.connect(dst).expect("connect");
    let local = s.local_addr().unwrap();
    let mut line = String::new();
    let mut byte = [0u8; 1];
    while s.read(&mut byte).expect("the service's answer") == 1 && byte[0] != b'\n' {
        line.push(byte[0] as char);
    }
    let seen: SocketAddr = line.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
    (
        local,
        SocketAddr::new(seen.ip().to_canonical(), seen.port()),
        s,
    )
}

/// A server without tcpcrypt is remembered (`plain_peer_cache_secs`, `tcpcryptd::plain_peers`):
/// the first connection to it goes through A's daemon (ENO offered, relayed plain), the next
/// ones go direct: B's service sees the application's own port, the daemon has no row for
/// them, counts them, and their SYN carries no ENO (the inspector calls them plain, not a
/// fallback). The key is address and port: another port of the same host is tried with ENO
/// again. With the cache off every connection goes through the daemon. IPv4 and IPv6. And
/// where iptables cannot load the `bpf` match (the daemon installs its rules without the SYN
/// filters, and keeps the cache itself): the same, and the status says the filters are off.
#[test]
fn a_peer_without_tcpcrypt_is_reached_direct_after_the_first_connection() {
    const OTHER: u16 = 8081;
    // (v6, cache on, iptables without xt_bpf)
    for (v6, cache_on, no_xt_bpf) in [
        (false, true, false),
        (true, true, false),
        (false, false, false),
        (true, true, true),
    ] {
        let net = Net::new();
        for port in [common::hosts::PORT, OTHER] {
            net.service(port, |mut conn| {
                let peer = conn.peer_addr().unwrap();
                let _ = conn.write_all(format!("{peer}\n").as_bytes());
                let _ = conn.read(&mut [0u8; 1]);
            });
        }
        let args: &[&str] = if cache_on {
            &[]
        } else {
            &["--plain-peer-cache-secs", "0"]
        };
        let path = no_xt_bpf.then(|| iptables_without_xt_bpf(&net.dir));
        let env: Vec<(&str, &std::ffi::OsStr)> =
            path.iter().map(|p| ("PATH", p.as_os_str())).collect();
        let (_d, control) = net.daemon_with_env(&net.a, "a", args, &env);
        let case = format!("v6={v6}, cache on={cache_on}, no xt_bpf={no_xt_bpf}");
        let policy = status(&control).policy;
        assert_eq!(policy.option_path.as_deref(), Some("bpf"), "[{case}]");
        assert_eq!(policy.syn_filters, Some(!no_xt_bpf), "[{case}]");
        let rules = net.sh_a(&["iptables-save"]) + &net.sh_a(&["ip6tables-save"]);
        assert_eq!(rules.contains("-m bpf"), !no_xt_bpf, "[{case}] {rules}");
        let pcap = net.dir.join("direct.pcap");
        let dump = capture(&net, &pcap, 0);
        let dst = common::hosts::addr('b', v6, common::hosts::PORT);
        let other = common::hosts::addr('b', v6, OTHER);
        // (destination, expected to go direct)
        let plan = [
            (dst, false),
            (dst, cache_on),
            (dst, cache_on),
            (other, false),
        ];
        for (i, (to, direct)) in plan.into_iter().enumerate() {
            let (local, seen, s) = connect_and_ask_who(&net, to);
            let rows = sessions(&control);
            if direct {
                assert_eq!(seen, local, "[{case}] connection {i} to {to} went direct");
                assert!(rows.is_empty(), "[{case}] {i}: {rows:?}");
            } else {
                assert_ne!(
                    seen, local,
                    "[{case}] connection {i} to {to} went through A"
                );
                assert_eq!(rows.len(), 1, "[{case}] {i}: {rows:?}\n{}", net.log("a"));
                assert_eq!(rows[0].state, SessionState::Plain, "[{case}] {i}");
            }
            finish(s);
            wait_no_rows(&control);
        }
        let status = status(&control);
        let direct = status
            .counters
            .fallbacks
            .get(tcpcryptd::daemon::DIRECT_PLAIN_PEER_REASON)
            .copied()
            .unwrap_or(0);
        assert_eq!(direct, if cache_on { 2 } else { 0 }, "[{case}] {status:?}");
        std::thread::sleep(Duration::from_millis(300));
        drop(dump);
        let ins = common::inspect::inspect(&pcap, &[]);
        let outcomes = |to| -> Vec<String> {
            common::inspect::to_server(&ins, to)
                .iter()
                .map(|c| {
                    common::inspect::json(c)["outcome"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        let expected: &[&str] = if cache_on {
            &["fallback", "plain", "plain"]
        } else {
            &["fallback", "fallback", "fallback"]
        };
        assert_eq!(outcomes(dst), expected, "[{case}]");
        assert_eq!(outcomes(other), ["fallback"], "[{case}]");
        // The daemon's own cache probes too (the kernel's is covered by the first case).
        if cache_on && (!v6 || no_xt_bpf) {
            encrypted_again_after_a_probe(&net, &control, dst);
        }
    }
}

/// A directory with `iptables` and `ip6tables` that fail as an iptables without the `bpf` match
/// extension does, and run the real ones otherwise; returns a `PATH` that puts it first.
fn iptables_without_xt_bpf(dir: &std::path::Path) -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("no-xt-bpf");
    std::fs::create_dir_all(&bin).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in ["iptables", "ip6tables"] {
        let real = std::env::split_paths(&path)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} not in PATH"));
        let script = format!(
            "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = bpf ]; then\n    \
             echo \"{tool} v1.8.9: Couldn't load match \\`bpf':No such file or directory\" >&2\n    \
             exit 2\n  fi\ndone\nexec {} \"$@\"\n",
            real.display()
        );
        let file = bin.join(tool);
        std::fs::write(&file, script).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(&path));
    std::env::join_paths(dirs).unwrap()
}

/// B starts its daemon while A has `dst` cached: within one probe interval a connection goes
/// with ENO again and is encrypted, which ends the entry: the next one is encrypted at once.
fn encrypted_again_after_a_probe(net: &Net, control: &std::path::Path, dst: SocketAddr) {
    let (_db, _) = net.daemon(&net.b, "b");
    let started = Instant::now();
    let deadline = started + tcpcryptd::plain_peers::PROBE_EVERY + TIMEOUT;
    let encrypted = |s: &TcpStream| {
        let local = s.local_addr().unwrap();
        sessions(control)
            .iter()
            .any(|r| r.local == local && r.state == SessionState::Established)
    };
    let mut direct = 0;
    loop {
        let (_, _, s) = connect_and_ask_who(net, dst);
        let done = encrypted(&s);
        finish(s);
        wait_no_rows(control);
        if done {
            break;
        }
        direct += 1;
        assert!(
            Instant::now() < deadline,
            "no connection to {dst} encrypted within a probe interval of B's daemon starting"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, _, s) = connect_and_ask_who(net, dst);
    assert!(encrypted(&s), "the entry ended with the encrypted probe");
    finish(s);
    eprintln!(
        "encrypted again after {direct} direct connections, {:?} after B's daemon started",
        started.elapsed()
    );
}

/// Waits (bounded) until the daemon behind `control` has no connection rows left.
fn wait_no_rows(control: &std::path::Path) {
    let deadline = Instant::now() + TIMEOUT;
    while !sessions(control).is_empty() {
        assert!(Instant::now() < deadline, "{:?}", sessions(control));
        std::thread::sleep(Duration::from_millis(10));
    }
}
