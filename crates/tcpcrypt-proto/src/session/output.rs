//! Outputs the driver drains after every call: ciphertext to send, plaintext to deliver,
//! events and the next timer (RFC 8548 §3.3, §3.6, §3.7).

use std::time::Instant;

use crate::error::Error;

use super::event::{Event, Peek, Read, Transmit};
use super::Session;

impl Session {
    /// Appends the bytes to send to `out` (Init message and frames, in stream order) and says
    /// where the Init ends (PSH) and whether the stream now ends (TCP FIN). After an error,
    /// appends nothing.
    #[must_use = "the Transmit says where PSH and TCP FIN go"]
    pub fn poll_ciphertext(&mut self, out: &mut Vec<u8>) -> Transmit {
        if self.error.is_some() {
            return Transmit::default();
        }
        self.tx.poll(out)
    }

    /// Zero-copy sending: the sealed bytes waiting to be sent (Init message and frames, in
    /// stream order), borrowed. Send a prefix of them straight from here, then call
    /// [`consume_ciphertext`](Self::consume_ciphertext) with its length. Empty after an error.
    /// Mixes freely with [`poll_ciphertext`](Self::poll_ciphertext).
    #[must_use]
    pub fn peek_ciphertext(&self) -> &[u8] {
        if self.error.is_some() {
            return &[];
        }
        self.tx.pending()
    }

    /// Marks the first `n` bytes of [`peek_ciphertext`](Self::peek_ciphertext) as sent (at most
    /// all of them) and says whether they held the end of the Init (PSH, counted from the first
    /// byte taken) and the last byte of the stream (TCP FIN), as
    /// [`poll_ciphertext`](Self::poll_ciphertext) does. Takes nothing after an error.
    #[must_use = "the Transmit says where PSH and TCP FIN go"]
    pub fn consume_ciphertext(&mut self, n: usize) -> Transmit {
        if self.error.is_some() {
            return Transmit::default();
        }
        self.tx.consume(n)
    }

    /// Copies authenticated plaintext into `buf` (RFC 8548 §3.6, §3.7).
    ///
    /// # Errors
    /// The terminal error, if the session failed.
    #[must_use = "the outcome says whether data, EOF or nothing was read"]
    pub fn read_plaintext(&mut self, buf: &mut [u8]) -> Result<Read, Error> {
        self.check()?;
        if self.rx.has_unread() {
            return Ok(Read::Data(self.rx.read(buf)));
        }
        if self.rx.fin {
            return Ok(Read::Eof);
        }
        Ok(Read::Blocked)
    }

    /// Zero-copy reading: the unread authenticated plaintext of the current frame, borrowed.
    /// Call [`consume_plaintext`](Self::consume_plaintext) with the bytes used; the data stays
    /// until consumed. Mixes freely with [`read_plaintext`](Self::read_plaintext).
    ///
    /// # Errors
    /// The terminal error, if the session failed.
    pub fn peek_plaintext(&self) -> Result<Peek<'_>, Error> {
        self.check()?;
        if self.rx.has_unread() {
            return Ok(Peek::Data(self.rx.unread()));
        }
        if self.rx.fin {
            return Ok(Peek::Eof);
        }
        Ok(Peek::Blocked)
    }

    /// Marks `n` bytes returned by [`peek_plaintext`](Self::peek_plaintext) as read (at most
    /// all of them). Does nothing after an error.
    pub fn consume_plaintext(&mut self, n: usize) {
        if self.error.is_none() {
            self.rx.consume(n);
        }
    }

    /// True when the next byte of the peer's stream the session expects starts a frame
    /// (RFC 8548 §4.2): the key exchange is done and no partial frame is held. A driver using
    /// [`open_in_place`](Self::open_in_place) can then read the frame's length from its header
    /// ([`FrameHeader::parse`](crate::wire::frame::FrameHeader::parse)) and offer only whole
    /// frames, moving a frame cut by the end of its buffer to the front instead: no frame is
    /// then ever copied into the session.
    #[must_use]
    pub fn at_frame_boundary(&self) -> bool {
        self.error.is_none() && self.is_established() && !self.rx.has_partial()
    }

    /// Bytes of memory held by the session's outgoing and incoming buffers (what
    /// [`release_buffers`](Self::release_buffers) can give back).
    #[must_use]
    pub fn buffer_memory(&self) -> usize {
        self.tx.capacity() + self.rx.capacity()
    }

    /// Gives the memory of the session's buffers back to the allocator where they hold nothing:
    /// the outgoing buffer when every sealed byte was taken, the incoming frame buffer when no
    /// partial frame or unread plaintext is in it. For idle connections; the next frame
    /// allocates again. Nothing else changes.
    pub fn release_buffers(&mut self) {
        self.tx.release_if_empty();
        self.rx.release_if_empty();
    }

    /// The next event, if any. Events are coalesced by kind, so at most five are queued.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called: the earlier of the
    /// handshake deadline (while Init1/Init2 is incomplete, RFC 8548 §3.3) and the liveness
    /// deadline (while a probe is unanswered, §3.9). `None` when no timer is needed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        match (self.handshake_deadline, self.gens.probe_deadline) {
            (Some(h), Some(p)) => Some(h.min(p)),
            (h, p) => h.or(p),
        }
    }
}
