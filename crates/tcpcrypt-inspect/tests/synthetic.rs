//! The inspector on synthetic captures of the simulated hosts: every TEP and AEAD, resumption,
//! rekeys, IPv6, every capture format and link type, retransmissions and reordering, fallbacks,
//! and the negative cases (a tampered byte, a wrong key, a truncated capture).

mod common;

use std::sync::Arc;

use common::*;
use tcpcrypt_inspect::capture::linktype;
use tcpcrypt_inspect::pcap_writer::Format;
use tcpcrypt_inspect::report::{kind, ConnectionReport, End, Keys, Outcome};
use tcpcrypt_inspect::{inspect, Inspection};
use tcpcrypt_proto::keylog::KeyLogFile;
use tcpcrypt_proto::{AeadId, TepId};
use tcpcrypt_tests::endpoint::{strip_eno, Dir};

fn run(capture: &[u8], keylog: Option<&str>) -> Inspection {
    let log = keylog.map(|k| KeyLogFile::parse(k).expect("key log parses"));
    inspect(capture, log.as_ref()).expect("capture reads")
}

fn script(len_c: usize, len_s: usize) -> Script {
    Script {
        client_data: data(len_c, 1),
        server_data: data(len_s, 2),
        close: true,
        ..Script::default()
    }
}

/// The report agrees with what the two sessions did, byte for byte.
fn assert_decrypted(r: &ConnectionReport, conn: &Conn) {
    assert_eq!(r.outcome, Outcome::Tcpcrypt, "{r:#?}");
    assert_eq!(r.keys, Keys::Known, "{r:#?}");
    assert_eq!(
        r.session_id.as_deref(),
        conn.session_id.map(|s| s.to_hex()).as_deref()
    );
    assert_eq!(r.aead, conn.aead.map(|a| a.to_string()));
    assert_eq!(r.resumed, conn.resumed);
    assert_eq!(
        r.plaintext_bytes.client_to_server,
        conn.server_received.len() as u64
    );
    assert_eq!(
        r.plaintext_bytes.server_to_client,
        conn.client_received.len() as u64
    );
    assert_eq!(
        r.plaintext_sha256.client_to_server.as_deref(),
        Some(sha(&conn.server_received).as_str())
    );
    assert_eq!(
        r.plaintext_sha256.server_to_client.as_deref(),
        Some(sha(&conn.client_received).as_str())
    );
    assert_eq!(r.rekeys.client_to_server, conn.client_generation);
    assert_eq!(r.rekeys.server_to_client, conn.server_generation);
    assert!(r.frames.client_to_server > 0 && r.frames.server_to_client > 0);
    assert!(r.anomalies.is_empty(), "{:#?}", r.anomalies);
}

#[test]
fn fresh_every_tep_and_aead_decrypts_to_the_application_bytes() {
    let teps = TepId::TCPCRYPT_ALL;
    for (i, tep) in teps.into_iter().enumerate() {
        for (j, aead) in AeadId::ALL.into_iter().enumerate() {
            let log = Arc::new(Recorder::default());
            let seed = (i * 10 + j) as u64;
            let (mut a, mut b) = (host("a", seed, &log), host("b", seed + 100, &log));
            for h in [&mut a, &mut b] {
                with_tep(h, tep);
                with_aead(h, aead);
            }
            let sc = script(5000 + i * 7, 3000 + j * 13);
            let conn = clean(&mut a, &mut b, v4(1, 40000), v4(2, 8080), &sc);
            assert_eq!(conn.server_received, sc.client_data);
            assert_eq!(conn.client_received, sc.server_data);
            let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
            let r = &ins.report.connections[0];
            assert_decrypted(r, &conn);
            assert_eq!(r.tep.as_deref(), Some(tep.to_string().as_str()));
            assert_eq!(r.aead.as_deref(), Some(aead.to_string().as_str()));
            assert_eq!(r.end, End::Finp);
            assert_eq!(r.client, "10.77.0.1:40000");
            assert_eq!(r.server, "10.77.0.2:8080");
            let roles = r.roles.as_ref().unwrap();
            assert_eq!((roles.client.as_str(), roles.server.as_str()), ("A", "B"));
            // The plaintext handed out is exactly the applications' bytes.
            assert_eq!(
                ins.connections[0].plaintext.client_to_server.as_deref(),
                Some(&sc.client_data[..])
            );
            assert_eq!(
                ins.connections[0].plaintext.server_to_client.as_deref(),
                Some(&sc.server_data[..])
            );
        }
    }
}

