//! Fresh key exchange (RFC 8548 §3.3, §4.1) through two real sessions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tcpcrypt_proto::consts::{AeadId, Role, TepId};
use tcpcrypt_proto::crypto::{CryptoError, Rng};
use tcpcrypt_proto::keys::SessionSecret;
use tcpcrypt_proto::session::{Event, SessionConfig};
use tcpcrypt_proto::wire::frame::{frame_nonce, FrameHeader};
use tcpcrypt_proto::wire::init::{Init1Repr, Init2Repr};
use tcpcrypt_proto::{Error, PeerMisbehaved};
use tcpcrypt_tests::{data, fresh, provider, Pair, Session, TestRng, TEPS, TRANSCRIPT};

fn only(aead: AeadId) -> SessionConfig {
    SessionConfig {
        aead_offer: vec![aead],
        aead_preference: vec![aead],
        ..SessionConfig::default()
    }
}

#[test]
fn every_tep_and_aead_establishes_and_carries_data() {
    for tep in TEPS {
        for aead in AeadId::ALL {
            let mut p = Pair::fresh(tep, only(aead));
            p.drive();
            assert!(
                p.a.session.is_established() && p.b.session.is_established(),
                "{tep:?} {aead:?}"
            );
            let (ida, idb) = (
                p.a.session.session_id().unwrap(),
                p.b.session.session_id().unwrap(),
            );
            assert_eq!(ida, idb, "both sides derive one session ID");
            assert_eq!(
                ida.as_bytes()[0],
                tep.get(),
                "byte 0 is B's TEP byte, v = 0"
            );
            assert!(!ida.is_resumed());
            assert_eq!(p.a.session.aead(), Some(aead));
            assert_eq!(p.b.session.aead(), Some(aead));
            // Established comes first, then the resumable ss[1], on both sides.
            for end in [&p.a, &p.b] {
                assert!(matches!(
                    end.events[0],
                    Event::Established { resumed: false, .. }
                ));
                assert!(matches!(&end.events[1], Event::ResumableSecret(s) if s.tep == tep));
            }
            let (x, y) = (data(3000, 1), data(70_000, 2));
            assert_eq!(p.send_a(&x), x.len());
            assert_eq!(p.send_b(&y), y.len());
            assert_eq!(p.b.received, x);
            assert_eq!(p.a.received, y);
            assert!(p.a.error.is_none() && p.b.error.is_none());
        }
    }
}

#[test]
fn resumable_secrets_match_and_carry_the_original_role() {
    let mut p = Pair::fresh(TepId::TCPCRYPT_ECDHE_CURVE25519, SessionConfig::default());
    p.drive();
    let secret = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::ResumableSecret(s) => Some(s.clone()),
            _ => None,
        })
    };
    let (sa, sb) = (secret(&p.a.events).unwrap(), secret(&p.b.events).unwrap());
    assert_eq!(
        sa.secret.expose_secret(),
        sb.secret.expose_secret(),
        "both hold ss[1]"
    );
    assert_eq!((sa.original_role, sb.original_role), (Role::A, Role::B));
    assert_eq!(sa.own_half(), sb.peer_half());
}

#[test]
fn init_end_is_reported_for_psh_and_b_prefers_its_order() {
    let a_cfg = SessionConfig {
        aead_offer: vec![
            AeadId::CHACHA20_POLY1305,
            AeadId::AES_256_GCM,
            AeadId::AES_128_GCM,
        ],
        ..SessionConfig::default()
    };
    let b_cfg = SessionConfig {
        aead_preference: vec![AeadId::AES_256_GCM, AeadId::CHACHA20_POLY1305],
        ..SessionConfig::default()
    };
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let mut p = Pair::with_configs(fresh(Role::A, tep), fresh(Role::B, tep), a_cfg, b_cfg);
    p.drive();
    assert_eq!(
        p.a.session.aead(),
        Some(AeadId::AES_256_GCM),
        "B's most preferred that A listed"
    );
    // X25519: Init1 = 73 + 2 * 3 bytes, Init2 = 74 bytes (digest §3.4).
    assert_eq!(p.ab.init_end, Some(79));
    assert_eq!(p.ba.init_end, Some(74));
}

