//! The SYN path on synthetic IPv4 and IPv6 packets: two hosts' `SynPath`s exchange the
//! segments a Linux handshake would queue.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tcpcrypt_proto::wire::packet::{verify_checksums, TcpIpPacket};
use tcpcrypt_proto::wire::tcp_option::{TcpOption, TcpOptions};

use super::*;
use crate::config::PortSet;

/// MSS, SACK permitted, timestamps, NOP, window scale: a Linux SYN's options.
const SYN_OPTIONS: [u8; 20] = [
    2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
];
/// NOP, NOP, timestamps.
const ACK_OPTIONS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 1];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

struct Policy {
    exclude: PortSet,
    mandatory: PortSet,
}

impl PortPolicy for Policy {
    fn excluded(&self, port: u16) -> bool {
        self.exclude.contains(port)
    }
    fn mandatory(&self, dst: std::net::SocketAddr) -> bool {
        self.mandatory.contains(dst.port())
    }
}

struct Counter(u8);

impl Rng for Counter {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

fn path_with(limits: Limits, mandatory: &str) -> SynPath {
    let policy = Policy {
        exclude: PortSet::parse("22").unwrap(),
        mandatory: PortSet::parse(mandatory).unwrap(),
    };
    SynPath::new(
        eno::Config::default(),
        Box::new(policy),
        limits,
        Box::new(Counter(7)),
    )
}

fn path() -> SynPath {
    path_with(Limits::default(), "")
}

/// A whole IP packet from `src` to `dst` with `flags`, `options` and `payload`.
fn packet(src: SocketAddr, dst: SocketAddr, flags: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&src.port().to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
    tcp[12] = (((20 + options.len()) / 4) << 4) as u8;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    tcp.extend_from_slice(options);
    tcp.extend_from_slice(payload);
    let mut out = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0];
            ip[2..4].copy_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            ip
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ip = vec![0x60, 0, 0, 0, 0, 0, 6, 64];
            ip[4..6].copy_from_slice(&(tcp.len() as u16).to_be_bytes());
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            ip
        }
        _ => panic!("mixed families"),
    };
    out.extend_from_slice(&tcp);
    TcpIpPacket::new_checked(out.as_mut_slice())
        .unwrap()
        .fill_checksums();
    out
}

fn replaced(d: Decision, original: Vec<u8>) -> Vec<u8> {
    match d {
        Decision::Replace(new) => {
            verify_checksums(&new).expect("rewritten packets carry valid checksums");
            new
        }
        Decision::Accept => original,
        Decision::Drop => panic!("dropped"),
    }
}

fn eno_options(pkt: &[u8]) -> Vec<Vec<u8>> {
    let p = TcpIpPacket::new_checked(pkt).unwrap();
    TcpOptions::new(p.tcp_options())
        .flatten()
        .filter(|o| matches!(o, TcpOption::Eno(_)))
        .map(|o| {
            let mut b = vec![0; o.buffer_len()];
            let _ = o.emit(&mut b);
            b
        })
        .collect()
}

fn addrs(v6: bool) -> (SocketAddr, SocketAddr) {
    if v6 {
        (
            SocketAddr::new(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).into(), 40000),
            SocketAddr::new(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).into(), 8080),
        )
    } else {
        (
            SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 40000),
            SocketAddr::new(Ipv4Addr::new(10, 0, 0, 2).into(), 8080),
        )
    }
}

/// The connection from `ca` to `sb` as host A and host B key it.
fn keys(ca: SocketAddr, sb: SocketAddr) -> (ConnKey, ConnKey) {
    (
        ConnKey {
            local: ca,
            remote: sb,
        },
        ConnKey {
            local: sb,
            remote: ca,
        },
    )
}

