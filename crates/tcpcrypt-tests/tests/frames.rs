//! Frames, FINp and URGp (RFC 8548 §3.6, §3.7, §4.2) through two real sessions.

use std::sync::Arc;
use std::time::Instant;

use tcpcrypt_proto::consts::{AeadId, Role, TepId, MAX_FRAME_DATA, MAX_SEND_BUFFER};
use tcpcrypt_proto::session::{Event, Peek, Read, SessionConfig};
use tcpcrypt_proto::{Error, PeerMisbehaved};
use tcpcrypt_tests::{data, fresh, provider, Pair, Session, TestRng};

const TEP: TepId = TepId::TCPCRYPT_ECDHE_CURVE25519;

fn pair() -> Pair {
    let mut p = Pair::fresh(TEP, SessionConfig::default());
    p.drive();
    p
}

#[test]
fn any_chunking_delivers_the_same_plaintext() {
    let msg = data(200_000, 3);
    for chunks in [
        vec![1],
        vec![2, 3],
        vec![7, 1, 19],
        vec![1400],
        vec![65_541],
        vec![100_000],
    ] {
        let mut p = Pair::fresh(TEP, SessionConfig::default());
        p.ab.chunks = chunks.clone();
        p.ba.chunks = chunks.clone();
        p.drive();
        // Small and large writes mixed: frames of every size, several per chunk.
        for (i, piece) in msg.chunks(9_001).enumerate() {
            if i % 2 == 0 {
                p.send_a(piece);
            } else {
                for small in piece.chunks(500) {
                    p.send_a(small);
                }
            }
        }
        assert_eq!(p.b.received, msg, "chunks {chunks:?}");
    }
}

#[test]
fn each_write_is_framed_at_once_and_large_writes_use_large_frames() {
    let mut p = pair();
    let before = p.a.session.ciphertext_bytes_sent();
    assert_eq!(p.a.session.write_plaintext(b"x").unwrap(), 1);
    let mut out = Vec::new();
    assert_eq!(
        p.a.session.poll_ciphertext(&mut out).len,
        21,
        "one byte costs one 21-byte frame"
    );
    let big = data(3 * MAX_FRAME_DATA, 4);
    assert_eq!(p.a.session.write_plaintext(&big).unwrap(), big.len());
    out.clear();
    let t = p.a.session.poll_ciphertext(&mut out);
    assert_eq!(t.len, big.len() + 3 * 20, "three maximum-size frames");
    assert_eq!(
        p.a.session.ciphertext_bytes_sent(),
        before + 21 + t.len as u64
    );
}

#[test]
fn configured_max_frame_data_is_respected() {
    let cfg = SessionConfig {
        max_frame_data: 1000,
        ..SessionConfig::default()
    };
    let mut p = Pair::fresh(TEP, cfg);
    p.drive();
    assert_eq!(p.a.session.write_plaintext(&data(2500, 5)).unwrap(), 2500);
    let mut out = Vec::new();
    assert_eq!(p.a.session.poll_ciphertext(&mut out).len, 2500 + 3 * 20);
}

#[test]
fn backpressure_bounds_both_buffers() {
    let mut p = pair();
    let huge = data(4 * MAX_SEND_BUFFER, 6);
    let n = p.a.session.write_plaintext(&huge).unwrap();
    assert!(n < huge.len() && n > MAX_SEND_BUFFER / 2, "accepted {n}");
    assert_eq!(
        p.a.session.write_plaintext(&huge).unwrap(),
        0,
        "full until polled"
    );
    let mut out = Vec::new();
    let _ = p.a.session.poll_ciphertext(&mut out);
    // The receiver takes one frame, then waits for the application to read.
    let used = p.b.session.handle_ciphertext(&out).unwrap();
    assert_eq!(used, MAX_FRAME_DATA + 20);
    assert_eq!(p.b.session.handle_ciphertext(&out[used..]).unwrap(), 0);
    let mut buf = vec![0u8; 100_000];
    assert_eq!(
        p.b.session.read_plaintext(&mut buf).unwrap(),
        Read::Data(MAX_FRAME_DATA)
    );
    assert_eq!(p.b.session.read_plaintext(&mut buf).unwrap(), Read::Blocked);
    assert!(p.b.session.handle_ciphertext(&out[used..]).unwrap() > 0);
}

