//! Criterion benchmarks of the default provider's primitives, through the `tcpcrypt-proto`
//! traits (so the numbers include the trait-object and buffer handling the core pays).
//!
//! Ids: `aead/<AEAD>/{seal,open}/<bytes>` (throughput in bytes, in-place, 13-byte associated data
//! like a frame header plus flags) and `ecdh/<curve>/generate+agree` (one side of a handshake:
//! draw a key from the Rng, encode `Pub`, validate the peer's `Pub`, compute ES).
//!
//! Run: `cargo bench -p tcpcrypt-crypto -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tcpcrypt_crypto::{OsRng, DEFAULT_PROVIDER};
use tcpcrypt_proto::consts::{AeadId, TepId, AEAD_TAG_LEN};
use tcpcrypt_proto::crypto::{CryptoProvider, Rng};

/// Plaintext sizes: a full 16 KiB write and one MSS-sized frame.
const SIZES: [usize; 2] = [16384, 1400];

/// Short names for the ids.
fn aead_name(id: AeadId) -> &'static str {
    match id {
        AeadId::AES_128_GCM => "AES_128_GCM",
        AeadId::AES_256_GCM => "AES_256_GCM",
        AeadId::CHACHA20_POLY1305 => "CHACHA20_POLY1305",
        _ => "unknown",
    }
}

fn curve_name(tep: TepId) -> &'static str {
    match tep {
        TepId::TCPCRYPT_ECDHE_CURVE25519 => "Curve25519",
        TepId::TCPCRYPT_ECDHE_CURVE448 => "Curve448",
        TepId::TCPCRYPT_ECDHE_P256 => "P256",
        TepId::TCPCRYPT_ECDHE_P521 => "P521",
        _ => "unknown",
    }
}

fn aead(c: &mut Criterion) {
    let aad = [0x5a; 13];
    for id in AeadId::ALL {
        let alg = DEFAULT_PROVIDER.aead(id).expect("registered AEAD");
        let mut key_bytes = vec![0u8; alg.key_len()];
        OsRng.fill(&mut key_bytes);
        let key = alg.new_key(&key_bytes).expect("key");
        let mut g = c.benchmark_group(format!("aead/{}", aead_name(id)));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let mut buf = vec![0x42u8; size + AEAD_TAG_LEN];
            let mut nonce = [0u8; 12];
            let mut counter = 0u64;
            g.bench_function(BenchmarkId::new("seal", size), |b| {
                b.iter(|| {
                    // A fresh nonce per seal, as the frame ID gives (RFC 8548 §4.2.3).
                    counter += 1;
                    nonce[4..].copy_from_slice(&counter.to_be_bytes());
                    key.seal_in_place(&nonce, &aad, black_box(&mut buf));
                })
            });
            // Open needs a valid frame each time: open a copy of one sealed buffer.
            let nonce = [7u8; 12];
            let mut sealed = vec![0x42u8; size + AEAD_TAG_LEN];
            key.seal_in_place(&nonce, &aad, &mut sealed);
            let mut work = sealed.clone();
            g.bench_function(BenchmarkId::new("open", size), |b| {
                b.iter(|| {
                    work.copy_from_slice(&sealed);
                    key.open_in_place(&nonce, &aad, black_box(&mut work))
                        .expect("authentic");
                })
            });
        }
        g.finish();
    }
}

fn ecdh(c: &mut Criterion) {
    for tep in TepId::TCPCRYPT_ALL {
        let ka = DEFAULT_PROVIDER.key_agreement(tep).expect("registered TEP");
        let peer = ka.generate(&mut OsRng).expect("keygen");
        let peer_pub = peer.public().to_vec();
        let mut g = c.benchmark_group(format!("ecdh/{}", curve_name(tep)));
        g.bench_function("generate+agree", |b| {
            b.iter(|| {
                let s = ka.generate(&mut OsRng).expect("keygen");
                black_box(s.public());
                s.agree(black_box(&peer_pub)).expect("agree")
            })
        });
        g.finish();
    }
}

criterion_group!(benches, aead, ecdh);
criterion_main!(benches);
