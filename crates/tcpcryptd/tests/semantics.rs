//! End to end through two daemons (namespaces A and B, as root): what the applications see.
//! The service sees the real client address and the client the real server; half-close; a
//! client's abort reaches the service as a reset; an authentication failure (a byte flipped
//! on the wire) reaches the application as a reset and never as EOF or corrupted data;
//! resumption between the same daemons; the `mandatory` policy per port and per destination.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::hosts::{
    addr, exchange, expect_reset, finish, sessions, wait_encrypted, wait_session,
    write_expect_reset, Net, PORT, TIMEOUT,
};
use tcpcrypt_proto::wire::packet::TcpIpPacket;
use tcpcrypt_sys::nfqueue::{Queue, QueueConfig, Verdict};

fn encrypted_pair(
    net: &Net,
) -> (
    common::hosts::Proc,
    std::path::PathBuf,
    common::hosts::Proc,
    std::path::PathBuf,
) {
    let (da, ca) = net.daemon(&net.a, "a");
    let (db, cb) = net.daemon(&net.b, "b");
    (da, ca, db, cb)
}

#[test]
fn the_service_sees_the_real_client_and_the_client_the_real_server() {
    let net = Net::new();
    // Writes "peer local" and closes.
    net.service(8083, |mut conn| {
        let text = format!(
            "{} {}",
            conn.peer_addr().unwrap(),
            conn.local_addr().unwrap()
        );
        let _ = conn.write_all(text.as_bytes());
        let _ = conn.shutdown(Shutdown::Write);
        let _ = conn.read(&mut [0u8; 1]);
    });
    let (_da, ca, _db, _cb) = encrypted_pair(&net);
    for v6 in [false, true] {
        let dst = addr('b', v6, 8083);
        let mut s = net.connect(dst).expect("connect");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(s.peer_addr().unwrap(), dst, "getpeername at the client");
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let mut parts = text.split(' ');
        let peer: SocketAddr = parts.next().unwrap().parse().unwrap();
        let client = s.local_addr().unwrap();
        // The address is the client's own; the port is the client daemon's upstream socket's
        // (binding the application's port there would reuse the held SYN's 4-tuple).
        assert_eq!(peer.ip().to_canonical(), client.ip(), "{text}");
        let row = wait_encrypted(&ca, client);
        assert_eq!(row.remote, dst, "the daemon's view: {row:?}");
    }
}

