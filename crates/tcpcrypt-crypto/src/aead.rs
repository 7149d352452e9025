//! The AEAD algorithms of RFC 8548 §6, on aws-lc-rs.
//!
//! All three have a 12-byte nonce and a 16-byte tag (RFC 5116 §5.1, RFC 8439 §2.8), which is what
//! [`AeadKey`] assumes: the tag sits in the last [`AEAD_TAG_LEN`] bytes of the buffer.

use core::fmt;

use aws_lc_rs::aead::{self as lc, Aad, LessSafeKey, Nonce, UnboundKey};
use tcpcrypt_proto::consts::{AeadId, AEAD_NONCE_LEN, AEAD_TAG_LEN};
use tcpcrypt_proto::crypto::{AeadAlgorithm, AeadKey, CryptoError};

/// One registered AEAD (RFC 8548 §6, Table 5) and its aws-lc-rs algorithm.
struct Aead {
    id: AeadId,
    alg: &'static lc::Algorithm,
}

/// AEAD_AES_128_GCM, 0x0001 (RFC 5116 §5.1). REQUIRED.
static AES_128_GCM: Aead = Aead {
    id: AeadId::AES_128_GCM,
    alg: &lc::AES_128_GCM,
};

/// AEAD_AES_256_GCM, 0x0002 (RFC 5116 §5.2). RECOMMENDED.
static AES_256_GCM: Aead = Aead {
    id: AeadId::AES_256_GCM,
    alg: &lc::AES_256_GCM,
};

/// AEAD_CHACHA20_POLY1305, 0x0010 (RFC 8439 §2.8). RECOMMENDED.
static CHACHA20_POLY1305: Aead = Aead {
    id: AeadId::CHACHA20_POLY1305,
    alg: &lc::CHACHA20_POLY1305,
};

/// The AEAD with this registry id, if it is one of the three of RFC 8548 §6.
pub(crate) fn lookup(id: AeadId) -> Option<&'static dyn AeadAlgorithm> {
    match id {
        AeadId::AES_128_GCM => Some(&AES_128_GCM),
        AeadId::AES_256_GCM => Some(&AES_256_GCM),
        AeadId::CHACHA20_POLY1305 => Some(&CHACHA20_POLY1305),
        _ => None,
    }
}

impl AeadAlgorithm for Aead {
    fn id(&self) -> AeadId {
        self.id
    }

    fn key_len(&self) -> usize {
        self.alg.key_len()
    }

    fn new_key(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        if key.len() != self.alg.key_len() {
            return Err(CryptoError::KeyLength);
        }
        let key = UnboundKey::new(self.alg, key).map_err(|_| CryptoError::KeyLength)?;
        Ok(Box::new(Key {
            id: self.id,
            key: LessSafeKey::new(key),
        }))
    }
}

/// An expanded AEAD key.
///
/// The key schedule lives in an aws-lc `EVP_AEAD_CTX`; dropping [`LessSafeKey`] frees it with
/// `EVP_AEAD_CTX_free`, and aws-lc's `OPENSSL_free` cleanses every allocation before releasing it,
/// so the key material is zeroed on drop as the [`AeadKey`] contract requires. This crate never
/// holds a copy of the raw key bytes.
struct Key {
    id: AeadId,
    key: LessSafeKey,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeadKey({}, redacted)", self.id)
    }
}

