//! Bad input: files that are not captures, unsupported link types, damaged captures, random
//! bytes. Every case is a typed error or a report that says what is wrong; none panics.

mod common;

use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use tcpcrypt_inspect::capture::{self, linktype, CaptureError};
use tcpcrypt_inspect::inspect;
use tcpcrypt_inspect::pcap_writer::{Format, Writer};
use tcpcrypt_proto::keylog::KeyLogFile;

#[test]
fn not_a_capture() {
    assert_eq!(
        inspect(b"", None).unwrap_err(),
        CaptureError::Truncated("file magic")
    );
    assert!(matches!(
        inspect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None).unwrap_err(),
        CaptureError::UnknownFormat(_)
    ));
    // A pcap magic and nothing else.
    assert_eq!(
        inspect(&0xa1b2_c3d4u32.to_le_bytes(), None).unwrap_err(),
        CaptureError::Truncated("pcap file header")
    );
}

#[test]
fn unsupported_link_types_are_named() {
    for format in [
        Format::Pcap {
            big_endian: false,
            nanos: false,
        },
        Format::Pcapng { big_endian: true },
    ] {
        // 105 = IEEE 802.11, 0 = BSD loopback.
        for link in [105u32, 0] {
            let w = Writer::new(format, link).finish();
            assert_eq!(
                inspect(&w, None).unwrap_err(),
                CaptureError::UnsupportedLinkType(link)
            );
            assert!(CaptureError::UnsupportedLinkType(link)
                .to_string()
                .contains("unsupported link type"));
        }
    }
}

#[test]
fn non_ip_and_non_tcp_records_are_counted_not_misread() {
    let mut w = Writer::new(
        Format::Pcap {
            big_endian: false,
            nanos: false,
        },
        linktype::ETHERNET,
    );
    // ARP.
    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    w.push_frame(1, &arp);
    // UDP over IPv4.
    let mut udp = vec![
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    udp.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
    w.push_ip(2, &udp);
    // A TCP packet cut by the snap length (IP total length larger than the record).
    let mut cut = tcpcrypt_inspect::plain_pcap::segment(
        v4(1, 1),
        v4(2, 2),
        1,
        0,
        tcpcrypt_proto::wire::packet::TcpFlags::SYN,
        &[1; 100],
    );
    cut.truncate(60);
    w.push_ip(3, &cut);
    let ins = inspect(&w.finish(), None).unwrap();
    let c = &ins.report.capture;
    assert_eq!((c.records, c.not_ip, c.not_tcp, c.unreadable), (3, 1, 1, 1));
    assert!(ins.report.connections.is_empty());
}

#[test]
fn bad_key_log_lines_are_typed_errors_with_line_numbers() {
    let err = KeyLogFile::parse("# ok\nTCPCRYPT_XX 00 00\n").unwrap_err();
    assert_eq!(err.line, 2);
}

fn valid_capture(format: Format, link: u32) -> (Vec<u8>, String) {
    let (bytes, log, _) = valid_capture_and_data(format, link);
    (bytes, log)
}

/// A capture, its key log, and the SHA-256 of what each side sent.
fn valid_capture_and_data(format: Format, link: u32) -> (Vec<u8>, String, [String; 2]) {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 41, &log), host("b", 42, &log));
    let sc = Script {
        client_data: data(3000, 3),
        server_data: data(2000, 4),
        client_rekeys: 1,
        close: true,
        ..Script::default()
    };
    let conn = clean(&mut a, &mut b, v4(1, 4000), v4(2, 80), &sc);
    (
        capture(
            format,
            link,
            &packets(
                &conn,
                Wire {
                    mss: 500,
                    ..Wire::default()
                },
            ),
        ),
        log.text(),
        [sha(&sc.client_data), sha(&sc.server_data)],
    )
}

