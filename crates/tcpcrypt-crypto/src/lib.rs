//! The default crypto provider of `tcpcrypt-proto`: every key-agreement scheme of RFC 8548 §5,
//! every AEAD of RFC 8548 §6, and an OS-backed [`Rng`](tcpcrypt_proto::crypto::Rng).
//!
//! The core crate reaches cryptography only through the traits of
//! [`tcpcrypt_proto::crypto`]; this crate implements them:
//!
//! | TEP / AEAD (RFC 8548) | `Pub` / key | ES / tag | back end |
//! |---|---|---|---|
//! | 0x23 `TCPCRYPT_ECDHE_Curve25519` | 32 raw bytes | 32 | aws-lc-rs (X25519) |
//! | 0x24 `TCPCRYPT_ECDHE_Curve448` | 56 raw bytes | 56 | RustCrypto `x448` (pre-release) |
//! | 0x21 `TCPCRYPT_ECDHE_P256` | `00 21` ‖ 02/03 ‖ x (35) | x, 32 | aws-lc-rs (ECDH P-256) |
//! | 0x22 `TCPCRYPT_ECDHE_P521` | `00 43` ‖ 02/03 ‖ x (69) | x, 66 | aws-lc-rs (ECDH P-521) |
//! | 0x0001 `AEAD_AES_128_GCM` | 16 | 16 | aws-lc-rs |
//! | 0x0002 `AEAD_AES_256_GCM` | 32 | 16 | aws-lc-rs |
//! | 0x0010 `AEAD_CHACHA20_POLY1305` | 32 | 16 | aws-lc-rs |
//!
//! Use [`DEFAULT_PROVIDER`] (or [`default_provider()`]) as the core's `&dyn CryptoProvider`, and
//! [`OsRng`] as its `Rng` in production.
//!
//! # Why these crates (measured on this project's CPU, Xeon with AES-NI, VAES, VPCLMULQDQ)
//!
//! Criterion, `--warm-up-time 1 --measurement-time 2`, release, medians:
//!
//! | operation | aws-lc-rs 1.19 | ring 0.17.14 | RustCrypto |
//! |---|---|---|---|
//! | AES-128-GCM seal 16 KiB | **908 ns (16.8 GiB/s)** | 1.26 µs (12.1 GiB/s) | 9.0 µs (1.7 GiB/s, aes-gcm 0.10) |
//! | AES-128-GCM seal 1400 B | **152 ns (8.6 GiB/s)** | 188 ns (6.9 GiB/s) | 889 ns (1.5 GiB/s) |
//! | ChaCha20-Poly1305 seal 16 KiB | 6.28 µs (2.4 GiB/s) | 6.26 µs (2.4 GiB/s) | - |
//! | X25519 key from bytes + public + agree | **24.7 µs (40k/s)** | 46.2 µs (ring's own keygen) | 48.9 µs (x25519-dalek 2) |
//! | P-256 key from bytes + compressed public + agree | 63 µs | no key-from-bytes | - |
//! | P-521 key from bytes + compressed public + agree | 352 µs | no P-521 | - |
//! | X448 two scalar multiplications | - | no X448 | 638 µs (`x448` 0.14.0-pre.12) |
//!
//! This contradicts the older numbers in the project digest (§6 item 9: ring 6.7 GB/s, aws-lc-rs
//! 2.9 GB/s): aws-lc-rs 1.19 (aws-lc-sys 0.47) has the VAES/AVX-512 GCM code and is now the
//! fastest for both AES-128-GCM and X25519. It also covers P-256 and P-521, builds a private
//! key from caller-supplied bytes (needed because keys must come from the core's [`Rng`]; ring's
//! key generation only takes its own sealed `SecureRandom`), and zeroes every key it frees (aws-lc's
//! `OPENSSL_free` cleanses each allocation, AEAD contexts and `EVP_PKEY`s included), which ring
//! does not do. So one C library covers everything but X448.
//!
//! X448 is in neither aws-lc-rs nor ring. It comes from RustCrypto's pure-Rust `x448`
//! pre-release (pinned with `=`; unaudited), which passes the RFC 7748 vectors in `tests/kat.rs`.
//! The alternative, the `openssl` crate, would need the system's `libssl-dev`.
//!
//! Building needs only `cargo` and a C compiler: `aws-lc-sys` compiles aws-lc with the `cc`
//! crate and ships pre-generated bindings for x86_64/aarch64 Linux (no cmake, clang, Go or nasm).
//!
//! # This crate's own numbers
//!
//! `cargo bench -p tcpcrypt-crypto -- --warm-up-time 1 --measurement-time 3`
//! (`benches/primitives.rs`, through the traits, medians):
//!
//! | AEAD | seal 16384 B | open 16384 B | seal 1400 B | open 1400 B |
//! |---|---|---|---|---|
//! | AES_128_GCM | 854 ns (17.9 GiB/s) | 979 ns (15.6 GiB/s) | 154 ns (8.5 GiB/s) | 153 ns (8.5 GiB/s) |
//! | AES_256_GCM | 1.04 µs (14.7 GiB/s) | 1.11 µs (13.7 GiB/s) | 174 ns (7.5 GiB/s) | 170 ns (7.7 GiB/s) |
//! | CHACHA20_POLY1305 | 6.36 µs (2.4 GiB/s) | 6.49 µs (2.4 GiB/s) | 710 ns (1.8 GiB/s) | 672 ns (1.9 GiB/s) |
//!
//! (`open` includes copying the sealed buffer back in before each call.)
//!
//! | TEP | generate + agree (one side of a handshake) |
//! |---|---|
//! | Curve25519 | 25.5 µs (39k/s) |
//! | P256 | 64.2 µs (15.6k/s) |
//! | P521 | 362 µs (2.8k/s) |
//! | Curve448 | 646 µs (1.5k/s) |
//!
//! [`Rng`]: tcpcrypt_proto::crypto::Rng

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod aead;
mod kex;
mod rng;