/// Runs the full queued handshake between host A (`a`, client side) and host B (`b`).
fn handshake(a: &mut SynPath, b: &mut SynPath, v6: bool) -> (Outcome, Outcome) {
    let now = Instant::now();
    let (ca, sb) = addrs(v6);
    let (key_a, key_b) = keys(ca, sb);

    // A's upstream SYN gets ENO.
    let syn = packet(ca, sb, SYN, &SYN_OPTIONS, &[]);
    let Handled {
        decision: d,
        ready: out,
        ..
    } = a.on_outbound(&syn, now);
    assert!(out.is_none());
    let syn = replaced(d, syn);
    assert_eq!(eno_options(&syn).len(), 1, "the SYN carries one ENO option");

    // B decides to divert it.
    let ServerSyn::Divert { key, replace: None } = b.on_server_syn(&syn, now) else {
        panic!("an ENO SYN is diverted")
    };
    assert_eq!(key, key_b);
    assert_eq!(b.on_server_syn(&syn, now), ServerSyn::Duplicate);
    b.decide(key, Some(0x10), true, now);
    assert_eq!(b.on_server_syn(&syn, now), ServerSyn::Repeat(Some(0x10)));

    // B's listener answers; the SYN-ACK gets B's option.
    let syn_ack = packet(sb, ca, SYN | ACK, &SYN_OPTIONS, &[]);
    let Handled { decision: d, .. } = b.on_outbound(&syn_ack, now);
    let syn_ack = replaced(d, syn_ack);
    assert_eq!(eno_options(&syn_ack).len(), 1);

    // A reads it; its third ACK carries 45 02 and enables ENO on A.
    let Handled {
        decision: d,
        ready: out,
        ..
    } = a.on_inbound(&syn_ack, now);
    assert_eq!((d, out), (Decision::Accept, None));
    let ack = packet(ca, sb, ACK, &ACK_OPTIONS, &[]);
    let Handled {
        decision: d,
        ready: out,
        settled,
    } = a.on_outbound(&ack, now);
    let ack = replaced(d, ack);
    assert_eq!(out, Some(key_a));
    assert!(!settled, "A still owes ENO on its segments (RFC 8547 §4.6)");
    assert_eq!(eno_options(&ack), vec![vec![0x45, 0x02]]);

    // A's first data segment (Init1) too, until B's first non-SYN segment arrives.
    let init1 = packet(ca, sb, ACK, &ACK_OPTIONS, b"init1");
    let Handled {
        decision: d,
        settled,
        ..
    } = a.on_outbound(&init1, now);
    assert_eq!(eno_options(&replaced(d, init1)).len(), 1);
    assert!(!settled);

    // B reads the third ACK: enabled.
    assert_eq!(b.flow_count(), 1);
    let Handled {
        decision: d,
        ready: out,
        settled,
    } = b.on_inbound(&ack, now);
    assert_eq!((d, out), (Decision::Accept, Some(key_b)));
    assert!(
        settled,
        "B needs no more segments: the daemon stops queueing them"
    );
    assert_eq!(b.flow_count(), 0, "and its entries are freed at once");
    let oa = a.take_outcome(&key_a).expect("A decided");
    let ob = b.take_outcome(&key_b).expect("B decided");
    assert!(a.take_outcome(&key_a).is_none(), "taken once");

    // B's Init2 carries no ENO: B has received a non-SYN segment.
    let init2 = packet(sb, ca, ACK, &ACK_OPTIONS, b"init2");
    let Handled { decision: d, .. } = b.on_outbound(&init2, now);
    assert_eq!(d, Decision::Accept);
    // After A receives it, A adds no more ENO and is settled.
    assert!(a.on_inbound(&init2, now).settled);
    assert_eq!(a.flow_count(), 0);
    let more = packet(ca, sb, ACK, &ACK_OPTIONS, b"frame");
    assert_eq!(a.on_outbound(&more, now).decision, Decision::Accept);
    // B's held-SYN entry went at the settle too: the same SYN now is a new connection, not a
    // retransmission to repeat a verdict for.
    assert!(matches!(
        b.on_server_syn(&syn, now),
        ServerSyn::Divert { .. }
    ));
    (oa, ob)
}

#[test]
fn both_hosts_enable_with_equal_transcripts_v4_and_v6() {
    for v6 in [false, true] {
        let (mut a, mut b) = (path(), path());
        let (Outcome::Enabled(na), Outcome::Enabled(nb)) = handshake(&mut a, &mut b, v6) else {
            panic!("both enabled (v6 = {v6})")
        };
        assert_eq!(na.transcript, nb.transcript);
        assert_eq!(na.tep, nb.tep);
        assert_ne!(na.role, nb.role);
    }
}

