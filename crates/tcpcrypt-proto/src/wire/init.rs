//! Init1 and Init2, the key-exchange messages that open each byte stream of a fresh tcpcrypt
//! session (RFC 8548 §3.3, §4.1). Read RFC 8548 §4.1 and the digest §3.4 first.
//!
//! ```text
//! Init1: INIT1_MAGIC(4) | message_len(4) | nciphers(1) | sym_cipher[nciphers](2 each)
//!        | N_A(32) | Pub_A(TEP-dependent) | ignored(message_len - the rest)
//! Init2: INIT2_MAGIC(4) | message_len(4) | sym_cipher(2) | N_B(32) | Pub_B | ignored
//! ```
//!
//! All integers are big-endian; `message_len` counts the whole message. The `Pub` length is
//! fixed by the TEP ([`KeyAgreement::public_len`](crate::crypto::KeyAgreement::public_len)).
//! The "ignored" tail "MUST be empty when sending and MUST be accepted and ignored when
//! receiving"; a receiver still hashes it, because the key schedule takes the messages exactly
//! as transmitted (digest §5.3 A7), so [`Init1Repr`] and [`Init2Repr`] keep it.
//!
//! A receiver learns the message size from its first eight bytes; [`init_bytes_needed`] tells
//! it how many more bytes to read, so it never buffers past `message_len` nor past
//! [`MAX_INIT_LEN`].

use crate::consts::{AeadId, INIT1_MAGIC, INIT2_MAGIC, INIT_HEADER_LEN, MAX_INIT_LEN, N_A_LEN};
use crate::error::{DecodeError, Error, PeerMisbehaved};

/// Byte offsets of the Init fields (RFC 8548 §4.1). The only place they appear.
mod field {
    use core::ops::Range;

    pub(super) const MAGIC: Range<usize> = 0..4;
    pub(super) const MESSAGE_LEN: Range<usize> = 4..8;
    /// Init1: the cipher count.
    pub(super) const NCIPHERS: usize = 8;
    /// Init1: the first 2-byte cipher id.
    pub(super) const CIPHERS: usize = 9;
    /// Init2: the chosen cipher.
    pub(super) const SYM_CIPHER: Range<usize> = 8..10;
    /// Init2: N_B, followed by Pub_B.
    pub(super) const N_B: Range<usize> = 10..42;
}

/// Size of one AEAD identifier in the cipher list (RFC 8548 §4.1).
const CIPHER_ID_LEN: usize = 2;

/// Which Init message (RFC 8548 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitKind {
    /// Init1, sent by host A.
    Init1,
    /// Init2, sent by host B.
    Init2,
}

impl InitKind {
    /// INIT1_MAGIC or INIT2_MAGIC (RFC 8548 §4.3).
    pub const fn magic(self) -> u32 {
        match self {
            Self::Init1 => INIT1_MAGIC,
            Self::Init2 => INIT2_MAGIC,
        }
    }

    const fn bad_magic(self) -> PeerMisbehaved {
        match self {
            Self::Init1 => PeerMisbehaved::BadInit1Magic,
            Self::Init2 => PeerMisbehaved::BadInit2Magic,
        }
    }

    /// The smallest valid `message_len` for a `Pub` field of `pub_len` bytes: Init1 with one
    /// cipher, or Init2 (RFC 8548 §4.1).
    pub const fn min_len(self, pub_len: usize) -> usize {
        match self {
            Self::Init1 => field::CIPHERS + CIPHER_ID_LEN + N_A_LEN + pub_len,
            Self::Init2 => field::N_B.end + pub_len,
        }
    }
}