use tcpcrypt_proto::consts::{AeadId, TepId};
use tcpcrypt_proto::crypto::{AeadAlgorithm, CryptoProvider, KeyAgreement};

pub use rng::OsRng;

/// The default [`CryptoProvider`]: all four TEPs of RFC 8548 §5 and all three AEADs of §6.
///
/// A unit struct; use [`DEFAULT_PROVIDER`] or [`default_provider()`] where a
/// `&'static dyn CryptoProvider` is needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefaultProvider;

/// The one instance of [`DefaultProvider`].
pub static DEFAULT_PROVIDER: DefaultProvider = DefaultProvider;

/// Returns [`DEFAULT_PROVIDER`].
pub fn default_provider() -> &'static DefaultProvider {
    &DEFAULT_PROVIDER
}

impl CryptoProvider for DefaultProvider {
    fn key_agreement(&self, tep: TepId) -> Option<&dyn KeyAgreement> {
        kex::lookup(tep)
    }

    fn aead(&self, id: AeadId) -> Option<&dyn AeadAlgorithm> {
        aead::lookup(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_has_every_registered_algorithm() {
        let p: &dyn CryptoProvider = default_provider();
        for tep in TepId::TCPCRYPT_ALL {
            let ka = p.key_agreement(tep).expect("TEP missing");
            assert_eq!(ka.tep(), tep);
        }
        for id in AeadId::ALL {
            let a = p.aead(id).expect("AEAD missing");
            assert_eq!(a.id(), id);
        }
    }

    #[test]
    fn provider_has_nothing_else() {
        let p = &DEFAULT_PROVIDER;
        assert!(p.key_agreement(TepId::EXPERIMENTAL).is_none());
        assert!(p
            .key_agreement(TepId::new(0x7f).expect("valid glt"))
            .is_none());
        assert!(p.aead(AeadId(0)).is_none());
        assert!(p.aead(AeadId(0x0003)).is_none());
        assert!(p.aead(AeadId(0xffff)).is_none());
    }

    #[test]
    fn lengths_match_rfc8548() {
        let p = &DEFAULT_PROVIDER;
        let expect = [
            (TepId::TCPCRYPT_ECDHE_CURVE25519, 32, 32),
            (TepId::TCPCRYPT_ECDHE_CURVE448, 56, 56),
            (TepId::TCPCRYPT_ECDHE_P256, 35, 32),
            (TepId::TCPCRYPT_ECDHE_P521, 69, 66),
        ];
        for (tep, pub_len, es_len) in expect {
            let ka = p.key_agreement(tep).expect("TEP missing");
            assert_eq!(ka.public_len(), pub_len, "{tep}");
            assert_eq!(ka.shared_secret_len(), es_len, "{tep}");
        }
        let keys = [
            (AeadId::AES_128_GCM, 16),
            (AeadId::AES_256_GCM, 32),
            (AeadId::CHACHA20_POLY1305, 32),
        ];
        for (id, len) in keys {
            assert_eq!(p.aead(id).expect("AEAD missing").key_len(), len, "{id}");
        }
    }
}
