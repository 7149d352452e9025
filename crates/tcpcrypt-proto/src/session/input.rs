//! Inputs from the network and the timer: the peer's TCP data stream, its FIN and RST, and
//! timeouts (RFC 8548 §3.3, §3.6-§3.9). Read RFC 8548 §3.6 first.

use core::ops::Range;
use std::time::Instant;

use crate::consts::{FRAME_HEADER_LEN, MAX_SEND_BUFFER};
use crate::error::{Error, PeerMisbehaved};
use crate::wire::frame::{FrameHeader, PlaintextHeader};

use super::event::{Event, Opened};
use super::receiver::FrameInfo;
use super::Session;

impl Session {
    /// Consumes bytes of the peer's TCP data stream, in order, in chunks of any size
    /// (RFC 8548 §3.3, §3.6). Returns how many bytes were consumed; offer the rest again
    /// after draining the outputs (see the driver contract).
    ///
    /// # Errors
    /// Malformed Init (`PeerMisbehaved::*`, `Decode`), [`Error::KeyAgreement`],
    /// [`Error::AuthenticationFailed`] (no byte of that frame or any later one is released),
    /// `PeerMisbehaved::{FrameTooShort, BadUrgentOffset, DataAfterFin, GenerationOverflow}`.
    pub fn handle_ciphertext(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.check()?;
        let result = self.handle_ciphertext_inner(data);
        result.map_err(|e| self.fail(e))
    }

    fn handle_ciphertext_inner(&mut self, data: &[u8]) -> Result<usize, Error> {
        let mut used = self.handle_init(data)?;
        while used < data.len() {
            if !self.ready_for_frame()? {
                break;
            }
            let (n, complete) = self.rx.fill(&data[used..])?;
            used += n;
            if complete {
                self.open_buffered_frame()?;
            }
        }
        Ok(used)
    }