#[test]
fn without_a_key_log_frames_are_counted_but_nothing_is_decrypted() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 1, &log), host("b", 2, &log));
    let sc = Script {
        client_rekeys: 2,
        ..script(20_000, 100)
    };
    let conn = clean(&mut a, &mut b, v4(1, 40001), v4(2, 80), &sc);
    let ins = run(&pcap(&packets(&conn, Wire::default())), None);
    let r = &ins.report.connections[0];
    assert_eq!(r.outcome, Outcome::Tcpcrypt);
    assert_eq!(r.keys, Keys::Unknown);
    assert_eq!(r.session_id, None);
    assert_eq!(r.plaintext_sha256.client_to_server, None);
    assert_eq!(r.plaintext_bytes.client_to_server, 0);
    assert_eq!(r.rekeys.client_to_server, conn.client_generation);
    assert!(conn.client_generation >= 2);
    // Without keys FINp cannot be checked: the TCP FINs give "fin", never "finp".
    assert_eq!(r.end, End::Fin);
    // The same capture with the key log has the same frame counts.
    let with = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    assert_eq!(with.report.connections[0].frames, r.frames);
    assert_decrypted(&with.report.connections[0], &conn);
}

#[test]
fn urgent_frames_are_reported_with_their_marks() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 37, &log), host("b", 38, &log));
    let sc = Script {
        client_urgent: vec![b"!".to_vec(), b"abc".to_vec()],
        ..script(1000, 10)
    };
    let conn = clean(&mut a, &mut b, v4(1, 40003), v4(2, 80), &sc);
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    let r = &ins.report.connections[0];
    assert_decrypted(r, &conn);
    // Marks index the last urgent byte in the client's application stream.
    assert_eq!(r.urgent_marks.client_to_server, vec![1000, 1003]);
    assert!(r.urgent_marks.server_to_client.is_empty());
    assert_eq!(conn.server_received.len(), 1004);
}

#[test]
fn rekeyed_both_ways_follows_every_generation() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 3, &log), host("b", 4, &log));
    let sc = Script {
        client_rekeys: 4,
        server_rekeys: 3,
        ..script(40_000, 30_000)
    };
    let conn = clean(&mut a, &mut b, v4(1, 40002), v4(2, 80), &sc);
    assert!(conn.client_generation >= 4 && conn.server_generation >= 3);
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    assert_decrypted(&ins.report.connections[0], &conn);
    assert_eq!(ins.report.connections[0].end, End::Finp);
}

#[test]
fn resumed_session_after_a_fresh_one_in_the_same_capture() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 5, &log), host("b", 6, &log));
    let first = clean(&mut a, &mut b, v4(1, 40010), v4(2, 80), &script(3000, 3000));
    let second = clean(&mut a, &mut b, v4(1, 40011), v4(2, 80), &script(7000, 1234));
    assert!(
        !first.resumed && second.resumed,
        "the simulated hosts resumed"
    );
    let mut pk = packets(&first, Wire::default());
    pk.extend(packets(&second, Wire::default()));
    let ins = run(&pcap(&pk), Some(&log.text()));
    assert_eq!(ins.report.connections.len(), 2);
    assert_decrypted(&ins.report.connections[0], &first);
    let r = &ins.report.connections[1];
    assert_decrypted(r, &second);
    assert!(r.resumed);
    assert!(
        r.session_id.as_deref().unwrap().starts_with('a')
            || r.session_id.as_deref().unwrap().starts_with('b')
    );
    let client = r.eno.client.as_ref().unwrap();
    assert!(
        client.teps.iter().any(|t| t.resumption.is_some()),
        "{client:#?}"
    );
    // Without the key log the resumption is still recognised, unconfirmed.
    let blind = run(&pcap(&pk), None);
    let r = &blind.report.connections[1];
    assert_eq!(
        (r.outcome, r.resumed, r.keys),
        (Outcome::Tcpcrypt, true, Keys::Unknown)
    );
}

