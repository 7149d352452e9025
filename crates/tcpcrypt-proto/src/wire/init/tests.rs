use proptest::prelude::*;

use super::*;

/// X25519: Pub is 32 raw bytes (RFC 8548 §5).
const PUB_LEN: usize = 32;

/// Init1 offering AES-128-GCM and ChaCha20-Poly1305, N_A = 0x11.., Pub_A = 0xaa..
fn init1_bytes() -> Vec<u8> {
    let mut v = vec![
        0x15, 0x10, 0x1a, 0x0e, 0, 0, 0, 77, 2, 0x00, 0x01, 0x00, 0x10,
    ];
    v.extend_from_slice(&[0x11; 32]);
    v.extend_from_slice(&[0xaa; 32]);
    v
}

/// Init2 choosing ChaCha20-Poly1305, N_B = 0x22.., Pub_B = 0xbb..
fn init2_bytes() -> Vec<u8> {
    let mut v = vec![0x09, 0x71, 0x05, 0xe0, 0, 0, 0, 74, 0x00, 0x10];
    v.extend_from_slice(&[0x22; 32]);
    v.extend_from_slice(&[0xbb; 32]);
    v
}

fn pm(e: Result<impl core::fmt::Debug, Error>) -> PeerMisbehaved {
    match e {
        Err(Error::PeerMisbehaved(p)) => p,
        other => panic!("expected PeerMisbehaved, got {other:?}"),
    }
}

#[test]
fn deconstruct_init1() {
    let bytes = init1_bytes();
    let r = Init1Repr::parse(&bytes, PUB_LEN).unwrap();
    assert_eq!(
        r.ciphers,
        vec![AeadId::AES_128_GCM, AeadId::CHACHA20_POLY1305]
    );
    assert_eq!(r.n_a, [0x11; 32]);
    assert_eq!(r.pub_key, &[0xaa; 32][..]);
    assert!(r.ignored.is_empty());
}

#[test]
fn construct_init1() {
    let pub_key = [0xaa; 32];
    let r = Init1Repr {
        ciphers: vec![AeadId::AES_128_GCM, AeadId::CHACHA20_POLY1305],
        n_a: [0x11; 32],
        pub_key: &pub_key,
        ignored: &[],
    };
    assert_eq!(r.buffer_len(), 77);
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut buf);
    assert_eq!(buf, init1_bytes());
}

#[test]
fn deconstruct_and_construct_init2() {
    let bytes = init2_bytes();
    let r = Init2Repr::parse(&bytes, PUB_LEN).unwrap();
    assert_eq!(r.sym_cipher, AeadId::CHACHA20_POLY1305);
    assert_eq!(r.n_b, [0x22; 32]);
    assert_eq!(r.pub_key, &[0xbb; 32][..]);
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut buf);
    assert_eq!(buf, bytes);
}

#[test]
fn bytes_needed_counts_down_to_message_len() {
    for (kind, bytes) in [
        (InitKind::Init1, init1_bytes()),
        (InitKind::Init2, init2_bytes()),
    ] {
        for n in 0..=bytes.len() {
            let need = init_bytes_needed(kind, &bytes[..n], PUB_LEN).unwrap();
            let expect = if n < 8 { 8 - n } else { bytes.len() - n };
            assert_eq!(need, expect, "{kind:?} prefix {n}");
        }
    }
}

#[test]
fn truncated_message_is_a_decode_error() {
    let bytes = init1_bytes();
    for n in [0, 7, 8, 40, bytes.len() - 1] {
        assert!(matches!(
            Init1Repr::parse(&bytes[..n], PUB_LEN),
            Err(Error::Decode(_))
        ));
    }
    let bytes = init2_bytes();
    assert!(matches!(
        Init2Repr::parse(&bytes[..50], PUB_LEN),
        Err(Error::Decode(_))
    ));
}

#[test]
fn bad_magic_is_caught_at_the_first_wrong_byte() {
    let mut bytes = init1_bytes();
    bytes[0] ^= 1;
    assert_eq!(
        pm(init_bytes_needed(InitKind::Init1, &bytes[..1], PUB_LEN)),
        PeerMisbehaved::BadInit1Magic
    );
    assert_eq!(
        pm(Init1Repr::parse(&bytes, PUB_LEN)),
        PeerMisbehaved::BadInit1Magic
    );
    // An Init2 where Init1 is expected, and the other way round.
    assert_eq!(
        pm(Init1Repr::parse(&init2_bytes(), PUB_LEN)),
        PeerMisbehaved::BadInit1Magic
    );
    assert_eq!(
        pm(Init2Repr::parse(&init1_bytes(), PUB_LEN)),
        PeerMisbehaved::BadInit2Magic
    );
    let mut bytes = init2_bytes();
    bytes[3] = 0;
    assert_eq!(
        pm(init_bytes_needed(InitKind::Init2, &bytes[..4], PUB_LEN)),
        PeerMisbehaved::BadInit2Magic
    );
}