#[test]
fn b_may_send_right_after_init2_and_a_only_after_init2() {
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let cfg = Arc::new(SessionConfig::default());
    let mut a = Session::new(
        fresh(Role::A, tep),
        cfg.clone(),
        provider(),
        &mut TestRng::new(1),
        Instant::now(),
    )
    .unwrap();
    let mut b = Session::new(
        fresh(Role::B, tep),
        cfg,
        provider(),
        &mut TestRng::new(2),
        Instant::now(),
    )
    .unwrap();
    assert_eq!(
        a.write_plaintext(b"early").unwrap(),
        0,
        "A has no key before Init2"
    );
    assert_eq!(
        b.write_plaintext(b"early").unwrap(),
        0,
        "B has no key before Init1"
    );
    let mut init1 = Vec::new();
    let t = a.poll_ciphertext(&mut init1);
    assert_eq!(t.init_end, Some(init1.len()));
    assert_eq!(b.handle_ciphertext(&init1).unwrap(), init1.len());
    assert_eq!(b.write_plaintext(b"server first").unwrap(), 12);
    let mut out = Vec::new();
    let t = b.poll_ciphertext(&mut out);
    assert_eq!(
        t.init_end,
        Some(74),
        "Init2 then a frame in the same output"
    );
    assert_eq!(out.len(), 74 + 20 + 12);
    assert_eq!(a.handle_ciphertext(&out).unwrap(), out.len());
    let mut buf = [0u8; 32];
    assert_eq!(
        a.read_plaintext(&mut buf).unwrap(),
        tcpcrypt_proto::session::Read::Data(12)
    );
    assert_eq!(&buf[..12], b"server first");
}

#[test]
fn init1_listing_no_acceptable_cipher() {
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let mut p = Pair::with_configs(
        fresh(Role::A, tep),
        fresh(Role::B, tep),
        only(AeadId::CHACHA20_POLY1305),
        only(AeadId::AES_128_GCM),
    );
    p.drive();
    assert_eq!(
        p.b.error,
        Some(Error::PeerMisbehaved(PeerMisbehaved::NoAcceptableCipher))
    );
    assert!(!p.b.session.is_established());
    // Terminal: every later call reports the same error.
    assert_eq!(p.b.session.write_plaintext(b"x"), Err(p.b.error.unwrap()));
    assert_eq!(p.b.session.handle_ciphertext(b"x"), Err(p.b.error.unwrap()));
}

#[test]
fn bad_init_magic_aborts() {
    for (flip_a, expect) in [
        (true, PeerMisbehaved::BadInit1Magic),
        (false, PeerMisbehaved::BadInit2Magic),
    ] {
        let mut p = Pair::fresh(TepId::TCPCRYPT_ECDHE_CURVE25519, SessionConfig::default());
        if flip_a {
            p.ab.flip = Some((2, 0x40));
        } else {
            p.ba.flip = Some((0, 0x01));
        }
        p.drive();
        let victim = if flip_a { &p.b } else { &p.a };
        assert_eq!(victim.error, Some(Error::PeerMisbehaved(expect)));
        assert!(!victim.eof);
    }
}

#[test]
fn absurd_message_len_aborts_without_buffering() {
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let mut b = Session::new(
        fresh(Role::B, tep),
        Arc::default(),
        provider(),
        &mut TestRng::new(2),
        Instant::now(),
    )
    .unwrap();
    let header = [0x15, 0x10, 0x1a, 0x0e, 0x7f, 0xff, 0xff, 0xff];
    assert_eq!(
        b.handle_ciphertext(&header),
        Err(Error::PeerMisbehaved(PeerMisbehaved::InitTooLong))
    );
    let mut b = Session::new(
        fresh(Role::B, tep),
        Arc::default(),
        provider(),
        &mut TestRng::new(2),
        Instant::now(),
    )
    .unwrap();
    let mut init1 = vec![0x15, 0x10, 0x1a, 0x0e, 0, 0, 0, 75, 0];
    init1.extend_from_slice(&[0; 66]);
    assert_eq!(
        b.handle_ciphertext(&init1),
        Err(Error::PeerMisbehaved(PeerMisbehaved::NoCiphers))
    );
}

/// Host A's view of a hand-made host B: parse Init1, answer with `init2_for`.
fn manual_b(
    tep: TepId,
    init1: &[u8],
    sym_cipher: AeadId,
    trailing: &[u8],
) -> (Vec<u8>, SessionSecret) {
    let p = provider();
    let ka = p.key_agreement(tep).unwrap();
    let i1 = Init1Repr::parse(init1, ka.public_len()).unwrap();
    let mut rng = TestRng::new(99);
    let secret = ka.generate(&mut rng).unwrap();
    let mut n_b = [0u8; 32];
    rng.fill(&mut n_b);
    let repr = Init2Repr {
        sym_cipher,
        n_b,
        pub_key: secret.public(),
        ignored: trailing,
    };
    let mut init2 = vec![0; repr.buffer_len()];
    repr.emit(&mut init2);
    let es = secret.agree(i1.pub_key).unwrap();
    let ss0 = SessionSecret::extract(&i1.n_a, TRANSCRIPT, init1, &init2, es.as_bytes());
    (init2, ss0)
}

