//! Property tests: the negotiation never panics on arbitrary received bytes, and an honest pair
//! always agrees (both enabled with the same TEP, transcript and nonces, or both disabled).

use proptest::prelude::*;

use super::*;
use crate::consts::K_LEN;
use crate::keys::SessionSecret;
use crate::resume::{CacheConfig, ResumeCache};

fn arb_teps() -> impl Strategy<Value = Vec<TepId>> {
    proptest::sample::subsequence(TepId::TCPCRYPT_ALL.to_vec(), 0..=4).prop_shuffle()
}

fn arb_config() -> impl Strategy<Value = Config> {
    (
        arb_teps(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0usize..=8,
    )
        .prop_map(|(teps, a, mandatory, offer, accept, nonce)| {
            Config::new(&teps)
                .unwrap()
                .with_app_aware(a)
                .with_mandatory_app_aware(mandatory)
                .with_resumption(offer, accept)
                .with_resume_nonce_len(nonce)
                .unwrap()
        })
}

fn arb_flags() -> impl Strategy<Value = SegmentFlags> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(syn, ack, payload)| SegmentFlags {
        syn,
        ack,
        payload,
    })
}

/// An options area that often holds an ENO option with random contents.
fn arb_options() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(|c| {
            let mut o = vec![0x45, c.len() as u8 + 2];
            o.extend(c);
            o
        }),
        (
            proptest::collection::vec(0x20u8..=0x24, 0..4),
            any::<bool>()
        )
            .prop_map(|(t, b)| {
                let mut o = vec![0x45, t.len() as u8 + 3, u8::from(b)];
                o.extend(t);
                o
            }),
    ]
}

fn assert_agree(a: &mut Negotiation, b: &mut Negotiation) -> Result<(), TestCaseError> {
    match (a.state(), b.state()) {
        (State::Enabled, State::Enabled) => {
            let (na, nb) = (a.take_negotiated().unwrap(), b.take_negotiated().unwrap());
            prop_assert_eq!(na.tep, nb.tep);
            prop_assert_eq!(na.tep_byte, nb.tep_byte);
            prop_assert_eq!(&na.transcript, &nb.transcript);
            prop_assert_ne!(na.role, nb.role);
            match (na.resumption, nb.resumption) {
                (Some(ra), Some(rb)) => {
                    prop_assert_eq!(ra.sn, rb.sn);
                    prop_assert_eq!(ra.secret.resume_id(), rb.secret.resume_id());
                    prop_assert!(na.tep_byte & 0x80 != 0);
                }
                (None, None) => prop_assert!(na.tep_byte & 0x80 == 0),
                _ => prop_assert!(false, "one side resumed, the other did not"),
            }
        }
        (State::Disabled(_), State::Disabled(_)) => {}
        (x, y) => prop_assert!(false, "disagreement: {:?} vs {:?}", x, y),
    }
    Ok(())
}

proptest! {
    #[test]
    fn honest_pair_agrees(
        cfg_a in arb_config(),
        cfg_b in arb_config(),
        resume in proptest::option::of((any::<u8>(), proptest::sample::select(TepId::TCPCRYPT_ALL.to_vec()), any::<bool>())),
    ) {
        let now = Instant::now();
        let mut ca: ResumeCache<u8> = ResumeCache::new(CacheConfig::default());
        let mut cb: ResumeCache<u8> = ResumeCache::new(CacheConfig::default());
        if let Some((byte, tep, b_has_it)) = resume {
            let ss = SessionSecret::from_bytes([byte; K_LEN]);
            ca.insert(0, ResumableSecret { tep, original_role: Role::A, aead: crate::consts::AeadId::AES_128_GCM, secret: ss.clone() }, now);
            if b_has_it {
                cb.insert(0, ResumableSecret { tep, original_role: Role::B, aead: crate::consts::AeadId::AES_128_GCM, secret: ss }, now);
            }
        }
        let offer = if cfg_a.offer_resumption() { ca.take_offer(&0, now) } else { None };
        let mut h = handshake_with(cfg_a, cfg_b, offer, &mut cb);
        assert_agree(&mut h.a, &mut h.b)?;
    }

    #[test]
    fn simultaneous_pair_agrees(cfg_x in arb_config(), cfg_y in arb_config(), bx: bool, by: bool) {
        let (mut x, mut y) =
            simultaneous(cfg_x.with_passive_role(bx), cfg_y.with_passive_role(by));
        // Both sent and received a SYN-ACK: an ACK segment each way.
        assert_agree(&mut x, &mut y)?;
    }

    /// Arbitrary received segments never panic, in any order, on either side.
    #[test]
    fn never_panics(
        cfg in arb_config(),
        first in arb_options(),
        segments in proptest::collection::vec((arb_flags(), arb_options()), 0..6),
        passive: bool,
    ) {
        let mut rng = CountingRng(0);
        let mut n = if passive {
            Negotiation::passive(cfg, SegmentFlags::SYN, &first, &mut NoResumption, Instant::now(), &mut rng).0
        } else {
            let mut n = Negotiation::active(cfg, None, &mut rng);
            let _ = n.on_send(SegmentFlags::SYN, &[]);
            n
        };
        for (flags, options) in &segments {
            let _ = n.on_send(*flags, options);
            let _ = n.on_receive(*flags, options);
            let _ = n.peer_app_aware();
            let _ = n.role();
        }
        if n.state() == State::Enabled {
            prop_assert!(n.take_negotiated().is_some());
        }
    }
}