#[test]
fn half_close_then_the_reply_is_read_to_its_end() {
    let net = Net::new();
    // Reads to EOF, then answers with the byte count and closes.
    net.service(8084, |mut conn| {
        let mut all = Vec::new();
        if conn.read_to_end(&mut all).is_ok() {
            let reply = format!("got {} bytes", all.len()).repeat(1000);
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    let (_da, ca, _db, _cb) = encrypted_pair(&net);
    for v6 in [false, true] {
        let mut s = net.connect(addr('b', v6, 8084)).expect("connect");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        wait_encrypted(&ca, s.local_addr().unwrap());
        let data = vec![7u8; 300_000];
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply)
            .expect("the reply after our FIN, to its end");
        assert_eq!(reply, "got 300000 bytes".repeat(1000));
    }
}

#[test]
fn an_abort_by_the_client_reaches_the_service_as_a_reset() {
    let net = Net::new();
    let (tx, rx) = mpsc::channel();
    net.service(8085, move |mut conn| {
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
        let r = conn.read(&mut [0u8; 64]).map_err(|e| e.kind());
        tx.send(r).unwrap();
    });
    let (_da, _ca, _db, _cb) = encrypted_pair(&net);
    for v6 in [false, true] {
        let mut s = net.connect(addr('b', v6, 8085)).expect("connect");
        exchange(&mut s, b"hello");
        tcpcrypt_sys::sockopt::set_linger_zero(&s).unwrap();
        drop(s);
        let seen = rx
            .recv_timeout(TIMEOUT)
            .expect("the service's read returned");
        assert_eq!(seen, Err(ErrorKind::ConnectionReset), "v6={v6}");
    }
}

/// Flips one payload byte of the first data segment A sends to B's port `port` once the rule
/// is in place, fixing the checksums; every other packet passes unchanged.
fn tamper_once(net: &Net, port: u16, queue_num: u16) -> std::thread::JoinHandle<bool> {
    let mut queue = net
        .a
        .run(move || Queue::open(&QueueConfig::new(queue_num)).expect("open the test queue"))
        .unwrap();
    let dport = port.to_string();
    let qn = queue_num.to_string();
    for tool in ["iptables", "ip6tables"] {
        net.sh_a(&[
            tool,
            "-t",
            "mangle",
            "-A",
            "POSTROUTING",
            "-o",
            &net.dev_a,
            "-p",
            "tcp",
            "--dport",
            &dport,
            "-j",
            "NFQUEUE",
            "--queue-num",
            &qn,
            "--queue-bypass",
        ]);
    }
    std::thread::spawn(move || {
        let mut flipped = false;
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if !queue
                .wait_readable(Some(Duration::from_millis(100)))
                .unwrap()
            {
                continue;
            }
            while let Some(packet) = queue.recv().unwrap() {
                let mut bytes = packet.payload.clone();
                let has_data =
                    TcpIpPacket::new_checked(&bytes[..]).is_ok_and(|p| p.tcp_payload().len() > 20);
                if !flipped && has_data {
                    let mut pkt = TcpIpPacket::new_checked(&mut bytes[..]).unwrap();
                    pkt.tcp_mut().payload_mut()[10] ^= 0x01;
                    pkt.fill_checksums();
                    assert!(pkt.verify_checksums().is_ok());
                    flipped = true;
                    queue
                        .verdict(packet.id, Verdict::accept_with_payload(&bytes))
                        .unwrap();
                } else {
                    queue.verdict(packet.id, Verdict::ACCEPT).unwrap();
                }
            }
            if flipped {
                // Let the retransmissions or later packets through for a moment.
                let until = Instant::now() + Duration::from_millis(500);
                while Instant::now() < until {
                    if queue
                        .wait_readable(Some(Duration::from_millis(50)))
                        .unwrap()
                    {
                        while let Some(p) = queue.recv().unwrap() {
                            queue.verdict(p.id, Verdict::ACCEPT).unwrap();
                        }
                    }
                }
                return true;
            }
        }
        flipped
    })
}

#[test]
fn an_authentication_failure_reaches_the_application_as_a_reset() {
    let net = Net::new();
    let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let (tx, rx) = mpsc::channel();
    net.service(8086, move |mut conn| {
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut got = vec![0u8; 5];
        conn.read_exact(&mut got).unwrap();
        conn.write_all(&got).unwrap();
        let mut buf = [0u8; 65536];
        let end = loop {
            match conn.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break Err(e.kind()),
            }
        };
        tx.send((end, got)).unwrap();
    });
    let (_da, _ca, _db, _cb) = encrypted_pair(&net);
    for (i, v6) in [false, true].into_iter().enumerate() {
        let mut s = net.connect(addr('b', v6, 8086)).expect("connect");
        // The handshake is over once this comes back: only data frames follow.
        exchange(&mut s, b"hello");
        let tamper = tamper_once(&net, 8086, 7100 + i as u16);
        let _ = s.write_all(&sent);
        assert!(tamper.join().unwrap(), "a data segment was tampered with");
        for tool in ["iptables", "ip6tables"] {
            net.sh_a(&[tool, "-t", "mangle", "-F", "POSTROUTING"]);
        }
        let (end, got) = rx.recv_timeout(TIMEOUT).expect("the service's read ended");
        assert_eq!(
            end,
            Err(ErrorKind::ConnectionReset),
            "v6={v6}: never a clean EOF"
        );
        assert_eq!(&got[..5], b"hello");
        assert!(
            got[5..] == sent[..got.len() - 5],
            "v6={v6}: the service received only untampered bytes ({} of them)",
            got.len() - 5
        );
        assert!(
            got.len() - 5 < sent.len(),
            "the tampered frame was not delivered"
        );
        // The client's side learns it as a reset too.
        expect_reset(&mut s, "client after the authentication failure");
    }
}

