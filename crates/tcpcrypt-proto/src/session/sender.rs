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
///
/// `buf` is one reusable buffer: `buf[..start]` was taken by the driver, `buf[start..end]` is
/// sealed and waiting (at most about [`MAX_SEND_BUFFER`] bytes), and `buf[end..]` is spare,
/// already initialised memory: the window of [`Sender::prepare_window`] lies there, so sealing in place
/// neither allocates nor clears memory once the buffer has grown.
#[derive(Debug)]
pub(crate) struct Sender {
    buf: Vec<u8>,
    /// First sealed byte not yet taken by the driver.
    start: usize,
    /// End of the sealed bytes.
    end: usize,
    /// Stream offset just past the Init message (PSH, RFC 8548 §3.3), until reported.
    init_end: Option<u64>,
    /// Stream offset of the next byte sealed (RFC 8548 §4.2.3; decision A1).
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

/// Where the data of a frame with a flags-only plaintext header starts in the frame.
const DATA_OFFSET: usize = FRAME_HEADER_LEN + 1;

impl Sender {
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            end: 0,
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
        debug_assert!(self.offset == 0 && self.end == 0);
        self.buf.clear();
        self.buf.extend_from_slice(init);
        self.end = init.len();
        self.offset = first_frame_offset(init.len());
        self.init_end = Some(self.offset);
    }

    /// Ciphertext stream offset: every byte sealed so far, Init included.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes sealed but not yet taken by the driver.
    pub(crate) fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// True once the FINp frame is sealed: no frame may follow (RFC 8548 §3.7).
    pub(crate) fn fin_sealed(&self) -> bool {
        self.fin != Fin::Open
    }

