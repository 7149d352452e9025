//! Resumed sessions (RFC 8548 §3.5) through two real sessions.

use std::time::Instant;

use tcpcrypt_proto::consts::{AeadId, Role, TepId};
use tcpcrypt_proto::keys::SessionSecret;
use tcpcrypt_proto::session::{Event, SessionConfig};
use tcpcrypt_proto::wire::frame::frame_nonce;
use tcpcrypt_proto::Error;
use tcpcrypt_tests::{data, provider, resumed, Pair, TEPS};

const SS: [u8; 32] = [0x42; 32];

#[test]
fn resumed_sessions_match_for_every_tep_aead_and_role_assignment() {
    for (tep, aead) in TEPS.into_iter().flat_map(|t| AeadId::ALL.map(|a| (t, a))) {
        for (a_original, b_original) in [(Role::A, Role::B), (Role::B, Role::A)] {
            let mut p = Pair::with_configs(
                resumed(Role::A, tep, a_original, aead, SS),
                resumed(Role::B, tep, b_original, aead, SS),
                SessionConfig::default(),
                SessionConfig::default(),
            );
            p.drive();
            let id = p.a.session.session_id().unwrap();
            assert_eq!(Some(id), p.b.session.session_id());
            assert!(id.is_resumed(), "byte 0 has v = 1");
            assert_eq!(id.as_bytes()[0], tep.get() | 0x80);
            assert_eq!(p.ab.init_end, None, "no Init messages");
            assert!(
                matches!(
                    p.a.events[0],
                    Event::Established { resumed: true, aead: a, .. } if a == aead
                ),
                "a resumed session keeps the AEAD of the session that made ss[0]"
            );
            assert_eq!(p.b.session.aead(), Some(aead));
            assert!(
                !p.a.events
                    .iter()
                    .any(|e| matches!(e, Event::ResumableSecret(_))),
                "the cache advanced before a resumed session"
            );
            let x = data(5000, 1);
            p.send_a(&x);
            p.send_b(&x[..10]);
            assert_eq!(p.b.received, x);
            assert_eq!(p.a.received, &x[..10]);
        }
    }
}

#[test]
fn key_direction_follows_the_original_role() {
    // Current role A, original role B: this host sends with k_ba, its first frame at offset 0.
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let mut p = Pair::with_configs(
        resumed(Role::A, tep, Role::B, AeadId::AES_128_GCM, SS),
        resumed(Role::B, tep, Role::A, AeadId::AES_128_GCM, SS),
        SessionConfig::default(),
        SessionConfig::default(),
    );
    p.drive();
    p.a.session.write_plaintext(b"from current A").unwrap();
    let mut frame = Vec::new();
    let _ = p.a.session.poll_ciphertext(&mut frame);
    let sn: Vec<u8> = (1..=16).collect();
    let k_ba = SessionSecret::from_bytes(SS)
        .master_key(&sn)
        .traffic_key(Role::B, 16);
    let key = provider()
        .aead(AeadId::AES_128_GCM)
        .unwrap()
        .new_key(k_ba.key())
        .unwrap();
    let (aad, body) = frame.split_at_mut(3);
    key.open_in_place(&frame_nonce(0, k_ba.nonce_randomizer()), aad, body)
        .unwrap();
    assert_eq!(&body[1..15], b"from current A");
}

#[test]
fn mismatched_original_roles_fail_authentication() {
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let mut p = Pair::with_configs(
        resumed(Role::A, tep, Role::A, AeadId::AES_128_GCM, SS),
        resumed(Role::B, tep, Role::A, AeadId::AES_128_GCM, SS),
        SessionConfig::default(),
        SessionConfig::default(),
    );
    p.drive();
    p.send_a(b"x");
    assert_eq!(p.b.error, Some(Error::AuthenticationFailed));
    assert!(p.b.received.is_empty());
}

#[test]
fn resumption_with_a_fresh_tep_byte_is_api_misuse() {
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let mut n = resumed(Role::A, tep, Role::A, AeadId::AES_128_GCM, SS);
    n.tep_byte = tep.get();
    let r = tcpcrypt_tests::Session::new(
        n,
        Default::default(),
        provider(),
        &mut tcpcrypt_tests::TestRng::new(1),
        Instant::now(),
    );
    assert!(matches!(r, Err(Error::ApiMisuse(_))));
}
