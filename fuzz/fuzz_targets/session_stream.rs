//! A `Session` of each role (fresh and resumed) fed arbitrary ciphertext chunks, then a TCP FIN
//! (RFC 8548 §3.3-§3.8). It must never panic, and a clean EOF never coexists with an error.

#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tcpcrypt_crypto::DefaultProvider;
use tcpcrypt_proto::crypto::Rng;
use tcpcrypt_proto::keys::{ResumableSecret, SessionSecret};
use tcpcrypt_proto::negotiated::ResumeNonces;
use tcpcrypt_proto::session::{Read, Session, SessionConfig};
use tcpcrypt_proto::{AeadId, Negotiated, Resumption, Role, TepId};

/// A fixed-seed SplitMix64 generator: deterministic runs (not a CSPRNG; fuzzing only).
struct FixedRng(u64);

impl Rng for FixedRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

fn negotiated(role: Role, tep: TepId, resume: bool) -> Negotiated {
    let resumption = resume.then(|| Resumption {
        secret: ResumableSecret {
            tep,
            original_role: role,
            aead: AeadId::AES_128_GCM,
            secret: SessionSecret::from_bytes([7; 32]),
        },
        sn: ResumeNonces::new(&[1; 8], &[2; 8]).unwrap_or_default(),
    });
    Negotiated {
        role,
        tep,
        tep_byte: tep.get() | if resume { 0x80 } else { 0 },
        transcript: vec![0x45, 0x03, 0x23, 0x45, 0x04, 0x01, 0x23],
        peer_app_aware: false,
        cache_secrets: true,
        resumption,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let role = if selector & 1 == 0 { Role::A } else { Role::B };
    let tep = TepId::TCPCRYPT_ALL[usize::from(selector >> 1) % 4];
    let resume = selector & 0x08 != 0;
    let config = Arc::new(SessionConfig {
        rekey_after_frames: 3,
        ..SessionConfig::default()
    });
    let t0 = Instant::now();
    let Ok(mut s) = Session::new(
        negotiated(role, tep, resume),
        config,
        Arc::new(DefaultProvider),
        &mut FixedRng(1),
        t0,
    ) else {
        return;
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    // Each chunk: one length byte, then up to that many bytes.
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let mut chunk = &tail[..n];
        rest = &tail[n..];
        while !chunk.is_empty() {
            match s.handle_ciphertext(chunk) {
                Ok(used) => chunk = &chunk[used..],
                Err(_) => break,
            }
            let _ = s.poll_ciphertext(&mut out);
            while s.poll_event().is_some() {}
            while let Ok(Read::Data(k)) = s.read_plaintext(&mut buf) {
                if k == 0 {
                    break;
                }
            }
            if s.error().is_some() {
                break;
            }
        }
        let _ = s.write_plaintext(&tail[..n.min(64)]);
        if len & 0x0f == 0 {
            let _ = s.initiate_rekey();
        }
        out.clear();
    }
    // A fresh session still waiting for Init1/Init2 fails when its deadline passes.
    if s.error().is_none() {
        let handshaking = !s.is_established();
        let timer = s.handle_timeout(t0 + Duration::from_secs(3600));
        assert_eq!(timer.is_err(), handshaking);
    }
    let fin = s.handle_peer_fin();
    let read = s.read_plaintext(&mut buf);
    if read == Ok(Read::Eof) {
        assert!(fin.is_ok() && s.error().is_none());
    }
});
