//! Inputs from the network and the timer: the peer's TCP data stream, its FIN and RST, and
//! timeouts (RFC 8548 §3.3, §3.6-§3.9). Read RFC 8548 §3.6 first.

use std::time::Instant;

use crate::consts::MAX_SEND_BUFFER;
use crate::error::{Error, PeerMisbehaved};
use crate::wire::frame::PlaintextHeader;

use super::event::Event;
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
        let mut used = 0;
        if self.handshake.in_progress() {
            let (n, agreed) = self.handshake.handle(data, &*self.provider)?;
            used = n;
            match agreed {
                Some(agreed) => self.key_exchange_done(agreed)?,
                None => return Ok(used),
            }
        }
        while used < data.len() {
            if self.rx.fin {
                // RFC 8548 §3.7: FINp marks the last frame.
                return Err(PeerMisbehaved::DataAfterFin.into());
            }
            if self.rx.has_unread() || self.tx.buffered() >= MAX_SEND_BUFFER {
                break;
            }
            let (n, complete) = self.rx.fill(&data[used..])?;
            used += n;
            if complete {
                self.open_frame()?;
            }
        }
        Ok(used)
    }

    /// Opens the complete frame and applies its rekey and URGp (RFC 8548 §3.7, §3.8).
    fn open_frame(&mut self) -> Result<(), Error> {
        let aead = self
            .aead
            .ok_or(Error::ApiMisuse("frame before the key exchange"))?;
        let alg = self
            .provider
            .aead(aead)
            .ok_or(Error::ApiMisuse("crypto provider lacks the AEAD"))?;
        let opened = self.rx.open(alg)?;
        if opened.rekey {
            if self.gens.peer_rekeyed()? {
                // "the receiver MUST immediately increment its local generation number to
                // match. Moreover, if the receiver has not yet transmitted a segment with the
                // FIN flag set, it MUST immediately send a frame ... with rekey = 1."
                self.gens.local = self.gens.remote;
                if let Some(keys) = self.tx.keys.as_mut() {
                    keys.advance(alg)?;
                    self.tx.generation_raised();
                    self.tx.seal_frame(PlaintextHeader::default(), &[])?;
                }
            } else if !self.gens.rekey_outstanding() && self.gens.probe_deadline.take().is_some() {
                self.push_event(Event::LivenessConfirmed);
            }
            self.push_rekeyed();
        }
        if let Some(mark) = opened.urgent_mark {
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