#[test]
fn ipv6_and_every_format_and_link_type_give_the_same_report() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 7, &log), host("b", 8, &log));
    let conn6 = clean(
        &mut a,
        &mut b,
        v6(1, 40020),
        v6(2, 443),
        &script(4000, 2000),
    );
    let conn4 = clean(
        &mut a,
        &mut b,
        v4(1, 40021),
        v4(2, 443),
        &script(1000, 9000),
    );
    let formats = [
        Format::Pcap {
            big_endian: false,
            nanos: false,
        },
        Format::Pcap {
            big_endian: true,
            nanos: false,
        },
        Format::Pcap {
            big_endian: false,
            nanos: true,
        },
        Format::Pcap {
            big_endian: true,
            nanos: true,
        },
        Format::Pcapng { big_endian: false },
        Format::Pcapng { big_endian: true },
    ];
    let mut reference: Option<Vec<ConnectionReport>> = None;
    for format in formats {
        for link in [
            linktype::ETHERNET,
            linktype::LINUX_SLL,
            linktype::LINUX_SLL2,
            linktype::RAW,
            linktype::RAW_12,
        ] {
            let mut pk = packets(&conn6, Wire::default());
            pk.extend(packets(&conn4, Wire::default()));
            let ins = run(&capture(format, link, &pk), Some(&log.text()));
            assert_eq!(ins.report.connections.len(), 2, "{format:?} {link}");
            assert_decrypted(&ins.report.connections[0], &conn6);
            assert_decrypted(&ins.report.connections[1], &conn4);
            assert_eq!(ins.report.connections[0].client, "[fd77::1]:40020");
            match &reference {
                None => reference = Some(ins.report.connections.clone()),
                Some(r) => assert_eq!(r, &ins.report.connections, "{format:?} {link}"),
            }
        }
        // The per-family raw link types.
        for (link, conn) in [(linktype::IPV6, &conn6), (linktype::IPV4, &conn4)] {
            let ins = run(
                &capture(format, link, &packets(conn, Wire::default())),
                Some(&log.text()),
            );
            assert_decrypted(&ins.report.connections[0], conn);
        }
    }
}

#[test]
fn a_reused_four_tuple_is_two_connections() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 35, &log), host("b", 36, &log));
    let first = clean(&mut a, &mut b, v4(1, 40100), v4(2, 80), &script(1500, 700));
    let second = clean(&mut a, &mut b, v4(1, 40100), v4(2, 80), &script(900, 2500));
    let mut pk = packets(&first, Wire::default());
    pk.extend(packets(
        &second,
        Wire {
            isn_shift: 0x1234_5678,
            ..Wire::default()
        },
    ));
    let ins = run(&pcap(&pk), Some(&log.text()));
    assert_eq!(ins.report.connections.len(), 2);
    assert_decrypted(&ins.report.connections[0], &first);
    assert_decrypted(&ins.report.connections[1], &second);
}

#[test]
fn simultaneous_open_with_the_client_as_host_b() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 33, &log), host("b", 34, &log));
    // Both open actively; the b bit (RFC 8547 §4.3) makes the first SYN's sender host B.
    a.eno = a.eno.clone().with_passive_role(true);
    let sc = Script {
        server_rekeys: 1,
        ..script(3333, 4444)
    };
    let conn = simultaneous(&mut a, &mut b, v4(1, 5000), v4(2, 5001), &sc);
    assert!(
        conn.session_id.is_some(),
        "the simulated hosts enabled tcpcrypt"
    );
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    let r = &ins.report.connections[0];
    assert_decrypted(r, &conn);
    let roles = r.roles.as_ref().unwrap();
    assert_eq!((roles.client.as_str(), roles.server.as_str()), ("B", "A"));
    assert!(r.eno.client.as_ref().unwrap().b);
    assert_eq!(r.end, End::Finp);
}

#[test]
fn retransmitted_and_reordered_segments_reassemble() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 9, &log), host("b", 10, &log));
    let sc = Script {
        client_rekeys: 1,
        ..script(12_345, 6_789)
    };
    let conn = clean(&mut a, &mut b, v4(1, 40030), v4(2, 80), &sc);
    let wire = Wire {
        mss: 333,
        retransmit: true,
        reorder: true,
        ..Wire::default()
    };
    let ins = run(&pcap(&packets(&conn, wire)), Some(&log.text()));
    let r = &ins.report.connections[0];
    assert_decrypted(r, &conn);
    assert_eq!(r.end, End::Finp);
}

