//! Per-connection settings of the stream path (RFC 8548 §3.3, §3.6, §3.8, §3.9).

use core::time::Duration;
use std::sync::Arc;

use crate::consts::{
    AeadId, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_LIVENESS_TIMEOUT, MAX_FRAME_DATA,
    MAX_FRAME_DATA_URGENT, REKEY_AFTER_BYTES, REKEY_AFTER_FRAMES,
};
use crate::keylog::KeyLog;

/// Settings of a [`Session`](super::Session). One value can be shared by many sessions (pass
/// it in an `Arc`).
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The AEADs host A lists in Init1, in this order (RFC 8548 §3.3: implementations SHOULD let
    /// the user choose the list advertised as A). Entries the provider lacks are skipped; at
    /// most 255 are sent.
    pub aead_offer: Vec<AeadId>,
    /// Host B's preference, most preferred first: B picks the first entry that Init1 lists and
    /// the provider has (RFC 8548 §3.3).
    pub aead_preference: Vec<AeadId>,
    /// Rekey automatically after this many frames sent under one generation (RFC 8548 §3.8).
    /// Values above [`REKEY_AFTER_FRAMES`] are clamped to it; 0 counts as 1.
    pub rekey_after_frames: u64,
    /// Rekey automatically after this many ciphertext bytes sent under one generation. Values
    /// above [`REKEY_AFTER_BYTES`] are clamped to it.
    pub rekey_after_bytes: u64,
    /// Largest application data per frame, at most [`MAX_FRAME_DATA`] (65518, RFC 8548 §3.6:
    /// clen < 2^16). Large frames suit bulk transfer; a write never waits to fill a frame.
    pub max_frame_data: usize,
    /// How long [`Session::probe_liveness`](super::Session::probe_liveness) waits for the peer's
    /// mandatory rekey answer (RFC 8548 §3.9).
    pub liveness_timeout: Duration,
    /// How long a fresh session waits, from its creation, for the Init1/Init2 exchange to
    /// complete (RFC 8548 §3.3) before [`Session::handle_timeout`](super::Session::handle_timeout)
    /// fails it with [`Error::HandshakeTimeout`](crate::Error::HandshakeTimeout). Default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
    /// Debug mode (RFC 8547 §5): where each session hands its secret once its keys exist (ES
    /// of a fresh key exchange, ss\[i\] of a resumed session). `None`, the default, exports
    /// nothing. Whoever reads the log can decrypt the connections it names.
    pub key_log: Option<Arc<dyn KeyLog>>,
}

impl PartialEq for SessionConfig {
    /// Field by field; two key logs are equal only if they are the same object.
    fn eq(&self, other: &Self) -> bool {
        let same_log = match (&self.key_log, &other.key_log) {
            (None, None) => true,
            (Some(a), Some(b)) => core::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
            _ => false,
        };
        self.aead_offer == other.aead_offer
            && self.aead_preference == other.aead_preference
            && self.rekey_after_frames == other.rekey_after_frames
            && self.rekey_after_bytes == other.rekey_after_bytes
            && self.max_frame_data == other.max_frame_data
            && self.liveness_timeout == other.liveness_timeout
            && self.handshake_timeout == other.handshake_timeout
            && same_log
    }
}

impl Eq for SessionConfig {}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            aead_offer: vec![
                AeadId::AES_128_GCM,
                AeadId::CHACHA20_POLY1305,
                AeadId::AES_256_GCM,
            ],
            aead_preference: vec![
                AeadId::AES_128_GCM,
                AeadId::CHACHA20_POLY1305,
                AeadId::AES_256_GCM,
            ],
            rekey_after_frames: REKEY_AFTER_FRAMES,
            rekey_after_bytes: REKEY_AFTER_BYTES,
            max_frame_data: MAX_FRAME_DATA,
            liveness_timeout: DEFAULT_LIVENESS_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            key_log: None,
        }
    }
}

impl SessionConfig {
    /// Turns on the key log (RFC 8547 §5 debug mode): every session made with this config
    /// passes its secret to `key_log` once.
    #[must_use]
    pub fn with_key_log(mut self, key_log: Arc<dyn KeyLog>) -> Self {
        self.key_log = Some(key_log);
        self
    }

    /// The frame-count rekey limit in force: clamped to `1..=REKEY_AFTER_FRAMES`.
    pub(crate) fn frame_limit(&self) -> u64 {
        self.rekey_after_frames.clamp(1, REKEY_AFTER_FRAMES)
    }

    /// The byte rekey limit in force: clamped to `1..=REKEY_AFTER_BYTES`.
    pub(crate) fn byte_limit(&self) -> u64 {
        self.rekey_after_bytes.clamp(1, REKEY_AFTER_BYTES)
    }

    /// Data bytes per frame in force: clamped to `1..=MAX_FRAME_DATA`.
    pub(crate) fn frame_data(&self) -> usize {
        self.max_frame_data.clamp(1, MAX_FRAME_DATA)
    }

    /// Largest urgent write: one frame with URGp.
    pub(crate) fn urgent_data(&self) -> usize {
        self.frame_data().min(MAX_FRAME_DATA_URGENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_clamped() {
        let c = SessionConfig {
            rekey_after_frames: u64::MAX,
            rekey_after_bytes: 0,
            max_frame_data: 1 << 20,
            ..SessionConfig::default()
        };
        assert_eq!(c.frame_limit(), REKEY_AFTER_FRAMES);
        assert_eq!(c.byte_limit(), 1);
        assert_eq!(c.frame_data(), MAX_FRAME_DATA);
        assert_eq!(c.urgent_data(), MAX_FRAME_DATA_URGENT);
        let c = SessionConfig {
            max_frame_data: 0,
            ..SessionConfig::default()
        };
        assert_eq!(c.frame_data(), 1);
    }
}