#[test]
fn init2_with_an_unlisted_cipher_aborts_a() {
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let mut a = Session::new(
        fresh(Role::A, tep),
        Arc::new(only(AeadId::AES_128_GCM)),
        provider(),
        &mut TestRng::new(1),
        Instant::now(),
    )
    .unwrap();
    let mut init1 = Vec::new();
    let _ = a.poll_ciphertext(&mut init1);
    let (init2, _) = manual_b(tep, &init1, AeadId::AES_256_GCM, &[]);
    assert_eq!(
        a.handle_ciphertext(&init2),
        Err(Error::PeerMisbehaved(PeerMisbehaved::UnlistedCipher))
    );
    assert!(a.session_id().is_none());
}

#[test]
fn trailing_bytes_in_init2_are_accepted_and_hashed() {
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let mut a = Session::new(
        fresh(Role::A, tep),
        Arc::new(only(AeadId::AES_128_GCM)),
        provider(),
        &mut TestRng::new(1),
        Instant::now(),
    )
    .unwrap();
    let mut init1 = Vec::new();
    let _ = a.poll_ciphertext(&mut init1);
    let (init2, ss0) = manual_b(tep, &init1, AeadId::AES_128_GCM, b"ignored tail");
    assert_eq!(a.handle_ciphertext(&init2).unwrap(), init2.len());
    assert_eq!(
        a.session_id(),
        Some(ss0.session_id(tep.get(), &[])),
        "the tail is in the PRK"
    );
    // A's first frame starts at offset len(Init1) (decision A1) under k_ab[0].
    assert_eq!(a.write_plaintext(b"hi").unwrap(), 2);
    let mut frame = Vec::new();
    let _ = a.poll_ciphertext(&mut frame);
    let k_ab = ss0.master_key(&[]).traffic_key(Role::A, 16);
    let key = provider()
        .aead(AeadId::AES_128_GCM)
        .unwrap()
        .new_key(k_ab.key())
        .unwrap();
    let nonce = frame_nonce(init1.len() as u64, k_ab.nonce_randomizer());
    let (aad, body) = frame.split_at_mut(3);
    assert_eq!(FrameHeader::parse(aad).unwrap().clen, 1 + 2 + 16);
    key.open_in_place(&nonce, aad, body).unwrap();
    assert_eq!(&body[..3], b"\x00hi");
}

#[test]
fn trailing_bytes_in_init1_are_accepted_and_hashed() {
    let tep = TepId::TCPCRYPT_ECDHE_P256;
    let p = provider();
    let ka = p.key_agreement(tep).unwrap();
    let mut rng = TestRng::new(7);
    let secret = ka.generate(&mut rng).unwrap();
    let repr = Init1Repr {
        ciphers: vec![AeadId::CHACHA20_POLY1305],
        n_a: [0x11; 32],
        pub_key: secret.public(),
        ignored: &[0xee; 300],
    };
    let mut init1 = vec![0; repr.buffer_len()];
    repr.emit(&mut init1);
    let mut b = Session::new(
        fresh(Role::B, tep),
        Arc::default(),
        p.clone(),
        &mut TestRng::new(2),
        Instant::now(),
    )
    .unwrap();
    // Fed one byte at a time: the receiver buffers only up to message_len.
    for byte in init1.chunks(1) {
        assert_eq!(b.handle_ciphertext(byte).unwrap(), 1);
    }
    b.write_plaintext(b"reply").unwrap();
    let mut out = Vec::new();
    let t = b.poll_ciphertext(&mut out);
    let init2_len = t.init_end.unwrap();
    let i2 = Init2Repr::parse(&out[..init2_len], ka.public_len()).unwrap();
    assert_eq!(i2.sym_cipher, AeadId::CHACHA20_POLY1305);
    let es = secret.agree(i2.pub_key).unwrap();
    let ss0 = SessionSecret::extract(
        &[0x11; 32],
        TRANSCRIPT,
        &init1,
        &out[..init2_len],
        es.as_bytes(),
    );
    assert_eq!(b.session_id(), Some(ss0.session_id(tep.get(), &[])));
    // B's first frame starts at offset len(Init2) (decision A1) under k_ba[0].
    let k_ba = ss0.master_key(&[]).traffic_key(Role::B, 32);
    let key = p
        .aead(AeadId::CHACHA20_POLY1305)
        .unwrap()
        .new_key(k_ba.key())
        .unwrap();
    let frame = &mut out[init2_len..];
    let (aad, body) = frame.split_at_mut(3);
    key.open_in_place(
        &frame_nonce(init2_len as u64, k_ba.nonce_randomizer()),
        aad,
        body,
    )
    .unwrap();
    assert_eq!(&body[..6], b"\x00reply");
}

