//! Session-level benchmarks (RFC 8548 §3.3, §3.6): frame seal + open through the `Session` API,
//! and a full fresh handshake. Compare with `tcpcrypt-crypto`'s `aead/.../seal/16384` and
//! `ecdh/.../generate+agree` (the bare primitives).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tcpcrypt_proto::consts::AeadId;
use tcpcrypt_proto::session::{Peek, Read, SessionConfig};
use tcpcrypt_proto::{Role, TepId};
use tcpcrypt_tests::{fresh, provider, Pair, Session, TestRng, TEPS};

fn framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("framing");
    for aead in AeadId::ALL {
        let name = aead.name().unwrap_or("unknown").trim_start_matches("AEAD_");
        for size in [16384usize, 1400] {
            let config = SessionConfig {
                aead_offer: vec![aead],
                aead_preference: vec![aead],
                ..SessionConfig::default()
            };
            let mut pair = Pair::fresh(TepId::TCPCRYPT_ECDHE_CURVE25519, config);
            pair.drive();
            let (a, b) = (&mut pair.a.session, &mut pair.b.session);
            let data = vec![0x5a; size];
            let mut wire = Vec::with_capacity(size + 64);
            let mut buf = vec![0u8; size];
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(name, size), |bench| {
                bench.iter(|| {
                    let n = a.write_plaintext(black_box(&data)).unwrap_or(0);
                    assert_eq!(n, size);
                    wire.clear();
                    let _ = a.poll_ciphertext(&mut wire);
                    let used = b.handle_ciphertext(&wire).unwrap_or(0);
                    assert_eq!(used, wire.len());
                    let mut got = 0;
                    while let Ok(Read::Data(k)) = b.read_plaintext(&mut buf[got..]) {
                        if k == 0 {
                            break;
                        }
                        got += k;
                    }
                    assert_eq!(got, size);
                    black_box(&buf);
                });
            });
            // The same with zero-copy reading (peek_plaintext + consume_plaintext).
            let id = BenchmarkId::new(format!("{name}/peek"), size);
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    let n = a.write_plaintext(black_box(&data)).unwrap_or(0);
                    assert_eq!(n, size);
                    wire.clear();
                    let _ = a.poll_ciphertext(&mut wire);
                    let used = b.handle_ciphertext(&wire).unwrap_or(0);
                    assert_eq!(used, wire.len());
                    let mut got = 0;
                    while let Ok(Peek::Data(d)) = b.peek_plaintext() {
                        let k = black_box(d).len();
                        b.consume_plaintext(k);
                        got += k;
                    }
                    assert_eq!(got, size);
                });
            });
        }
    }
    group.finish();
}

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    let p = provider();
    let config = Arc::new(SessionConfig::default());
    for tep in TEPS {
        let name = tep
            .name()
            .unwrap_or("unknown")
            .trim_start_matches("TCPCRYPT_ECDHE_");
        let mut rng_a = TestRng::new(1);
        let mut rng_b = TestRng::new(2);
        let mut wire = Vec::with_capacity(256);
        group.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| {
                let mut a = Session::new(
                    fresh(Role::A, tep),
                    config.clone(),
                    p.clone(),
                    &mut rng_a,
                    Instant::now(),
                )
                .expect("A");
                let mut b = Session::new(
                    fresh(Role::B, tep),
                    config.clone(),
                    p.clone(),
                    &mut rng_b,
                    Instant::now(),
                )
                .expect("B");
                wire.clear();
                let _ = a.poll_ciphertext(&mut wire);
                let _ = b.handle_ciphertext(&wire);
                wire.clear();
                let _ = b.poll_ciphertext(&mut wire);
                let _ = a.handle_ciphertext(&wire);
                assert!(a.is_established() && b.is_established());
                black_box((a.session_id(), b.session_id()));
            });
        });
    }
    group.finish();
}

criterion_group!(benches, framing, handshake);
criterion_main!(benches);