#[test]
fn server_passes_plain_syns_and_refuses_them_on_mandatory_ports() {
    let now = Instant::now();
    for v6 in [false, true] {
        let (ca, sb) = addrs(v6);
        let plain = packet(ca, sb, SYN, &SYN_OPTIONS, &[]);
        // Plain, and why (the daemon counts it).
        assert_eq!(
            path().on_server_syn(&plain, now),
            ServerSyn::Plain(FallbackReason::MissingEno)
        );
        let mut strict = path_with(Limits::default(), "8080");
        assert_eq!(strict.on_server_syn(&plain, now), ServerSyn::Refuse);
        assert_eq!(strict.flow_count(), 0);
        // Excluded ports are never diverted, ENO or not.
        let mut a = path();
        let ssh = SocketAddr::new(sb.ip(), 22);
        let syn = packet(ca, ssh, SYN, &SYN_OPTIONS, &[]);
        let syn = replaced(a.on_outbound(&syn, now).decision, syn);
        assert_eq!(path().on_server_syn(&syn, now), ServerSyn::Pass);
    }
}

#[test]
fn server_strips_syn_data_of_an_eno_syn() {
    let now = Instant::now();
    let (ca, sb) = addrs(false);
    let mut a = path();
    let syn = packet(ca, sb, SYN, &SYN_OPTIONS, &[]);
    let syn = replaced(a.on_outbound(&syn, now).decision, syn);
    // The same SYN with data: B must not let the kernel acknowledge it (RFC 8547 §4.7).
    let p = TcpIpPacket::new_checked(syn.as_slice()).unwrap();
    let with_data = packet(ca, sb, SYN, p.tcp_options(), b"early");
    let ServerSyn::Divert {
        replace: Some(stripped),
        ..
    } = path().on_server_syn(&with_data, now)
    else {
        panic!("diverted with the payload stripped")
    };
    assert!(TcpIpPacket::new_checked(stripped.as_slice())
        .unwrap()
        .tcp_payload()
        .is_empty());
}

#[test]
fn client_falls_back_against_a_plain_server() {
    let now = Instant::now();
    for v6 in [false, true] {
        let (ca, sb) = addrs(v6);
        let key = ConnKey {
            local: ca,
            remote: sb,
        };
        let mut a = path();
        let syn = packet(ca, sb, SYN, &SYN_OPTIONS, &[]);
        let _ = a.on_outbound(&syn, now);
        let syn_ack = packet(sb, ca, SYN | ACK, &SYN_OPTIONS, &[]);
        let Handled { ready: out, .. } = a.on_inbound(&syn_ack, now);
        assert_eq!(out, Some(key));
        assert!(matches!(
            a.take_outcome(&key),
            Some(Outcome::Plain(FallbackReason::MissingEno))
        ));
        // No ENO on the third ACK then.
        let ack = packet(ca, sb, ACK, &ACK_OPTIONS, &[]);
        assert_eq!(a.on_outbound(&ack, now).decision, Decision::Accept);
    }
}

#[test]
fn server_falls_back_when_the_third_ack_lacks_eno() {
    let now = Instant::now();
    let (ca, sb) = addrs(true);
    let (mut a, mut b) = (path(), path());
    let syn = packet(ca, sb, SYN, &SYN_OPTIONS, &[]);
    let syn = replaced(a.on_outbound(&syn, now).decision, syn);
    let ServerSyn::Divert { key, .. } = b.on_server_syn(&syn, now) else {
        panic!("diverted")
    };
    let syn_ack = packet(sb, ca, SYN | ACK, &SYN_OPTIONS, &[]);
    let _ = b.on_outbound(&syn_ack, now);
    let ack = packet(ca, sb, ACK, &ACK_OPTIONS, &[]);
    let Handled { ready: out, .. } = b.on_inbound(&ack, now);
    assert_eq!(out, Some(key));
    assert!(matches!(
        b.take_outcome(&key),
        Some(Outcome::Plain(FallbackReason::MissingEno))
    ));
}

#[test]
fn app_syns_are_held_once_and_repeat_the_decision() {
    let now = Instant::now();
    for v6 in [false, true] {
        let (ca, sb) = addrs(v6);
        let mut a = path();
        let syn = packet(ca, sb, SYN, &SYN_OPTIONS, &[]);
        let AppSyn::Hold(key) = a.on_app_syn(&syn, now) else {
            panic!("held")
        };
        assert_eq!(
            key,
            ConnKey {
                local: ca,
                remote: sb
            }
        );
        assert_eq!(a.on_app_syn(&syn, now), AppSyn::Duplicate);
        a.decide(key, Some(4), false, now);
        assert_eq!(a.on_app_syn(&syn, now), AppSyn::Repeat(Some(4)));
        // After the TTL it is a new connection (the 4-tuple was reused).
        let later = now + Limits::default().ttl + Duration::from_secs(1);
        assert_eq!(a.on_app_syn(&syn, later), AppSyn::Hold(key));
        // Excluded ports and non-SYNs pass.
        let ssh = packet(ca, SocketAddr::new(sb.ip(), 22), SYN, &SYN_OPTIONS, &[]);
        assert_eq!(a.on_app_syn(&ssh, now), AppSyn::Pass);
        let ack = packet(ca, sb, ACK, &ACK_OPTIONS, &[]);
        assert_eq!(a.on_app_syn(&ack, now), AppSyn::Pass);
    }
}