#[test]
fn fallbacks_are_named_and_their_plain_bytes_reported() {
    let log = Arc::new(Recorder::default());
    let sc = script(2000, 3000);
    // ENO stripped from the SYN-ACK: the client's offer went unanswered.
    let (mut a, mut b) = (host("a", 11, &log), host("b", 12, &log));
    let mut path = strip_eno(|s| s.dir == Dir::BToA && s.flags.syn);
    let conn = connection(&mut a, &mut b, &mut path, v4(1, 40040), v4(2, 80), &sc);
    let r = run(&pcap(&packets(&conn, Wire::default())), None)
        .report
        .connections[0]
        .clone();
    assert_eq!(r.outcome, Outcome::Fallback);
    assert_eq!(r.fallback_reason.as_deref(), Some("missing_eno"));
    assert!(r.eno.client.is_some() && r.eno.server.is_none());
    assert_eq!(
        r.plaintext_sha256.client_to_server.as_deref(),
        Some(sha(&sc.client_data).as_str())
    );
    assert_eq!(
        r.plaintext_sha256.server_to_client.as_deref(),
        Some(sha(&sc.server_data).as_str())
    );
    assert_eq!((r.end, r.keys), (End::Fin, Keys::Unknown));

    // ENO stripped from the client's SYN: plain TCP.
    let (mut a, mut b) = (host("a", 13, &log), host("b", 14, &log));
    let mut path = strip_eno(|s| s.dir == Dir::AToB);
    let conn = connection(&mut a, &mut b, &mut path, v4(1, 40041), v4(2, 80), &sc);
    let r = run(&pcap(&packets(&conn, Wire::default())), None)
        .report
        .connections[0]
        .clone();
    assert_eq!(
        (r.outcome, r.fallback_reason.as_deref()),
        (Outcome::Plain, None)
    );

    // No common TEP: B answers without ENO.
    let (mut a, mut b) = (host("a", 15, &log), host("b", 16, &log));
    with_tep(&mut a, TepId::TCPCRYPT_ECDHE_P256);
    with_tep(&mut b, TepId::TCPCRYPT_ECDHE_CURVE25519);
    let conn = clean(&mut a, &mut b, v4(1, 40042), v4(2, 80), &sc);
    let r = run(&pcap(&packets(&conn, Wire::default())), None)
        .report
        .connections[0]
        .clone();
    assert_eq!(r.outcome, Outcome::Fallback);
    assert_eq!(r.eno.client.as_ref().unwrap().teps.len(), 1);

    // The legacy kind-253 encoding only (a middlebox rewrote kind 69 in the SYN).
    let (mut a, mut b) = (host("a", 17, &log), host("b", 18, &log));
    let mut path = |s: &mut tcpcrypt_tests::endpoint::Segment| {
        if s.dir == Dir::AToB && s.flags.syn {
            legacy_rewrite(&mut s.options);
        }
    };
    let conn = connection(&mut a, &mut b, &mut path, v4(1, 40043), v4(2, 80), &sc);
    let r = run(&pcap(&packets(&conn, Wire::default())), None)
        .report
        .connections[0]
        .clone();
    assert_eq!(r.outcome, Outcome::Fallback);
    assert_eq!(r.fallback_reason.as_deref(), Some("legacy_eno_only"));
    assert!(r.legacy_eno_seen && r.eno.client_legacy);

    // ENO missing from the client's third-segment ACK.
    let (mut a, mut b) = (host("a", 19, &log), host("b", 20, &log));
    let mut path = strip_eno(|s| s.dir == Dir::AToB && !s.flags.syn && !s.flags.payload);
    let conn = connection(&mut a, &mut b, &mut path, v4(1, 40044), v4(2, 80), &sc);
    let r = run(&pcap(&packets(&conn, Wire::default())), None)
        .report
        .connections[0]
        .clone();
    assert_eq!(r.outcome, Outcome::Fallback);
    assert_eq!(r.fallback_reason.as_deref(), Some("missing_eno"));
    assert!(
        r.anomalies
            .iter()
            .any(|a| a.kind == kind::MISSING_ENO_FIRST_ACK),
        "{r:#?}"
    );
    assert_eq!(r.eno.client_first_ack_eno, Some(false));
}