#[test]
fn a_second_connection_resumes_the_session() {
    let net = Net::new();
    net.echo_service();
    let (_da, ca, _db, cb) = encrypted_pair(&net);
    let dst = addr('b', false, PORT);
    let mut ids = Vec::new();
    for round in 0..2 {
        let mut s = net.connect(dst).expect("connect");
        exchange(&mut s, b"resume me");
        let local = s.local_addr().unwrap();
        let rows = sessions(&ca);
        let row = rows
            .iter()
            .find(|r| r.local == local)
            .unwrap_or_else(|| panic!("{rows:?}"));
        let id = row.session_id.expect("encrypted");
        assert_eq!(row.resumed, round == 1, "round {round}: {row:?}");
        assert_eq!(id.is_resumed(), round == 1);
        let row_b = wait_session(&cb, id);
        assert_eq!(row_b.resumed, round == 1, "B agrees: {row_b:?}");
        ids.push(id);
        finish(s);
    }
    assert_eq!(ids[0].as_bytes()[0], 0x23, "Curve25519, fresh");
    assert_eq!(ids[1].as_bytes()[0], 0xa3, "Curve25519 with v = 1: resumed");
    assert_ne!(ids[0], ids[1]);
}

fn expect_refused_or_reset(net: &Net, dst: SocketAddr) {
    match net.connect(dst) {
        Ok(mut s) => {
            write_expect_reset(&mut s, b"secret", &dst.to_string());
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
            ),
            "{dst}: {e}"
        ),
    }
}

fn expect_plain_works(net: &Net, dst: SocketAddr) {
    let mut s = net.connect(dst).expect("connect");
    exchange(&mut s, b"plain is allowed here");
    finish(s);
}

#[test]
fn mandatory_destinations_on_the_client_side_refuse_plain() {
    let net = Net::new();
    net.echo_service();
    // B runs no daemon: ENO fails. Only B's IPv4 address is mandatory.
    let (_da, _) = net.daemon_with(&net.a, "a", &["--mandatory-addrs", "10.77.0.0/24"]);
    expect_refused_or_reset(&net, addr('b', false, PORT));
    expect_plain_works(&net, addr('b', true, PORT));
}

#[test]
fn mandatory_ports_and_destinations_on_the_server_side_refuse_plain() {
    let net = Net::new();
    net.echo_service();
    net.service(8087, |mut conn| {
        let _ = conn.write_all(b"x");
    });
    // A runs no daemon: its SYNs carry no ENO.
    let (_db, cb) = net.daemon_with(
        &net.b,
        "b",
        &["--mandatory-ports", "8087", "--mandatory-addrs", "fd77::2"],
    );
    for v6 in [false, true] {
        let err = net
            .connect(addr('b', v6, 8087))
            .expect_err("mandatory port");
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "v6={v6}: {err}");
    }
    let err = net
        .connect(addr('b', true, PORT))
        .expect_err("mandatory address");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    expect_plain_works(&net, addr('b', false, PORT));
    assert!(sessions(&cb).is_empty());
}

/// A destination that accepted a connection a moment ago takes the client's fast path: the
/// application's SYN goes on at once while its upstream connects. If the service is gone by
/// then, the application sees a reset (as if the service had failed right after accepting),
/// never a clean end; the failure is remembered, so the next connection is refused as usual.
#[test]
fn a_service_gone_within_the_fast_path_window_resets_then_refuses() {
    const GONE: u16 = 8089;
    let net = Net::new();
    let (_da, ca) = net.daemon(&net.a, "a");
    let (_db, _cb) = net.daemon(&net.b, "b");
    let listener = net
        .b
        .run(|| std::net::TcpListener::bind(("::", GONE)).expect("bind"))
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).expect("read");
        conn.write_all(&buf).expect("echo");
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
        // The listener goes with this thread: the port is closed from here on.
    });
    let dst = addr('b', false, GONE);
    let mut s = net.connect(dst).expect("first connection");
    exchange(&mut s, b"hello");
    wait_encrypted(&ca, s.local_addr().unwrap());
    finish(s);
    server.join().unwrap();
    match net.connect(dst) {
        Ok(mut s) => write_expect_reset(&mut s, b"anyone?", "fast path to a closed port"),
        // The upstream can fail before the application's connect() returns: a reset either way.
        Err(e) => assert_eq!(
            e.kind(),
            ErrorKind::ConnectionReset,
            "a reset, not a refusal: {e}"
        ),
    }
    let err = net
        .connect(dst)
        .expect_err("refused once the failure is known");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}