#[test]
fn tables_are_bounded_and_expire() {
    let now = Instant::now();
    let limits = Limits {
        max_flows: 2,
        ttl: Duration::from_secs(5),
    };
    let mut a = path_with(limits, "");
    let (ca, sb) = addrs(false);
    let mut with_eno = 0;
    for port in 1..=3u16 {
        let src = SocketAddr::new(ca.ip(), 50000 + port);
        let syn = packet(src, sb, SYN, &SYN_OPTIONS, &[]);
        if matches!(a.on_outbound(&syn, now).decision, Decision::Replace(_)) {
            with_eno += 1;
        }
    }
    assert_eq!(with_eno, 2, "the third connection is left plain");
    assert_eq!(a.flow_count(), 2);
    let later = now + Duration::from_secs(6);
    let syn = packet(SocketAddr::new(ca.ip(), 50009), sb, SYN, &SYN_OPTIONS, &[]);
    assert!(matches!(
        a.on_outbound(&syn, later).decision,
        Decision::Replace(_)
    ));
    assert_eq!(a.flow_count(), 1, "expired entries were dropped");
}

#[test]
fn garbage_and_unknown_flows_are_accepted_unchanged() {
    let now = Instant::now();
    let mut a = path();
    for junk in [&b""[..], &[0x45, 0, 0], &[0x60; 60]] {
        let unparsable = Handled {
            decision: Decision::Accept,
            ready: None,
            settled: false,
        };
        assert_eq!(a.on_outbound(junk, now), unparsable);
        assert_eq!(a.on_inbound(junk, now), unparsable);
        assert_eq!(a.on_app_syn(junk, now), AppSyn::Pass);
        assert_eq!(a.on_server_syn(junk, now), ServerSyn::Pass);
    }
    let (ca, sb) = addrs(false);
    let ack = packet(ca, sb, ACK, &ACK_OPTIONS, b"x");
    // A connection the path does not track: accepted, and settled (never queue it again).
    let untracked = Handled {
        decision: Decision::Accept,
        ready: None,
        settled: true,
    };
    assert_eq!(a.on_outbound(&ack, now), untracked);
    assert_eq!(a.on_inbound(&ack, now), untracked);
}

/// `pkt` with another initial sequence number (checksums recomputed).
fn with_isn(pkt: &[u8], isn: u32) -> Vec<u8> {
    let p = TcpIpPacket::new_checked(pkt).unwrap();
    let ip_len = pkt.len() - p.tcp().header_len() - p.tcp_payload().len();
    let options = p.tcp_options().to_vec();
    let mut out = pkt.to_vec();
    out[ip_len + 4..ip_len + 8].copy_from_slice(&isn.to_be_bytes());
    packet::rewrite_tcp_options(&out, &options).unwrap()
}

