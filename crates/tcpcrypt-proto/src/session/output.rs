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