    /// How many data bytes a frame could carry right now within [`MAX_SEND_BUFFER`], given the
    /// plaintext header length (1, or 3 with URGp).
    pub(crate) fn room(&self, plain_header: usize) -> usize {
        MAX_SEND_BUFFER
            .saturating_sub(self.buffered())
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

    /// Moves the waiting bytes to the front when a frame of `frame_len` bytes would otherwise
    /// take the buffer beyond [`MAX_SEND_BUFFER`] (bounded memory with partial consumption).
    fn compact_for(&mut self, frame_len: usize) {
        if self.start > 0 && self.end + frame_len > MAX_SEND_BUFFER {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Prepares the writable window for the data of the next frame (flags-only header) and
    /// returns its length: at most `max_data` bytes, within [`MAX_SEND_BUFFER`], 0 with no key
    /// or after FINp. The window is [`window_mut`](Self::window_mut); the bytes left there are
    /// sealed by [`seal_window`](Self::seal_window).
    pub(crate) fn prepare_window(&mut self, max_data: usize) -> usize {
        let n = if self.keys.is_none() || self.fin_sealed() {
            0
        } else {
            self.room(1).min(max_data)
        };
        if n == 0 {
            return 0;
        }
        let frame_len = DATA_OFFSET + n + AEAD_TAG_LEN;
        self.compact_for(frame_len);
        let need = self.end + frame_len;
        if self.buf.len() < need {
            // Only when the buffer grows: steady-state windows reuse initialised memory.
            self.buf.resize(need, 0);
        }
        n
    }

    /// The prepared window of `n` bytes (`n` as returned by `prepare_window`).
    pub(crate) fn window(&self, n: usize) -> &[u8] {
        let data = self.end + DATA_OFFSET;
        self.buf.get(data..data + n).unwrap_or_default()
    }

    /// The prepared window of `n` bytes, writable.
    pub(crate) fn window_mut(&mut self, n: usize) -> &mut [u8] {
        let data = self.end + DATA_OFFSET;
        self.buf.get_mut(data..data + n).unwrap_or_default()
    }

    /// Seals `data_len` bytes the driver left in the [`window`](Self::window_mut) as one frame with
    /// `header` (flags only: its data sits right after the flags byte).
    ///
    /// # Errors
    /// As [`seal_frame`](Self::seal_frame).
    pub(crate) fn seal_window(
        &mut self,
        header: PlaintextHeader,
        data_len: usize,
    ) -> Result<(), Error> {
        debug_assert_eq!(header.buffer_len(), 1);
        debug_assert!(self.end + DATA_OFFSET + data_len + AEAD_TAG_LEN <= self.buf.len());
        self.seal_at_end(header, data_len)
    }

    /// Seals one frame carrying `data` at the end of the waiting bytes (RFC 8548 §3.6, §4.2):
    /// `control | clen | seal(flags [| urgent] | data)`, AD = `control | clen`. A FINp frame is
    /// the last one.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] with no key, after FINp, or if the frame would exceed clen < 2^16.
    pub(crate) fn seal_frame(&mut self, header: PlaintextHeader, data: &[u8]) -> Result<(), Error> {
        let hl = header.buffer_len();
        let frame_len = FRAME_HEADER_LEN + hl + data.len() + AEAD_TAG_LEN;
        self.compact_for(frame_len);
        // Copying path: append (no clearing of memory the data overwrites anyway).
        self.buf.truncate(self.end);
        self.buf.resize(self.end + FRAME_HEADER_LEN + hl, 0);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(&[0u8; AEAD_TAG_LEN]);
        self.seal_at_end(header, data.len())
    }

    /// Seals the frame whose data (`data_len` bytes) already sits in `buf` after room for the
    /// frame header and `header`, at `end`: writes both headers, seals in place, advances.
    fn seal_at_end(&mut self, header: PlaintextHeader, data_len: usize) -> Result<(), Error> {
        if self.fin_sealed() {
            return Err(Error::ApiMisuse("frame after FINp"));
        }
        let Some(keys) = &self.keys else {
            return Err(Error::ApiMisuse("no traffic key yet"));
        };
        let plain_len = header.buffer_len() + data_len;
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
        let start = self.end;
        let body = start + FRAME_HEADER_LEN;
        let frame_end = body + clen;
        self.buf[start..body].copy_from_slice(&aad);
        header.emit(&mut self.buf[body..frame_end]);
        keys.seal(self.offset, &aad, &mut self.buf[body..frame_end]);
        let frame_len = (frame_end - start) as u64;
        self.end = frame_end;
        // Offsets wrap only after 2^64 bytes; the byte rekey limit (2^36) changes the key long
        // before any offset could repeat under one key (RFC 8548 §3.6).
        self.offset = self.offset.wrapping_add(frame_len);
        self.frames_this_gen += 1;
        self.bytes_this_gen += frame_len;
        self.app_bytes += data_len as u64;
        if header.fin {
            self.fin = Fin::Sealed;
            // Nothing is ever sealed again: drop the key now (RFC 8548 §3.8).
            self.keys = None;
        }
        Ok(())
    }

    /// Returns the buffer's memory to the allocator when no sealed byte waits (an idle
    /// connection); the next frame allocates it again.
    pub(crate) fn release_if_empty(&mut self) {
        if self.buffered() == 0 {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
    }

    /// Bytes of memory the buffer holds.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The sealed bytes waiting for the driver, in stream order.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks the first `n` waiting bytes (at most all) as taken by the driver and says whether
    /// they held the Init's last byte and the FINp frame's last byte. Positions in the
    /// [`Transmit`] count from the first byte taken.
    pub(crate) fn consume(&mut self, n: usize) -> Transmit {
        let n = n.min(self.buffered());
        let first = self.offset - self.buffered() as u64;
        let init_end = match self.init_end {
            Some(e) if e <= first + n as u64 => {
                self.init_end = None;
                Some((e - first) as usize)
            }
            _ => None,
        };
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Transmit {
            len: n,
            init_end,
            fin: self.fin_reported(),
        }
    }

    /// Reports FIN once, when the FINp frame is sealed and every byte was taken.
    fn fin_reported(&mut self) -> bool {
        let fin = self.fin == Fin::Sealed && self.buffered() == 0;
        if fin {
            self.fin = Fin::Reported;
        }
        fin
    }

    /// Moves all waiting bytes to the end of `out`, without copying when `out` is empty and
    /// nothing was taken yet (the buffers are swapped, so reusing `out` makes steady-state
    /// copying writes allocation-free).
    pub(crate) fn poll(&mut self, out: &mut Vec<u8>) -> Transmit {
        let base = out.len();
        let len = self.buffered();
        if out.is_empty() && self.start == 0 {
            core::mem::swap(out, &mut self.buf);
            out.truncate(len);
            self.buf.clear();
        } else {
            out.extend_from_slice(self.pending());
        }
        let mut t = self.consume(len);
        t.init_end = t.init_end.map(|e| base + e);
        t
    }
}