#[test]
fn a_new_connection_reusing_a_tuple_within_the_ttl_is_not_a_retransmission() {
    let now = Instant::now();
    for v6 in [false, true] {
        let (ca, sb) = addrs(v6);
        // Client side: the application's SYN, decided, then a new connection on the same
        // tuple (another ISN) a second later is held anew instead of repeating the verdict.
        let mut a = path();
        let syn = packet(ca, sb, SYN, &SYN_OPTIONS, &[]);
        let AppSyn::Hold(key) = a.on_app_syn(&syn, now) else {
            panic!("held")
        };
        a.decide(key, Some(4), false, now);
        let soon = now + Duration::from_secs(1);
        assert_eq!(a.on_app_syn(&syn, soon), AppSyn::Repeat(Some(4)));
        let reused = with_isn(&syn, 77_777);
        assert_eq!(a.on_app_syn(&reused, soon), AppSyn::Hold(key));
        assert_eq!(a.on_app_syn(&reused, soon), AppSyn::Duplicate);

        // Both sides, a whole handshake, then a new one on the same tuple: the upstream SYN
        // gets ENO again, B diverts it again (not a repeat of the old verdict), and both
        // reach a fresh outcome.
        let (mut a, mut b) = (path(), path());
        let (Outcome::Enabled(_), Outcome::Enabled(_)) = handshake(&mut a, &mut b, v6) else {
            panic!("first connection enabled")
        };
        let syn = with_isn(&packet(ca, sb, SYN, &SYN_OPTIONS, &[]), 12_345);
        let Handled { decision: d, .. } = a.on_outbound(&syn, soon);
        let syn = replaced(d, syn);
        assert_eq!(eno_options(&syn).len(), 1, "the new SYN carries ENO");
        let ServerSyn::Divert { key, .. } = b.on_server_syn(&syn, soon) else {
            panic!("diverted anew, not a repeat of the old verdict")
        };
        b.decide(key, Some(0x10), true, soon);
        let syn_ack = packet(sb, ca, SYN | ACK, &SYN_OPTIONS, &[]);
        let Handled { decision: d, .. } = b.on_outbound(&syn_ack, soon);
        let syn_ack = replaced(d, syn_ack);
        let _ = a.on_inbound(&syn_ack, soon);
        let ack = packet(ca, sb, ACK, &ACK_OPTIONS, &[]);
        let Handled {
            decision: d,
            ready: out,
            ..
        } = a.on_outbound(&ack, soon);
        assert!(out.is_some(), "A decided the new connection");
        let ack = replaced(d, ack);
        let Handled { ready: out, .. } = b.on_inbound(&ack, soon);
        assert!(out.is_some(), "B decided the new connection");
        let key_a = ConnKey {
            local: ca,
            remote: sb,
        };
        assert!(matches!(a.take_outcome(&key_a), Some(Outcome::Enabled(_))));
        assert!(matches!(b.take_outcome(&key), Some(Outcome::Enabled(_))));
    }
}

#[test]
fn server_syns_expire_entries_once_a_second_or_when_a_table_is_full() {
    let now = Instant::now();
    let limits = Limits {
        max_flows: 2,
        ttl: Duration::from_millis(10),
    };
    let (ca, sb) = addrs(false);
    let syn_from = |port: u16| {
        let src = SocketAddr::new(ca.ip(), port);
        // A's outbound SYN with ENO, as B receives it.
        let mut a = path();
        let Decision::Replace(bytes) = a
            .on_outbound(&packet(src, sb, SYN, &SYN_OPTIONS, &[]), now)
            .decision
        else {
            panic!("A adds ENO");
        };
        bytes
    };
    let diverted = |d: ServerSyn| matches!(d, ServerSyn::Divert { .. });
    let mut b = path_with(limits, "");
    assert!(diverted(b.on_server_syn(&syn_from(50001), now)));
    // Expired by the TTL, yet still held: no scan within the second.
    let soon = now + Duration::from_millis(20);
    assert!(diverted(b.on_server_syn(&syn_from(50002), soon)));
    assert_eq!(b.flow_count(), 2, "no scan within a second");
    // The table is full: expired entries are dropped at once, so a third SYN still gets ENO.
    let full = soon + Duration::from_millis(20);
    assert!(diverted(b.on_server_syn(&syn_from(50003), full)));
    assert_eq!(b.flow_count(), 1, "the full table was scanned");
    // A second later, the next SYN scans again.
    let later = now + Duration::from_millis(1100);
    assert!(diverted(b.on_server_syn(&syn_from(50004), later)));
    assert_eq!(b.flow_count(), 1, "the expired entry was dropped");
}

/// The BPF option path's handshake: the kernel writes the options (here: the test puts them
/// into the packets), the core decides them through `start_active`, `on_upstream_syn_ack`,
/// `syn_ack_option` and `on_passive_established`; B's SYN-ACK goes through `on_outbound`
/// when `syn_ack_option` gives no option for the kernel (or `b_by_kernel` is false).
/// `b_syn_ack_eno`: whether B's SYN-ACK carries its option (false: a middlebox stripped it);
/// `a_ack_eno`: whether A's ACK carries `45 02` as far as B is concerned (false: stripped
/// after the SYN).
struct KernelHandshake {
    a: Outcome,
    b: Outcome,
    /// A's ACK carries `45 02`.
    ack_eno: bool,
    /// B's SYN-ACK option was written by the kernel (not through `on_outbound`).
    b_by_kernel: bool,
}