#[test]
fn every_truncation_of_a_capture_is_handled() {
    for format in [
        Format::Pcap {
            big_endian: true,
            nanos: true,
        },
        Format::Pcapng { big_endian: false },
    ] {
        let (full, log, shas) = valid_capture_and_data(format, linktype::LINUX_SLL2);
        let log = KeyLogFile::parse(&log).unwrap();
        let mut truncated_reports = 0;
        for len in 0..full.len() {
            match inspect(&full[..len], Some(&log)) {
                Err(_) => {}
                Ok(ins) => {
                    for c in &ins.report.connections {
                        // A clean end only when both FINp frames, and so every byte before
                        // them, are in the cut capture.
                        if c.end == tcpcrypt_inspect::report::End::Finp {
                            assert_eq!(
                                c.plaintext_sha256.client_to_server.as_ref(),
                                Some(&shas[0]),
                                "cut at {len}"
                            );
                            assert_eq!(
                                c.plaintext_sha256.server_to_client.as_ref(),
                                Some(&shas[1]),
                                "cut at {len}"
                            );
                        }
                        truncated_reports +=
                            usize::from(c.end == tcpcrypt_inspect::report::End::Truncated);
                    }
                }
            }
        }
        assert!(truncated_reports > 0);
        let ins = inspect(&full, Some(&log)).unwrap();
        assert_eq!(
            ins.report.connections[0].end,
            tcpcrypt_inspect::report::End::Finp
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = capture::read(&bytes);
        let _ = inspect(&bytes, None);
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        ng in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = if ng {
            Writer::new(Format::Pcapng { big_endian: false }, linktype::ETHERNET).finish()
        } else {
            Writer::new(Format::Pcap { big_endian: false, nanos: false }, linktype::RAW).finish()
        };
        bytes.extend_from_slice(&body);
        let _ = inspect(&bytes, None);
    }

    #[test]
    fn mutated_captures_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let (mut bytes, log) = valid_capture(Format::Pcap { big_endian: false, nanos: false }, linktype::ETHERNET);
        let log = KeyLogFile::parse(&log).unwrap();
        for (i, x) in flips {
            let at = i.index(bytes.len());
            bytes[at] ^= x | 1;
        }
        if let Ok(ins) = inspect(&bytes, Some(&log)) {
            let _ = ins.report.to_json();
            let _ = ins.report.to_text();
        }
    }
}

/// A pcapng with an obsolete Packet Block (type 2) and a second section in the other byte
/// order: both packets are read.
#[test]
fn pcapng_obsolete_packet_block_and_sections_of_both_byte_orders() {
    let ip = tcpcrypt_inspect::plain_pcap::segment(
        v4(1, 1),
        v4(2, 2),
        1,
        0,
        tcpcrypt_proto::wire::packet::TcpFlags::SYN,
        &[],
    );
    let mut le = Writer::new(Format::Pcapng { big_endian: false }, linktype::RAW).finish();
    // Packet Block: type 2, length, interface 0 (u16), drops (u16), ts hi, ts lo, caplen, len.
    let total = 32 + ip.len().div_ceil(4) * 4;
    for v in [2u32, total as u32] {
        le.extend_from_slice(&v.to_le_bytes());
    }
    le.extend_from_slice(&[0, 0, 0, 0]);
    for v in [0u32, 5, ip.len() as u32, ip.len() as u32] {
        le.extend_from_slice(&v.to_le_bytes());
    }
    le.extend_from_slice(&ip);
    le.resize(le.len() + (total - 32 - ip.len()), 0);
    le.extend_from_slice(&(total as u32).to_le_bytes());
    let mut be = Writer::new(Format::Pcapng { big_endian: true }, linktype::IPV4);
    be.push_ip(7, &ip);
    le.extend_from_slice(&be.finish());
    let c = capture::read(&le).unwrap();
    assert_eq!(c.damaged, None);
    assert_eq!(c.records.len(), 2);
    assert_eq!(c.records[0].data, ip);
    assert_eq!((c.records[1].link, c.records[1].ts_ns), (linktype::IPV4, 7));
    assert_eq!(c.records[1].data, ip);
}
