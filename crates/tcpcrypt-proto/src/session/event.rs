//! What a [`Session`](super::Session) reports to its driver.

use core::ops::Range;

use crate::consts::AeadId;
use crate::keys::{ResumableSecret, SessionId};

/// The outcome of [`Session::read_plaintext`](super::Session::read_plaintext). A clean end of
/// stream is a success, not an error (RFC 8548 §3.7, §8): every failure is an
/// [`Error`](crate::Error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// This many authenticated plaintext bytes were copied into the buffer.
    Data(usize),
    /// The peer's FINp frame authenticated and all data before it has been read: clean EOF.
    /// Returned again on every later call.
    Eof,
    /// Nothing to read until more ciphertext is handled.
    Blocked,
}

/// The outcome of [`Session::peek_plaintext`](super::Session::peek_plaintext): like [`Read`],
/// but borrowing the data instead of copying it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peek<'a> {
    /// Authenticated plaintext not yet consumed (never empty).
    Data(&'a [u8]),
    /// Clean EOF (see [`Read::Eof`]).
    Eof,
    /// Nothing to read until more ciphertext is handled.
    Blocked,
}

/// The outcome of [`Session::open_in_place`](super::Session::open_in_place): how much of the
/// driver's buffer was consumed and where the opened frame's plaintext lies in it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "the plaintext must be delivered and the consumed bytes skipped"]
pub struct Opened<'b> {
    /// Bytes consumed from the front of the buffer: Init bytes, one whole frame opened in
    /// place, or bytes of a frame straddling the buffer's end (copied into the session). 0 when
    /// the session is blocked (unread plaintext or a full send buffer).
    pub consumed: usize,
    /// Where the authenticated plaintext of the frame opened in place lies in the buffer
    /// (within `..consumed`); empty if none (no whole frame, or an empty frame).
    pub range: Range<usize>,
    /// The same plaintext, borrowed from the buffer.
    pub data: &'b [u8],
}

/// What [`Session::poll_ciphertext`](super::Session::poll_ciphertext) appended to the driver's
/// buffer, or [`Session::consume_ciphertext`](super::Session::consume_ciphertext) marked as
/// taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[must_use]
pub struct Transmit {
    /// Bytes appended to the end of `out` (or taken).
    pub len: usize,
    /// Set once: `out[..init_end]` ends with the last byte of this host's Init1 or Init2. The
    /// driver MUST set PSH on the TCP segment carrying that byte (RFC 8548 §3.3). From
    /// `consume_ciphertext`, it counts from the first byte taken.
    pub init_end: Option<usize>,
    /// Set once: the appended bytes end with the last byte of the FINp frame, and no byte will
    /// ever follow. The driver sends TCP FIN with (or after) that byte (RFC 8548 §3.7).
    pub fin: bool,
}

/// Something the driver should know about (RFC 8548 §3.3-§3.9).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Keys are in place: frames can flow. Emitted once per session.
    Established {
        /// The session ID (RFC 8548 §3.4), for the application's authentication.
        session_id: SessionId,
        /// The AEAD protecting the frames (RFC 8548 §3.3, §6).
        aead: AeadId,
        /// True for a resumed session (RFC 8548 §3.5).
        resumed: bool,
    },
    /// A fresh session's `ss[1]` (RFC 8548 §3.5): the driver may cache it for one later
    /// resumption. The session has already erased `ss[0]`. Never emitted for resumed sessions
    /// (their cache entry advanced before the session started).
    ResumableSecret(ResumableSecret),
    /// The local or remote generation changed (RFC 8548 §3.8). Consecutive changes are
    /// coalesced: the values are the latest.
    Rekeyed {
        /// The generation this host now sends with.
        local: u64,
        /// The highest generation received from the peer.
        remote: u64,
    },
    /// The peer answered a liveness probe with an authenticated rekey frame (RFC 8548 §3.9).
    LivenessConfirmed,
    /// A frame carried URGp (RFC 8548 §3.7). Coalesced: only the latest mark is kept.
    Urgent {
        /// Index of the last urgent byte in the received application stream (0 = first byte
        /// ever received). Bytes up to and including it are urgent.
        mark: u64,
    },
}
