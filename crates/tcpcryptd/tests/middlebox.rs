//! End to end (namespaces A and B, as root): fallback to plain TCP against middleboxes and
//! legacy peers. A test NFQUEUE after the daemons' own hooks plays the middlebox:
//! - it strips ENO (kind 69) from the client's SYN: the connection works, plain, and B's
//!   daemon is not in its path (no session row);
//! - it strips ENO from the server's SYN-ACK: B had diverted the SYN and answered with ENO,
//!   A's third ACK carries none, so both daemons relay plain and agree on it;
//! - it rewrites the client's ENO into the legacy draft encoding (kind 253, ExID 0x454E, the
//!   same contents): B's daemon never negotiates with it, so plain and B not in the path.
//!
//! Data crosses intact both ways in every case, over IPv4 and IPv6.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::hosts::{addr, capture, exchange, finish, sessions, Net, Proc, PORT, TIMEOUT};
use common::queue_hook::QueueHook;
use tcpcrypt_control::{SessionInfo, SessionState};
use tcpcrypt_proto::wire::packet::{rewrite_tcp_options, TcpIpPacket};
use tcpcrypt_proto::wire::tcp_option::{TcpOption, TcpOptions};
use tcpcrypt_sys::netns::NetNs;

/// What the middlebox does to the ENO option of the segments it sees.
#[derive(Clone, Copy)]
enum Mangle {
    /// Removes it.
    Strip,
    /// Re-encodes it as the legacy draft's kind 253 with experiment ID 0x454E.
    Legacy,
}

/// The options area with ENO stripped or re-encoded (padded with EOL to a multiple of four),
/// `None` if the area has no ENO.
fn rebuild_options(area: &[u8], mangle: Mangle) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut found = false;
    for option in TcpOptions::new(area) {
        let option = option.ok()?;
        let mut emit = |o: TcpOption<'_>| {
            let mut buf = vec![0u8; o.buffer_len()];
            o.emit(&mut buf);
            out.extend_from_slice(&buf);
        };
        match option {
            TcpOption::EndOfList => break,
            TcpOption::Eno(eno) => {
                found = true;
                if let Mangle::Legacy = mangle {
                    emit(TcpOption::LegacyEno {
                        data: eno.contents(),
                    });
                }
            }
            other => emit(other),
        }
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    found.then_some(out)
}

/// A middlebox on `ns`: mangle POSTROUTING (after every daemon hook: the daemons' queues sit
/// in OUTPUT and PREROUTING), queueing the segments `selector` picks. Stops when dropped.
struct Middlebox(QueueHook);

impl Middlebox {
    fn start(ns: &NetNs, queue_num: u16, selector: &[&str], mangle: Mangle) -> Self {
        let qn = queue_num.to_string();
        let mut rule = vec!["-t", "mangle", "-A", "POSTROUTING", "!", "-o", "lo"];
        rule.extend_from_slice(selector);
        rule.extend_from_slice(&["-j", "NFQUEUE", "--queue-num", &qn, "--queue-bypass"]);
        let rewrite = move |bytes: &[u8]| {
            let new = TcpIpPacket::new_checked(bytes)
                .ok()
                .and_then(|p| rebuild_options(p.tcp_options(), mangle))
                .map(|options| rewrite_tcp_options(bytes, &options).unwrap())?;
            let p = TcpIpPacket::new_checked(&new[..]).unwrap();
            assert!(p.verify_checksums().is_ok());
            Some(new)
        };
        Self(QueueHook::start(ns, queue_num, &[rule], Box::new(rewrite)))
    }

    fn mangled(&self) -> usize {
        self.0.rewritten()
    }
}

/// 64 KiB that differ per connection: echoed back, so checked in both directions.
fn payload(seed: u8) -> Vec<u8> {
    (0..65536u32)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(37))
        .collect()
}

