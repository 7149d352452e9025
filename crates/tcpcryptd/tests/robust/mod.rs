//! Helpers of the robustness tests (faults, soak, bad input): the report row of each scenario,
//! what the daemon process holds (RSS, descriptors), conntrack entries of a namespace,
//! payloads with a plaintext canary and the scan of a capture for it, and a raw-socket sender
//! of crafted TCP segments.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use tcpcrypt_netsim::report::{PlaintextCheck, Row};
use tcpcrypt_sys::netns::NetNs;

/// The canary every payload of these tests starts with: it must never be on the wire of an
/// encrypted connection.
pub const CANARY: &[u8; 32] = b"H4-CANARY-plaintext-never-on-net";

/// Records `row` (when `TCPCRYPT_ROBUSTNESS_OUT` is set), prints it, then asserts it holds:
/// the row reaches the report even when the scenario failed.
pub fn record_and_check(row: Row) {
    eprintln!(
        "[{}] {}: {}/{} as expected ({}), {} bytes, plaintext {}",
        row.section,
        row.scenario,
        row.as_expected,
        row.trials,
        row.expected,
        row.bytes,
        row.plaintext_check_text()
    );
    row.record().expect("append the robustness row");
    assert!(
        row.holds(),
        "{}: {} of {} trials as expected ({}); plaintext {}; {}",
        row.scenario,
        row.as_expected,
        row.trials,
        row.expected,
        row.plaintext_check_text(),
        row.notes
    );
}

/// A row of `section` with the given counts.
pub fn row(
    section: &str,
    scenario: &str,
    expected: &str,
    (trials, as_expected): (u32, u32),
    bytes: u64,
    plaintext: PlaintextCheck,
    notes: &str,
) -> Row {
    Row::new(scenario, expected, trials, as_expected, bytes, plaintext)
        .section(section)
        .notes(notes)
}

/// Resident set size of process `pid`, in KiB (VmRSS of /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process alive");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Open file descriptors of process `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("process alive")
        .count()
}

/// True while process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

/// Live conntrack entries of namespace `ns` (0 while conntrack is not loaded there): the lines
/// of its /proc/net/nf_conntrack, which skips entries that timed out. The kernel's own count
/// (`nf_conntrack_count`) also holds timed-out entries until its garbage collector reaps them,
/// which can take a minute when the table is quiet: a drain check on it would measure the
/// collector's schedule, not a leak. Without that file (no CONFIG_NF_CONNTRACK_PROCFS) the
/// kernel's count is used.
pub fn conntrack_count(ns: &NetNs) -> u64 {
    let listed = std::process::Command::new("ip")
        .args(["netns", "exec", ns.name(), "cat", "/proc/net/nf_conntrack"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| o.stdout.iter().filter(|&&b| b == b'\n').count() as u64);
    listed.unwrap_or_else(|| {
        ns.run(|| {
            std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        })
        .unwrap()
    })
}

/// `len` bytes that start with [`CANARY`] and differ per `seed` (so a swapped or shifted
/// stream is caught).
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&CANARY[..CANARY.len().min(len)]);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    out
}

/// Scans the capture `pcap` for the canary: [`PlaintextCheck::Clean`] if absent, `Leak`
/// otherwise. Panics if the capture is (nearly) empty: a check that saw nothing proves nothing.
pub fn scan_capture(pcap: &Path, min_len: usize) -> PlaintextCheck {
    let wire = std::fs::read(pcap).expect("read the capture");
    assert!(
        wire.len() >= min_len,
        "the capture {} holds {} bytes (< {min_len}): it did not see the traffic",
        pcap.display(),
        wire.len()
    );
    if wire.windows(CANARY.len()).any(|w| w == CANARY) {
        PlaintextCheck::Leak
    } else {
        PlaintextCheck::Clean
    }
}

/// Sends hand-made TCP segments from inside a namespace through a raw IP socket
/// (IP_HDRINCL): the kernel's TCP stack is not involved on this side, so anything can be sent.
pub struct RawSender {
    v4: socket2::Socket,
    v6: socket2::Socket,
}

impl RawSender {
    /// Raw sockets in `ns`.
    pub fn new(ns: &NetNs) -> Self {
        ns.run(|| {
            let raw = |domain| {
                socket2::Socket::new(
                    domain,
                    socket2::Type::RAW,
                    Some(socket2::Protocol::from(libc_ipproto_raw())),
                )
                .expect("raw socket (root)")
            };
            Self {
                v4: raw(socket2::Domain::IPV4),
                v6: raw(socket2::Domain::IPV6),
            }
        })
        .unwrap()
    }

    /// Sends a SYN from `src` to `dst` carrying the TCP options `options` (padded here with
    /// EOL to a multiple of 4; at most 40 bytes) and `data`, with valid checksums.
    pub fn syn(&self, src: SocketAddr, dst: SocketAddr, options: &[u8], data: &[u8]) {
        let mut opts = options.to_vec();
        while opts.len() % 4 != 0 {
            opts.push(0);
        }
        let bare = bare_syn(src, dst, data);
        let packet =
            tcpcrypt_proto::wire::packet::rewrite_tcp_options(&bare, &opts).expect("options fit");
        let sock = if dst.is_ipv4() { &self.v4 } else { &self.v6 };
        // For IPv6 raw sockets of protocol IPPROTO_RAW the kernel takes the whole packet too;
        // the port of the destination address must be 0.
        let to = SocketAddr::new(dst.ip(), 0);
        sock.send_to(&packet, &to.into()).expect("send the raw SYN");
    }
}

/// IPPROTO_RAW (255): the caller writes the IP header (IP_HDRINCL implied).
fn libc_ipproto_raw() -> i32 {
    255
}

/// An IP packet holding a SYN with no options; checksums are filled in by
/// `rewrite_tcp_options`.
fn bare_syn(src: SocketAddr, dst: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&src.port().to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    let seq = (u32::from(src.port()) << 16) ^ 0x5eed_1234;
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    tcp.extend_from_slice(data);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = vec![0u8; 20];
            ip[0] = 0x45;
            let total = (20 + tcp.len()) as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[6] = 0x40; // DF
            ip[8] = 64;
            ip[9] = 6;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            ip.extend_from_slice(&tcp);
            ip
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ip = vec![0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(tcp.len() as u16).to_be_bytes());
            ip[6] = 6;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            ip.extend_from_slice(&tcp);
            ip
        }
        _ => panic!("mixed families"),
    }
}

/// Conntrack entries of namespace `ns` by TCP state (and protocol for the others), from its
/// /proc/net/nf_conntrack; empty if the kernel has no such file.
pub fn conntrack_states(ns: &NetNs) -> std::collections::BTreeMap<String, u64> {
    {
        let mut out = std::collections::BTreeMap::new();
        // Read by a process in the namespace: /proc/net follows the reading process.
        let text = std::process::Command::new("ip")
            .args(["netns", "exec", ns.name(), "cat", "/proc/net/nf_conntrack"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let key = match f.get(2) {
                Some(&"tcp") => f.get(5).copied().unwrap_or("?").to_owned(),
                Some(proto) => (*proto).to_owned(),
                None => continue,
            };
            *out.entry(key).or_insert(0) += 1;
        }
        out
    }
}
