//! End to end (namespaces A and B, as root): the daemon's life and death. SIGTERM removes the
//! rules and connections go plain (fail-open) until it is back, then encrypted again; SIGKILL
//! during open proxied connections ends them with resets on both hosts, never a hang or a
//! clean EOF; a SYN held by a killed daemon goes direct on its retransmission; a daemon
//! restarted over the rules a killed one left behind works and cleans up.
//!
//! No test here asserts how fast anything happens (the machine is shared and noisy): each
//! waits for the event itself, bounded by [`TIMEOUT`] only so that a hang fails with a clear
//! message, and asserts what happened.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::hosts::{
    addr, connect_until_encrypted, exchange, finish, sessions, wait_encrypted, Net, PORT, TIMEOUT,
};
use tcpcrypt_control::Load;

/// A connection from A to B's echo service, checked encrypted on A's daemon.
fn encrypted(net: &Net, control_a: &std::path::Path, v6: bool) -> TcpStream {
    let mut s = net.connect(addr('b', v6, PORT)).expect("connect");
    exchange(&mut s, b"encrypted?");
    wait_encrypted(control_a, s.local_addr().unwrap());
    s
}

/// A connection that works and that B's daemon did not divert (no session on B while it is
/// open). B's earlier connections (just closed, or reset by A's death) may still be leaving
/// its table when the caller gets here: wait (bounded) until B has none, so a row of theirs
/// that disappears meanwhile is not mistaken for the answer.
fn plain(net: &Net, control_b: &std::path::Path, v6: bool) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let rows = sessions(control_b);
        if rows.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "B kept old sessions: {rows:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s = net
        .connect(addr('b', v6, PORT))
        .expect("connect while A's daemon is down");
    exchange(&mut s, b"plain while the daemon is down");
    let rows = sessions(control_b);
    assert!(rows.is_empty(), "B did not divert it: {rows:?}");
    finish(s);
}

#[test]
fn restart_removes_the_rules_fails_open_then_encrypts_again() {
    let net = Net::new();
    net.echo_service();
    let before = net.a.run(common::snapshot).unwrap();
    let (_db, cb) = net.daemon(&net.b, "b");
    let (mut da, ca) = net.daemon(&net.a, "a");
    for v6 in [false, true] {
        finish(encrypted(&net, &ca, v6));
    }
    assert!(da.signal_and_wait("TERM").success(), "{}", net.log("a"));
    assert_eq!(net.a.run(common::snapshot).unwrap(), before, "rules gone");
    for v6 in [false, true] {
        plain(&net, &cb, v6);
    }
    let (_da, ca) = net.daemon(&net.a, "a");
    for v6 in [false, true] {
        finish(encrypted(&net, &ca, v6));
    }
}

/// The service on B's port 8088 reports how its connection ended.
fn reporting_service(net: &Net) -> mpsc::Receiver<Result<usize, ErrorKind>> {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    net.service(8088, move |mut conn| {
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = [0u8; 5];
        if conn.read_exact(&mut buf).is_err() || conn.write_all(&buf).is_err() {
            return;
        }
        let r = conn.read(&mut [0u8; 64]).map_err(|e| e.kind());
        let _ = tx.lock().unwrap().send(r);
    });
    rx
}

fn kill_during_connections(kill_a: bool) {
    let net = Net::new();
    net.echo_service();
    let ended = reporting_service(&net);
    let before = net.a.run(common::snapshot).unwrap();
    let (mut da, ca) = net.daemon(&net.a, "a");
    let (mut db, cb) = net.daemon(&net.b, "b");
    let mut conns = Vec::new();
    for v6 in [false, true] {
        let mut s = net.connect(addr('b', v6, 8088)).expect("connect");
        exchange(&mut s, b"hello");
        wait_encrypted(&ca, s.local_addr().unwrap());
        conns.push(s);
    }
    let victim = if kill_a { &mut da } else { &mut db };
    let status = victim.signal_and_wait("KILL");
    assert!(!status.success());
    // Each end waits for its connection's end, a reset; TIMEOUT only turns a hang into a
    // failure that says so.
    for s in &mut conns {
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        match s.read(&mut [0u8; 64]) {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the application on A: no reset within {TIMEOUT:?} (a hang)")
            }
            r => panic!("the application on A: {r:?} (a reset, never EOF or another error)"),
        }
    }
    for _ in 0..2 {
        let r = ended.recv_timeout(TIMEOUT).unwrap_or_else(|e| {
            panic!("the service on B: its read did not end within {TIMEOUT:?} ({e})")
        });
        assert_eq!(r, Err(ErrorKind::ConnectionReset), "the service on B");
    }
    // The dead daemon's rules are still there, but every queue bypasses: fail-open.
    if kill_a {
        for v6 in [false, true] {
            plain(&net, &cb, v6);
        }
        // A new daemon replaces the leftovers, encrypts, and SIGTERM leaves A clean.
        let (mut da, ca) = net.daemon(&net.a, "a");
        for v6 in [false, true] {
            finish(encrypted(&net, &ca, v6));
        }
        assert!(da.signal_and_wait("TERM").success());
        assert_eq!(net.a.run(common::snapshot).unwrap(), before);
    } else {
        // B's daemon is gone: A's daemon falls back to plain, and the connection works.
        for v6 in [false, true] {
            let mut s = net.connect(addr('b', v6, PORT)).expect("connect");
            exchange(&mut s, b"plain: B's daemon is dead");
            finish(s);
        }
        // A remembered B's port as a server without tcpcrypt: its connections go direct until
        // a probe finds B's new daemon (at most one probe interval), then all are encrypted.
        let (_db, cb) = net.daemon(&net.b, "b");
        for v6 in [false, true] {
            let (s, row, _) =
                connect_until_encrypted(&net, &ca, addr('b', v6, PORT), b"encrypted?");
            // The new B runs the other end of this very session. (Not a count of B's rows:
            // the row of the connection just finished may still be leaving B's table.)
            let rows = sessions(&cb);
            assert!(
                rows.iter().any(|r| r.session_id == row.session_id
                    && r.state == tcpcrypt_control::SessionState::Established),
                "B's new daemon has session {:?}: {rows:?}",
                row.session_id
            );
            finish(s);
        }
    }
}

