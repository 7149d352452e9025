//! What the SYN path hands to the stream path: the result of a successful ENO negotiation for a
//! tcpcrypt TEP (RFC 8547 §4; RFC 8548 §3.2, §3.5).
//!
//! The [`eno`](crate::eno) module produces a [`Negotiated`] once encryption is enabled (an ACK
//! bearing ENO both sent and received, RFC 8547 §4.6); the [`session`](crate::session) module
//! consumes it to run Init1/Init2 (or resume) and the frames.

use crate::consts::{Role, TepId, RESUME_NONCE_MAX};
use crate::keys::ResumableSecret;

/// The outcome of a successful negotiation of a tcpcrypt TEP.
#[derive(Debug)]
pub struct Negotiated {
    /// This host's role (RFC 8547 §4.3): from the b bits, not from who connected.
    pub role: Role,
    /// The negotiated TEP (RFC 8547 §4.5): the last valid TEP in host B's SYN-form option.
    pub tep: TepId,
    /// The byte host B sent for the negotiated TEP, v bit included: byte 0 of the session ID
    /// (RFC 8547 §5.1, RFC 8548 §3.4).
    pub tep_byte: u8,
    /// The negotiation transcript (RFC 8547 §4.8): A's SYN-form ENO option followed by B's,
    /// each exactly as it appeared in the TCP header, kind and length bytes included.
    pub transcript: Vec<u8>,
    /// The application-aware bit the peer sent (RFC 8547 §4.2).
    pub peer_app_aware: bool,
    /// The connection's caching policy (RFC 8548 §3.5, MUST when secrets are cached): when
    /// false ("cache nothing"), the session hands back no secret for later resumption.
    pub cache_secrets: bool,
    /// Present when both hosts agreed to resume a previous session (RFC 8548 §3.5); absent for a
    /// fresh key exchange (RFC 8548 §3.3).
    pub resumption: Option<Resumption>,
}

/// What a resumed session needs (RFC 8548 §3.5).
#[derive(Debug)]
pub struct Resumption {
    /// ss\[i\] with its TEP and this host's original role. The session computes mk\[0\] and the
    /// session ID from it, then hands back ss\[i+1\] for the cache.
    pub secret: ResumableSecret,
    /// `sn[i] = nonce_a || nonce_b`: nonce_a from the original-A host's suboption, nonce_b from
    /// the original-B host's.
    pub sn: ResumeNonces,
}

/// `sn[i]`, up to 16 bytes (two nonces of 0..=8 bytes, RFC 8548 §3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ResumeNonces {
    bytes: [u8; 2 * RESUME_NONCE_MAX],
    len: u8,
}

impl ResumeNonces {
    /// `nonce_a || nonce_b`. `None` if either nonce is longer than 8 bytes.
    pub fn new(nonce_a: &[u8], nonce_b: &[u8]) -> Option<Self> {
        if nonce_a.len() > RESUME_NONCE_MAX || nonce_b.len() > RESUME_NONCE_MAX {
            return None;
        }
        let mut bytes = [0u8; 2 * RESUME_NONCE_MAX];
        bytes[..nonce_a.len()].copy_from_slice(nonce_a);
        bytes[nonce_a.len()..nonce_a.len() + nonce_b.len()].copy_from_slice(nonce_b);
        Some(Self {
            bytes,
            len: (nonce_a.len() + nonce_b.len()) as u8,
        })
    }

    /// The concatenated bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}
