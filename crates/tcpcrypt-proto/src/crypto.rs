//! The crypto provider interface: the only way the core reaches key agreement, AEADs and
//! randomness.
//!
//! The core never reads OS randomness and never picks a crypto library: a [`CryptoProvider`]
//! (the `tcpcrypt-crypto` crate ships the default one) and an [`Rng`] are passed in. HMAC-SHA256,
//! which the key schedule uses (RFC 8548 §3.1), is not behind this interface: it is a fixed part
//! of all four TEPs and costs microseconds per connection.

use core::fmt;

use zeroize::Zeroizing;

use crate::consts::{AeadId, TepId, AEAD_NONCE_LEN, AEAD_TAG_LEN};

/// A source of cryptographically secure random bytes (RFC 8547 §10: no ENO without one).
pub trait Rng {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

/// The algorithms available to a host: key agreement per TEP and AEAD per id.
pub trait CryptoProvider: Send + Sync {
    /// The key-agreement scheme of a tcpcrypt TEP (RFC 8548 §5), if this provider has it.
    fn key_agreement(&self, tep: TepId) -> Option<&dyn KeyAgreement>;
    /// The AEAD with this id (RFC 8548 §6), if this provider has it.
    fn aead(&self, id: AeadId) -> Option<&dyn AeadAlgorithm>;
}

/// Why a key-agreement or AEAD operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The peer's public key is malformed or fails validation (RFC 8548 §5: IEEE 1363 A.16.10
    /// for the NIST curves; wrong length for X25519/X448).
    #[error("invalid peer public key")]
    InvalidPublicKey,
    /// The X25519/X448 shared secret is all zero (RFC 7748 §6; RFC 8548 §5 MUST abort).
    #[error("all-zero key-agreement result")]
    AllZeroSharedSecret,
    /// A key has the wrong length for its algorithm.
    #[error("key of wrong length")]
    KeyLength,
    /// Generating a key pair failed (for example, the random bytes gave no valid scalar).
    #[error("key generation failed")]
    KeyGeneration,
    /// AEAD open failed: the tag does not verify.
    #[error("AEAD authentication failed")]
    Authentication,
}

/// One ECDHE scheme of RFC 8548 §5.
pub trait KeyAgreement: Send + Sync {
    /// The TEP this scheme implements.
    fn tep(&self) -> TepId;
    /// Length of the `Pub` field in Init1/Init2, length prefix included (RFC 8548 §4.1, §5):
    /// 32 (X25519), 56 (X448), 2 + 33 (P-256), 2 + 67 (P-521).
    fn public_len(&self) -> usize;
    /// Length of the shared secret ES: 32, 56, 32 or 66 bytes.
    fn shared_secret_len(&self) -> usize;
    /// Generates an ephemeral key pair from random bytes drawn from `rng`.
    ///
    /// # Errors
    /// [`CryptoError::KeyGeneration`] if no valid private key could be made.
    fn generate(&self, rng: &mut dyn Rng) -> Result<Box<dyn EphemeralSecret>, CryptoError>;
}

/// An ephemeral private key, used once (RFC 8548 §3.3: refreshed frequently, never persisted).
pub trait EphemeralSecret: Send {
    /// The `Pub` field exactly as it goes into Init1/Init2, length prefix included.
    fn public(&self) -> &[u8];
    /// Computes ES from the peer's `Pub` field (length prefix included), validating it and
    /// rejecting an all-zero result. Consumes the private key.
    ///
    /// # Errors
    /// [`CryptoError::InvalidPublicKey`] or [`CryptoError::AllZeroSharedSecret`].
    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<SharedSecret, CryptoError>;
}

/// The key-agreement result ES (RFC 8548 §3.3). Zeroed on drop; `Debug` redacts it.
pub struct SharedSecret(Zeroizing<Vec<u8>>);

impl SharedSecret {
    /// Wraps the bytes of a shared secret.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedSecret({} bytes, redacted)", self.0.len())
    }
}

/// One AEAD algorithm of RFC 8548 §6. Every registered AEAD has a 12-byte nonce and a 16-byte
/// tag ([`AEAD_NONCE_LEN`], [`AEAD_TAG_LEN`]).
pub trait AeadAlgorithm: Send + Sync {
    /// The registry id.
    fn id(&self) -> AeadId;
    /// ae_key_len: 16 for AES-128-GCM, 32 for the other two.
    fn key_len(&self) -> usize;
    /// Builds a key from `key_len()` bytes.
    ///
    /// # Errors
    /// [`CryptoError::KeyLength`] if `key` has the wrong length.
    fn new_key(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError>;
}

/// An AEAD key ready to seal and open. Implementations zero their key material on drop.
pub trait AeadKey: Send + Sync {
    /// Encrypts `in_out[..len - 16]` in place and writes the tag into the last 16 bytes.
    ///
    /// # Panics
    /// May panic if `in_out` is shorter than [`AEAD_TAG_LEN`]; callers size it.
    fn seal_in_place(&self, nonce: &[u8; AEAD_NONCE_LEN], aad: &[u8], in_out: &mut [u8]);

    /// Verifies and decrypts `in_out` (ciphertext followed by the 16-byte tag) in place. On
    /// success the plaintext is `in_out[..len - 16]`; on failure the buffer content is
    /// unspecified and must not be released.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] if the tag does not verify or `in_out` is shorter than
    /// the tag.
    fn open_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), CryptoError>;
}

/// Compile-time reminder of the layout the traits above assume.
const _: () = assert!(AEAD_TAG_LEN == 16 && AEAD_NONCE_LEN == 12);
