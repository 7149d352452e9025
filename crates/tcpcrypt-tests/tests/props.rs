//! Property tests over whole streams (RFC 8548 §3.6, §3.7): chunking invariance and bit flips,
//! through the copying and the zero-copy calls (mixed per end).
//!
//! 64 cases each by default; `PROPTEST_CASES=2000 cargo test --test props` runs more.

use proptest::prelude::*;
use tcpcrypt_proto::consts::{AeadId, TepId};
use tcpcrypt_proto::session::SessionConfig;
use tcpcrypt_proto::{Error, PeerMisbehaved};
use tcpcrypt_tests::Pair;

fn config(aead: usize) -> SessionConfig {
    let aead = AeadId::ALL[aead % 3];
    SessionConfig {
        aead_offer: vec![aead],
        aead_preference: vec![aead],
        max_frame_data: 700,
        ..SessionConfig::default()
    }
}

/// Which ends use the zero-copy calls (send_buffer, peek/consume_ciphertext, open_in_place),
/// and the largest piece sent per `consume_ciphertext` (0: all).
type Mode = (bool, bool, usize);

fn mode() -> impl Strategy<Value = Mode> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(0usize), 1usize..2000],
    )
}

fn run(
    aead: usize,
    writes: &[Vec<u8>],
    ab_chunks: Vec<usize>,
    ba_chunks: Vec<usize>,
    flip: Option<(u64, u8)>,
    (zc_a, zc_b, piece): Mode,
) -> Pair {
    let mut p = Pair::fresh(TepId::TCPCRYPT_ECDHE_CURVE25519, config(aead));
    (p.a.zero_copy, p.b.zero_copy) = (zc_a, zc_b);
    (p.a.zero_copy_piece, p.b.zero_copy_piece) = (piece, piece);
    p.ab.chunks = ab_chunks;
    p.ba.chunks = ba_chunks;
    p.ab.flip = flip;
    p.drive();
    for (i, w) in writes.iter().enumerate() {
        if i % 4 == 3 {
            let _ = p.a.session.initiate_rekey();
        }
        p.send_a(w);
        p.send_b(&w[..w.len().min(10)]);
    }
    let _ = p.a.session.close();
    let _ = p.b.session.close();
    // A stalled pair (e.g. a tampered Init message_len) ends when the handshake timer fires.
    p.settle();
    p
}

/// The case count: `PROPTEST_CASES` if set, else 64.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn writes() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2000), 1..8)
}

fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..3000, 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_of_either_stream_gives_the_same_plaintext(
        aead in 0usize..3, w in writes(), c1 in chunks(), c2 in chunks(), m in mode(),
    ) {
        let p = run(aead, &w, c1, c2, None, m);
        prop_assert!(p.a.error.is_none() && p.b.error.is_none(), "{:?} {:?}", p.a.error, p.b.error);
        prop_assert!(p.a.eof && p.b.eof);
        prop_assert_eq!(p.b.received, w.concat());
        let back: Vec<u8> = w.iter().flat_map(|x| x[..x.len().min(10)].to_vec()).collect();
        prop_assert_eq!(p.a.received, back);
    }

    #[test]
    fn a_single_bit_flip_fails_and_releases_only_a_prefix(
        aead in 0usize..3, w in writes(), c1 in chunks(), at in 0u64..20_000, bit in 0u8..8,
        m in mode(),
    ) {
        let clean = run(aead, &w, Vec::new(), Vec::new(), None, m);
        let stream_len = clean.ab.sent;
        let at = at % stream_len;
        let p = run(aead, &w, c1, Vec::new(), Some((at, 1 << bit)), m);
        let err = p.b.error;
        prop_assert!(err.is_some(), "flip at {} of {} unnoticed", at, stream_len);
        // In Init1 (B fails directly, or its handshake timer fires when a larger message_len
        // makes it wait for bytes that never come).
        prop_assert!(matches!(
            err,
            Some(
                Error::AuthenticationFailed
                    | Error::Truncated
                    | Error::PeerMisbehaved(_)
                    | Error::KeyAgreement(_)
                    | Error::Decode(_)
                    | Error::HandshakeTimeout
            )
        ), "{:?}", err);
        if at >= clean.ab.init_end.unwrap_or(0) {
            prop_assert!(matches!(
                err,
                Some(Error::AuthenticationFailed | Error::Truncated | Error::PeerMisbehaved(PeerMisbehaved::FrameTooShort))
            ), "{:?}", err);
        }
        prop_assert!(!p.b.eof);
        prop_assert!(w.concat().starts_with(&p.b.received));
    }
}
