//! The sending half: the Init message, then frames sealed in place into one reusable buffer
//! (RFC 8548 §3.3, §3.6, §4.2).

use crate::consts::{AEAD_TAG_LEN, FRAME_HEADER_LEN, MAX_CLEN, MAX_SEND_BUFFER};
use crate::error::Error;
use crate::wire::frame::{first_frame_offset, FrameHeader, PlaintextHeader};

use super::event::Transmit;
use super::rekey::DirectionKeys;

/// Where the sender is in closing its stream (RFC 8548 §3.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fin {
    /// Frames may still be sent.
    Open,
    /// The FINp frame is sealed into the buffer; nothing may follow it.
    Sealed,
    /// The driver has been told to send TCP FIN after the FINp frame's last byte.
    Reported,
}

/// Ciphertext waiting for the driver, and the state needed to seal more.
#[derive(Debug)]
pub(crate) struct Sender {
    /// Sealed bytes (Init and frames) the driver has not taken yet. Reused: after
    /// `poll_ciphertext` it is the driver's previous (empty) buffer, so steady-state sealing
    /// allocates nothing.
    buf: Vec<u8>,
    /// `buf[..init_end]` ends with the last byte of the Init message (PSH, RFC 8548 §3.3).
    init_end: Option<usize>,
    /// Stream offset of the next byte appended to `buf` (RFC 8548 §4.2.3; decision A1).
    offset: u64,
    /// The local generation's key; `None` before the key exchange and after FINp.
    pub(crate) keys: Option<DirectionKeys>,
    /// The next frame is the first under a newly raised local generation (rekey = 1).
    rekey_bit: bool,
    /// Frames and bytes sealed under the current generation (automatic rekey limits).
    frames_this_gen: u64,
    bytes_this_gen: u64,
    /// Application bytes sealed so far.
    pub(crate) app_bytes: u64,
    fin: Fin,
}

impl Sender {
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::new(),
            init_end: None,
            offset: 0,
            keys: None,
            rekey_bit: false,
            frames_this_gen: 0,
            bytes_this_gen: 0,
            app_bytes: 0,
            fin: Fin::Open,
        }
    }

    /// Queues this host's Init message, which must open its stream (RFC 8548 §3.3).
    pub(crate) fn push_init(&mut self, init: &[u8]) {
        debug_assert!(self.offset == 0 && self.buf.is_empty());
        self.buf.extend_from_slice(init);
        self.init_end = Some(self.buf.len());
        self.offset = first_frame_offset(init.len());
    }

    /// Ciphertext stream offset: every byte sealed so far, Init included.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes sealed but not yet taken by the driver.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True once the FINp frame is sealed: no frame may follow (RFC 8548 §3.7).
    pub(crate) fn fin_sealed(&self) -> bool {
        self.fin != Fin::Open
    }

    /// How many data bytes a frame could carry right now within [`MAX_SEND_BUFFER`], given the
    /// plaintext header length (1, or 3 with URGp).
    pub(crate) fn room(&self, plain_header: usize) -> usize {
        MAX_SEND_BUFFER
            .saturating_sub(self.buf.len())
            .saturating_sub(FRAME_HEADER_LEN + plain_header + AEAD_TAG_LEN)
    }

    /// True when the automatic rekey limit is reached (RFC 8548 §3.8; digest A14).
    pub(crate) fn limit_reached(&self, frame_limit: u64, byte_limit: u64) -> bool {
        self.frames_this_gen >= frame_limit || self.bytes_this_gen >= byte_limit
    }

    /// Notes that the local generation was raised: the next frame carries rekey = 1.
    pub(crate) fn generation_raised(&mut self) {
        self.rekey_bit = true;
        self.frames_this_gen = 0;
        self.bytes_this_gen = 0;
    }

    /// Seals one frame carrying `data` at the end of the buffer (RFC 8548 §3.6, §4.2):
    /// `control | clen | seal(flags [| urgent] | data)`, AD = `control | clen`. A FINp frame is
    /// the last one.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] with no key, after FINp, or if the frame would exceed clen < 2^16.
    pub(crate) fn seal_frame(&mut self, header: PlaintextHeader, data: &[u8]) -> Result<(), Error> {
        if self.fin_sealed() {
            return Err(Error::ApiMisuse("frame after FINp"));
        }
        let Some(keys) = &self.keys else {
            return Err(Error::ApiMisuse("no traffic key yet"));
        };
        let plain_len = header.buffer_len() + data.len();
        let clen = plain_len + AEAD_TAG_LEN;
        let Ok(clen16) = u16::try_from(clen) else {
            return Err(Error::ApiMisuse("frame larger than clen < 2^16 allows"));
        };
        debug_assert!(clen <= MAX_CLEN);
        let fh = FrameHeader {
            rekey: core::mem::take(&mut self.rekey_bit),
            clen: clen16,
        };
        let aad = fh.to_bytes();
        let start = self.buf.len();
        self.buf.extend_from_slice(&aad);
        let body = self.buf.len();
        self.buf.resize(body + header.buffer_len(), 0);
        header.emit(&mut self.buf[body..]);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(&[0u8; AEAD_TAG_LEN]);
        keys.seal(self.offset, &aad, &mut self.buf[body..]);
        let frame_len = (self.buf.len() - start) as u64;
        // Offsets wrap only after 2^64 bytes; the byte rekey limit (2^36) changes the key long
        // before any offset could repeat under one key (RFC 8548 §3.6).
        self.offset = self.offset.wrapping_add(frame_len);
        self.frames_this_gen += 1;
        self.bytes_this_gen += frame_len;
        self.app_bytes += data.len() as u64;
        if header.fin {
            self.fin = Fin::Sealed;
            // Nothing is ever sealed again: drop the key now (RFC 8548 §3.8).
            self.keys = None;
        }
        Ok(())
    }

    /// Moves all sealed bytes to the end of `out`, without copying when `out` is empty (the
    /// buffers are swapped, so reusing `out` makes steady-state sending allocation-free).
    pub(crate) fn poll(&mut self, out: &mut Vec<u8>) -> Transmit {
        let base = out.len();
        let len = self.buf.len();
        let init_end = self.init_end.take().map(|e| base + e);
        if out.is_empty() {
            core::mem::swap(out, &mut self.buf);
        } else {
            out.extend_from_slice(&self.buf);
        }
        self.buf.clear();
        let fin = self.fin == Fin::Sealed;
        if fin {
            self.fin = Fin::Reported;
        }
        Transmit { len, init_end, fin }
    }
}
