//! The tcpcrypt stream path: everything after ENO succeeded (RFC 8548 §3.3-§3.9, §4).
//! Read RFC 8548 §3 first; the project digest (§3, §5.3) records the decisions taken here.
//!
//! ```text
//!   ciphertext in ──handle_ciphertext──▶ ┌──────────────────────────┐ ──read_plaintext──▶ app
//!   TCP FIN in ───handle_peer_fin──────▶ │ Session                  │
//!                                        │  handshake (Init1/Init2) │ ──poll_event──▶ driver
//!   app ──write_plaintext/write_urgent─▶ │  sender   (seal frames)  │
//!        close / initiate_rekey ───────▶ │  receiver (open frames)  │ ──poll_ciphertext──▶ TCP
//!   now ──probe_liveness/handle_timeout▶ │  generations, probe      │ ──poll_timeout──▶ timer
//!                                        └──────────────────────────┘
//! ```
//!
//! Submodules: [`config`] (settings), `handshake` (Init1/Init2 states), `sender` and
//! `receiver` (framing and AEAD), `rekey` (generations and per-direction keys), [`event`]
//! (what the session reports).

pub mod config;
pub mod event;
mod handshake;
mod receiver;
mod rekey;
mod sender;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::consts::{AeadId, Role, TepId, MAX_SEND_BUFFER, N_A_LEN};
use crate::crypto::{CryptoProvider, Rng};
use crate::error::{Error, PeerMisbehaved};
use crate::keys::{ResumableSecret, SessionId, SessionSecret};
use crate::negotiated::{Negotiated, Resumption};
use crate::wire::frame::PlaintextHeader;

pub use config::SessionConfig;
pub use event::{Event, Peek, Read, Transmit};

use handshake::{Handshake, KeysAgreed};
use receiver::Receiver;
use rekey::{DirectionKeys, Generations};
use sender::Sender;

/// The v bit of a TEP byte (RFC 8547 §4.1): set by host B for a resumed session (RFC 8548 §3.5).
const TEP_BYTE_V: u8 = 0x80;

/// One tcpcrypt connection's stream path: a sans-IO state machine between the TCP byte streams
/// (ciphertext) and the application (plaintext) (RFC 8548 §3.3-§3.9).
///
/// # Methods
/// * Getters (`&self`): [`session_id`](Self::session_id), [`role`](Self::role),
///   [`tep`](Self::tep), [`aead`](Self::aead), generations, byte counters, [`error`](Self::error).
/// * Inputs: [`handle_ciphertext`](Self::handle_ciphertext) (bytes of the peer's TCP stream),
///   [`handle_peer_fin`](Self::handle_peer_fin), [`handle_peer_reset`](Self::handle_peer_reset),
///   [`handle_timeout`](Self::handle_timeout).
/// * Application calls: [`write_plaintext`](Self::write_plaintext),
///   [`write_urgent`](Self::write_urgent), [`close`](Self::close),
///   [`initiate_rekey`](Self::initiate_rekey), [`probe_liveness`](Self::probe_liveness),
///   [`abort`](Self::abort).
/// * Outputs (`#[must_use]`): [`poll_ciphertext`](Self::poll_ciphertext),
///   [`read_plaintext`](Self::read_plaintext) (or zero-copy
///   [`peek_plaintext`](Self::peek_plaintext) + [`consume_plaintext`](Self::consume_plaintext)),
///   [`poll_event`](Self::poll_event),
///   [`poll_timeout`](Self::poll_timeout).
///
/// # Driver contract
/// After creating the session and after *every* input or application call, drain the outputs
/// in this order:
/// 1. `poll_ciphertext(&mut out)` and send the appended bytes in order. Set PSH on the segment
///    carrying byte `init_end - 1` when [`Transmit::init_end`] is set (RFC 8548 §3.3); send TCP
///    FIN after the last byte when [`Transmit::fin`] is set (§3.7). Reusing `out` (cleared)
///    makes sending copy-free.
/// 2. `poll_event()` until `None` ([`Event::Established`] first; cache
///    [`Event::ResumableSecret`]).
/// 3. `read_plaintext(buf)` until [`Read::Blocked`] or [`Read::Eof`].
/// 4. `poll_timeout()` and arm the timer; call `handle_timeout(now)` when it fires.
///
/// [`handle_ciphertext`](Self::handle_ciphertext) returns how many bytes it consumed: it stops
/// while decrypted data is unread or [`MAX_SEND_BUFFER`] bytes of ciphertext wait in step 1.
/// Keep the rest and offer it again after steps 1-3. Call
/// [`handle_peer_fin`](Self::handle_peer_fin) only after every byte before the TCP FIN was
/// consumed. [`write_plaintext`](Self::write_plaintext) likewise returns how much it took.
///
/// Every `Err` is terminal: the session drops its keys and every later call returns the same
/// error. The driver then resets the connection (never a TCP FIN: RFC 8548 §3.6, §3.7, §8). A
/// clean end is [`Read::Eof`], never an error.
pub struct Session {
    provider: Arc<dyn CryptoProvider>,
    config: Arc<SessionConfig>,
    role: Role,
    tep: TepId,
    tep_byte: u8,
    /// The role whose key this host sends with: its role in the session that made ss[0]
    /// (RFC 8548 §3.3, §3.5).
    key_role: Role,
    handshake: Handshake,
    tx: Sender,
    rx: Receiver,
    gens: Generations,
    session_id: Option<SessionId>,
    aead: Option<AeadId>,
    resumed: bool,
    close_requested: bool,
    events: VecDeque<Event>,
    error: Option<Error>,
}