/// Waits (bounded) for the row of `control` that `pick` selects.
fn wait_row(control: &Path, pick: impl Fn(&SessionInfo) -> bool) -> SessionInfo {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let rows = sessions(control);
        if let Some(row) = rows.iter().find(|r| pick(r)) {
            return row.clone();
        }
        assert!(Instant::now() < deadline, "no such row: {rows:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connection from A to B's echo service with data both ways; checks A's daemon relayed it
/// plain, and runs `while_open` with the client's address before closing.
fn plain_through_a(
    net: &Net,
    control_a: &Path,
    v6: bool,
    seed: u8,
    while_open: impl FnOnce(SocketAddr),
) {
    let mut s = net.connect(addr('b', v6, PORT)).expect("connect");
    exchange(&mut s, &payload(seed));
    let local = s.local_addr().unwrap();
    let row = wait_row(control_a, |r| r.local == local);
    assert_eq!(row.state, SessionState::Plain, "A relays plain: {row:?}");
    assert_eq!(row.session_id, None, "{row:?}");
    while_open(local);
    exchange(&mut s, b"and once more");
    finish(s);
}

fn syn_selector() -> Vec<&'static str> {
    vec![
        "-p",
        "tcp",
        "--dport",
        "8080",
        "--tcp-flags",
        "SYN,ACK",
        "SYN",
    ]
}

/// Stops the capture of A's veth and checks what the inspector makes of the two connections
/// (v4 with seed `seed`, v6 with `seed + 1`): plain TCP with `outcome`, the exact bytes, and
/// `legacy` when the legacy kind 253 was on the wire.
fn inspect_plain(net: &Net, pcap: &Path, dump: Proc, seed: u8, outcome: &str, legacy: bool) {
    std::thread::sleep(Duration::from_millis(300));
    drop(dump);
    let ins = common::inspect::inspect(pcap, &[&net.keys("a"), &net.keys("b")]);
    for (i, v6) in [false, true].into_iter().enumerate() {
        let conns = common::inspect::to_server(&ins, addr('b', v6, PORT));
        assert_eq!(conns.len(), 1, "{}", ins.report.to_json());
        let sent = [payload(seed + i as u8), b"and once more".to_vec()].concat();
        common::inspect::assert_plain(conns[0], &sent, &sent);
        let j = common::inspect::json(conns[0]);
        assert_eq!(j["outcome"], outcome, "{j}");
        assert_eq!(j["legacy_eno_seen"], legacy, "{j}");
    }
}

/// (a) and (c): the client's SYN arrives at B without a usable ENO option.
fn client_syn_without_eno(mangle: Mangle, queue_num: u16) {
    let net = Net::new();
    net.echo_service();
    let (_da, ca) = net.daemon(&net.a, "a");
    let (_db, cb) = net.daemon(&net.b, "b");
    let pcap = net.dir.join("wire.pcap");
    let dump = capture(&net, &pcap, 0);
    let mb = Middlebox::start(&net.a, queue_num, &syn_selector(), mangle);
    for (i, v6) in [false, true].into_iter().enumerate() {
        let before = mb.mangled();
        plain_through_a(&net, &ca, v6, i as u8, |_| {
            let rows = sessions(&cb);
            assert!(rows.is_empty(), "B's daemon is not in the path: {rows:?}");
        });
        assert!(mb.mangled() > before, "v6={v6}: the middlebox saw the SYN");
        let rows = sessions(&cb);
        assert!(rows.is_empty(), "B's daemon is not in the path: {rows:?}");
    }
    // On the wire the SYN has no ENO (plain), or only the legacy kind 253 (an attempt in the
    // draft encoding that nobody answered: a fallback).
    match mangle {
        Mangle::Strip => inspect_plain(&net, &pcap, dump, 0, "plain", false),
        Mangle::Legacy => inspect_plain(&net, &pcap, dump, 0, "fallback", true),
    }
}

#[test]
fn eno_stripped_from_the_client_syn_gives_plain_tcp_without_the_server_proxy() {
    client_syn_without_eno(Mangle::Strip, 7200);
}

#[test]
fn a_legacy_kind_253_syn_gives_plain_tcp_without_the_server_proxy() {
    client_syn_without_eno(Mangle::Legacy, 7201);
}

#[test]
fn eno_stripped_from_the_server_syn_ack_gives_plain_tcp_on_both_daemons() {
    let net = Net::new();
    net.echo_service();
    let (_da, ca) = net.daemon(&net.a, "a");
    let (_db, cb) = net.daemon(&net.b, "b");
    let selector = [
        "-p",
        "tcp",
        "--sport",
        "8080",
        "--tcp-flags",
        "SYN,ACK",
        "SYN,ACK",
    ];
    let pcap = net.dir.join("wire.pcap");
    let dump = capture(&net, &pcap, 0);
    let mb = Middlebox::start(&net.b, 7202, &selector, Mangle::Strip);
    for (i, v6) in [false, true].into_iter().enumerate() {
        let before = mb.mangled();
        plain_through_a(&net, &ca, v6, 10 + i as u8, |client| {
            // B diverted the SYN (it carried ENO) and falls back when the ACK carries none.
            let row = wait_row(&cb, |r| r.remote.ip() == client.ip());
            assert_eq!(row.state, SessionState::Plain, "B relays plain: {row:?}");
            assert_eq!(row.session_id, None, "{row:?}");
            let rows = sessions(&cb);
            assert!(
                rows.iter().all(|r| r.session_id.is_none()),
                "B agrees nothing was encrypted: {rows:?}"
            );
        });
        assert!(
            mb.mangled() > before,
            "v6={v6}: the middlebox saw B's SYN-ACK with ENO"
        );
    }
    // ENO in the SYN, none in the SYN-ACK on the wire: a fallback to plain TCP.
    inspect_plain(&net, &pcap, dump, 10, "fallback", false);
}
