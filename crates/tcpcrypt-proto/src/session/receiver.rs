//! The receiving half: reassembles frames from arbitrary chunks, opens them in place and hands
//! out their data (RFC 8548 §3.6, §3.7, §4.2).
//!
//! At most one frame is held at a time: while its data is unread, no more ciphertext is
//! consumed. The frame buffer therefore never exceeds [`MAX_FRAME_LEN`] bytes, and no byte of
//! a frame is released before the whole frame has authenticated. A whole frame in the driver's
//! own buffer is opened there instead ([`Receiver::open_in_place`]): only a frame straddling
//! the end of that buffer is copied in.

use core::ops::Range;

#[cfg(doc)]
use crate::consts::MAX_FRAME_LEN;
use crate::consts::{AEAD_TAG_LEN, FRAME_HEADER_LEN};
use crate::crypto::AeadAlgorithm;
use crate::error::Error;
use crate::wire::frame::{first_frame_offset, FrameHeader, PlaintextHeader};

use super::rekey::DirectionKeys;

/// What an authenticated frame said besides its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    /// The frame had rekey = 1 (it was opened with the next generation's key).
    pub(crate) rekey: bool,
    /// The frame had FINp.
    pub(crate) fin: bool,
    /// With URGp: the application-stream index of the last urgent byte (RFC 8548 §3.7).
    pub(crate) urgent_mark: Option<u64>,
}

/// Frame reassembly and decryption state.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// The frame being assembled (header and ciphertext), or once opened, its plaintext.
    buf: Vec<u8>,
    /// The unread data of the opened frame, as a range of `buf`; empty otherwise.
    plain: Range<usize>,
    /// `buf` holds an opened frame (as opposed to ciphertext being assembled).
    opened: bool,
    /// Stream offset of the frame in `buf` (RFC 8548 §4.2.3; decision A1).
    offset: u64,
    /// The remote generation's key; `None` before the key exchange and after FINp.
    pub(crate) keys: Option<DirectionKeys>,
    /// A FINp frame authenticated: end of stream once its data is read.
    pub(crate) fin: bool,
    /// Application bytes of all authenticated frames.
    app_bytes: u64,
    /// Application bytes handed to the reader.
    pub(crate) delivered: u64,
}