fn kernel_handshake(v6: bool, b_syn_ack_eno: bool, a_ack_eno: bool) -> (Outcome, Outcome, bool) {
    let h = kernel_handshake_with((path(), path()), v6, false, b_syn_ack_eno, a_ack_eno);
    (h.a, h.b, h.ack_eno)
}

fn kernel_handshake_with(
    (mut a, mut b): (SynPath, SynPath),
    v6: bool,
    b_by_kernel: bool,
    b_syn_ack_eno: bool,
    a_ack_eno: bool,
) -> KernelHandshake {
    let now = Instant::now();
    let (ca, sb) = addrs(v6);
    let (key_a, key_b) = keys(ca, sb);
    const COOKIE: u64 = 77;
    let syn_option = a.start_active(COOKIE, sb, now).expect("room in the table");
    assert!(
        syn_option.len() > 2 && syn_option[0] == 69,
        "{syn_option:?}"
    );
    assert!(
        syn_option.len() <= bpf::SYN_ROOM,
        "fits the room the kernel leaves"
    );
    let mut options = [&SYN_OPTIONS[..], &syn_option].concat();
    options.resize(options.len().next_multiple_of(4), 1);
    let syn = packet(ca, sb, SYN, &options, &[]);
    let ServerSyn::Divert { key, replace: None } = b.on_server_syn(&syn, now) else {
        panic!("an ENO SYN is diverted")
    };
    assert_eq!(key, key_b);
    b.decide(key, Some(0x10), true, now);
    let bare = packet(sb, ca, SYN | ACK, &SYN_OPTIONS, &[]);
    let by_kernel = if b_by_kernel {
        b.syn_ack_option(key, bpf::SYN_ROOM)
    } else {
        None
    };
    let written = match &by_kernel {
        Some(option) => {
            // The kernel writes it after its own options.
            assert!(
                option.len() <= bpf::SYN_ROOM && option[0] == 69,
                "{option:?}"
            );
            assert_eq!(
                b.syn_ack_option(key, bpf::SYN_ROOM).as_ref(),
                Some(option),
                "the same bytes if asked again"
            );
            let mut options = [&SYN_OPTIONS[..], option].concat();
            options.resize(options.len().next_multiple_of(4), 1);
            packet(sb, ca, SYN | ACK, &options, &[])
        }
        None => {
            // B's SYN-ACK goes through NFQUEUE, as on the NFQUEUE path.
            let handled = b.on_outbound(&bare, now);
            assert!(!handled.settled, "B waits for the completing ACK");
            replaced(handled.decision, bare.clone())
        }
    };
    assert_eq!(eno_options(&written).len(), 1, "B answers with ENO");
    let syn_ack = if b_syn_ack_eno { written } else { bare };
    let mut asked = None;
    let (handled, ack) = a.on_upstream_syn_ack(
        &syn_ack,
        |k| {
            asked = Some(k);
            Some(COOKIE)
        },
        now,
    );
    assert_eq!(
        asked,
        Some(key_a),
        "the cookie is looked up by the connection's key"
    );
    assert_eq!(handled.decision, Decision::Accept);
    assert_eq!(
        handled.ready,
        Some(key_a),
        "A's outcome is ready at the SYN-ACK"
    );
    let (ack_key, ack_eno) = ack.expect("a tracked upstream");
    assert_eq!(ack_key, key_a);
    assert_eq!(
        a.flow_count(),
        0,
        "A's entries go: the kernel does the rest"
    );
    // A retransmitted SYN-ACK is not tracked any more.
    let (again, none) = a.on_upstream_syn_ack(&syn_ack, |_| Some(COOKIE), now);
    assert_eq!(
        (again.decision, again.ready, none),
        (Decision::Accept, None, None)
    );
    let ack_option: &[u8] = if ack_eno && a_ack_eno { &[69, 2] } else { &[] };
    let flags = SegmentFlags {
        syn: false,
        ack: true,
        payload: false,
    };
    let ob = b
        .on_passive_established(key_b, flags, ack_option, now)
        .expect("B's outcome from the completing ACK");
    assert_eq!(b.flow_count(), 0);
    assert!(b
        .on_passive_established(key_b, flags, ack_option, now)
        .is_none());
    let oa = a.take_outcome(&key_a).expect("A decided");
    KernelHandshake {
        a: oa,
        b: ob,
        ack_eno,
        b_by_kernel: by_kernel.is_some(),
    }
}