#[test]
fn absurd_message_len_is_rejected_before_buffering() {
    let mut bytes = init1_bytes();
    bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        pm(init_bytes_needed(InitKind::Init1, &bytes[..8], PUB_LEN)),
        PeerMisbehaved::InitTooLong
    );
    let just_over = (MAX_INIT_LEN as u32 + 1).to_be_bytes();
    bytes[4..8].copy_from_slice(&just_over);
    assert_eq!(
        pm(init_bytes_needed(InitKind::Init1, &bytes[..8], PUB_LEN)),
        PeerMisbehaved::InitTooLong
    );
    bytes[4..8].copy_from_slice(&(MAX_INIT_LEN as u32).to_be_bytes());
    assert_eq!(
        init_bytes_needed(InitKind::Init1, &bytes[..8], PUB_LEN).unwrap(),
        MAX_INIT_LEN - 8
    );
}

#[test]
fn message_len_too_small() {
    let mut bytes = init2_bytes();
    bytes[7] = 73;
    assert_eq!(
        pm(init_bytes_needed(InitKind::Init2, &bytes[..8], PUB_LEN)),
        PeerMisbehaved::InitTooShort
    );
    assert_eq!(
        pm(Init2Repr::parse(&bytes[..73], PUB_LEN)),
        PeerMisbehaved::InitTooShort
    );
    // Init1 whose nciphers does not fit in message_len.
    let mut bytes = init1_bytes();
    bytes[8] = 3;
    assert_eq!(
        pm(init_bytes_needed(InitKind::Init1, &bytes[..9], PUB_LEN)),
        PeerMisbehaved::InitTooShort
    );
}

#[test]
fn no_ciphers() {
    let mut bytes = init1_bytes();
    bytes[8] = 0;
    assert_eq!(
        pm(init_bytes_needed(InitKind::Init1, &bytes[..9], PUB_LEN)),
        PeerMisbehaved::NoCiphers
    );
    assert_eq!(
        pm(Init1Repr::parse(&bytes, PUB_LEN)),
        PeerMisbehaved::NoCiphers
    );
}

#[test]
fn trailing_bytes_are_accepted_and_kept() {
    let mut bytes = init2_bytes();
    bytes.extend_from_slice(b"junk");
    bytes[7] = 78;
    let r = Init2Repr::parse(&bytes, PUB_LEN).unwrap();
    assert_eq!(r.ignored, b"junk");
    let mut again = vec![0; r.buffer_len()];
    r.emit(&mut again);
    assert_eq!(
        again, bytes,
        "re-emitting keeps the tail, so the hash sees the same bytes"
    );

    let mut bytes = init1_bytes();
    bytes.extend_from_slice(&[0xee; 100]);
    bytes[7] = 177;
    let r = Init1Repr::parse(&bytes, PUB_LEN).unwrap();
    assert_eq!(r.ignored.len(), 100);
    assert_eq!(r.pub_key, &[0xaa; 32][..]);
}

#[test]
fn nist_curve_pub_lengths() {
    // P-256: 2-byte length + 33-byte compressed point = 35; Init2 M = 77 (digest §3.4).
    let pub_key = [0x02; 35];
    let r = Init2Repr {
        sym_cipher: AeadId::AES_128_GCM,
        n_b: [0; 32],
        pub_key: &pub_key,
        ignored: &[],
    };
    assert_eq!(r.buffer_len(), 77);
    assert_eq!(InitKind::Init1.min_len(69), 112);
    assert_eq!(InitKind::Init2.min_len(69), 111);
}

fn arb_aead() -> impl Strategy<Value = AeadId> {
    any::<u16>().prop_map(AeadId)
}

proptest! {
    #[test]
    fn init1_round_trip(
        ciphers in prop::collection::vec(arb_aead(), 1..=255),
        n_a in any::<[u8; 32]>(),
        pub_key in prop::collection::vec(any::<u8>(), 32..=32),
        ignored in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let r = Init1Repr { ciphers, n_a, pub_key: &pub_key, ignored: &ignored };
        let mut buf = vec![0; r.buffer_len()];
        r.emit(&mut buf);
        prop_assert_eq!(Init1Repr::parse(&buf, 32).unwrap(), r);
    }

    #[test]
    fn init2_round_trip(
        c in arb_aead(),
        n_b in any::<[u8; 32]>(),
        pub_key in prop::collection::vec(any::<u8>(), 69..=69),
        ignored in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let r = Init2Repr { sym_cipher: c, n_b, pub_key: &pub_key, ignored: &ignored };
        let mut buf = vec![0; r.buffer_len()];
        r.emit(&mut buf);
        prop_assert_eq!(Init2Repr::parse(&buf, 69).unwrap(), r);
    }

    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), pub_len in 0usize..80) {
        let _ = Init1Repr::parse(&bytes, pub_len);
        let _ = Init2Repr::parse(&bytes, pub_len);
        let _ = init_bytes_needed(InitKind::Init1, &bytes, pub_len);
        let _ = init_bytes_needed(InitKind::Init2, &bytes, pub_len);
    }
}