impl AeadKey for Key {
    /// # Panics
    /// If `in_out` is shorter than the tag (the trait allows it), or if aws-lc refuses to seal,
    /// which it does only for a plaintext beyond the AEAD's limit (2^36 bytes for GCM); a tcpcrypt
    /// frame is below 2^16 bytes (RFC 8548 §3.6) and its length is chosen locally, never by a
    /// peer.
    fn seal_in_place(&self, nonce: &[u8; AEAD_NONCE_LEN], aad: &[u8], in_out: &mut [u8]) {
        let text_len = in_out
            .len()
            .checked_sub(AEAD_TAG_LEN)
            .expect("seal_in_place: buffer shorter than the AEAD tag");
        let (text, tag_out) = in_out.split_at_mut(text_len);
        let nonce = Nonce::assume_unique_for_key(*nonce);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), text)
            .expect("aws-lc refused to seal a buffer within the AEAD's size limit");
        tag_out.copy_from_slice(tag.as_ref());
    }

    fn open_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let text_len = in_out
            .len()
            .checked_sub(AEAD_TAG_LEN)
            .ok_or(CryptoError::Authentication)?;
        let (text, tag) = in_out.split_at_mut(text_len);
        let nonce = Nonce::assume_unique_for_key(*nonce);
        self.key
            .open_in_place_separate_tag(nonce, Aad::from(aad), tag, text)
            .map(|_| ())
            .map_err(|_| CryptoError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: AeadId) -> Box<dyn AeadKey> {
        let alg = lookup(id).expect("registered AEAD");
        let bytes: Vec<u8> = (0..alg.key_len()).map(|i| i as u8).collect();
        alg.new_key(&bytes).expect("key of the right length")
    }

    #[test]
    fn round_trip_every_aead_and_length() {
        for id in AeadId::ALL {
            let k = key(id);
            for len in [0usize, 1, 15, 16, 17, 1400, 16384] {
                let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let mut buf = plain.clone();
                buf.resize(len + AEAD_TAG_LEN, 0);
                k.seal_in_place(&[3; 12], b"aad", &mut buf);
                if len > 0 {
                    assert_ne!(&buf[..len], &plain[..], "{id} {len}");
                }
                k.open_in_place(&[3; 12], b"aad", &mut buf).expect("opens");
                assert_eq!(&buf[..len], &plain[..], "{id} {len}");
            }
        }
    }

    #[test]
    fn wrong_key_length_rejected() {
        for id in AeadId::ALL {
            let alg = lookup(id).expect("registered AEAD");
            for len in [0, 15, 17, 24, 31, 33, 64] {
                if len != alg.key_len() {
                    assert_eq!(
                        alg.new_key(&vec![0; len]).err(),
                        Some(CryptoError::KeyLength),
                        "{id} {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_bit_flip_fails_authentication() {
        for id in AeadId::ALL {
            let k = key(id);
            let mut sealed = b"tcpcrypt frame".to_vec();
            sealed.resize(sealed.len() + AEAD_TAG_LEN, 0);
            k.seal_in_place(&[9; 12], b"ad", &mut sealed);
            for bit in 0..sealed.len() * 8 {
                let mut buf = sealed.clone();
                buf[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(
                    k.open_in_place(&[9; 12], b"ad", &mut buf),
                    Err(CryptoError::Authentication),
                    "{id} bit {bit}"
                );
            }
            let mut buf = sealed.clone();
            assert_eq!(
                k.open_in_place(&[8; 12], b"ad", &mut buf),
                Err(CryptoError::Authentication),
                "{id} wrong nonce"
            );
            let mut buf = sealed.clone();
            assert_eq!(
                k.open_in_place(&[9; 12], b"aD", &mut buf),
                Err(CryptoError::Authentication),
                "{id} wrong aad"
            );
        }
    }

    #[test]
    fn short_buffers_fail_authentication() {
        for id in AeadId::ALL {
            let k = key(id);
            for len in 0..AEAD_TAG_LEN {
                let mut buf = vec![0u8; len];
                assert_eq!(
                    k.open_in_place(&[0; 12], b"", &mut buf),
                    Err(CryptoError::Authentication),
                    "{id} {len}"
                );
            }
        }
    }

    #[test]
    fn debug_redacts() {
        let k = Key {
            id: AeadId::AES_128_GCM,
            key: LessSafeKey::new(UnboundKey::new(&lc::AES_128_GCM, &[0xab; 16]).expect("key")),
        };
        let s = format!("{k:?}");
        assert!(!s.contains("ab") && !s.contains("171"), "{s}");
    }
}
