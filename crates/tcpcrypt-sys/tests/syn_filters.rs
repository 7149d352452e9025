//! The SYN filters against the kernel, in a namespace of their own, as the daemon's rules use
//! them: iptables `-m bpf --object-pinned` matches, counted by the rules' own counters.
//! `cached_plain_peer` matches SYNs to the destinations in its map, but for one probe per
//! interval, and stops at expiry or removal; `syn_without_eno` matches SYNs whose options
//! carry no ENO (kind 69) nor its legacy encoding (kind 253), and nothing it cannot parse.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tcpcrypt_sys::syn_filters::{SynFilters, CACHED_PLAIN_PEER, SYN_WITHOUT_ENO};

const PROBE_EVERY: Duration = Duration::from_secs(10);
const LONG: Duration = Duration::from_secs(600);

/// The SYN filters, loaded, and a chain `T` in `table` of both families, jumped to from
/// `hook` for TCP SYNs, whose first rule matches with program `name` (its counter: the SYNs
/// matched) and whose second counts every SYN. The pins go once the rules are added: the
/// rules hold the program.
fn counted_filters(table: &str, hook: &str, name: &str) -> SynFilters {
    let mut filters = SynFilters::load(PROBE_EVERY).expect("load the SYN filters");
    let pinned = filters.pin().expect("pin");
    let path = pinned.path(name);
    let path = path.to_str().unwrap();
    for tool in ["iptables", "ip6tables"] {
        common::sh(&[tool, "-w", "-t", table, "-N", "T"]);
        common::sh(&[
            tool, "-w", "-t", table, "-A", hook, "-p", "tcp", "--syn", "-j", "T",
        ]);
        common::sh(&[
            tool,
            "-w",
            "-t",
            table,
            "-A",
            "T",
            "-m",
            "bpf",
            "--object-pinned",
            path,
        ]);
        common::sh(&[tool, "-w", "-t", table, "-A", "T"]);
    }
    drop(pinned);
    filters
}

/// (matched, seen) by the counting chain of `tool`.
fn counts(tool: &str, table: &str) -> (u64, u64) {
    let c = common::counters(tool, table, "T");
    (c[0], c[1])
}

/// Waits (bounded) until the counting chain shows `want`: a raw packet on loopback is
/// received in a softirq, possibly after `send_to` returned.
fn wait_counts(tool: &str, table: &str, want: (u64, u64), what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while counts(tool, table) != want && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(counts(tool, table), want, "{what}");
}

fn connect(dst: SocketAddr) {
    let s = TcpStream::connect_timeout(&dst, Duration::from_secs(5)).expect("connect");
    drop(s);
}

#[test]
fn cached_plain_peers_match_but_for_one_probe_per_interval() {
    common::require_root();
    common::in_netns(|| {
        let mut filters = counted_filters("mangle", "OUTPUT", CACHED_PLAIN_PEER);
        // The rule holds the program: the pins are gone, the match works.
        let listeners: Vec<TcpListener> = ["127.0.0.1:40010", "127.0.0.1:40011", "[::1]:40010"]
            .iter()
            .map(|a| TcpListener::bind(a).unwrap())
            .collect();
        let cached: SocketAddr = "127.0.0.1:40010".parse().unwrap();
        let other_port: SocketAddr = "127.0.0.1:40011".parse().unwrap();
        let cached6: SocketAddr = "[::1]:40010".parse().unwrap();
        filters.insert_plain_peer(cached, LONG, LONG).unwrap();
        filters.insert_plain_peer(cached6, LONG, LONG).unwrap();
        for _ in 0..3 {
            connect(cached);
            connect(other_port);
            connect(cached6);
        }
        assert_eq!(
            counts("iptables", "mangle"),
            (3, 6),
            "v4: only the cached port"
        );
        assert_eq!(counts("ip6tables", "mangle"), (3, 3), "v6");
        assert_eq!(filters.direct_count(), 6);

        // A probe is due: that SYN goes to the daemon, the next ones direct again.
        filters
            .insert_plain_peer(cached, LONG, Duration::ZERO)
            .unwrap();
        for _ in 0..3 {
            connect(cached);
        }
        assert_eq!(counts("iptables", "mangle"), (5, 9), "one probe of three");

        // Removed (the probe negotiated ENO), and expired: every SYN to the daemon.
        filters.remove_plain_peer(cached);
        assert!(!filters.has_plain_peer(cached));
        connect(cached);
        filters
            .insert_plain_peer(cached6, Duration::ZERO, LONG)
            .unwrap();
        connect(cached6);
        assert_eq!(counts("iptables", "mangle"), (5, 10));
        assert_eq!(counts("ip6tables", "mangle"), (3, 4));
        assert_eq!(filters.direct_count(), 8);
        drop(listeners);
    });
}

