//! TCPCRYPT_ECDHE_Curve25519 (RFC 8548 §5): X25519 of RFC 7748, on aws-lc-rs.

use aws_lc_rs::agreement::{self as lc, PrivateKey, UnparsedPublicKey};
use tcpcrypt_proto::consts::TepId;
use tcpcrypt_proto::crypto::{CryptoError, EphemeralSecret, KeyAgreement, Rng, SharedSecret};
use zeroize::Zeroizing;

use super::is_all_zero;

/// Length of an X25519 scalar, u-coordinate and shared secret (RFC 7748 §5).
const LEN: usize = 32;

/// The X25519 scheme: `Pub` is the raw 32-byte u-coordinate, no length prefix.
pub(super) struct X25519Kex;

/// The one instance.
pub(super) static X25519: X25519Kex = X25519Kex;

impl KeyAgreement for X25519Kex {
    fn tep(&self) -> TepId {
        TepId::TCPCRYPT_ECDHE_CURVE25519
    }

    fn public_len(&self) -> usize {
        LEN
    }

    fn shared_secret_len(&self) -> usize {
        LEN
    }

    /// Draws 32 bytes from `rng` as the private scalar (X25519 clamps it, RFC 7748 §5).
    fn generate(&self, rng: &mut dyn Rng) -> Result<Box<dyn EphemeralSecret>, CryptoError> {
        let mut scalar = Zeroizing::new([0u8; LEN]);
        rng.fill(&mut scalar[..]);
        let key = PrivateKey::from_private_key(&lc::X25519, &scalar[..])
            .map_err(|_| CryptoError::KeyGeneration)?;
        let public = key
            .compute_public_key()
            .map_err(|_| CryptoError::KeyGeneration)?;
        let public: [u8; LEN] = public
            .as_ref()
            .try_into()
            .map_err(|_| CryptoError::KeyGeneration)?;
        Ok(Box::new(Secret { key, public }))
    }
}

/// An X25519 private key (aws-lc `EVP_PKEY`, cleansed when freed) and its public u-coordinate.
struct Secret {
    key: PrivateKey,
    public: [u8; LEN],
}

impl EphemeralSecret for Secret {
    fn public(&self) -> &[u8] {
        &self.public
    }

    /// RFC 8548 §5: X25519 per RFC 7748, which "MUST check whether the computed shared secret is
    /// the all-zero value and abort if so" (RFC 7748 §6). Any 32 bytes are a valid u-coordinate
    /// (non-canonical values are reduced, the top bit is masked); other lengths are rejected.
    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        if peer_public.len() != LEN {
            return Err(CryptoError::InvalidPublicKey);
        }
        // With the length checked, aws-lc fails X25519 only for an all-zero result, which is
        // what a low-order peer point gives.
        let es = lc::agree(
            &self.key,
            UnparsedPublicKey::new(&lc::X25519, peer_public),
            CryptoError::AllZeroSharedSecret,
            |es| Ok(SharedSecret::new(es.to_vec())),
        )?;
        if es.as_bytes().len() != LEN || is_all_zero(es.as_bytes()) {
            return Err(CryptoError::AllZeroSharedSecret);
        }
        Ok(es)
    }
}
