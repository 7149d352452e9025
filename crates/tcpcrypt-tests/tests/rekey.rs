//! Rekeying and liveness probing (RFC 8548 §3.8, §3.9) through two real sessions.

use std::time::Duration;

use tcpcrypt_proto::consts::TepId;
use tcpcrypt_proto::session::{Event, SessionConfig};
use tcpcrypt_proto::Error;
use tcpcrypt_tests::{data, Pair};

const TEP: TepId = TepId::TCPCRYPT_ECDHE_CURVE25519;

fn pair(cfg: SessionConfig) -> Pair {
    let mut p = Pair::fresh(TEP, cfg);
    p.drive();
    p
}

fn gens(p: &Pair) -> ((u64, u64), (u64, u64)) {
    (p.a.last_generations(), p.b.last_generations())
}

/// Control byte of the frame starting at `at` in a polled buffer.
fn rekey_bits(frames: &[u8]) -> Vec<bool> {
    let mut bits = Vec::new();
    let mut at = 0;
    while at + 3 <= frames.len() {
        bits.push(frames[at] & 1 == 1);
        at += 3 + usize::from(u16::from_be_bytes([frames[at + 1], frames[at + 2]]));
    }
    bits
}

#[test]
fn rekey_by_a_is_answered_by_b() {
    let mut p = pair(SessionConfig::default());
    assert!(p.a.session.initiate_rekey().unwrap());
    assert_eq!(p.a.last_generations(), (1, 0));
    assert!(
        !p.a.session.initiate_rekey().unwrap(),
        "one empty rekey at a time"
    );
    p.drive();
    assert_eq!(gens(&p), ((1, 1), (1, 1)));
    p.send_a(b"under generation 1");
    p.send_b(b"also generation 1");
    assert_eq!(p.b.received, b"under generation 1");
    assert_eq!(p.a.received, b"also generation 1");
    assert!(p.b.events.iter().any(|e| matches!(
        e,
        Event::Rekeyed {
            local: 1,
            remote: 1
        }
    )));
}

#[test]
fn rekey_by_b_is_answered_by_a() {
    let mut p = pair(SessionConfig::default());
    p.send_a(b"before");
    assert!(p.b.session.initiate_rekey().unwrap());
    p.drive();
    assert_eq!(gens(&p), ((1, 1), (1, 1)));
    p.send_a(b" after");
    assert_eq!(p.b.received, b"before after");
}

#[test]
fn only_the_first_frame_of_a_generation_has_the_rekey_bit() {
    let mut p = pair(SessionConfig::default());
    p.a.session.initiate_rekey().unwrap();
    p.a.session.write_plaintext(b"one").unwrap();
    p.a.session.write_plaintext(b"two").unwrap();
    let mut out = Vec::new();
    let _ = p.a.session.poll_ciphertext(&mut out);
    assert_eq!(rekey_bits(&out), vec![true, false, false]);
}

#[test]
fn crossed_rekeys_settle_without_extra_answers() {
    let mut p = pair(SessionConfig::default());
    assert!(p.a.session.initiate_rekey().unwrap());
    assert!(p.b.session.initiate_rekey().unwrap());
    p.drive();
    assert_eq!(
        gens(&p),
        ((1, 1), (1, 1)),
        "each rekey frame met a raised local generation"
    );
    p.send_a(b"ok");
    p.send_b(b"ok too");
    assert_eq!(
        (p.b.received.as_slice(), p.a.received.as_slice()),
        (&b"ok"[..], &b"ok too"[..])
    );
}

#[test]
fn repeated_rekeys_interleaved_with_data() {
    let mut p = pair(SessionConfig::default());
    let mut expect_a = Vec::new();
    let mut expect_b = Vec::new();
    for round in 0..20u64 {
        let who_a = round % 3 != 1;
        if who_a {
            p.a.session.initiate_rekey().unwrap();
        } else {
            p.b.session.initiate_rekey().unwrap();
        }
        let x = data(1000 + round as usize, round);
        p.send_a(&x);
        expect_a.extend_from_slice(&x);
        p.send_b(&x[..100]);
        expect_b.extend_from_slice(&x[..100]);
        p.drive();
        assert_eq!(gens(&p), ((round + 1, round + 1), (round + 1, round + 1)));
    }
    assert_eq!(p.b.received, expect_a);
    assert_eq!(p.a.received, expect_b);
}

#[test]
fn automatic_rekey_at_the_frame_limit() {
    let cfg = SessionConfig {
        rekey_after_frames: 4,
        ..SessionConfig::default()
    };
    let mut p = pair(cfg);
    for i in 0..9u8 {
        p.send_a(&[i]);
    }
    // Frames 1-4 under generation 0, 5-8 under 1, 9 under 2; B answers each rekey.
    assert_eq!(p.a.last_generations(), (2, 2));
    assert_eq!(p.b.received, (0..9).collect::<Vec<u8>>());
}

#[test]
fn automatic_rekey_at_the_byte_limit() {
    let cfg = SessionConfig {
        rekey_after_bytes: 10_000,
        ..SessionConfig::default()
    };
    let mut p = pair(cfg);
    let x = data(100_000, 9);
    for piece in x.chunks(4000) {
        p.send_a(piece);
    }
    assert_eq!(p.b.received, x);
    // 25 frames of 4020 bytes: a new generation after every third frame.
    assert_eq!(p.a.session.local_generation(), 8);
    assert_eq!(p.b.session.remote_generation(), 8);
}

#[test]
fn liveness_probe_answered() {
    let mut p = pair(SessionConfig {
        liveness_timeout: Duration::from_secs(5),
        ..SessionConfig::default()
    });
    let now = p.now;
    p.a.session.probe_liveness(now).unwrap();
    assert_eq!(
        p.a.session.poll_timeout(),
        Some(now + Duration::from_secs(5))
    );
    p.drive();
    assert!(p
        .a
        .events
        .iter()
        .any(|e| matches!(e, Event::LivenessConfirmed)));
    assert_eq!(p.a.session.poll_timeout(), None);
    p.advance(Duration::from_secs(60));
    assert!(p.a.error.is_none());
}

#[test]
fn liveness_probe_timeout() {
    let mut p = pair(SessionConfig {
        liveness_timeout: Duration::from_secs(5),
        ..SessionConfig::default()
    });
    // The peer is gone: nothing it sends arrives any more.
    p.ba.truncate_at = Some(p.ba.sent);
    p.ba.drop_fin = true;
    let now = p.now;
    p.a.session.probe_liveness(now).unwrap();
    p.advance(Duration::from_secs(4));
    assert!(p.a.error.is_none());
    p.advance(Duration::from_secs(1));
    assert_eq!(p.a.error, Some(Error::LivenessTimeout));
    assert_eq!(
        p.a.session.write_plaintext(b"x"),
        Err(Error::LivenessTimeout)
    );
}

#[test]
fn no_rekey_answer_after_fin() {
    let mut p = pair(SessionConfig::default());
    p.b.session.close().unwrap();
    p.drive();
    assert!(p.a.eof);
    p.a.session.initiate_rekey().unwrap();
    p.drive();
    // B raised its local generation but, having sent FIN, sends no frame.
    assert_eq!(p.b.last_generations(), (1, 1));
    assert_eq!(p.a.last_generations(), (1, 0));
    assert!(p.a.error.is_none() && p.b.error.is_none());
    assert!(matches!(
        p.a.session.probe_liveness(p.now),
        Err(Error::ApiMisuse(_))
    ));
}