    /// Zero-copy receiving: opens the next frame inside the driver's own buffer
    /// (RFC 8548 §3.6). `buf` holds the next bytes of the peer's TCP data stream, in order (as
    /// read from the socket). The session consumes a prefix of `buf` and opens at most one
    /// frame in place; [`Opened::data`] is that frame's authenticated plaintext, inside `buf`.
    ///
    /// Bytes are copied into the session only when they cannot be opened in place: Init1/Init2,
    /// and a frame straddling the end of `buf` (kept, at most one frame, until a later call
    /// brings the rest; that frame's plaintext is then read with
    /// [`read_plaintext`](Self::read_plaintext) or [`peek_plaintext`](Self::peek_plaintext)).
    ///
    /// After each call drain the outputs (driver contract steps 1-3: the session's own
    /// plaintext comes first), then deliver [`Opened::data`], then call again on
    /// `buf[consumed..]`. Like [`handle_ciphertext`](Self::handle_ciphertext) it consumes
    /// nothing (`consumed` = 0) while plaintext in the session is unread or
    /// [`MAX_SEND_BUFFER`] bytes of ciphertext wait to be sent. Mixes freely with
    /// `handle_ciphertext`.
    ///
    /// # Errors
    /// Those of [`handle_ciphertext`](Self::handle_ciphertext); after an error the content of
    /// `buf` is unspecified and none of it may be released.
    pub fn open_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Result<Opened<'b>, Error> {
        self.check()?;
        match self.open_in_place_inner(buf) {
            Ok((consumed, range)) => {
                let buf: &'b [u8] = buf;
                Ok(Opened {
                    consumed,
                    data: &buf[range.clone()],
                    range,
                })
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn open_in_place_inner(&mut self, buf: &mut [u8]) -> Result<(usize, Range<usize>), Error> {
        let used = self.handle_init(buf)?;
        let rest = &mut buf[used..];
        if rest.is_empty() || !self.ready_for_frame()? {
            return Ok((used, used..used));
        }
        let whole = match rest.get(..FRAME_HEADER_LEN) {
            Some(header) if !self.rx.has_partial() => {
                Some(FrameHeader::parse(header)?.frame_len()).filter(|&len| len <= rest.len())
            }
            _ => None,
        };
        let Some(len) = whole else {
            // A frame straddles the end of `buf`: keep its bytes (or complete a kept frame).
            let (n, complete) = self.rx.fill(rest)?;
            if complete {
                self.open_buffered_frame()?;
            }
            return Ok((used + n, used + n..used + n));
        };
        let (aead, provider) = (self.aead, &self.provider);
        let alg = aead
            .and_then(|id| provider.aead(id))
            .ok_or(Error::ApiMisuse("frame before the key exchange"))?;
        let (info, data) = self.rx.open_in_place(&mut rest[..len], alg)?;
        self.apply_frame(info)?;
        Ok((used + len, used + data.start..used + data.end))
    }

    /// Feeds Init1/Init2 bytes while the key exchange runs (RFC 8548 §3.3); returns the bytes
    /// used. Frames may follow in the same input once it completes.
    fn handle_init(&mut self, data: &[u8]) -> Result<usize, Error> {
        if !self.handshake.in_progress() {
            return Ok(0);
        }
        let (used, agreed) = self.handshake.handle(data, &*self.provider)?;
        match agreed {
            Some(agreed) => self.key_exchange_done(agreed)?,
            // Still incomplete: every byte was taken (bounded by message_len).
            None => debug_assert_eq!(used, data.len()),
        }
        Ok(used)
    }

    /// Whether another frame may be taken in now: not while plaintext is unread or the send
    /// buffer is full (bounded buffering, rekey answers included).
    ///
    /// # Errors
    /// `PeerMisbehaved::DataAfterFin` once FINp was authenticated (the caller has more bytes).
    fn ready_for_frame(&self) -> Result<bool, Error> {
        if self.rx.fin {
            // RFC 8548 §3.7: FINp marks the last frame.
            return Err(PeerMisbehaved::DataAfterFin.into());
        }
        Ok(!self.rx.has_unread() && self.tx.buffered() < MAX_SEND_BUFFER)
    }

    /// Opens the complete frame in the session's buffer (RFC 8548 §3.6).
    fn open_buffered_frame(&mut self) -> Result<(), Error> {
        let (aead, provider) = (self.aead, &self.provider);
        let alg = aead
            .and_then(|id| provider.aead(id))
            .ok_or(Error::ApiMisuse("frame before the key exchange"))?;
        let info = self.rx.open(alg)?;
        self.apply_frame(info)
    }

    /// Applies an authenticated frame's rekey and URGp (RFC 8548 §3.7, §3.8).
    fn apply_frame(&mut self, info: FrameInfo) -> Result<(), Error> {
        if info.rekey {
            if self.gens.peer_rekeyed()? {
                // "the receiver MUST immediately increment its local generation number to
                // match. Moreover, if the receiver has not yet transmitted a segment with the
                // FIN flag set, it MUST immediately send a frame ... with rekey = 1."
                self.gens.local = self.gens.remote;
                let (aead, provider) = (self.aead, &self.provider);
                if let Some(keys) = self.tx.keys.as_mut() {
                    let alg = aead
                        .and_then(|id| provider.aead(id))
                        .ok_or(Error::ApiMisuse("crypto provider lacks the AEAD"))?;
                    keys.advance(alg)?;
                    self.tx.generation_raised();
                    self.tx.seal_frame(PlaintextHeader::default(), &[])?;
                }
            } else if !self.gens.rekey_outstanding() && self.gens.probe_deadline.take().is_some() {
                self.push_event(Event::LivenessConfirmed);
            }
            self.push_rekeyed();
        }
        if let Some(mark) = info.urgent_mark {
            self.push_event(Event::Urgent { mark });
        }
        Ok(())
    }

    /// The peer's TCP FIN arrived, after every byte before it was consumed (RFC 8548 §3.7).
    ///
    /// # Errors
    /// [`Error::Truncated`] unless a FINp frame was authenticated.
    pub fn handle_peer_fin(&mut self) -> Result<(), Error> {
        self.check()?;
        if self.rx.fin {
            Ok(())
        } else {
            Err(self.fail(Error::Truncated))
        }
    }

    /// The peer reset the connection (TCP RST): the session fails with [`Error::Reset`].
    pub fn handle_peer_reset(&mut self) {
        self.fail(Error::Reset);
    }

    /// Fails the session if a deadline passed by `now`: the key exchange is still incomplete
    /// ([`Error::HandshakeTimeout`], RFC 8548 §3.3), or a liveness probe went unanswered
    /// ([`Error::LivenessTimeout`], RFC 8548 §3.9). Early or spurious calls do nothing.
    ///
    /// # Errors
    /// [`Error::HandshakeTimeout`], [`Error::LivenessTimeout`], or the earlier terminal error.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.check()?;
        if self.handshake_deadline.is_some_and(|d| d <= now) {
            return Err(self.fail(Error::HandshakeTimeout));
        }
        match self.gens.probe_deadline {
            Some(deadline) if deadline <= now => Err(self.fail(Error::LivenessTimeout)),
            _ => Ok(()),
        }
    }
}
