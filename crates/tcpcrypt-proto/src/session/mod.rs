//! The tcpcrypt stream path: everything after ENO succeeded (RFC 8548 §3.3-§3.9, §4).
//! Read RFC 8548 §3 first; the project digest (§3, §5.3) records the decisions taken here.
//!
//! ```text
//!   ciphertext in ──handle_ciphertext──▶ ┌──────────────────────────┐ ──read_plaintext──▶ app
//!     (in place: open_in_place ───────▶) │ Session                  │   (peek_plaintext)
//!   TCP FIN in ───handle_peer_fin──────▶ │  handshake (Init1/Init2) │ ──poll_event──▶ driver
//!   app ──write_plaintext/write_urgent─▶ │  sender   (seal frames)  │
//!     (in place: send_buffer + commit ▶) │  receiver (open frames)  │ ──poll_ciphertext──▶ TCP
//!        close / initiate_rekey ───────▶ │  generations, timers     │   (peek/consume_ciphertext)
//!   now ──probe_liveness/handle_timeout▶ │                          │ ──poll_timeout──▶ timer
//!                                        └──────────────────────────┘
//! ```
//!
//! Submodules: [`config`] (settings), `handshake` (Init1/Init2 states), `sender` and
//! `receiver` (framing and AEAD), `rekey` (generations and per-direction keys), [`event`]
//! (what the session reports). The methods of [`Session`] are grouped by the driver contract:
//! this file holds construction, getters and internals; `input` the network and timer inputs,
//! `app_calls` the application calls, `output` the outputs the driver drains.

mod app_calls;
pub mod config;
pub mod event;
mod handshake;
mod input;
mod observer;
mod output;
mod receiver;
mod rekey;
mod sender;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

#[cfg(doc)]
use crate::consts::MAX_SEND_BUFFER;
use crate::consts::{AeadId, Role, TepId, N_A_LEN};
use crate::crypto::{CryptoProvider, Rng};
use crate::error::Error;
use crate::keylog::KeyLogEntry;
use crate::keys::{ResumableSecret, SessionId, SessionSecret};
use crate::negotiated::{Negotiated, Resumption};
use crate::wire::frame::PlaintextHeader;