#[test]
fn fin_a_then_b_is_clean_eof_on_both_sides() {
    let mut p = pair();
    p.send_a(b"request");
    p.a.session.close().unwrap();
    p.drive();
    assert!(p.b.eof, "B sees EOF once FINp authenticated");
    assert_eq!(
        p.ab.fin_at,
        Some(p.ab.sent),
        "TCP FIN after the FINp frame's last byte"
    );
    assert_eq!(
        p.a.session.write_plaintext(b"late"),
        Err(Error::ApiMisuse("write after close"))
    );
    // Half-close: B keeps sending after A's FIN.
    let reply = data(100_000, 7);
    assert_eq!(p.send_b(&reply), reply.len());
    assert_eq!(p.a.received, reply);
    assert!(!p.a.eof);
    p.b.session.close().unwrap();
    p.drive();
    assert!(p.a.eof);
    assert!(p.a.error.is_none() && p.b.error.is_none());
    assert_eq!(p.b.received, b"request");
    assert_eq!(
        p.a.session.read_plaintext(&mut [0; 4]),
        Ok(Read::Eof),
        "EOF repeats"
    );
}

#[test]
fn fin_b_then_a() {
    let mut p = pair();
    p.b.session.close().unwrap();
    p.drive();
    assert!(p.a.eof && !p.b.eof);
    p.send_a(b"after B closed");
    assert_eq!(p.b.received, b"after B closed");
    p.a.session.close().unwrap();
    p.drive();
    assert!(p.b.eof);
    assert!(p.a.error.is_none() && p.b.error.is_none());
}

#[test]
fn close_before_established_sends_fin_once_keys_exist() {
    let cfg = Arc::new(SessionConfig::default());
    let mut a = Session::new(
        fresh(Role::A, TEP),
        cfg.clone(),
        provider(),
        &mut TestRng::new(1),
        Instant::now(),
    )
    .unwrap();
    let b = Session::new(
        fresh(Role::B, TEP),
        cfg,
        provider(),
        &mut TestRng::new(2),
        Instant::now(),
    )
    .unwrap();
    a.close().unwrap();
    let mut p = Pair::from_sessions(a, b);
    p.drive();
    assert!(p.b.eof);
    assert!(p.b.received.is_empty());
}

#[test]
fn tcp_fin_without_finp_is_truncation() {
    let mut p = pair();
    p.send_a(b"partial");
    p.ab.fin_sent = true; // an injected or premature TCP FIN
    p.drive();
    assert_eq!(p.b.error, Some(Error::Truncated));
    assert!(!p.b.eof);
    assert_eq!(
        p.b.received, b"partial",
        "earlier authenticated data was delivered"
    );
}

#[test]
fn truncation_inside_a_frame_is_truncation() {
    for cut in [1u64, 3, 10, 20] {
        let mut p = pair();
        let start = p.ab.sent;
        p.ab.truncate_at = Some(start + cut);
        p.send_a(b"0123456789");
        p.a.session.close().unwrap();
        p.drive();
        assert_eq!(p.b.error, Some(Error::Truncated), "cut {cut}");
        assert!(p.b.received.is_empty());
    }
}

#[test]
fn dropped_fin_just_leaves_eof_pending_data_visible() {
    let mut p = pair();
    p.ab.drop_fin = true;
    p.a.session.close().unwrap();
    p.drive();
    // FINp authenticated: EOF is reported even though the TCP FIN never arrived.
    assert!(p.b.eof && p.b.error.is_none());
}

#[test]
fn data_after_finp_is_peer_misbehaviour() {
    let mut p = pair();
    p.a.session.close().unwrap();
    p.drive();
    assert!(p.b.eof);
    assert_eq!(
        p.b.session.handle_ciphertext(&[0, 0, 17]),
        Err(Error::PeerMisbehaved(PeerMisbehaved::DataAfterFin))
    );
    // Bytes after FINp in the same chunk.
    let mut p = Pair::fresh(TEP, SessionConfig::default());
    p.ab.drop_fin = true;
    p.drive();
    p.a.session.close().unwrap();
    let mut out = Vec::new();
    let _ = p.a.session.poll_ciphertext(&mut out);
    out.push(0);
    assert_eq!(
        p.b.session.handle_ciphertext(&out),
        Err(Error::PeerMisbehaved(PeerMisbehaved::DataAfterFin))
    );
}

