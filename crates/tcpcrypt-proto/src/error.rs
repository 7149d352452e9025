//! Error types. Each says whose fault it was; none of them is a clean end of stream.
//!
//! RFC 8548 §8 (and §3.3, §3.6, §3.7; RFC 8547 §5): errors such as an abort, a reset or an AEAD
//! failure MUST be distinguishable by the application from a clean, authenticated end of file.
//! A clean end is therefore not an error at all: the stream reader reports it as a distinct,
//! successful outcome, and every variant here means "the connection failed".

use crate::crypto::CryptoError;

/// Malformed bytes: which field, and what was wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {field}: {kind}")]
pub struct DecodeError {
    /// The field or structure that failed to parse (for example "ENO length byte").
    pub field: &'static str,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// A field ended before its stated length.
    pub const fn truncated(field: &'static str) -> Self {
        Self {
            field,
            kind: DecodeErrorKind::Truncated,
        }
    }

    /// A field holds a value the RFC forbids.
    pub const fn invalid(field: &'static str) -> Self {
        Self {
            field,
            kind: DecodeErrorKind::Invalid,
        }
    }

    /// A length exceeds what the RFC or this implementation allows.
    pub const fn too_long(field: &'static str) -> Self {
        Self {
            field,
            kind: DecodeErrorKind::TooLong,
        }
    }
}

/// The kind of a [`DecodeError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The input ended early.
    #[error("truncated")]
    Truncated,
    /// A value the RFC forbids.
    #[error("invalid value")]
    Invalid,
    /// A length beyond the limit.
    #[error("too long")]
    TooLong,
}

/// A peer broke the protocol after encryption was enabled (RFC 8548 §3.3-3.8; digest §5.3 A6).
///
/// Encryption is on at this point and plaintext is forbidden, so every one of these aborts the
/// connection (RST) with an error distinct from EOF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// Init1 did not start with INIT1_MAGIC.
    #[error("Init1 has a bad magic number")]
    BadInit1Magic,
    /// Init2 did not start with INIT2_MAGIC.
    #[error("Init2 has a bad magic number")]
    BadInit2Magic,
    /// message_len is smaller than the fields it must hold.
    #[error("Init message shorter than its fields")]
    InitTooShort,
    /// message_len exceeds what this implementation buffers.
    #[error("Init message longer than the buffering limit")]
    InitTooLong,
    /// Init1 lists no cipher (nciphers = 0).
    #[error("Init1 lists no cipher")]
    NoCiphers,
    /// No AEAD in Init1 is acceptable to host B.
    #[error("no acceptable AEAD in Init1")]
    NoAcceptableCipher,
    /// Init2 chose an AEAD that Init1 did not list (RFC 8548 §3.3 MUST abort).
    #[error("Init2 chose an AEAD not offered in Init1")]
    UnlistedCipher,
    /// A frame's clen is below the minimum (flags byte plus tag).
    #[error("frame shorter than the smallest valid frame")]
    FrameTooShort,
    /// Bytes followed the frame carrying FINp.
    #[error("data after the FINp frame")]
    DataAfterFin,
    /// The urgent field points outside the frame's data.
    #[error("urgent offset outside the frame")]
    BadUrgentOffset,
    /// The peer raised its generation more than once without our answer being possible (a
    /// rekey bit on a frame after our generation counter would overflow).
    #[error("rekey generation overflow")]
    GenerationOverflow,
}

/// Everything that can end a tcpcrypt connection other than a clean FINp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed bytes from the peer.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A frame failed to authenticate (RFC 8548 §3.6: abort with a distinct error).
    #[error("frame authentication failed")]
    AuthenticationFailed,
    /// The TCP stream ended (TCP FIN) without a frame carrying FINp (RFC 8548 §3.7).
    #[error("stream truncated: TCP FIN without FINp")]
    Truncated,
    /// The peer broke the protocol.
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(#[from] PeerMisbehaved),
    /// Key agreement failed: invalid public key or all-zero result (RFC 8548 §3.3, §5).
    #[error("key agreement failed: {0}")]
    KeyAgreement(CryptoError),
    /// The connection was reset by the peer (TCP RST).
    #[error("connection reset")]
    Reset,
    /// The connection was aborted locally.
    #[error("connection aborted")]
    Aborted,
    /// The caller used the API in a way its documentation rules out.
    #[error("API misuse: {0}")]
    ApiMisuse(&'static str),
    /// A liveness probe (a rekey, RFC 8548 §3.9) got no authenticated answer in time.
    #[error("liveness probe timed out")]
    LivenessTimeout,
    /// The Init1/Init2 exchange did not complete before the handshake deadline (RFC 8548 §3.3),
    /// for example because a tampered message_len made a host wait for bytes that never come.
    #[error("key exchange timed out")]
    HandshakeTimeout,
}
