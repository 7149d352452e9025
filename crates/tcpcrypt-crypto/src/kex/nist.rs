//! TCPCRYPT_ECDHE_P256 and TCPCRYPT_ECDHE_P521 (RFC 8548 §5): ECSVDP-DH of IEEE 1363 on the NIST
//! curves, on aws-lc-rs.
//!
//! Wire format of `Pub` (RFC 8548 §5):
//!
//! ```text
//! pubkey_len (2 bytes, big-endian) || EC2OSP compressed point (IEEE 1363 §E.2.3)
//!   P-256: 00 21 || 02/03 || x (32 bytes)        35 bytes
//!   P-521: 00 43 || 02/03 || x (66 bytes)        69 bytes
//! ```
//!
//! ES is the x-coordinate of the shared point, big-endian and left-padded to the field size (32
//! or 66 bytes; project decision A9).

use aws_lc_rs::agreement::{self as lc, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
use tcpcrypt_proto::consts::TepId;
use tcpcrypt_proto::crypto::{CryptoError, EphemeralSecret, KeyAgreement, Rng, SharedSecret};
use zeroize::Zeroizing;

/// Length of the `pubkey_len` prefix (RFC 8548 §5).
const PREFIX_LEN: usize = 2;
/// Largest field element: P-521's 66 bytes.
const MAX_FIELD_LEN: usize = 66;
/// How many times [`KeyAgreement::generate`] draws fresh bytes when they are not a valid scalar
/// (zero, or not below the group order n). For P-256 one draw fails with probability about
/// 2^-32, for P-521 (top 7 bits masked) about 2^-260, so 64 draws never all fail with a
/// working `Rng`.
const MAX_KEYGEN_ATTEMPTS: usize = 64;

/// The field prime p of P-256 (FIPS 186-4 §D.1.2.3), big-endian.
const P256_PRIME: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

/// The field prime p = 2^521 - 1 of P-521 (FIPS 186-4 §D.1.2.5), big-endian in 66 bytes.
const P521_PRIME: [u8; 66] = {
    let mut p = [0xff; 66];
    p[0] = 0x01;
    p
};

/// An ECDHE scheme on a NIST prime curve.
#[derive(Clone, Copy)]
pub(super) struct NistKex {
    tep: TepId,
    alg: &'static lc::Algorithm,
    /// Bytes of a field element and of a private scalar: 32 or 66.
    field_len: usize,
    /// Mask for the first byte of a drawn scalar, so that it has no more bits than n.
    top_mask: u8,
    /// p, big-endian in `field_len` bytes.
    prime: &'static [u8],
}

/// TCPCRYPT_ECDHE_P256 (0x21).
pub(super) static P256: NistKex = NistKex {
    tep: TepId::TCPCRYPT_ECDHE_P256,
    alg: &lc::ECDH_P256,
    field_len: 32,
    top_mask: 0xff,
    prime: &P256_PRIME,
};

/// TCPCRYPT_ECDHE_P521 (0x22).
pub(super) static P521: NistKex = NistKex {
    tep: TepId::TCPCRYPT_ECDHE_P521,
    alg: &lc::ECDH_P521,
    field_len: 66,
    top_mask: 0x01,
    prime: &P521_PRIME,
};

impl NistKex {
    /// Length of the compressed point: the 0x02/0x03 tag and x.
    fn point_len(&self) -> usize {
        1 + self.field_len
    }

    /// Returns the compressed point of a `Pub` field after the checks of RFC 8548 §5 that come
    /// before decompression: exact length, `pubkey_len` equal to the point length (A8), a
    /// compressed tag (A8: "accept only compressed"), and x < p (IEEE 1363 §A.16.10 step 2:
    /// coordinates in range). The point at infinity has no compressed encoding, so it cannot get
    /// through here; aws-lc then checks that x³ + ax + b has a square root (the point is on the
    /// curve, §A.16.10 step 3). Both curves have cofactor 1, so no subgroup check is needed.
    fn parse_public<'a>(&self, field: &'a [u8]) -> Result<&'a [u8], CryptoError> {
        if field.len() != PREFIX_LEN + self.point_len() {
            return Err(CryptoError::InvalidPublicKey);
        }
        let (prefix, point) = field.split_at(PREFIX_LEN);
        if usize::from(u16::from_be_bytes([prefix[0], prefix[1]])) != self.point_len() {
            return Err(CryptoError::InvalidPublicKey);
        }
        let (tag, x) = point.split_at(1);
        if !matches!(tag[0], 0x02 | 0x03) || x >= self.prime {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(point)
    }

    /// Builds the `Pub` field of a private key.
    fn encode_public(&self, key: &PrivateKey) -> Result<Vec<u8>, CryptoError> {
        let public = key
            .compute_public_key()
            .map_err(|_| CryptoError::KeyGeneration)?;
        let point: EcPublicKeyCompressedBin<'_> = public
            .as_be_bytes()
            .map_err(|_| CryptoError::KeyGeneration)?;
        let point = point.as_ref();
        let point_len = u16::try_from(point.len()).map_err(|_| CryptoError::KeyGeneration)?;
        if point.len() != self.point_len() {
            return Err(CryptoError::KeyGeneration);
        }
        let mut field = Vec::with_capacity(PREFIX_LEN + point.len());
        field.extend_from_slice(&point_len.to_be_bytes());
        field.extend_from_slice(point);
        Ok(field)
    }
}

impl KeyAgreement for NistKex {
    fn tep(&self) -> TepId {
        self.tep
    }

    fn public_len(&self) -> usize {
        PREFIX_LEN + self.point_len()
    }

    fn shared_secret_len(&self) -> usize {
        self.field_len
    }

    /// Draws `field_len` bytes from `rng` as a big-endian scalar d (P-521: top 7 bits cleared),
    /// drawing again while d is 0 or d >= n.
    ///
    /// # Errors
    /// [`CryptoError::KeyGeneration`] after [`MAX_KEYGEN_ATTEMPTS`] invalid draws.
    fn generate(&self, rng: &mut dyn Rng) -> Result<Box<dyn EphemeralSecret>, CryptoError> {
        let mut buf = Zeroizing::new([0u8; MAX_FIELD_LEN]);
        let scalar = &mut buf[..self.field_len];
        for _ in 0..MAX_KEYGEN_ATTEMPTS {
            rng.fill(scalar);
            scalar[0] &= self.top_mask;
            // aws-lc's EC_KEY_set_private_key rejects 0 and anything >= n.
            let Ok(key) = PrivateKey::from_private_key(self.alg, scalar) else {
                continue;
            };
            let public = self.encode_public(&key)?;
            return Ok(Box::new(Secret {
                kex: *self,
                key,
                public,
            }));
        }
        Err(CryptoError::KeyGeneration)
    }
}

/// A P-256 or P-521 private key (aws-lc `EVP_PKEY`, cleansed when freed) and its `Pub` field.
struct Secret {
    kex: NistKex,
    key: PrivateKey,
    public: Vec<u8>,
}

impl EphemeralSecret for Secret {
    fn public(&self) -> &[u8] {
        &self.public
    }

    fn agree(self: Box<Self>, peer_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        let point = self.kex.parse_public(peer_public)?;
        let es = lc::agree(
            &self.key,
            UnparsedPublicKey::new(self.kex.alg, point),
            CryptoError::InvalidPublicKey,
            |es| Ok(SharedSecret::new(es.to_vec())),
        )?;
        // aws-lc writes x as FE2OSP: big-endian, left-padded to the field size.
        if es.as_bytes().len() != self.kex.field_len {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(es)
    }
}