#[test]
fn sigkill_of_the_client_daemon_resets_its_connections_on_both_hosts() {
    kill_during_connections(true);
}

#[test]
fn sigkill_of_the_server_daemon_resets_its_connections_on_both_hosts() {
    kill_during_connections(false);
}

#[test]
fn a_syn_held_by_a_killed_daemon_goes_direct_on_its_retransmission() {
    let net = Net::new();
    net.echo_service();
    // The daemon's own upstream SYNs (mark 0x1) to port 8080 vanish: its pre-connect hangs
    // (for 20 s) while it holds the application's SYN. The application's own SYN may pass.
    for tool in ["iptables", "ip6tables"] {
        net.sh_a(&[
            tool, "-A", "OUTPUT", "-p", "tcp", "--dport", "8080", "-m", "mark", "--mark",
            "0x1/0x1", "-j", "DROP",
        ]);
    }
    let (mut da, _) = net.daemon_with(&net.a, "a", &["--connect-timeout-ms", "20000"]);
    let dst = addr('b', false, PORT);
    let app = {
        let (tx, rx) = mpsc::channel();
        let sock = net
            .a
            .run(|| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None))
            .unwrap()
            .unwrap();
        std::thread::spawn(move || {
            let r = sock.connect_timeout(&dst.into(), TIMEOUT);
            tx.send(r.map(|()| TcpStream::from(sock))).unwrap();
        });
        rx
    };
    // The daemon holds the application's SYN while its own pre-connect is under way: wait
    // until the DROP rule has counted that pre-connect's SYN, then the application's connect
    // cannot have completed.
    let deadline = Instant::now() + TIMEOUT;
    while upstream_syns_dropped(&net) == 0 {
        assert!(
            Instant::now() < deadline,
            "the daemon sent no pre-connect SYN within {TIMEOUT:?}: {}",
            net.log("a")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        matches!(app.try_recv(), Err(mpsc::TryRecvError::Empty)),
        "the SYN is held while the daemon pre-connects"
    );
    da.signal_and_wait("KILL");
    // TIMEOUT (10 s) is below the daemon's 20 s pre-connect deadline: a connect within it
    // was not let go by the daemon, it went direct on a retransmission of its SYN.
    let mut s = app
        .recv_timeout(TIMEOUT)
        .unwrap_or_else(|e| panic!("connect did not end within {TIMEOUT:?} ({e})"))
        .expect("connect went through");
    let retransmitted = syn_retransmissions(&net, &s);
    assert!(
        retransmitted >= 1,
        "connected by a retransmitted SYN (the first was held by the dead daemon): \
         {retransmitted} retransmissions"
    );
    exchange(&mut s, b"direct after the daemon died");
    finish(s);
}

/// The daemon's `status` load (connections proxied now, its limit, its worker threads).
fn load(control: &std::path::Path) -> Load {
    common::hosts::status(control)
        .load
        .expect("the daemon reports its load")
}

#[test]
fn status_load_follows_the_connections_up_to_the_limit_and_back() {
    let net = Net::new();
    net.echo_service();
    let (_db, _cb) = net.daemon(&net.b, "b");
    let (_da, ca) = net.daemon_with(&net.a, "a", &["--max-connections", "2", "--threads", "1"]);
    let idle = Load {
        live_connections: 0,
        max_connections: 2,
        worker_threads: 1,
    };
    assert_eq!(load(&ca), idle);
    let conns: Vec<TcpStream> = [false, true]
        .into_iter()
        .map(|v6| encrypted(&net, &ca, v6))
        .collect();
    let full = load(&ca);
    assert_eq!(full.live_connections, 2, "{full:?}");
    assert!(full.at_limit(), "{full:?}");
    for s in conns {
        finish(s);
    }
    // The slots are released when both TCP connections of each pair have ended.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let now = load(&ca);
        if now == idle {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A still counts connections {TIMEOUT:?} after they closed: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Packets the test's DROP rule (the daemon's own SYNs to port 8080, mark 0x1) has dropped
/// in A's namespace, IPv4.
fn upstream_syns_dropped(net: &Net) -> u64 {
    net.sh_a(&["iptables", "-w", "-nvxL", "OUTPUT"])
        .lines()
        .filter(|l| l.contains("DROP") && l.contains("dpt:8080") && l.contains("0x1/0x1"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Segments the kernel retransmitted on the application's connection `s` (SYNs included):
/// `tcpi_total_retrans` as `ss -ti` shows it ("retrans:CURRENT/TOTAL", absent when 0).
fn syn_retransmissions(net: &Net, s: &TcpStream) -> u64 {
    let (local, peer) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
    let out = net.sh_a(&[
        "ss",
        "-tniH",
        "src",
        &local.to_string(),
        "dst",
        &peer.to_string(),
    ]);
    assert!(
        out.contains(&local.to_string()),
        "ss found no {local}: {out}"
    );
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("retrans:"))
        .map_or(0, |r| {
            r.rsplit('/')
                .next()
                .and_then(|total| total.parse().ok())
                .unwrap_or_else(|| panic!("unreadable ss retrans field {r:?} in {out}"))
        })
}