#[test]
fn the_kernel_option_path_enables_with_equal_transcripts() {
    for v6 in [false, true] {
        for b_by_kernel in [false, true] {
            let h = kernel_handshake_with((path(), path()), v6, b_by_kernel, true, true);
            assert!(h.ack_eno, "A's ACK carries 45 02");
            assert_eq!(
                h.b_by_kernel, b_by_kernel,
                "a fresh answer fits the kernel's room"
            );
            let (Outcome::Enabled(na), Outcome::Enabled(nb)) = (h.a, h.b) else {
                panic!("both enabled (v6 = {v6}, B's SYN-ACK by the kernel: {b_by_kernel})")
            };
            assert_eq!(na.transcript, nb.transcript);
            assert_ne!(na.role, nb.role);
        }
    }
}

/// B's resumption answer (21 bytes) does not fit the room the kernel leaves in a SYN-ACK:
/// `syn_ack_option` gives none, the SYN-ACK goes through `on_outbound` (a rewrite of the
/// whole option area), and the session is resumed, not downgraded to a fresh key exchange.
#[test]
fn a_resumption_answer_goes_through_the_queue_and_resumes() {
    use tcpcrypt_proto::keys::SessionSecret;
    use tcpcrypt_proto::{AeadId, Role, TepId};
    let (ca, sb) = addrs(false);
    let now = Instant::now();
    let secret = |original_role| ResumableSecret {
        tep: TepId::TCPCRYPT_ECDHE_CURVE25519,
        original_role,
        aead: AeadId::AES_128_GCM,
        secret: SessionSecret::from_bytes([9; tcpcrypt_proto::consts::K_LEN]),
    };
    let (mut a, mut b) = (path(), path());
    a.cache_secret(sb.ip(), secret(Role::A), now);
    b.cache_secret(ca.ip(), secret(Role::B), now);
    let h = kernel_handshake_with((a, b), false, true, true, true);
    assert!(
        !h.b_by_kernel,
        "the resumption answer went through the queue"
    );
    let (Outcome::Enabled(na), Outcome::Enabled(nb)) = (h.a, h.b) else {
        panic!("both enabled")
    };
    assert!(
        na.resumption.is_some() && nb.resumption.is_some(),
        "resumed"
    );
    assert_eq!(na.transcript, nb.transcript);
}

#[test]
fn the_kernel_option_path_falls_back_on_both_ends() {
    // No ENO in the SYN-ACK: A sends no 45 02 (RFC 8547 §4.6) and both go plain.
    let (oa, ob, ack_eno) = kernel_handshake(false, false, true);
    assert!(!ack_eno);
    assert!(
        matches!(oa, Outcome::Plain(FallbackReason::MissingEno)),
        "{oa:?}"
    );
    assert!(
        matches!(ob, Outcome::Plain(FallbackReason::MissingEno)),
        "{ob:?}"
    );
    // ENO stripped from A's ACK only: A enabled, B falls back (the type-2 case the daemon
    // answers by refusing Init1), whichever way B's SYN-ACK got its option.
    for b_by_kernel in [false, true] {
        let h = kernel_handshake_with((path(), path()), false, b_by_kernel, true, false);
        assert!(matches!(h.a, Outcome::Enabled(_)));
        assert!(
            matches!(h.b, Outcome::Plain(FallbackReason::MissingEno)),
            "{:?}",
            h.b
        );
    }
    // ENO stripped from a SYN-ACK the kernel wrote: both plain, as above.
    let h = kernel_handshake_with((path(), path()), false, true, false, true);
    assert!(h.b_by_kernel && !h.ack_eno);
    assert!(matches!(h.a, Outcome::Plain(FallbackReason::MissingEno)));
    assert!(matches!(h.b, Outcome::Plain(FallbackReason::MissingEno)));
}

#[test]
fn pending_active_opens_are_bounded_and_expire() {
    let limits = Limits {
        max_flows: 2,
        ttl: Duration::from_secs(60),
    };
    let mut a = path_with(limits, "");
    let now = Instant::now();
    let (_, sb) = addrs(false);
    assert!(a.start_active(1, sb, now).is_some());
    assert!(a.start_active(2, sb, now).is_some());
    assert!(a.start_active(3, sb, now).is_none(), "full");
    let later = now + Duration::from_secs(61);
    assert!(
        a.start_active(3, sb, later).is_some(),
        "expired entries make room"
    );
}
