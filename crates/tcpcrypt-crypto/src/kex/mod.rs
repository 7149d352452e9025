//! The key-agreement schemes of RFC 8548 §5, one file per curve family.
//!
//! Every scheme draws its private key from the core's [`Rng`](tcpcrypt_proto::crypto::Rng) (so
//! a seeded generator gives reproducible keys), and every `agree` validates the peer's `Pub`
//! field exactly as it came off the wire, length prefix included, without panicking on any
//! input.

mod nist;
mod x25519;
mod x448;

use tcpcrypt_proto::consts::TepId;
use tcpcrypt_proto::crypto::KeyAgreement;

/// The scheme of a tcpcrypt TEP, if it is one of the four of RFC 8548 §5.
pub(crate) fn lookup(tep: TepId) -> Option<&'static dyn KeyAgreement> {
    match tep {
        TepId::TCPCRYPT_ECDHE_CURVE25519 => Some(&x25519::X25519),
        TepId::TCPCRYPT_ECDHE_CURVE448 => Some(&x448::X448),
        TepId::TCPCRYPT_ECDHE_P256 => Some(&nist::P256),
        TepId::TCPCRYPT_ECDHE_P521 => Some(&nist::P521),
        _ => None,
    }
}

/// True if every byte is zero, without an early exit (RFC 7748 §6 check on a secret value).
fn is_all_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, &b| acc | b) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_zero() {
        assert!(is_all_zero(&[]));
        assert!(is_all_zero(&[0; 56]));
        let mut v = [0u8; 56];
        v[55] = 1;
        assert!(!is_all_zero(&v));
        v[55] = 0;
        v[0] = 0x80;
        assert!(!is_all_zero(&v));
    }
}