/// How many more bytes the receiver must read to hold the whole Init message whose first bytes
/// are `prefix` (RFC 8548 §4.1): 8 minus what it has until `message_len` is known, then
/// `message_len` minus what it has (0 once complete).
///
/// Checks everything the prefix already shows, so a receiver stops at the first bad byte: the
/// magic, `message_len` between the minimum and [`MAX_INIT_LEN`], and for Init1 `nciphers`.
///
/// # Errors
/// `PeerMisbehaved::{BadInit1Magic, BadInit2Magic, InitTooShort, InitTooLong, NoCiphers}`.
pub fn init_bytes_needed(kind: InitKind, prefix: &[u8], pub_len: usize) -> Result<usize, Error> {
    let magic = kind.magic().to_be_bytes();
    let seen = prefix.len().min(field::MAGIC.end);
    if prefix[..seen] != magic[..seen] {
        return Err(kind.bad_magic().into());
    }
    let Some(len_bytes) = prefix.get(field::MESSAGE_LEN) else {
        return Ok(INIT_HEADER_LEN - prefix.len());
    };
    let message_len = be_u32(len_bytes);
    if message_len > MAX_INIT_LEN {
        return Err(PeerMisbehaved::InitTooLong.into());
    }
    if message_len < kind.min_len(pub_len) {
        return Err(PeerMisbehaved::InitTooShort.into());
    }
    if kind == InitKind::Init1 {
        if let Some(&nciphers) = prefix.get(field::NCIPHERS) {
            init1_fixed_len(nciphers, pub_len, message_len)?;
        }
    }
    Ok(message_len.saturating_sub(prefix.len()))
}

/// Length of Init1 without its ignored tail, checked against `message_len`.
fn init1_fixed_len(nciphers: u8, pub_len: usize, message_len: usize) -> Result<usize, Error> {
    if nciphers == 0 {
        return Err(PeerMisbehaved::NoCiphers.into());
    }
    let fixed = field::CIPHERS + CIPHER_ID_LEN * usize::from(nciphers) + N_A_LEN + pub_len;
    if fixed > message_len {
        return Err(PeerMisbehaved::InitTooShort.into());
    }
    Ok(fixed)
}

/// Reads a big-endian u32 `message_len` as a `usize` (saturating on 16-bit targets).
fn be_u32(bytes: &[u8]) -> usize {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[..4]);
    usize::try_from(u32::from_be_bytes(b)).unwrap_or(usize::MAX)
}

/// Checks magic and `message_len` of a complete message and returns `message_len`.
fn check_whole(kind: InitKind, bytes: &[u8], pub_len: usize) -> Result<usize, Error> {
    if bytes.len() < INIT_HEADER_LEN {
        return Err(DecodeError::truncated("Init message_len").into());
    }
    let remaining = init_bytes_needed(kind, bytes, pub_len)?;
    if remaining > 0 {
        return Err(DecodeError::truncated("Init message").into());
    }
    let message_len = be_u32(&bytes[field::MESSAGE_LEN]);
    if bytes.len() != message_len {
        return Err(DecodeError::too_long("Init message").into());
    }
    Ok(message_len)
}

/// A parsed Init1 (RFC 8548 §4.1): host A's cipher list, nonce and public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Init1Repr<'a> {
    /// `sym_cipher_list`: the AEADs acceptable to A, in A's order. At most 255 are encoded.
    pub ciphers: Vec<AeadId>,
    /// N_A, A's random nonce.
    pub n_a: [u8; N_A_LEN],
    /// Pub_A exactly as on the wire (length prefix included for the NIST curves).
    pub pub_key: &'a [u8],
    /// The trailing "ignored" bytes: empty when sending, kept (and hashed) when received.
    pub ignored: &'a [u8],
}

impl<'a> Init1Repr<'a> {
    /// Parses a complete Init1 of exactly `message_len` bytes whose `Pub` field has `pub_len`
    /// bytes (RFC 8548 §4.1).
    ///
    /// # Errors
    /// The errors of [`init_bytes_needed`], or `Decode` if `bytes` is not exactly one message.
    pub fn parse(bytes: &'a [u8], pub_len: usize) -> Result<Self, Error> {
        let message_len = check_whole(InitKind::Init1, bytes, pub_len)?;
        let nciphers = bytes[field::NCIPHERS];
        let fixed = init1_fixed_len(nciphers, pub_len, message_len)?;
        let n_a_start = field::CIPHERS + CIPHER_ID_LEN * usize::from(nciphers);
        let ciphers = bytes[field::CIPHERS..n_a_start]
            .chunks_exact(CIPHER_ID_LEN)
            .map(|c| AeadId(u16::from_be_bytes([c[0], c[1]])))
            .collect();
        let mut n_a = [0u8; N_A_LEN];
        n_a.copy_from_slice(&bytes[n_a_start..n_a_start + N_A_LEN]);
        Ok(Self {
            ciphers,
            n_a,
            pub_key: &bytes[n_a_start + N_A_LEN..fixed],
            ignored: &bytes[fixed..],
        })
    }