#[test]
fn every_bit_flip_in_every_frame_fails_authentication_and_releases_nothing_corrupt() {
    // A stream of several frames: flip each bit of each byte after the Init message.
    let cfg = SessionConfig {
        aead_offer: vec![AeadId::AES_128_GCM],
        ..SessionConfig::default()
    };
    let mut clean = Pair::fresh(TEP, cfg.clone());
    clean.drive();
    let init_len = clean.ab.sent;
    let msgs: [&[u8]; 3] = [b"first frame", b"second", b"third frame here"];
    for m in msgs {
        clean.send_a(m);
    }
    clean.a.session.close().unwrap();
    clean.drive();
    let total = clean.ab.sent;
    let sent: Vec<u8> = msgs.concat();
    for at in init_len..total {
        for bit in 0..8 {
            let mut p = Pair::fresh(TEP, cfg.clone());
            p.ab.flip = Some((at, 1 << bit));
            p.drive();
            for m in msgs {
                p.send_a(m);
            }
            p.a.session.close().unwrap();
            p.drive();
            let err =
                p.b.error
                    .unwrap_or_else(|| panic!("flip at {at} bit {bit} went unnoticed"));
            assert!(
                matches!(
                    err,
                    Error::AuthenticationFailed
                        | Error::Truncated
                        | Error::PeerMisbehaved(PeerMisbehaved::FrameTooShort)
                ),
                "{at}/{bit}: {err:?}"
            );
            assert!(!p.b.eof);
            assert!(
                sent.starts_with(&p.b.received),
                "only authenticated data before the flip"
            );
        }
    }
}

#[test]
fn urgent_data_marks_the_last_urgent_byte() {
    let mut p = pair();
    p.send_a(b"normal ");
    assert_eq!(p.a.session.write_urgent(b"URGENT").unwrap(), 6);
    p.drive();
    p.send_a(b" more");
    assert_eq!(p.b.received, b"normal URGENT more");
    let mark = p.b.events.iter().find_map(|e| match e {
        Event::Urgent { mark } => Some(*mark),
        _ => None,
    });
    assert_eq!(
        mark,
        Some(12),
        "index of the 'T' of URGENT in the application stream"
    );
    assert_eq!(
        p.a.session.write_urgent(b""),
        Err(Error::ApiMisuse("urgent data must not be empty"))
    );
    let too_big = vec![0u8; MAX_FRAME_DATA];
    assert!(matches!(
        p.a.session.write_urgent(&too_big),
        Err(Error::ApiMisuse(_))
    ));
}

#[test]
fn counters_track_both_directions() {
    let mut p = pair();
    p.send_a(&data(5000, 8));
    assert_eq!(p.a.session.plaintext_bytes_sent(), 5000);
    assert_eq!(p.b.session.plaintext_bytes_received(), 5000);
    assert_eq!(
        p.a.session.ciphertext_bytes_sent(),
        p.b.session.ciphertext_bytes_received()
    );
}

#[test]
fn reset_and_abort_are_distinct_terminal_errors() {
    let mut p = pair();
    p.b.session.handle_peer_reset();
    assert_eq!(p.b.session.read_plaintext(&mut [0; 4]), Err(Error::Reset));
    p.a.session.abort();
    assert_eq!(p.a.session.write_plaintext(b"x"), Err(Error::Aborted));
    let mut out = Vec::new();
    assert_eq!(p.a.session.poll_ciphertext(&mut out).len, 0);
}

#[test]
fn zero_copy_reading_mixes_with_read_plaintext() {
    let mut p = pair();
    p.a.session.write_plaintext(b"hello world").unwrap();
    p.a.session.close().unwrap();
    let mut out = Vec::new();
    let _ = p.a.session.poll_ciphertext(&mut out);
    let b = &mut p.b.session;
    assert_eq!(
        b.handle_ciphertext(&out).unwrap(),
        31,
        "one data frame, then wait"
    );
    assert_eq!(b.peek_plaintext().unwrap(), Peek::Data(b"hello world"));
    b.consume_plaintext(6);
    let mut buf = [0u8; 3];
    assert_eq!(b.read_plaintext(&mut buf).unwrap(), Read::Data(3));
    assert_eq!(&buf, b"wor");
    assert_eq!(b.peek_plaintext().unwrap(), Peek::Data(b"ld"));
    b.consume_plaintext(100);
    assert_eq!(b.peek_plaintext().unwrap(), Peek::Blocked);
    assert_eq!(b.handle_ciphertext(&out[31..]).unwrap(), 20);
    assert_eq!(b.peek_plaintext().unwrap(), Peek::Eof);
    assert_eq!(b.plaintext_bytes_received(), 11);
}
