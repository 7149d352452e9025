//! Tests of the packet views and rewrites. Fixtures were built by an independent Python
//! implementation; every checksum this module's code computes is re-verified by a Python script
//! (its own Internet checksum) run from the test, never only by the code under test.

use std::io::Write;
use std::process::{Command, Stdio};

use super::*;
use crate::wire::tcp_option::{insert_option, TcpOption, TcpOptions};

// Linux-like SYNs: MSS 1460, SACK-permitted, timestamps, NOP, window scale 7; checksums
// computed by Python. 192.0.2.1:40000 -> 198.51.100.2:8080 and [2001:db8::1]:40001 ->
// [2001:db8::2]:8080; the third has 15 bytes of data and FIN and URG set.
const V4_SYN: [u8; 60] = [
    0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x32, 0x3f, 0xc0, 0x00, 0x02, 0x01,
    0xc6, 0x33, 0x64, 0x02, 0x9c, 0x40, 0x1f, 0x90, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xfa, 0xf0, 0x38, 0x55, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
    0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
];
const V6_SYN: [u8; 80] = [
    0x60, 0x01, 0x23, 0x45, 0x00, 0x28, 0x06, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x9c, 0x41, 0x1f, 0x90, 0xa0, 0xb0, 0xc0, 0xd0,
    0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x6b, 0x9b, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    0x04, 0x02, 0x08, 0x0a, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
];
const V4_SYN_DATA: [u8; 75] = [
    0x45, 0x00, 0x00, 0x4b, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x32, 0x30, 0xc0, 0x00, 0x02, 0x01,
    0xc6, 0x33, 0x64, 0x02, 0x9c, 0x42, 0x1f, 0x90, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x23, 0xfa, 0xf0, 0x9b, 0xa9, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
    0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07, 0x68, 0x65, 0x6c, 0x6c,
    0x6f, 0x2c, 0x20, 0x53, 0x59, 0x4e, 0x20, 0x64, 0x61, 0x74, 0x61,
];

const LINUX_OPTIONS: &[u8] = &[
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x03, 0x03, 0x07,
];
const ENO: &[u8] = &[0x45, 0x03, 0x23];