/// Rewrites the kind-69 option in an options area into kind 253 with ExID 0x454E (same
/// length plus two bytes), as a draft-era middlebox would.
fn legacy_rewrite(options: &mut Vec<u8>) {
    use tcpcrypt_proto::wire::tcp_option::{TcpOption, TcpOptions};
    let mut out = Vec::new();
    for opt in TcpOptions::new(options).flatten() {
        match opt {
            TcpOption::Eno(eno) => {
                let contents = eno.contents();
                out.extend_from_slice(&[253, (contents.len() + 4) as u8, 0x45, 0x4e]);
                out.extend_from_slice(contents);
            }
            other => {
                let mut buf = vec![0; other.buffer_len()];
                let _ = other.emit(&mut buf);
                out.extend_from_slice(&buf);
            }
        }
    }
    *options = out;
}

#[test]
fn a_tampered_byte_is_a_tag_failure_and_nothing_past_it_is_released() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 21, &log), host("b", 22, &log));
    for h in [&mut a, &mut b] {
        h.session.max_frame_data = 1000;
    }
    let sc = script(50_000, 5_000);
    let mut conn = clean(&mut a, &mut b, v4(1, 40050), v4(2, 80), &sc);
    let at = conn.c2s.len() / 2;
    conn.c2s[at] ^= 0x40;
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    let r = &ins.report.connections[0];
    assert_eq!(r.keys, Keys::Known);
    assert!(
        r.anomalies.iter().any(|a| a.kind == kind::TAG_FAILURE),
        "{:#?}",
        r.anomalies
    );
    assert_ne!(r.end, End::Finp);
    let got = ins.connections[0]
        .plaintext
        .client_to_server
        .clone()
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert!(got.len() < at, "nothing past the tampered frame");
    assert!(got.len() + 2000 > at, "the frames before it are released");
    assert_eq!(
        got[..],
        sc.client_data[..got.len()],
        "what is released is what was sent"
    );
    assert_ne!(
        r.plaintext_sha256.client_to_server.as_deref(),
        Some(sha(&sc.client_data).as_str())
    );
    // The other direction is untouched.
    assert_eq!(
        r.plaintext_sha256.server_to_client.as_deref(),
        Some(sha(&sc.server_data).as_str())
    );
    assert!(ins.report.has_anomalies());
    // The plaintext pcap carries the released prefix and no FIN for the failed direction.
    let plain = tcpcrypt_inspect::plain_pcap::write(&ins).unwrap();
    let again = run(&plain, None);
    let p = &again.report.connections[0];
    assert_eq!(
        p.plaintext_sha256.client_to_server.as_deref(),
        Some(sha(&got).as_str())
    );
    assert_eq!(p.end, End::Open);
}

#[test]
fn a_wrong_key_is_reported_as_wrong_never_as_decrypted() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 23, &log), host("b", 24, &log));
    let conn = clean(&mut a, &mut b, v4(1, 40060), v4(2, 80), &script(3000, 3000));
    let text = log.text();
    // Flip the last hex digit of ES.
    let line = text.lines().next().unwrap();
    let mut bad: Vec<char> = line.chars().collect();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == '0' { '1' } else { '0' };
    let bad: String = bad.into_iter().collect();
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&bad));
    let r = &ins.report.connections[0];
    assert_eq!(r.keys, Keys::Wrong);
    assert_eq!(r.session_id, None);
    assert_eq!(r.plaintext_sha256.client_to_server, None);
    assert_eq!(r.plaintext_bytes.client_to_server, 0);
    assert!(r.anomalies.iter().any(|a| a.kind == kind::KEY_MISMATCH));
    assert!(ins.connections[0].plaintext.client_to_server.is_none());
    assert!(ins.report.has_anomalies());
}

#[test]
fn a_truncated_capture_is_reported_as_truncated() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 25, &log), host("b", 26, &log));
    let sc = script(30_000, 30_000);
    let conn = clean(&mut a, &mut b, v4(1, 40070), v4(2, 80), &sc);
    let full = pcap(&packets(&conn, Wire::default()));
    // Cut in the middle of the file: inside a record.
    let cut = &full[..full.len() / 2 + 7];
    let ins = run(cut, Some(&log.text()));
    assert!(ins.report.capture.damaged.is_some());
    let r = &ins.report.connections[0];
    assert_eq!(r.end, End::Truncated);
    assert_ne!(
        r.plaintext_sha256.client_to_server.as_deref(),
        Some(sha(&sc.client_data).as_str())
    );
    // A segment lost in the middle: a gap, truncated, and no bytes beyond it.
    let mut pk = packets(&conn, Wire::default());
    pk.remove(6);
    let ins = run(&pcap(&pk), Some(&log.text()));
    let r = &ins.report.connections[0];
    assert_eq!(r.end, End::Truncated);
    assert!(
        r.anomalies.iter().any(|a| a.kind == kind::STREAM_GAP),
        "{:#?}",
        r.anomalies
    );
}