/// A raw IPv4 TCP SYN from 127.0.0.1 to 127.0.0.1:40020 with `options` (padded by the caller
/// to a multiple of 4); checksums are left zero: the raw-table rule counts it before TCP
/// drops it.
fn raw_syn(options: &[u8]) {
    assert_eq!(options.len() % 4, 0);
    let tcp_len = 20 + options.len();
    let mut p = vec![0u8; 20 + tcp_len];
    p[0] = 0x45;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&Ipv4Addr::LOCALHOST.octets());
    p[16..20].copy_from_slice(&Ipv4Addr::LOCALHOST.octets());
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&40021u16.to_be_bytes());
    t[2..4].copy_from_slice(&40020u16.to_be_bytes());
    t[4..8].copy_from_slice(&1u32.to_be_bytes());
    t[12] = ((tcp_len / 4) as u8) << 4;
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    t[20..].copy_from_slice(options);
    let s = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(libc::IPPROTO_RAW)),
    )
    .unwrap();
    let dst: SocketAddr = "127.0.0.1:0".parse().unwrap();
    s.send_to(&p, &dst.into()).expect("send the raw SYN");
}

#[test]
fn syns_without_eno_match_and_any_eno_or_doubt_does_not() {
    common::require_root();
    common::in_netns(|| {
        let filters = counted_filters("raw", "PREROUTING", SYN_WITHOUT_ENO);
        // (options, matches: no ENO)
        let linux = [
            2, 4, 0xff, 0xd7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let mut with_eno = linux.to_vec();
        with_eno.extend([69, 3, 0x21, 0]);
        let mut legacy = linux.to_vec();
        legacy.extend([253, 6, 0x45, 0x4e, 0x21, 0, 0, 0]);
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("no options", vec![], true),
            ("Linux's SYN options", linux.to_vec(), true),
            ("ENO after them", with_eno, false),
            ("ENO first", vec![69, 2, 1, 0], false),
            ("legacy kind 253", legacy, false),
            ("a zero-length option (malformed)", vec![8, 0, 0, 0], false),
            (
                "an option running past the header",
                vec![1, 1, 8, 10],
                false,
            ),
            (
                "ENO bytes after EOL are padding",
                vec![2, 4, 5, 0xb4, 0, 69, 2, 0],
                true,
            ),
            ("40 bytes of NOPs", vec![1; 40], true),
            (
                "ENO as the last of 40 bytes",
                [vec![1; 38], vec![69, 2]].concat(),
                false,
            ),
        ];
        let mut want = (0, 0);
        for (what, options, no_eno) in &cases {
            raw_syn(options);
            want.1 += 1;
            want.0 += u64::from(*no_eno);
            wait_counts("iptables", "raw", want, what);
            assert_eq!(
                filters.no_eno_count(),
                want.0,
                "the program's count: {what}"
            );
        }
        // IPv6 (the kernel's own SYN, no ENO) is parsed too.
        let l = TcpListener::bind("[::1]:40022").unwrap();
        connect("[::1]:40022".parse().unwrap());
        assert_eq!(counts("ip6tables", "raw"), (1, 1));
        assert_eq!(filters.no_eno_count(), want.0 + 1);
        assert_eq!(filters.direct_count(), 0, "the other program's count");
        drop(l);
    });
}