/// An independent checker: parses IPv4/IPv6 + TCP and verifies the IPv4 header checksum and the
/// TCP checksum with its own RFC 1071 sum. Prints "ok" or what failed.
const PY_CHECK: &str = r#"
import struct, sys
def s16(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return s
p = bytes.fromhex(sys.stdin.read().strip())
v = p[0] >> 4
if v == 4:
    ihl = (p[0] & 15) * 4; tot = struct.unpack("!H", p[2:4])[0]
    assert tot == len(p), "total length %d != %d" % (tot, len(p))
    assert s16(p[:ihl]) == 0xffff, "ip header checksum"
    seg = p[ihl:tot]; ph = p[12:20] + struct.pack("!BBH", 0, p[9], len(seg))
else:
    pl = struct.unpack("!H", p[4:6])[0]
    assert 40 + pl == len(p), "payload length %d != %d" % (pl, len(p) - 40)
    seg = p[40:]; ph = p[8:40] + struct.pack("!I3xB", len(seg), p[6])
doff = (seg[12] >> 4) * 4
assert 20 <= doff <= len(seg), "data offset"
assert s16(ph + seg) == 0xffff, "tcp checksum"
print("ok")
"#;

/// Runs [`PY_CHECK`] on `packet`; panics with Python's message unless it verifies.
fn python_verifies(packet: &[u8]) {
    let mut child = Command::new("python3")
        .args(["-c", PY_CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent checksum check (scripts/prereqs.sh)");
    let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(hex.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "python rejected {hex}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn options_of(packet: &[u8]) -> Vec<u8> {
    TcpIpPacket::new_checked(packet)
        .unwrap()
        .tcp_options()
        .to_vec()
}

#[test]
fn fixtures_verify_independently_and_here() {
    for p in [&V4_SYN[..], &V6_SYN, &V4_SYN_DATA] {
        python_verifies(p);
        assert_eq!(verify_checksums(p), Ok(()));
        let parsed = TcpIpPacket::new_checked(p).unwrap();
        assert_eq!(tcp_checksum(p), Ok(parsed.tcp().checksum()));
    }
}

#[test]
fn deconstruct_v4() {
    let ip = Ipv4Packet::new_checked(&V4_SYN[..]).unwrap();
    assert_eq!(ip.version(), 4);
    assert_eq!(ip.header_len(), 20);
    assert_eq!(ip.total_len(), 60);
    assert_eq!(ip.protocol(), IP_PROTOCOL_TCP);
    assert_eq!(ip.header_checksum(), 0x323f);
    assert!(ip.verify_header_checksum());
    assert!(!ip.is_fragment());
    assert_eq!(ip.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(ip.dst_addr(), Ipv4Addr::new(198, 51, 100, 2));
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((tcp.src_port(), tcp.dst_port()), (40000, 8080));
    assert_eq!(tcp.seq_number(), 0x0102_0304);
    assert_eq!(tcp.ack_number(), 0);
    assert_eq!(tcp.header_len(), 40);
    assert_eq!(tcp.flags(), TcpFlags::SYN);
    assert!(tcp.syn() && !tcp.ack() && !tcp.fin() && !tcp.rst() && !tcp.psh() && !tcp.urg());
    assert_eq!(tcp.window_len(), 64240);
    assert_eq!(tcp.checksum(), 0x3855);
    assert_eq!(tcp.urgent_at(), 0);
    assert_eq!(tcp.options(), LINUX_OPTIONS);
    assert!(tcp.payload().is_empty());
    let flow = Flow::from_packet(&V4_SYN).unwrap();
    assert_eq!(flow.src, "192.0.2.1:40000".parse().unwrap());
    assert_eq!(flow.dst, "198.51.100.2:8080".parse().unwrap());
    assert_eq!(flow.reversed().src, flow.dst);
}

#[test]
fn deconstruct_v6() {
    let ip = Ipv6Packet::new_checked(&V6_SYN[..]).unwrap();
    assert_eq!(ip.version(), 6);
    assert_eq!(ip.payload_len(), 40);
    assert_eq!(ip.next_header(), IP_PROTOCOL_TCP);
    assert_eq!(ip.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(ip.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
    let packet = TcpIpPacket::new_checked(&V6_SYN[..]).unwrap();
    assert_eq!(packet.version(), IpVersion::V6);
    assert_eq!(packet.ip_header_len(), 40);
    assert_eq!(packet.packet_len(), 80);
    let tcp = packet.tcp();
    assert_eq!((tcp.src_port(), tcp.dst_port()), (40001, 8080));
    assert_eq!(tcp.seq_number(), 0xa0b0_c0d0);
    assert_eq!(tcp.options(), LINUX_OPTIONS);
    assert_eq!(
        packet.flow().src,
        "[2001:db8::1]:40001".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn construct_matches_fixture() {
    let mut buf = vec![0u8; 60];
    buf[0] = 0x45;
    buf[4..10].copy_from_slice(&[0x1c, 0x46, 0x40, 0x00, 0x40, IP_PROTOCOL_TCP]);
    buf[12..16].copy_from_slice(&[192, 0, 2, 1]);
    buf[16..20].copy_from_slice(&[198, 51, 100, 2]);
    Ipv4Packet::new_unchecked(&mut buf[..]).set_total_len(60);
    {
        let mut tcp = TcpPacket::new_unchecked(&mut buf[20..]);
        tcp.set_src_port(40000);
        tcp.set_dst_port(8080);
        tcp.set_seq_number(0x0102_0304);
        tcp.set_ack_number(0);
        tcp.set_header_len(40);
        tcp.set_flags(TcpFlags::SYN);
        tcp.set_window_len(64240);
        tcp.set_urgent_at(0);
        tcp.options_mut().copy_from_slice(LINUX_OPTIONS);
        assert!(tcp.payload_mut().is_empty());
    }
    TcpIpPacket::new_checked(&mut buf[..])
        .unwrap()
        .fill_checksums();
    assert_eq!(buf, V4_SYN);
}

/// The daemon's path: options area -> insert_option(ENO) -> rewrite_tcp_options; checked here
/// and by Python.
fn insert_eno(packet: &[u8]) -> Vec<u8> {
    let area = insert_option(&options_of(packet), ENO).unwrap();
    let out = rewrite_tcp_options(packet, area.as_bytes()).unwrap();
    python_verifies(&out);
    assert_eq!(verify_checksums(&out), Ok(()));
    out
}

#[test]
fn insert_eno_into_v4_syn() {
    let out = insert_eno(&V4_SYN);
    assert_eq!(out.len(), V4_SYN.len() + 4);
    let parsed = TcpIpPacket::new_checked(&out[..]).unwrap();
    let ip = Ipv4Packet::new_checked(&out[..]).unwrap();
    assert_eq!(ip.total_len(), 64);
    assert_eq!(&out[..2], &V4_SYN[..2], "version, IHL, TOS kept");
    assert_eq!(&out[4..10], &V4_SYN[4..10], "ID, flags, TTL, protocol kept");
    let tcp = parsed.tcp();
    assert_eq!(tcp.header_len(), 44);
    assert_eq!(&out[20..32], &V4_SYN[20..32], "ports, seq, ack kept");
    assert_eq!(tcp.flags(), TcpFlags::SYN);
    assert_eq!(tcp.window_len(), 64240);
    // 19 bytes of real options (the alignment NOP reclaimed), ENO, then NOP padding.
    let opts: Vec<_> = TcpOptions::new(tcp.options()).map(Result::unwrap).collect();
    assert_eq!(opts.len(), 7);
    assert!(matches!(opts[4], TcpOption::Eno(e) if e.as_bytes() == ENO));
    assert_eq!(&tcp.options()[..16], &LINUX_OPTIONS[..16]);
    assert_eq!(
        &tcp.options()[16..],
        &[0x03, 0x03, 0x07, 0x45, 0x03, 0x23, 0x01, 0x01]
    );
    assert_eq!(parsed.flow(), Flow::from_packet(&V4_SYN).unwrap());
}

#[test]
fn insert_eno_into_v6_syn() {
    let out = insert_eno(&V6_SYN);
    let ip = Ipv6Packet::new_checked(&out[..]).unwrap();
    assert_eq!(ip.payload_len(), 44);
    assert_eq!(&out[..4], &V6_SYN[..4], "version, class, flow label kept");
    assert_eq!(
        &out[6..40],
        &V6_SYN[6..40],
        "next header, hop limit, addresses kept"
    );
    let parsed = TcpIpPacket::new_checked(&out[..]).unwrap();
    assert_eq!(parsed.tcp().header_len(), 44);
    assert!(TcpOptions::new(parsed.tcp_options())
        .any(|o| matches!(o, Ok(TcpOption::Eno(e)) if e.as_bytes() == ENO)));
}

#[test]
fn rewrite_keeps_payload_and_can_shrink() {
    let out = insert_eno(&V4_SYN_DATA);
    let parsed = TcpIpPacket::new_checked(&out[..]).unwrap();
    assert_eq!(parsed.tcp_payload(), b"hello, SYN data");
    assert_eq!(parsed.tcp().flags(), TcpFlags(0x23));
    // Shrinking to no options at all (IPv6 too).
    for p in [&V4_SYN_DATA[..], &V6_SYN] {
        let out = rewrite_tcp_options(p, &[]).unwrap();
        python_verifies(&out);
        let parsed = TcpIpPacket::new_checked(&out[..]).unwrap();
        assert_eq!(parsed.tcp().header_len(), 20);
        assert_eq!(
            parsed.tcp_payload(),
            TcpIpPacket::new_checked(p).unwrap().tcp_payload()
        );
    }
    // The caller-buffer form reuses and clears the buffer.
    let mut buf = vec![0xaa; 3];
    rewrite_tcp_options_into(&V6_SYN, LINUX_OPTIONS, &mut buf).unwrap();
    assert_eq!(buf, V6_SYN);
}

#[test]
fn strip_payload_v4_and_v6() {
    let out = strip_payload(&V4_SYN_DATA).unwrap();
    python_verifies(&out);
    let parsed = TcpIpPacket::new_checked(&out[..]).unwrap();
    assert!(parsed.tcp_payload().is_empty());
    assert_eq!(parsed.tcp_options(), LINUX_OPTIONS);
    assert_eq!(
        parsed.tcp().flags(),
        TcpFlags::SYN,
        "FIN and URG cleared with the data"
    );
    assert_eq!(parsed.tcp().seq_number(), 7);
    assert_eq!(out.len(), 60);

    // An IPv6 SYN with data, built here, then stripped.
    let mut v6 = V6_SYN.to_vec();
    v6.extend_from_slice(b"early data");
    Ipv6Packet::new_unchecked(&mut v6[..]).set_payload_len(50);
    TcpIpPacket::new_checked(&mut v6[..])
        .unwrap()
        .fill_checksums();
    python_verifies(&v6);
    let out = strip_payload(&v6).unwrap();
    python_verifies(&out);
    assert_eq!(out, V6_SYN);
}

#[test]
fn trailing_bytes_after_ip_length_are_ignored_and_dropped() {
    let mut padded = V4_SYN.to_vec();
    padded.extend_from_slice(&[0xee; 6]); // Ethernet-style padding
    let parsed = TcpIpPacket::new_checked(&padded[..]).unwrap();
    assert_eq!(parsed.packet_len(), 60);
    assert!(parsed.tcp_payload().is_empty());
    assert_eq!(verify_checksums(&padded), Ok(()));
    assert_eq!(rewrite_tcp_options(&padded, LINUX_OPTIONS).unwrap(), V4_SYN);
}

#[test]
fn bad_checksums_are_named() {
    let mut p = V4_SYN;
    p[8] ^= 1; // TTL
    assert_eq!(
        verify_checksums(&p),
        Err(PacketError::BadChecksum {
            layer: "IPv4 header"
        })
    );
    let mut p = V4_SYN;
    p[59] ^= 1;
    assert_eq!(
        verify_checksums(&p),
        Err(PacketError::BadChecksum { layer: "TCP" })
    );
    let mut p = V6_SYN;
    p[39] ^= 1; // destination address is in the pseudo-header
    assert_eq!(
        verify_checksums(&p),
        Err(PacketError::BadChecksum { layer: "TCP" })
    );
}

#[test]
fn malformed_and_not_plain_tcp() {
    let trunc = |f| Err(PacketError::Decode(DecodeError::truncated(f)));
    let inval = |f| Err(PacketError::Decode(DecodeError::invalid(f)));
    let not_tcp = |reason| Err(PacketError::NotPlainTcp { reason });
    let with = |base: &[u8], i: usize, v: u8| {
        let mut p = base.to_vec();
        p[i] = v;
        p
    };
    let cases: Vec<(Vec<u8>, Result<(), PacketError>)> = vec![
        (vec![], trunc("IP header")),
        (V4_SYN[..19].to_vec(), trunc("IPv4 header")),
        (V6_SYN[..39].to_vec(), trunc("IPv6 header")),
        (with(&V4_SYN, 0, 0x55), inval("IP version")),
        (with(&V4_SYN, 0, 0x44), inval("IPv4 header length")),
        (with(&V4_SYN, 0, 0x4f), trunc("TCP header")), // 60-byte IPv4 header, no room left
        (with(&V4_SYN, 3, 61), trunc("IPv4 total length")),
        (with(&V4_SYN, 3, 19), inval("IPv4 total length")),
        (with(&V6_SYN, 5, 41), trunc("IPv6 payload length")),
        (with(&V4_SYN, 3, 39), trunc("TCP header")),
        (with(&V4_SYN, 32, 0x40), inval("TCP data offset")),
        (with(&V4_SYN, 32, 0xb0), trunc("TCP data offset")),
        (with(&V4_SYN, 9, 17), not_tcp("IPv4 protocol is not TCP")),
        (with(&V4_SYN, 6, 0x20), not_tcp("IPv4 fragment")),
        (with(&V4_SYN, 7, 0x01), not_tcp("IPv4 fragment")),
        (
            with(&V6_SYN, 6, 0), // hop-by-hop options header
            not_tcp("IPv6 next header is not TCP (extension headers or another protocol)"),
        ),
    ];
    for (packet, want) in cases {
        let got = TcpIpPacket::new_checked(&packet[..]).map(|_| ());
        assert_eq!(got, want, "{packet:02x?}");
        assert_eq!(rewrite_tcp_options(&packet, &[]).map(|_| ()), want);
        assert_eq!(strip_payload(&packet).map(|_| ()), want);
        assert_eq!(tcp_checksum(&packet).map(|_| ()), want);
    }
}

#[test]
fn options_length_and_too_long() {
    for len in [1, 3, 5, 41, 44] {
        let opts = vec![0x01; len];
        assert_eq!(
            rewrite_tcp_options(&V4_SYN, &opts),
            Err(PacketError::OptionsLength { len })
        );
    }
    // An IPv4 packet at the 65535-byte limit cannot grow.
    let mut big = V4_SYN.to_vec();
    big.resize(0xffff, 0x61);
    Ipv4Packet::new_unchecked(&mut big[..]).set_total_len(0xffff);
    TcpIpPacket::new_checked(&mut big[..])
        .unwrap()
        .fill_checksums();
    assert_eq!(
        rewrite_tcp_options(&big, &[0x01; 24]),
        Err(PacketError::TooLong { len: 0xffff + 4 })
    );
    // Same size is fine, and so is the IPv6 limit (payload length, not total).
    assert!(rewrite_tcp_options(&big, LINUX_OPTIONS).unwrap() == big);
    let mut big6 = V6_SYN.to_vec();
    big6.resize(40 + 0xffff, 0x61);
    Ipv6Packet::new_unchecked(&mut big6[..]).set_payload_len(0xffff);
    assert_eq!(
        rewrite_tcp_options(&big6, &[0x01; 24]),
        Err(PacketError::TooLong {
            len: 40 + 0xffff + 4
        })
    );
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..120),
                        opts in proptest::collection::vec(any::<u8>(), 0..48)) {
            if let Ok(p) = TcpIpPacket::new_checked(&data[..]) {
                let tcp = p.tcp();
                let _ = (tcp.options(), tcp.payload(), tcp.flags(), p.flow());
                let _ = p.verify_checksums();
            }
            let _ = Ipv4Packet::new_checked(&data[..]).map(|p| p.payload().len());
            let _ = Ipv6Packet::new_checked(&data[..]).map(|p| p.payload().len());
            let _ = TcpPacket::new_checked(&data[..]).map(|p| p.payload().len());
            let _ = rewrite_tcp_options(&data, &opts);
            let _ = strip_payload(&data);
            let _ = tcp_checksum(&data);
        }

        /// Any prefix of a valid packet with any bytes patched in either parses or errors.
        #[test]
        fn mutated_fixtures_never_panic(idx in 0usize..80, val in any::<u8>(), cut in 0usize..81,
                                        v6 in any::<bool>()) {
            let mut p = if v6 { V6_SYN.to_vec() } else { V4_SYN_DATA.to_vec() };
            let idx = idx % p.len();
            p[idx] = val;
            p.truncate(cut.min(p.len()));
            let _ = rewrite_tcp_options(&p, LINUX_OPTIONS);
            let _ = strip_payload(&p);
        }

        #[test]
        fn rewrite_verifies_and_keeps_payload(
            v6 in any::<bool>(),
            words in 0usize..=10,
            fill in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut base = if v6 { V6_SYN.to_vec() } else { V4_SYN.to_vec() };
            base.extend_from_slice(&payload);
            let len = base.len();
            if v6 {
                Ipv6Packet::new_unchecked(&mut base[..]).set_payload_len((len - 40) as u16);
            } else {
                Ipv4Packet::new_unchecked(&mut base[..]).set_total_len(len as u16);
            }
            TcpIpPacket::new_checked(&mut base[..]).unwrap().fill_checksums();
            let opts = vec![fill; words * 4];
            let out = rewrite_tcp_options(&base, &opts).unwrap();
            prop_assert_eq!(verify_checksums(&out), Ok(()));
            let parsed = TcpIpPacket::new_checked(&out[..]).unwrap();
            prop_assert_eq!(parsed.tcp_options(), &opts[..]);
            prop_assert_eq!(parsed.tcp_payload(), &payload[..]);
            prop_assert_eq!(parsed.flow(), Flow::from_packet(&base).unwrap());
            let stripped = strip_payload(&out).unwrap();
            prop_assert_eq!(verify_checksums(&stripped), Ok(()));
        }
    }
}
