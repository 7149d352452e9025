//! tcpcrypt session resumption (RFC 8548 §3.5): the resumption suboption and the session-secret
//! cache.
//!
//! Read RFC 8548 §3.5 first. A host that shared a session with `ss[i-1]` can connect again with
//! `ss[i]` and no public-key operation. It offers this in its SYN with a *resumption suboption*:
//!
//! ```text
//!  byte 0         1 .. 9                 10 ..
//!  TEP | v=1  ||  identifier half (9)  ||  nonce (0..=8)
//! ```
//!
//! `resume[i] = CPRF(ss[i], CONST_RESUME, 18)`; the host that was A in the session that made
//! `ss[0]` (its *original* role) sends `resume[i][0..9]` and nonce_a, the original B sends
//! `resume[i][9..18]` and nonce_b ([`ResumeId::half`](crate::keys::ResumeId::half)). The
//! key schedule itself is in [`keys`](crate::keys); this module only classifies and encodes
//! suboptions ([`Offer`], [`ResumeSuboptionData`]) and keeps secrets ([`ResumeCache`]).

mod cache;

pub use cache::{
    CacheConfig, NoResumption, ResumeCache, ResumeStore, DEFAULT_CACHE_CAPACITY, DEFAULT_TTL,
    DEFAULT_WINDOW, MAX_BURNED_IDS, MAX_CACHE_ENTRIES, MAX_WINDOW,
};

use crate::consts::{
    RESUME_HALF_LEN, RESUME_NONCE_MAX, RESUME_SUBOPTION_MAX_DATA, RESUME_SUBOPTION_MIN_DATA,
};
use crate::wire::eno::TepSuboption;

/// What a tcpcrypt TEP suboption offers (RFC 8548 §3.2, §3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer<'a> {
    /// v = 0: fresh key agreement.
    Fresh,
    /// v = 1 with fewer than 9 data bytes. A passive opener "MUST behave as if the same TEP had
    /// been sent with v = 0" (§3.5), so host A sending it offers fresh key agreement. Sent by
    /// host B it names no resumption, and this implementation treats the TEP as invalid
    /// (digest §5.3 A11: B's v bit would otherwise mark a fresh session ID as resumed).
    ShortResume,
    /// v = 1 with 9..=17 data bytes: a resumption suboption.
    Resume {
        /// The identifier half.
        half: &'a [u8; RESUME_HALF_LEN],
        /// The resumption nonce, 0..=8 bytes.
        nonce: &'a [u8],
    },
    /// v = 1 with more than 17 data bytes: not valid tcpcrypt suboption data (the nonce is at
    /// most 8 bytes), so the TEP is not valid (RFC 8547 §4.5 rule 2).
    Invalid,
}

impl<'a> Offer<'a> {
    /// Classifies a tcpcrypt TEP suboption.
    pub fn classify(sub: &TepSuboption<'a>) -> Self {
        if !sub.v {
            return Self::Fresh;
        }
        if sub.data.len() < RESUME_SUBOPTION_MIN_DATA {
            return Self::ShortResume;
        }
        if sub.data.len() > RESUME_SUBOPTION_MAX_DATA {
            return Self::Invalid;
        }
        let (half, nonce) = sub.data.split_at(RESUME_HALF_LEN);
        match half.try_into() {
            Ok(half) => Self::Resume { half, nonce },
            Err(_) => Self::Invalid, // unreachable: split_at gives exactly 9 bytes
        }
    }
}

/// The data of a resumption suboption, `identifier half || nonce` (RFC 8548 §3.5, Fig 2-3):
/// 9 to 17 bytes, without the TEP byte.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ResumeSuboptionData {
    bytes: [u8; RESUME_SUBOPTION_MAX_DATA],
    len: u8,
}

impl ResumeSuboptionData {
    /// `half || nonce`; `None` if the nonce is longer than 8 bytes ("MUST have length between
    /// 0 and 8 bytes", §3.5).
    pub fn new(half: &[u8; RESUME_HALF_LEN], nonce: &[u8]) -> Option<Self> {
        if nonce.len() > RESUME_NONCE_MAX {
            return None;
        }
        let mut bytes = [0u8; RESUME_SUBOPTION_MAX_DATA];
        bytes[..RESUME_HALF_LEN].copy_from_slice(half);
        bytes[RESUME_HALF_LEN..RESUME_HALF_LEN + nonce.len()].copy_from_slice(nonce);
        Some(Self {
            bytes,
            len: (RESUME_HALF_LEN + nonce.len()) as u8,
        })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for ResumeSuboptionData {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Identifier halves and nonces travel in the clear in SYNs; they are not secret.
        write!(f, "ResumeSuboptionData(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::TepId;

    fn sub(v: bool, data: &[u8]) -> TepSuboption<'_> {
        TepSuboption {
            tep: TepId::TCPCRYPT_ECDHE_CURVE25519,
            v,
            data,
        }
    }

    #[test]
    fn classify_by_length() {
        assert_eq!(Offer::classify(&sub(false, &[])), Offer::Fresh);
        // RFC 8548 §3.5: v=1 with < 9 data bytes is a fresh offer.
        for n in 0..9 {
            assert_eq!(
                Offer::classify(&sub(true, &[7; 8][..n])),
                Offer::ShortResume
            );
        }
        let data = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0xa, 0xb];
        assert_eq!(
            Offer::classify(&sub(true, &data)),
            Offer::Resume {
                half: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
                nonce: &[0xa, 0xb]
            }
        );
        assert!(matches!(
            Offer::classify(&sub(true, &[0; 9])),
            Offer::Resume { nonce: [], .. }
        ));
        assert!(matches!(
            Offer::classify(&sub(true, &[0; 17])),
            Offer::Resume { .. }
        ));
        assert_eq!(Offer::classify(&sub(true, &[0; 18])), Offer::Invalid);
    }

    #[test]
    fn suboption_data_layout() {
        let half = [9u8; 9];
        let d = ResumeSuboptionData::new(&half, &[1, 2]).unwrap();
        assert_eq!(d.as_bytes(), &[9, 9, 9, 9, 9, 9, 9, 9, 9, 1, 2]);
        assert_eq!(
            ResumeSuboptionData::new(&half, &[])
                .unwrap()
                .as_bytes()
                .len(),
            9
        );
        assert_eq!(
            ResumeSuboptionData::new(&half, &[0; 8])
                .unwrap()
                .as_bytes()
                .len(),
            17
        );
        assert!(ResumeSuboptionData::new(&half, &[0; 9]).is_none());
    }
}