pub use app_calls::SendBuffer;
pub use config::SessionConfig;
pub use event::{Event, Opened, Peek, Read, Transmit};
pub use observer::{FrameOpener, ObservedFrame};

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
/// * Inputs: [`handle_ciphertext`](Self::handle_ciphertext) (bytes of the peer's TCP stream;
///   zero-copy: [`open_in_place`](Self::open_in_place) in the driver's buffer),
///   [`handle_peer_fin`](Self::handle_peer_fin), [`handle_peer_reset`](Self::handle_peer_reset),
///   [`handle_timeout`](Self::handle_timeout).
/// * Application calls: [`write_plaintext`](Self::write_plaintext) (zero-copy:
///   [`send_buffer`](Self::send_buffer) + [`SendBuffer::commit`]),
///   [`write_urgent`](Self::write_urgent), [`close`](Self::close),
///   [`initiate_rekey`](Self::initiate_rekey), [`probe_liveness`](Self::probe_liveness),
///   [`abort`](Self::abort).
/// * Outputs (`#[must_use]`): [`poll_ciphertext`](Self::poll_ciphertext) (or zero-copy
///   [`peek_ciphertext`](Self::peek_ciphertext) +
///   [`consume_ciphertext`](Self::consume_ciphertext)),
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
/// 4. `poll_timeout()` and arm the timer; call `handle_timeout(now)` when it fires. A fresh
///    session has a deadline from its creation until Init1/Init2 completes (a stalled key
///    exchange fails with [`Error::HandshakeTimeout`]); a liveness probe arms another.
///
/// Zero-copy driver (a daemon between two sockets): read() plaintext into
/// [`send_buffer`](Self::send_buffer) and commit it; write() from
/// [`peek_ciphertext`](Self::peek_ciphertext) and [`consume_ciphertext`](Self::consume_ciphertext)
/// what was written (step 1); read() ciphertext into an own buffer and call
/// [`open_in_place`](Self::open_in_place) on it, delivering each [`Opened::data`] after
/// step 3. No plaintext byte is ever copied by the session except those of a frame straddling
/// the end of the driver's buffer.
///
/// [`handle_ciphertext`](Self::handle_ciphertext) returns how many bytes it consumed: it stops
/// while decrypted data is unread or [`MAX_SEND_BUFFER`] bytes of ciphertext wait in step 1.
/// Keep the rest and offer it again after steps 1-3. Call
/// [`handle_peer_fin`](Self::handle_peer_fin) only after every byte before the TCP FIN was
/// consumed. [`write_plaintext`](Self::write_plaintext) likewise returns how much it took.
///
/// Every error caused by the peer, the network or a timeout is terminal: the session drops its
/// keys and every later call returns the same error. The driver then resets the connection
/// (never a TCP FIN: RFC 8548 §3.6, §3.7, §8). The one exception is [`Error::ApiMisuse`] from a
/// rejected application call (an empty or oversized urgent write, a rekey before establishment,
/// a commit beyond the window): it refuses that call and leaves the session as it was. A clean
/// end is [`Read::Eof`], never an error.
pub struct Session {
    provider: Arc<dyn CryptoProvider>,
    config: Arc<SessionConfig>,
    role: Role,
    tep: TepId,
    tep_byte: u8,
    /// False under the "cache nothing" policy: no ss\[1\] is handed back (RFC 8548 §3.5).
    cache_secrets: bool,
    /// The role whose key this host sends with: its role in the session that made ss\[0\]
    /// (RFC 8548 §3.3, §3.5).
    key_role: Role,
    handshake: Handshake,
    /// When the Init1/Init2 exchange fails if still incomplete (RFC 8548 §3.3); `None` once
    /// complete, for a resumed session, and after an error.
    handshake_deadline: Option<Instant>,
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
    /// Starts the stream path of a negotiated connection at time `now`. A fresh session draws
    /// N_A or N_B and an ephemeral key pair from `rng`, as host A queues Init1, and arms the
    /// handshake deadline `now + config.handshake_timeout` ([`poll_timeout`](Self::poll_timeout));
    /// a resumed session derives its keys at once and queues [`Event::Established`]
    /// (RFC 8548 §3.3, §3.5).
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
        now: Instant,
    ) -> Result<Self, Error> {
        let Negotiated {
            role,
            tep,
            tep_byte,
            transcript,
            resumption,
            cache_secrets,
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
            cache_secrets,
            key_role: role,
            handshake: Handshake::Complete,
            handshake_deadline: None,
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
            None => {
                session.start_fresh(transcript, rng)?;
                session.handshake_deadline = now.checked_add(session.config.handshake_timeout);
            }
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

    /// Resumption (RFC 8548 §3.5): no Init messages; keys from ss\[i\] and sn\[i\]; the key
    /// direction follows the original role; ss\[i\] is erased once mk\[0\] and the ID exist.
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
        self.log_key(&KeyLogEntry::SessionSecret {
            session_id: &session_id,
            ss: secret.expose_secret(),
        });
        // ss[i] is dropped (zeroed) here: the cache already holds ss[i+1].
        drop(secret);
        self.established(session_id, aead)
    }

    /// Derives mk\[0\] and both directions' generation-0 keys (RFC 8548 §3.3).
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

    /// Debug mode (RFC 8547 §5): hands the session's secret to the configured key log, if any.
    /// Called exactly once per session, when its keys exist.
    fn log_key(&self, entry: &KeyLogEntry<'_>) {
        if let Some(key_log) = &self.config.key_log {
            key_log.log(entry);
        }
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

    /// A fresh key exchange finished: B queues Init2, then keys, events, ss\[0\] erased.
    fn key_exchange_done(&mut self, agreed: KeysAgreed) -> Result<(), Error> {
        let KeysAgreed {
            ss0,
            es,
            aead,
            init2,
            peer_init_len,
        } = agreed;
        self.handshake_deadline = None;
        if let Some(init2) = init2 {
            self.tx.push_init(&init2);
        }
        self.install_keys(&ss0, &[], aead, peer_init_len)?;
        let session_id = ss0.session_id(self.tep_byte, &[]);
        self.log_key(&KeyLogEntry::SharedSecret {
            session_id: &session_id,
            es: es.as_bytes(),
        });
        drop(es);
        // "Cache nothing" (RFC 8548 §3.5): ss[1] is never derived, ss[0] just erased.
        let ss1 = self.cache_secrets.then(|| ResumableSecret {
            tep: self.tep,
            original_role: self.role,
            aead,
            secret: ss0.next(),
        });
        drop(ss0);
        self.established(session_id, aead)?;
        if let Some(ss1) = ss1 {
            self.push_event(Event::ResumableSecret(ss1));
        }
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
        self.handshake_deadline = None;
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