impl Session {
    /// Starts the stream path of a negotiated connection. A fresh session draws N_A or N_B and
    /// an ephemeral key pair from `rng` and, as host A, queues Init1; a resumed session
    /// derives its keys at once and queues [`Event::Established`] (RFC 8548 §3.3, §3.5).
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] if the provider lacks the TEP or every configured AEAD, or if
    /// `negotiated` is inconsistent (TEP byte, resumption TEP, v bit);
    /// [`Error::KeyAgreement`] if key generation fails.
    pub fn new(
        negotiated: Negotiated,
        config: Arc<SessionConfig>,
        provider: Arc<dyn CryptoProvider>,
        rng: &mut dyn Rng,
    ) -> Result<Self, Error> {
        let Negotiated {
            role,
            tep,
            tep_byte,
            transcript,
            resumption,
            ..
        } = negotiated;
        if !tep.is_tcpcrypt() || tep_byte & !TEP_BYTE_V != tep.get() {
            return Err(Error::ApiMisuse(
                "tep_byte does not name the negotiated tcpcrypt TEP",
            ));
        }
        let mut session = Self {
            provider,
            config,
            role,
            tep,
            tep_byte,
            key_role: role,
            handshake: Handshake::Complete,
            tx: Sender::new(),
            rx: Receiver::new(),
            gens: Generations::default(),
            session_id: None,
            aead: None,
            resumed: false,
            close_requested: false,
            events: VecDeque::new(),
            error: None,
        };
        match resumption {
            Some(r) => session.resume(r)?,
            None => session.start_fresh(transcript, rng)?,
        }
        Ok(session)
    }

    /// Fresh key exchange (RFC 8548 §3.3): A queues Init1, B waits for it.
    fn start_fresh(&mut self, transcript: Vec<u8>, rng: &mut dyn Rng) -> Result<(), Error> {
        let ka = self
            .provider
            .key_agreement(self.tep)
            .ok_or(Error::ApiMisuse("crypto provider lacks the negotiated TEP"))?;
        let secret = ka.generate(rng).map_err(Error::KeyAgreement)?;
        let mut nonce = [0u8; N_A_LEN];
        rng.fill(&mut nonce);
        let supported = |list: &[AeadId]| -> Vec<AeadId> {
            let mut v: Vec<AeadId> = Vec::new();
            for &id in list {
                if self.provider.aead(id).is_some() && !v.contains(&id) {
                    v.push(id);
                }
            }
            v.truncate(usize::from(u8::MAX));
            v
        };
        self.handshake = match self.role {
            Role::A => {
                let offered = supported(&self.config.aead_offer);
                if offered.is_empty() {
                    return Err(Error::ApiMisuse("no configured AEAD to offer"));
                }
                let (state, init1) = Handshake::start_a(transcript, offered, nonce, secret);
                self.tx.push_init(&init1);
                state
            }
            Role::B => {
                let preference = supported(&self.config.aead_preference);
                if preference.is_empty() {
                    return Err(Error::ApiMisuse("no configured AEAD to accept"));
                }
                Handshake::start_b(transcript, preference, nonce, secret)
            }
        };
        Ok(())
    }

    /// Resumption (RFC 8548 §3.5): no Init messages; keys from ss[i] and sn[i]; the key
    /// direction follows the original role; ss[i] is erased once mk[0] and the ID exist.
    fn resume(&mut self, resumption: Resumption) -> Result<(), Error> {
        let Resumption {
            secret:
                ResumableSecret {
                    tep,
                    original_role,
                    aead,
                    secret,
                },
            sn,
        } = resumption;
        if tep != self.tep {
            return Err(Error::ApiMisuse("resumption secret belongs to another TEP"));
        }
        if self.tep_byte & TEP_BYTE_V == 0 {
            return Err(Error::ApiMisuse("a resumed session's TEP byte has v = 1"));
        }
        self.key_role = original_role;
        self.resumed = true;
        self.install_keys(&secret, sn.as_bytes(), aead, 0)?;
        let session_id = secret.session_id(self.tep_byte, sn.as_bytes());
        // ss[i] is dropped (zeroed) here: the cache already holds ss[i+1].
        drop(secret);
        self.established(session_id, aead)
    }

    /// Derives mk[0] and both directions' generation-0 keys (RFC 8548 §3.3).
    fn install_keys(
        &mut self,
        ss: &SessionSecret,
        sn: &[u8],
        aead: AeadId,
        peer_init_len: usize,
    ) -> Result<(), Error> {
        let alg = self
            .provider
            .aead(aead)
            .ok_or(Error::ApiMisuse("crypto provider lacks the AEAD"))?;
        self.tx.keys = Some(DirectionKeys::new(ss.master_key(sn), self.key_role, alg)?);
        let rx_keys = DirectionKeys::new(ss.master_key(sn), self.key_role.peer(), alg)?;
        self.rx.start(rx_keys, peer_init_len);
        self.aead = Some(aead);
        Ok(())
    }

    /// Keys are in place: report it, and seal FINp if the application closed early.
    fn established(&mut self, session_id: SessionId, aead: AeadId) -> Result<(), Error> {
        self.session_id = Some(session_id);
        self.push_event(Event::Established {
            session_id,
            aead,
            resumed: self.resumed,
        });
        if self.close_requested {
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

    /// A fresh key exchange finished: B queues Init2, then keys, events, ss[0] erased.
    fn key_exchange_done(&mut self, agreed: KeysAgreed) -> Result<(), Error> {
        let KeysAgreed {
            ss0,
            aead,
            init2,
            peer_init_len,
        } = agreed;
        if let Some(init2) = init2 {
            self.tx.push_init(&init2);
        }
        self.install_keys(&ss0, &[], aead, peer_init_len)?;
        let session_id = ss0.session_id(self.tep_byte, &[]);
        let ss1 = ResumableSecret {
            tep: self.tep,
            original_role: self.role,
            aead,
            secret: ss0.next(),
        };
        drop(ss0);
        self.established(session_id, aead)?;
        self.push_event(Event::ResumableSecret(ss1));
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Getters

    /// The session ID (RFC 8548 §3.4), once established; `None` before (RFC 8547 §5.1).
    pub fn session_id(&self) -> Option<SessionId> {
        self.session_id
    }

    /// This host's current ENO role (RFC 8547 §4.3).
    pub fn role(&self) -> Role {
        self.role
    }

    /// The negotiated TEP (RFC 8547 §4.5).
    pub fn tep(&self) -> TepId {
        self.tep
    }

    /// The AEAD of the frames (RFC 8548 §3.3), once chosen.
    pub fn aead(&self) -> Option<AeadId> {
        self.aead
    }

    /// True for a resumed session (RFC 8548 §3.5).
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// True once keys are in place ([`Event::Established`] was queued).
    pub fn is_established(&self) -> bool {
        self.session_id.is_some()
    }

    /// The generation this host sends with (RFC 8548 §3.8).
    pub fn local_generation(&self) -> u64 {
        self.gens.local
    }

    /// The highest generation received from the peer (RFC 8548 §3.8).
    pub fn remote_generation(&self) -> u64 {
        self.gens.remote
    }

    /// Application bytes accepted for sending (sealed into frames).
    pub fn plaintext_bytes_sent(&self) -> u64 {
        self.tx.app_bytes
    }

    /// Application bytes handed out by [`read_plaintext`](Self::read_plaintext).
    pub fn plaintext_bytes_received(&self) -> u64 {
        self.rx.delivered
    }

    /// Bytes of this host's TCP stream produced so far, Init included (the next frame offset).
    pub fn ciphertext_bytes_sent(&self) -> u64 {
        self.tx.offset()
    }

    /// Bytes of the peer's TCP stream processed as whole messages (Init and complete frames).
    pub fn ciphertext_bytes_received(&self) -> u64 {
        self.rx.offset()
    }

    /// The terminal error, if the session failed.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    // ---------------------------------------------------------------------------------------
    // Inputs

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

    /// Fails the session with [`Error::LivenessTimeout`] if a liveness probe went unanswered
    /// until `now` (RFC 8548 §3.9).
    ///
    /// # Errors
    /// [`Error::LivenessTimeout`], or the earlier terminal error.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.check()?;
        match self.gens.probe_deadline {
            Some(deadline) if deadline <= now => Err(self.fail(Error::LivenessTimeout)),
            _ => Ok(()),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Application calls

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

    // ---------------------------------------------------------------------------------------
    // Outputs

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

    /// When [`handle_timeout`](Self::handle_timeout) must be called: the liveness deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        self.gens.probe_deadline
    }

    // ---------------------------------------------------------------------------------------
    // Internals

    /// Seals one frame, first rekeying automatically if a limit is reached (RFC 8548 §3.8).
    fn seal(&mut self, header: PlaintextHeader, data: &[u8]) -> Result<(), Error> {
        if self
            .tx
            .limit_reached(self.config.frame_limit(), self.config.byte_limit())
        {
            self.raise_local()?;
        }
        let result = self.tx.seal_frame(header, data);
        result.map_err(|e| self.fail(e))
    }

    /// Raises the local generation; the next sealed frame carries rekey = 1 (RFC 8548 §3.8).
    fn raise_local(&mut self) -> Result<(), Error> {
        let result = self.raise_local_inner();
        result.map_err(|e| self.fail(e))
    }

    fn raise_local_inner(&mut self) -> Result<(), Error> {
        let aead = self
            .aead
            .ok_or(Error::ApiMisuse("rekey before the key exchange"))?;
        let alg = self
            .provider
            .aead(aead)
            .ok_or(Error::ApiMisuse("crypto provider lacks the AEAD"))?;
        self.gens.raise_local()?;
        if let Some(keys) = self.tx.keys.as_mut() {
            keys.advance(alg)?;
        }
        self.tx.generation_raised();
        self.push_rekeyed();
        Ok(())
    }

    fn push_rekeyed(&mut self) {
        self.push_event(Event::Rekeyed {
            local: self.gens.local,
            remote: self.gens.remote,
        });
    }

    /// Queues an event, replacing a queued one of the same kind (bounded queue).
    fn push_event(&mut self, event: Event) {
        let kind = core::mem::discriminant(&event);
        match self
            .events
            .iter_mut()
            .find(|e| core::mem::discriminant(*e) == kind)
        {
            Some(slot) => *slot = event,
            None => self.events.push_back(event),
        }
    }

    fn check(&self) -> Result<(), Error> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn check_writable(&self) -> Result<(), Error> {
        self.check()?;
        if self.close_requested {
            return Err(Error::ApiMisuse("write after close"));
        }
        Ok(())
    }

    /// Makes the session terminal with its first error, dropping (zeroing) every key.
    fn fail(&mut self, error: Error) -> Error {
        let first = *self.error.get_or_insert(error);
        self.tx.keys = None;
        self.rx.keys = None;
        self.handshake = Handshake::Complete;
        self.gens.probe_deadline = None;
        first
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are never printed: only public state.
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("tep", &self.tep)
            .field("aead", &self.aead)
            .field("session_id", &self.session_id)
            .field("handshake", &self.handshake)
            .field("resumed", &self.resumed)
            .field("generations", &(self.gens.local, self.gens.remote))
            .field("closed", &self.close_requested)
            .field("peer_fin", &self.rx.fin)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The daemon moves sessions between threads.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Session>();
};
