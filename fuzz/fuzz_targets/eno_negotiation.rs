//! Fuzzes the ENO negotiation (RFC 8547 §4.6; RFC 8548 §3.5): a passive and an active
//! negotiation fed fuzzer-chosen segments never panic, and when either reports encryption
//! enabled its outcome is consistent.
//!
//! Input: one config byte, then records `[flags][len][len option bytes]`. The passive side
//! starts from the first record as its SYN; every record is then fed to both sides.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tcpcrypt_proto::consts::{AeadId, Role, TepId, K_LEN};
use tcpcrypt_proto::crypto::Rng;
use tcpcrypt_proto::eno::{Config, Negotiation, SegmentFlags, State};
use tcpcrypt_proto::keys::{ResumableSecret, SessionSecret};
use tcpcrypt_proto::resume::{CacheConfig, ResumeCache};

struct CountingRng(u8);

impl Rng for CountingRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

fn config(bits: u8) -> Config {
    let teps: Vec<TepId> =
        TepId::TCPCRYPT_ALL.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, t)| *t).collect();
    Config::new(&teps)
        .expect("tcpcrypt TEPs, no duplicates")
        .with_app_aware(bits & 0x10 != 0)
        .with_mandatory_app_aware(bits & 0x20 != 0)
        .with_passive_role(bits & 0x40 != 0)
        .with_resumption(true, bits & 0x80 == 0)
}

fn records(mut data: &[u8]) -> Vec<(SegmentFlags, &[u8])> {
    let mut out = Vec::new();
    while let [flags, len, rest @ ..] = data {
        let n = usize::from(*len).min(rest.len());
        let seg = SegmentFlags { syn: flags & 1 != 0, ack: flags & 2 != 0, payload: flags & 4 != 0 };
        out.push((seg, &rest[..n]));
        data = &rest[n..];
    }
    out
}

fn check(n: &mut Negotiation) {
    if n.state() == State::Enabled {
        if let Some(neg) = n.take_negotiated() {
            assert_eq!(neg.tep_byte & 0x7f, neg.tep.get());
            assert_eq!(neg.resumption.is_some(), neg.tep_byte & 0x80 != 0);
            assert!(neg.transcript.len() <= 2 * 40);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&bits, rest)) = data.split_first() else { return };
    let recs = records(rest);
    let Some(&(first_flags, first)) = recs.first() else { return };
    let now = Instant::now();
    let mut rng = CountingRng(bits);

    // A resumable secret on each side, so resumption paths are reachable.
    let ss = SessionSecret::from_bytes([bits; K_LEN]);
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let mut cache: ResumeCache<u8> = ResumeCache::new(CacheConfig::default());
    cache.insert(0, ResumableSecret { tep, original_role: Role::B, aead: AeadId::AES_128_GCM, secret: ss.clone() }, now);
    let offer = ResumableSecret { tep, original_role: Role::A, aead: AeadId::AES_128_GCM, secret: ss };

    let (mut passive, _) =
        Negotiation::passive(config(bits), first_flags, first, &mut cache, now, &mut rng);
    let mut active = Negotiation::active(config(bits.rotate_left(3)), Some(offer), &mut rng);
    let _ = active.on_send(SegmentFlags::SYN, &[]);

    for (flags, options) in &recs[1..] {
        for n in [&mut passive, &mut active] {
            let _ = n.on_send(*flags, options);
            let verdict = n.on_receive(*flags, options);
            assert!(!verdict.discard_syn_data || (flags.syn && flags.payload));
            let _ = (n.role(), n.peer_app_aware(), n.own_syn_option(), n.peer_syn_option());
            check(n);
        }
    }
});