#[test]
fn a_tcp_fin_without_finp_is_an_anomaly() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 27, &log), host("b", 28, &log));
    let sc = Script {
        close: false,
        ..script(1000, 1000)
    };
    let mut conn = clean(&mut a, &mut b, v4(1, 40080), v4(2, 80), &sc);
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    assert_eq!(ins.report.connections[0].end, End::Open);
    conn.c2s_fin = true;
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    let r = &ins.report.connections[0];
    assert!(
        r.anomalies.iter().any(|a| a.kind == kind::FIN_WITHOUT_FINP),
        "{:#?}",
        r.anomalies
    );
    conn.client_rst = true;
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    assert_eq!(ins.report.connections[0].end, End::Reset);
    assert!(ins.report.connections[0].reset_seen);
}

#[test]
fn a_reset_after_a_clean_finp_close_keeps_the_clean_end() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 31, &log), host("b", 32, &log));
    let sc = script(2000, 2000);
    let mut conn = clean(&mut a, &mut b, v4(1, 40081), v4(2, 80), &sc);
    conn.client_rst = true;
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    let r = &ins.report.connections[0];
    assert_decrypted(r, &conn);
    assert_eq!((r.end, r.reset_seen), (End::Finp, true));
    // Without keys FINp is unchecked: the FINs both ways still make a clean TCP end.
    let ins = run(&pcap(&packets(&conn, Wire::default())), None);
    let r = &ins.report.connections[0];
    assert_eq!((r.end, r.reset_seen), (End::Fin, true));
    // Without keys, a RST before the server's FIN is a reset; with them, the server's
    // authenticated FINp still makes both directions complete.
    conn.s2c_fin = false;
    let ins = run(&pcap(&packets(&conn, Wire::default())), None);
    assert_eq!(ins.report.connections[0].end, End::Reset);
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    assert_eq!(ins.report.connections[0].end, End::Finp);
}

#[test]
fn the_plain_pcap_and_the_dump_hold_the_application_bytes() {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 29, &log), host("b", 30, &log));
    let sc = script(9_000, 4_000);
    let conn = clean(&mut a, &mut b, v6(1, 40090), v6(2, 80), &sc);
    let ins = run(&pcap(&packets(&conn, Wire::default())), Some(&log.text()));
    let plain = tcpcrypt_inspect::plain_pcap::write(&ins).expect("one decrypted connection");
    // Read back: one plain TCP connection with the same bytes and valid checksums.
    let again = run(&plain, None);
    let r = &again.report.connections[0];
    assert_eq!(r.outcome, Outcome::Plain);
    assert_eq!(r.client, "[fd77::1]:40090");
    assert_eq!(
        r.plaintext_sha256.client_to_server.as_deref(),
        Some(sha(&sc.client_data).as_str())
    );
    assert_eq!(
        r.plaintext_sha256.server_to_client.as_deref(),
        Some(sha(&sc.server_data).as_str())
    );
    assert_eq!(r.end, End::Fin);
    let records = tcpcrypt_inspect::capture::read(&plain).unwrap().records;
    for rec in &records {
        let ip = tcpcrypt_inspect::capture::ip_payload(rec.link, &rec.data).unwrap();
        let p = tcpcrypt_proto::wire::packet::TcpIpPacket::new_checked(ip).unwrap();
        p.verify_checksums().expect("valid checksums");
    }
    let dir = tempfile::tempdir().unwrap();
    let files = tcpcrypt_inspect::dump::write(&ins, dir.path()).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(
        std::fs::read(dir.path().join("conn001.client_to_server.bin")).unwrap(),
        sc.client_data
    );
    assert_eq!(
        std::fs::read(dir.path().join("conn001.server_to_client.bin")).unwrap(),
        sc.server_data
    );
}
