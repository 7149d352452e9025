//! Application calls: writing, urgent data, closing, rekeying and liveness probes
//! (RFC 8548 §3.6-§3.9).

use core::fmt;
use core::ops::{Deref, DerefMut};
use std::time::Instant;

use crate::error::Error;
use crate::wire::frame::PlaintextHeader;

#[cfg(doc)]
use super::event::{Event, Transmit};
use super::Session;
#[cfg(doc)]
use crate::consts::MAX_SEND_BUFFER;

impl Session {
    /// Seals `data` into frames at once (no waiting to fill a frame) of at most
    /// `max_frame_data` bytes each (RFC 8548 §3.6). Returns how many bytes were accepted:
    /// fewer than `data.len()` when [`MAX_SEND_BUFFER`] is reached, and 0 before the keys exist
    /// (host A until Init2 arrives, host B until Init1 arrives).
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] after [`close`](Self::close); the terminal error.
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.check_writable()?;
        if self.tx.keys.is_none() {
            return Ok(0);
        }
        let max = self.config.frame_data();
        let mut written = 0;
        while written < data.len() {
            let n = self.tx.room(1).min(max).min(data.len() - written);
            if n == 0 {
                break;
            }
            self.seal(PlaintextHeader::default(), &data[written..written + n])?;
            written += n;
        }
        Ok(written)
    }

    /// Zero-copy writing: lends a window inside the session's outgoing buffer, already placed
    /// after room for the frame header and flags byte (RFC 8548 §4.2), for the data of the next
    /// frame. Read plaintext straight into it, then [`SendBuffer::commit`] the bytes written:
    /// they are sealed in place. The window holds at most `max_frame_data` bytes and what fits
    /// within [`MAX_SEND_BUFFER`]; it is empty before the keys exist or when the buffer is
    /// full. Dropping the guard without committing sends nothing. The sealed frame is taken with
    /// [`peek_ciphertext`](Self::peek_ciphertext) + [`consume_ciphertext`](Self::consume_ciphertext)
    /// (which keep the buffer, so the next window needs no allocation) or
    /// [`poll_ciphertext`](Self::poll_ciphertext).
    ///
    /// ```ignore
    /// let mut w = session.send_buffer()?;
    /// let n = app_socket.read(&mut w)?;
    /// w.commit(n)?;
    /// let t = session.consume_ciphertext(peer_socket.write(session.peek_ciphertext())?);
    /// ```
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] after [`close`](Self::close); the terminal error.
    pub fn send_buffer(&mut self) -> Result<SendBuffer<'_>, Error> {
        self.check_writable()?;
        let len = self.tx.prepare_window(self.config.frame_data());
        Ok(SendBuffer { session: self, len })
    }

    /// [`send_buffer`](Self::send_buffer) with a window of at most `max` bytes. A driver that
    /// expects a small read (a connection exchanging small messages) asks for a small window:
    /// the session's buffer then grows only as far as the data needs (RFC 8548 §3.6 sets no
    /// minimum frame size).
    ///
    /// # Errors
    /// As [`send_buffer`](Self::send_buffer).
    pub fn send_buffer_up_to(&mut self, max: usize) -> Result<SendBuffer<'_>, Error> {
        self.check_writable()?;
        let len = self.tx.prepare_window(self.config.frame_data().min(max));
        Ok(SendBuffer { session: self, len })
    }

    /// Seals the `n` bytes in the prepared window as one frame (RFC 8548 §3.6), first rekeying
    /// automatically if a limit is reached (§3.8).
    fn commit_window(&mut self, n: usize) -> Result<(), Error> {
        if self
            .tx
            .limit_reached(self.config.frame_limit(), self.config.byte_limit())
        {
            self.raise_local()?;
        }
        let result = self.tx.seal_window(PlaintextHeader::default(), n);
        result.map_err(|e| self.fail(e))
    }

    /// Sends `data` as urgent data in one frame with URGp (RFC 8548 §3.7, §4.2.1): its last
    /// byte is the urgent mark, sent as the urgent field `data.len() - 1` (the offset of the
    /// last urgent byte from the frame's first data byte, big-endian; digest §5.3 A2-A3).
    /// All or nothing: returns `data.len()`, or 0 when there is no room (or no key) yet.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] if `data` is empty or longer than one frame can carry, or after
    /// [`close`](Self::close); the terminal error.
    pub fn write_urgent(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.check_writable()?;
        let Some(last) = data.len().checked_sub(1) else {
            return Err(Error::ApiMisuse("urgent data must not be empty"));
        };
        let Ok(urgent) = u16::try_from(last) else {
            return Err(Error::ApiMisuse("urgent data must fit one frame"));
        };
        if data.len() > self.config.urgent_data() {
            return Err(Error::ApiMisuse("urgent data must fit one frame"));
        }
        let header = PlaintextHeader {
            fin: false,
            urgent: Some(urgent),
        };
        if self.tx.keys.is_none() || self.tx.room(header.buffer_len()) < data.len() {
            return Ok(0);
        }
        self.seal(header, data)?;
        Ok(data.len())
    }

    /// Ends this host's stream: seals an empty frame with FINp, the last frame
    /// (RFC 8548 §3.7), at once or as soon as the keys exist. [`Transmit::fin`] then tells the
    /// driver to send TCP FIN. Receiving continues (half-close). Calling it again does nothing.
    ///
    /// # Errors
    /// The terminal error.
    pub fn close(&mut self) -> Result<(), Error> {
        self.check()?;
        if self.close_requested {
            return Ok(());
        }
        self.close_requested = true;
        if self.tx.keys.is_some() {
            self.seal(
                PlaintextHeader {
                    fin: true,
                    urgent: None,
                },
                &[],
            )?;
        }
        Ok(())
    }

    /// Initiates rekeying (RFC 8548 §3.8): raises the local generation and seals an empty frame
    /// with rekey = 1 at once, so the generation is never raised twice without a frame between
    /// (digest A5). Returns `false`, doing nothing, while an earlier rekey is unanswered
    /// (remote < local): "MUST NOT initiate rekeying with an empty encryption frame more than
    /// once while its record of the remote generation number is less than its own".
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] before [`Event::Established`] or after [`close`](Self::close).
    pub fn initiate_rekey(&mut self) -> Result<bool, Error> {
        self.check_writable()?;
        if self.tx.keys.is_none() {
            return Err(Error::ApiMisuse("rekey before the session is established"));
        }
        if self.gens.rekey_outstanding() {
            return Ok(false);
        }
        self.raise_local()?;
        self.seal(PlaintextHeader::default(), &[])?;
        Ok(true)
    }

    /// Probes the peer's liveness (RFC 8548 §3.9): initiates a rekey (an empty rekey frame,
    /// unless a rekey is already unanswered) and arms a timer of `liveness_timeout`. The peer's
    /// mandatory rekey answer yields [`Event::LivenessConfirmed`]; otherwise
    /// [`handle_timeout`](Self::handle_timeout) fails the session with
    /// [`Error::LivenessTimeout`]. A probe while one is outstanding does nothing.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] before establishment, after [`close`](Self::close), or after the
    /// peer's FINp (a peer that sent FIN need not answer).
    pub fn probe_liveness(&mut self, now: Instant) -> Result<(), Error> {
        if self.rx.fin {
            self.check()?;
            return Err(Error::ApiMisuse(
                "the peer has closed and will not answer a probe",
            ));
        }
        if self.gens.probe_deadline.is_some() {
            return self.check();
        }
        if !self.gens.rekey_outstanding() {
            self.initiate_rekey()?;
        } else {
            self.check_writable()?;
        }
        self.gens.probe_deadline = Some(now + self.config.liveness_timeout);
        Ok(())
    }

    /// Aborts the connection locally (RFC 793 ABORT): the session fails with
    /// [`Error::Aborted`]; the driver resets the connection.
    pub fn abort(&mut self) {
        self.fail(Error::Aborted);
    }
}

/// A writable window for the data of the next frame, inside the session's outgoing buffer
/// (from [`Session::send_buffer`]). It dereferences to the window's bytes; while it lives, the
/// session cannot be used otherwise, so nothing can be sealed in between.
#[must_use = "bytes written to the window are sent only when committed"]
pub struct SendBuffer<'a> {
    session: &'a mut Session,
    len: usize,
}

impl SendBuffer<'_> {
    /// Seals the first `n` bytes of the window as one frame (RFC 8548 §3.6, §4.2), in place.
    /// `n` = 0 sends nothing. Returns `n`.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] if `n` exceeds the window (nothing is sealed); the terminal error.
    pub fn commit(self, n: usize) -> Result<usize, Error> {
        if n > self.len {
            return Err(Error::ApiMisuse("commit beyond the send buffer"));
        }
        if n > 0 {
            self.session.commit_window(n)?;
        }
        Ok(n)
    }
}

impl Deref for SendBuffer<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.session.tx.window(self.len)
    }
}

impl DerefMut for SendBuffer<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.session.tx.window_mut(self.len)
    }
}

impl fmt::Debug for SendBuffer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendBuffer")
            .field("len", &self.len)
            .finish()
    }
}