impl Receiver {
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::new(),
            plain: 0..0,
            opened: false,
            offset: 0,
            keys: None,
            fin: false,
            app_bytes: 0,
            delivered: 0,
        }
    }

    /// Installs the first key; the peer's first frame starts after its Init message of
    /// `peer_init_len` bytes (0 when resumed).
    pub(crate) fn start(&mut self, keys: DirectionKeys, peer_init_len: usize) {
        self.keys = Some(keys);
        self.offset = first_frame_offset(peer_init_len);
    }

    /// Ciphertext stream offset consumed so far (Init included), counting only whole frames.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// An opened frame still has unread data.
    pub(crate) fn has_unread(&self) -> bool {
        !self.plain.is_empty()
    }

    /// Part of a frame is buffered, waiting for the rest.
    pub(crate) fn has_partial(&self) -> bool {
        !self.opened && !self.buf.is_empty()
    }

    /// Copies bytes of the current frame from `input` into the buffer, never past the frame's
    /// end. Returns the bytes used and whether the frame is complete.
    ///
    /// # Errors
    /// Those of [`FrameHeader::parse`] once the header is in.
    pub(crate) fn fill(&mut self, input: &[u8]) -> Result<(usize, bool), Error> {
        if self.opened {
            debug_assert!(self.plain.is_empty());
            self.buf.clear();
            self.opened = false;
        }
        let mut used = 0;
        if self.buf.len() < FRAME_HEADER_LEN {
            let take = (FRAME_HEADER_LEN - self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            used = take;
            if self.buf.len() < FRAME_HEADER_LEN {
                return Ok((used, false));
            }
        }
        let total = FrameHeader::parse(&self.buf)?.frame_len();
        let take = (total - self.buf.len()).min(input.len() - used);
        self.buf.extend_from_slice(&input[used..used + take]);
        used += take;
        Ok((used, self.buf.len() == total))
    }

    /// Opens the complete frame in the buffer (RFC 8548 §3.6); its data is then unread.
    ///
    /// # Errors
    /// As [`open_frame`](Self::open_frame).
    pub(crate) fn open(&mut self, alg: &dyn AeadAlgorithm) -> Result<FrameInfo, Error> {
        let mut buf = core::mem::take(&mut self.buf);
        let result = self.open_frame(&mut buf, alg);
        self.buf = buf;
        let (info, data) = result?;
        self.plain = data;
        self.opened = true;
        Ok(info)
    }

    /// Opens the whole frame `frame` of the driver's buffer in place (RFC 8548 §3.6) and
    /// returns where its data lies in `frame`; that data counts as delivered.
    ///
    /// # Errors
    /// As [`open_frame`](Self::open_frame).
    pub(crate) fn open_in_place(
        &mut self,
        frame: &mut [u8],
        alg: &dyn AeadAlgorithm,
    ) -> Result<(FrameInfo, Range<usize>), Error> {
        debug_assert!(!self.has_partial() && !self.has_unread());
        let (info, data) = self.open_frame(frame, alg)?;
        self.delivered += data.len() as u64;
        Ok((info, data))
    }

    /// Opens `frame`, exactly one whole frame, in place. With rekey = 1 the receive key first
    /// moves to the next generation (§3.8: "before decrypting"). Returns the frame's flags and
    /// where its data lies in `frame`.
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`]; `PeerMisbehaved::BadUrgentOffset`; generation overflow.
    fn open_frame(
        &mut self,
        frame: &mut [u8],
        alg: &dyn AeadAlgorithm,
    ) -> Result<(FrameInfo, Range<usize>), Error> {
        let header = FrameHeader::parse(frame)?;
        debug_assert_eq!(header.frame_len(), frame.len());
        let Some(keys) = self.keys.as_mut() else {
            return Err(Error::ApiMisuse("frame before the key exchange finished"));
        };
        if header.rekey {
            keys.advance(alg)?;
        }
        let (aad, body) = frame.split_at_mut(FRAME_HEADER_LEN);
        keys.open(self.offset, aad, body)?;
        let plain_end = frame.len() - AEAD_TAG_LEN;
        let (ph, data_start) = PlaintextHeader::parse(&frame[FRAME_HEADER_LEN..plain_end])?;
        let data = FRAME_HEADER_LEN + data_start..plain_end;
        let urgent_mark = ph.urgent.map(|u| self.app_bytes + u64::from(u));
        self.app_bytes += data.len() as u64;
        self.offset = self.offset.wrapping_add(header.frame_len() as u64);
        if ph.fin {
            self.fin = true;
            // No frame may follow FINp: the key is no longer needed (RFC 8548 §3.8).
            self.keys = None;
        }
        let info = FrameInfo {
            rekey: header.rekey,
            fin: ph.fin,
            urgent_mark,
        };
        Ok((info, data))
    }

    /// Returns the frame buffer's memory to the allocator when it holds neither part of a
    /// frame nor unread data (an idle connection).
    pub(crate) fn release_if_empty(&mut self) {
        if !self.has_partial() && !self.has_unread() {
            self.buf = Vec::new();
            self.plain = 0..0;
            self.opened = false;
        }
    }

    /// Bytes of memory the frame buffer holds.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The unread data of the opened frame.
    pub(crate) fn unread(&self) -> &[u8] {
        &self.buf[self.plain.clone()]
    }

    /// Marks `n` unread bytes as read (at most all of them).
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.plain.len());
        self.plain.start += n;
        self.delivered += n as u64;
    }

    /// Copies unread data of the opened frame into `out`; returns the count.
    pub(crate) fn read(&mut self, out: &mut [u8]) -> usize {
        let n = self.plain.len().min(out.len());
        out[..n].copy_from_slice(&self.buf[self.plain.start..self.plain.start + n]);
        self.plain.start += n;
        self.delivered += n as u64;
        n
    }
}