#[test]
fn malformed_public_keys_abort_with_key_agreement_errors() {
    for tep in TEPS {
        let p = provider();
        let pub_len = p.key_agreement(tep).unwrap().public_len();
        let cfg = Arc::new(SessionConfig::default());
        let mut a = Session::new(
            fresh(Role::A, tep),
            cfg.clone(),
            p.clone(),
            &mut TestRng::new(1),
            Instant::now(),
        )
        .unwrap();
        let mut b = Session::new(
            fresh(Role::B, tep),
            cfg,
            p.clone(),
            &mut TestRng::new(2),
            Instant::now(),
        )
        .unwrap();
        let mut init1 = Vec::new();
        let _ = a.poll_ciphertext(&mut init1);
        // Pub_A is the last field: zero it (keeping a NIST length prefix).
        let start = init1.len() - pub_len;
        let keep = if pub_len > 60 || pub_len == 35 { 2 } else { 0 };
        for byte in &mut init1[start + keep..] {
            *byte = 0;
        }
        let err = b.handle_ciphertext(&init1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::KeyAgreement(
                    CryptoError::InvalidPublicKey | CryptoError::AllZeroSharedSecret
                )
            ),
            "{tep:?}: {err:?}"
        );
        assert_ne!(
            b.read_plaintext(&mut [0; 8]),
            Ok(tcpcrypt_proto::session::Read::Eof)
        );
    }
}

#[test]
fn debug_output_never_shows_keys() {
    let mut p = Pair::fresh(TepId::TCPCRYPT_ECDHE_CURVE25519, SessionConfig::default());
    p.drive();
    let s = format!("{:?} {:?}", p.a.session, p.a.events);
    assert!(s.contains("redacted"), "{s}");
    let ss1 = p.a.events.iter().find_map(|e| match e {
        Event::ResumableSecret(s) => Some(s.secret.expose_secret().to_vec()),
        _ => None,
    });
    let hex: String = ss1.unwrap().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!s.contains(&hex[..16]));
}

#[test]
fn an_incomplete_key_exchange_times_out() {
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let cfg = Arc::new(SessionConfig {
        handshake_timeout: Duration::from_secs(7),
        ..SessionConfig::default()
    });
    let t0 = Instant::now();
    let mut b = Session::new(
        fresh(Role::B, tep),
        cfg,
        provider(),
        &mut TestRng::new(2),
        t0,
    )
    .unwrap();
    let deadline = t0 + Duration::from_secs(7);
    assert_eq!(b.poll_timeout(), Some(deadline));
    // Half of Init1's header: B still waits.
    assert_eq!(b.handle_ciphertext(&[0x15, 0x10, 0x1a, 0x0e]).unwrap(), 4);
    b.handle_timeout(deadline - Duration::from_millis(1))
        .unwrap();
    assert_eq!(b.error(), None);
    assert_eq!(b.handle_timeout(deadline), Err(Error::HandshakeTimeout));
    assert_eq!(b.poll_timeout(), None);
    assert_eq!(b.write_plaintext(b"x"), Err(Error::HandshakeTimeout));
    assert_eq!(b.read_plaintext(&mut [0; 4]), Err(Error::HandshakeTimeout));
}

#[test]
fn the_handshake_deadline_is_disarmed_once_keys_exist() {
    let mut p = Pair::fresh(TepId::TCPCRYPT_ECDHE_CURVE25519, SessionConfig::default());
    assert_eq!(
        p.a.session.poll_timeout(),
        Some(p.now + tcpcrypt_proto::consts::DEFAULT_HANDSHAKE_TIMEOUT)
    );
    assert!(p.b.session.poll_timeout().is_some());
    p.drive();
    assert_eq!(p.a.session.poll_timeout(), None);
    assert_eq!(p.b.session.poll_timeout(), None);
    p.advance(Duration::from_secs(3600));
    assert!(p.a.error.is_none() && p.b.error.is_none());
}

/// The bit flip that used to hang: Init1's message_len grows by 32 (offset 7, bit 5), so B
/// waits for bytes that never come while A waits for Init2. Both handshake timers fire.
#[test]
fn a_tampered_init1_length_ends_in_handshake_timeouts() {
    let mut p = Pair::fresh(TepId::TCPCRYPT_ECDHE_CURVE25519, SessionConfig::default());
    p.ab.flip = Some((7, 1 << 5));
    p.drive();
    assert_eq!(p.a.session.write_plaintext(b"data").unwrap(), 0);
    p.a.session.close().unwrap();
    p.drive();
    assert!(
        p.a.error.is_none() && p.b.error.is_none(),
        "a stall, no error yet"
    );
    let waited = p.settle();
    assert_eq!(waited, tcpcrypt_proto::consts::DEFAULT_HANDSHAKE_TIMEOUT);
    assert_eq!(p.a.error, Some(Error::HandshakeTimeout));
    assert_eq!(p.b.error, Some(Error::HandshakeTimeout));
    assert!(!p.a.eof && !p.b.eof);
}
