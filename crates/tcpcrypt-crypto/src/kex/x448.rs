//! TCPCRYPT_ECDHE_Curve448 (RFC 8548 §5): X448 of RFC 7748, on RustCrypto's `x448`.
//!
//! Neither aws-lc-rs nor ring has X448. The `x448` crate is a pure-Rust pre-release (pinned
//! exactly in the workspace manifest); `tests/kat.rs` checks it against every RFC 7748 vector.

use tcpcrypt_proto::consts::TepId;
use tcpcrypt_proto::crypto::{CryptoError, EphemeralSecret, KeyAgreement, Rng, SharedSecret};
use zeroize::Zeroizing;

use super::is_all_zero;

/// Length of an X448 scalar, u-coordinate and shared secret (RFC 7748 §5).
const LEN: usize = 56;

/// The X448 scheme: `Pub` is the raw 56-byte u-coordinate, no length prefix.
pub(super) struct X448Kex;

/// The one instance.
pub(super) static X448: X448Kex = X448Kex;

impl KeyAgreement for X448Kex {
    fn tep(&self) -> TepId {
        TepId::TCPCRYPT_ECDHE_CURVE448
    }

    fn public_len(&self) -> usize {
        LEN
    }

    fn shared_secret_len(&self) -> usize {
        LEN
    }

    /// Draws 56 bytes from `rng` as the private scalar (X448 clamps it, RFC 7748 §5).
    fn generate(&self, rng: &mut dyn Rng) -> Result<Box<dyn EphemeralSecret>, CryptoError> {
        let mut scalar = Zeroizing::new([0u8; LEN]);
        rng.fill(&mut scalar[..]);
        let public = x448::x448_unchecked(*scalar, x448::X448_BASEPOINT_BYTES);
        Ok(Box::new(Secret { scalar, public }))
    }
}

/// An X448 private scalar (zeroed on drop) and its public u-coordinate.
///
/// `x448::x448_unchecked` takes the scalar by value, so a stack copy of it outlives the call
/// unzeroed until overwritten; the crate has no by-reference API. Low-order points are not
/// rejected up front (the checked `x448::x448` would return `None` for them): the all-zero check
/// below is RFC 7748 §6's own test, gives the typed error, and also catches non-canonical
/// encodings of those points.
struct Secret {
    scalar: Zeroizing<[u8; LEN]>,
    public: [u8; LEN],
}

impl EphemeralSecret for Secret {
    fn public(&self) -> &[u8] {
        &self.public
    }

    /// RFC 8548 §5 and RFC 7748 §6: any 56 bytes are a u-coordinate (non-canonical values are
    /// reduced); other lengths are rejected, and an all-zero result (from a low-order point)
    /// aborts.
    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        let peer: [u8; LEN] = peer_public
            .try_into()
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let es = Zeroizing::new(x448::x448_unchecked(*self.scalar, peer));
        if is_all_zero(&es[..]) {
            return Err(CryptoError::AllZeroSharedSecret);
        }
        Ok(SharedSecret::new(es.to_vec()))
    }
}