    /// The ciphers that are encoded: the first 255 of [`ciphers`](Self::ciphers).
    fn listed(&self) -> &[AeadId] {
        &self.ciphers[..self.ciphers.len().min(usize::from(u8::MAX))]
    }

    /// The encoded length, which is also `message_len`.
    pub fn buffer_len(&self) -> usize {
        field::CIPHERS
            + CIPHER_ID_LEN * self.listed().len()
            + N_A_LEN
            + self.pub_key.len()
            + self.ignored.len()
    }

    /// Writes the message into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        buf[field::MAGIC].copy_from_slice(&INIT1_MAGIC.to_be_bytes());
        // Lengths are far below 2^32: at most 9 + 510 + 32 + pub + ignored.
        buf[field::MESSAGE_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        let listed = self.listed();
        buf[field::NCIPHERS] = listed.len() as u8;
        let mut at = field::CIPHERS;
        for id in listed {
            buf[at..at + CIPHER_ID_LEN].copy_from_slice(&id.0.to_be_bytes());
            at += CIPHER_ID_LEN;
        }
        for part in [&self.n_a[..], self.pub_key, self.ignored] {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
    }
}

/// A parsed Init2 (RFC 8548 §4.1): host B's chosen AEAD, nonce and public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Init2Repr<'a> {
    /// `sym_cipher`: the AEAD host B chose from Init1's list.
    pub sym_cipher: AeadId,
    /// N_B, B's random nonce.
    pub n_b: [u8; crate::consts::N_B_LEN],
    /// Pub_B exactly as on the wire.
    pub pub_key: &'a [u8],
    /// The trailing "ignored" bytes: empty when sending, kept (and hashed) when received.
    pub ignored: &'a [u8],
}

impl<'a> Init2Repr<'a> {
    /// Parses a complete Init2 of exactly `message_len` bytes (RFC 8548 §4.1).
    ///
    /// # Errors
    /// The errors of [`init_bytes_needed`], or `Decode` if `bytes` is not exactly one message.
    pub fn parse(bytes: &'a [u8], pub_len: usize) -> Result<Self, Error> {
        check_whole(InitKind::Init2, bytes, pub_len)?;
        let c = &bytes[field::SYM_CIPHER];
        let mut n_b = [0u8; crate::consts::N_B_LEN];
        n_b.copy_from_slice(&bytes[field::N_B]);
        let pub_end = field::N_B.end + pub_len;
        Ok(Self {
            sym_cipher: AeadId(u16::from_be_bytes([c[0], c[1]])),
            n_b,
            pub_key: &bytes[field::N_B.end..pub_end],
            ignored: &bytes[pub_end..],
        })
    }

    /// The encoded length, which is also `message_len`.
    pub fn buffer_len(&self) -> usize {
        field::N_B.end + self.pub_key.len() + self.ignored.len()
    }

    /// Writes the message into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        buf[field::MAGIC].copy_from_slice(&INIT2_MAGIC.to_be_bytes());
        // At most 42 + pub + ignored, far below 2^32.
        buf[field::MESSAGE_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        buf[field::SYM_CIPHER].copy_from_slice(&self.sym_cipher.0.to_be_bytes());
        buf[field::N_B].copy_from_slice(&self.n_b);
        let mut at = field::N_B.end;
        for part in [self.pub_key, self.ignored] {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
    }
}

#[cfg(test)]
mod tests;
