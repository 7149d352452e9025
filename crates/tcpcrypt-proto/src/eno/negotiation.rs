//! The per-connection ENO state machine (RFC 8547 §4.6-§4.8; RFC 8548 §3.2, §3.5).

use std::time::Instant;

use crate::consts::{Role, RESUME_NONCE_MAX, TCP_OPTION_HEADER_LEN};
use crate::crypto::Rng;
use crate::eno::config::Config;
use crate::eno::fallback::FallbackReason;
use crate::eno::scan::Scan;
use crate::eno::select::{self, Resolved};
use crate::eno::{ReceiveVerdict, SegmentFlags};
use crate::keys::ResumableSecret;
use crate::negotiated::{Negotiated, Resumption};
use crate::resume::{ResumeStore, ResumeSuboptionData};
use crate::wire::eno::{SynEnoRepr, TepSuboption, NON_SYN_ENO};
use crate::wire::tcp_option::{free_space, has_fast_open_cookie, OptionsBuf};

/// Which side of the three-way handshake this host is (RFC 8547 §3). A simultaneous open is
/// two active openers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opener {
    /// Sent a SYN-only segment (connect).
    Active,
    /// Answered a SYN-only segment with a SYN-ACK (listen/accept).
    Passive,
}

/// Where a negotiation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Still negotiating: add what [`Negotiation::on_send`] returns to every segment.
    Pending,
    /// Encryption is enabled (RFC 8547 §4.6): take the [`Negotiated`] with
    /// [`Negotiation::take_negotiated`]. From now on no plaintext payload may pass.
    Enabled,
    /// Plain TCP, for this reason. No more ENO options are sent (except a committed vacuous
    /// SYN-form option on SYN retransmissions, which must not change, §4.6).
    Disabled(FallbackReason),
}

/// ENO negotiation of one TCP connection, driven by the segments the host sends and receives.
///
/// The driver contract, for a daemon holding NFQUEUE packets:
/// * **outgoing segment**: call [`on_send`](Self::on_send) with its flags and options area;
///   if it returns an option, insert it
///   ([`insert_option`](crate::wire::tcp_option::insert_option)) and fix the data offset and
///   checksum;
/// * **incoming segment**: call [`on_receive`](Self::on_receive) (for the passive opener's
///   first SYN, [`passive`](Self::passive) instead); if the verdict says so, drop the SYN's
///   payload before the kernel sees it (RFC 8547 §4.7);
/// * after either, check [`state`](Self::state): on [`State::Enabled`], hand
///   [`take_negotiated`](Self::take_negotiated) to the stream path; on
///   [`State::Disabled`], count the reason and let the connection run as plain TCP.
///
/// RST segments are not part of the handshake and should not be fed.
#[derive(Debug)]
pub struct Negotiation {
    config: Config,
    opener: Opener,
    state: State,
    /// Our SYN-form option, most wanted first, until the first SYN fixes one (`own_syn`).
    candidates: Vec<OptionsBuf>,
    /// How many leading `candidates` carry a resumption suboption for `secret`.
    resume_candidates: usize,
    own_syn: Option<OptionsBuf>,
    own_fixed: bool,
    peer_syn: Option<OptionsBuf>,
    secret: Option<ResumableSecret>,
    resolved: Option<Resolved>,
    negotiated: Option<Negotiated>,
    sent_ack_eno: bool,
    recv_ack_eno: bool,
    received_first_ack: bool,
    received_non_syn: bool,
}

impl Negotiation {
    fn blank(config: Config, opener: Opener) -> Self {
        Self {
            config,
            opener,
            state: State::Pending,
            candidates: Vec::new(),
            resume_candidates: 0,
            own_syn: None,
            own_fixed: false,
            peer_syn: None,
            secret: None,
            resolved: None,
            negotiated: None,
            sent_ack_eno: false,
            recv_ack_eno: false,
            received_first_ack: false,
            received_non_syn: false,
        }
    }

    /// An active open (connect), before its SYN is sent.
    ///
    /// `resume` is the secret to offer, from
    /// [`ResumeCache::take_offer`](crate::resume::ResumeCache::take_offer). It is offered only
    /// if the config offers resumption, b = 0 (an offer from the b = 1 side of a simultaneous
    /// open could never be valid, digest §5.3 A11) and its TEP is configured; otherwise it is
    /// dropped, which is safe: the cache already moved past it. The nonce comes from `rng`.
    pub fn active(config: Config, resume: Option<ResumableSecret>, rng: &mut dyn Rng) -> Self {
        let mut n = Self::blank(config, Opener::Active);
        let b = n.config.passive_role();
        let global = select::own_global(b, n.config.app_aware());
        let fresh: Vec<TepSuboption<'_>> = n
            .config
            .teps()
            .iter()
            .map(|&tep| TepSuboption {
                tep,
                v: false,
                data: &[],
            })
            .collect();
        let offer = resume
            .filter(|s| n.config.offer_resumption() && !b && n.config.teps().contains(&s.tep));
        if let Some(secret) = offer {
            let nonce = draw_nonce(rng, n.config.resume_nonce_len());
            if let Some(data) = ResumeSuboptionData::new(&secret.own_half(), nonce.as_slice()) {
                // The resumption suboption replaces the fresh one and goes last: no length
                // byte needed (§4.4). Offering it also offers fresh agreement (RFC 8548 §3.2).
                // If the other TEPs do not fit beside it (a Linux SYN leaves 21 bytes), the
                // resumption suboption alone is the next candidate: it still offers fresh key
                // agreement with its TEP.
                let resume = TepSuboption {
                    tep: secret.tep,
                    v: true,
                    data: data.as_bytes(),
                };
                let mut teps: Vec<_> = fresh
                    .iter()
                    .filter(|s| s.tep != secret.tep)
                    .copied()
                    .collect();
                let alone = !teps.is_empty();
                teps.push(resume);
                let with_others = encode(global, teps);
                let alone = alone.then(|| encode(global, vec![resume])).flatten();
                for o in [with_others, alone].into_iter().flatten() {
                    n.candidates.push(o);
                    n.resume_candidates += 1;
                }
                if n.resume_candidates > 0 {
                    n.secret = Some(secret);
                }
            }
        }
        if let Some(o) = encode(global, fresh) {
            n.candidates.push(o);
        }
        if n.config.teps().is_empty() {
            n.commit_vacuous();
        }
        n
    }

    /// A passive open: the SYN-only segment that starts it has arrived. Returns the
    /// negotiation and the verdict on that SYN.
    ///
    /// If the SYN offers resumption and the config accepts it, `store` is asked for the
    /// secret (RFC 8548 §3.5); `rng` draws our nonce. Our SYN-ACK option is decided here and
    /// sent unchanged on every SYN-ACK (RFC 8547 §4.6). A SYN without ENO gets no ENO back, not
    /// even a vacuous one (§4.6 "MUST NOT").
    pub fn passive(
        config: Config,
        syn: SegmentFlags,
        syn_options: &[u8],
        store: &mut dyn ResumeStore,
        now: Instant,
        rng: &mut dyn Rng,
    ) -> (Self, ReceiveVerdict) {
        let mut n = Self::blank(config, Opener::Passive);
        let verdict = n.on_receive(syn, syn_options);
        if n.state == State::Pending && n.peer_syn.is_some() {
            n.answer(store, now, rng);
        }
        (n, verdict)
    }

    /// Builds host B's SYN-ACK option from the received SYN.
    fn answer(&mut self, store: &mut dyn ResumeStore, now: Instant, rng: &mut dyn Rng) {
        let global = select::own_global(true, self.config.app_aware());
        if self.config.teps().is_empty() {
            return self.commit_vacuous();
        }
        let Some(peer) = self.peer_syn else { return };
        let choice = match select::parse(peer.as_bytes()) {
            Ok(repr) => select::answer(&self.config, &repr, store, now),
            Err(reason) => Err(reason),
        };
        let (tep, secret) = match choice {
            Ok(c) => c,
            Err(reason) => return self.fall_back(reason),
        };
        if let Some(secret) = secret {
            let nonce = draw_nonce(rng, self.config.resume_nonce_len());
            if let Some(data) = ResumeSuboptionData::new(&secret.own_half(), nonce.as_slice()) {
                let sub = TepSuboption {
                    tep,
                    v: true,
                    data: data.as_bytes(),
                };
                if let Some(o) = encode(global, vec![sub]) {
                    self.candidates.push(o);
                    self.resume_candidates = 1;
                    self.secret = Some(secret);
                }
            }
        }
        // Declining, or no room for the resumption suboption: fresh with the same TEP (§3.5).
        if let Some(o) = encode(
            global,
            vec![TepSuboption {
                tep,
                v: false,
                data: &[],
            }],
        ) {
            self.candidates.push(o);
        }
    }

    /// Commits a vacuous SYN-form option (config with no TEP): ENO advertised but off (§4.6).
    fn commit_vacuous(&mut self) {
        let b = self.opener == Opener::Passive || self.config.passive_role();
        let vacuous = encode(select::own_global(b, self.config.app_aware()), Vec::new());
        self.fall_back(FallbackReason::OwnVacuous);
        self.own_syn = vacuous;
        self.own_fixed = true;
    }

    /// The ENO option to add to a segment this host is about to send, given its flags and its
    /// options area as the kernel built it; `None` means send it unchanged.
    ///
    /// * SYN segments get our SYN-form option, byte-identical on every retransmission and, in a
    ///   simultaneous open, on the SYN-ACK too (§4.6). The first one fixes which option that is:
    ///   the most wanted candidate that fits the free option space (the resumption offer, else
    ///   the fresh one), else ENO falls back ([`FallbackReason::NoOptionSpace`]).
    /// * A SYN with payload or a Fast Open cookie gets no ENO and ENO falls back: tcpcrypt
    ///   defines no SYN data (§4.7, "MUST NOT").
    /// * Other segments get `45 02` until ENO is disabled or a non-SYN segment is received
    ///   (§4.6), the third-segment ACK included, and at least until one ACK with ENO was sent
    ///   (the peer's non-SYN segment may come before our third-segment ACK).
    ///
    /// Sending an ACK with ENO counts towards enablement (§4.6), so check
    /// [`state`](Self::state) afterwards.
    #[must_use]
    pub fn on_send(&mut self, seg: SegmentFlags, tcp_options: &[u8]) -> Option<OptionsBuf> {
        let space = free_space(tcp_options).unwrap_or(0);
        self.on_send_in(seg, space, has_fast_open_cookie(tcp_options))
    }

    /// The length of the SYN-form option this negotiation sends in its SYN (or SYN-ACK) when
    /// the space allows: the one already fixed, else the most wanted candidate; `None` if it
    /// sends none. A driver that can write only a limited room
    /// ([`on_send_with_space`](Self::on_send_with_space)) asks first, so that a lack of room
    /// never makes it settle for a less wanted option (a fresh answer instead of a resumption)
    /// where another way of sending has room for the most wanted one.
    #[must_use]
    pub fn own_option_len(&self) -> Option<usize> {
        if self.own_fixed {
            self.own_syn.map(|o| o.len())
        } else {
            self.candidates.first().map(OptionsBuf::len)
        }
    }

    /// [`on_send`](Self::on_send) for a driver that knows the free option space rather than
    /// the options area: one where the kernel writes the returned option into the room it
    /// leaves after its own options, padding included (Linux's BPF header-option callbacks),
    /// so that the option must fit `space` as it is. No Fast Open cookie is assumed.
    #[must_use]
    pub fn on_send_with_space(&mut self, seg: SegmentFlags, space: usize) -> Option<OptionsBuf> {
        self.on_send_in(seg, space, false)
    }

    fn on_send_in(
        &mut self,
        seg: SegmentFlags,
        space: usize,
        fast_open: bool,
    ) -> Option<OptionsBuf> {
        if seg.syn {
            if seg.payload || fast_open {
                if self.state == State::Pending {
                    self.fall_back(FallbackReason::OwnSynData);
                }
                return None;
            }
            if self.state == State::Pending && !self.fix_own_option(Some(space)) {
                return None;
            }
            if self.state != State::Pending {
                return self.own_syn;
            }
            if seg.ack {
                self.sent_ack_eno = true;
            }
            self.progress();
            return self.own_syn;
        }
        // The §4.6 duty to send ENO ends with the first non-SYN segment received, but our own
        // ACK with ENO is still needed for enablement: a peer's non-SYN segment can come before
        // our third-segment ACK (a passive opener's duplicate ACK answering a retransmitted
        // SYN), and without ENO on that ACK the peer falls back while we stay pending.
        if matches!(self.state, State::Disabled(_)) || (self.received_non_syn && self.sent_ack_eno)
        {
            return None;
        }
        if space < TCP_OPTION_HEADER_LEN {
            if self.state == State::Pending {
                self.fall_back(FallbackReason::NoOptionSpace);
            }
            return None;
        }
        if seg.ack {
            self.sent_ack_eno = true;
        }
        self.progress();
        OptionsBuf::from_slice(&NON_SYN_ENO)
    }

    /// Processes a segment received from the peer: its flags and its options area.
    ///
    /// Until the first received ACK (included) every segment must carry ENO, SYNs exactly one
    /// well-formed SYN-form option (§4.1, §4.4, §4.6); any failure disables ENO with the rule's
    /// [`FallbackReason`]. Receiving an ACK with ENO counts towards enablement.
    ///
    /// The verdict tells the driver to drop the payload of a SYN carrying ENO: tcpcrypt defines
    /// no SYN data, so it is always discarded and never acknowledged (§4.7).
    pub fn on_receive(&mut self, seg: SegmentFlags, tcp_options: &[u8]) -> ReceiveVerdict {
        let scan = Scan::new(tcp_options);
        let verdict = ReceiveVerdict {
            discard_syn_data: seg.syn && seg.payload && scan.any_eno(),
        };
        let first_ack = seg.ack && !self.received_first_ack;
        let in_window = !self.received_first_ack;
        self.received_first_ack |= seg.ack;
        self.received_non_syn |= !seg.syn;
        if self.state != State::Pending || !(in_window || seg.syn) {
            return verdict;
        }
        if let Err(reason) = self.check_segment(seg, &scan) {
            self.fall_back(reason);
            return verdict;
        }
        if let (true, Some(eno)) = (seg.syn, scan.eno) {
            self.on_peer_syn_option(eno.as_bytes());
        }
        self.recv_ack_eno |= first_ack;
        self.progress();
        verdict
    }

    /// The §4.1/§4.6 checks on a handshake segment.
    fn check_segment(&self, seg: SegmentFlags, scan: &Scan<'_>) -> Result<(), FallbackReason> {
        if let Some(e) = scan.error {
            return Err(FallbackReason::MalformedOptions(e));
        }
        if !seg.syn {
            // Non-SYN form: presence is all that counts; several count as one (§4.1).
            return if scan.eno_count > 0 {
                Ok(())
            } else {
                Err(FallbackReason::MissingEno)
            };
        }
        match (scan.eno_count, scan.legacy_count) {
            (0, 0) => Err(FallbackReason::MissingEno),
            (0, _) => Err(FallbackReason::LegacyEnoOnly),
            (1, 0) => match scan.eno {
                Some(eno) => SynEnoRepr::parse(&eno)
                    .map(drop)
                    .map_err(FallbackReason::IllFormedEno),
                None => Err(FallbackReason::MissingEno),
            },
            _ => Err(FallbackReason::DuplicateEno),
        }
    }

    fn on_peer_syn_option(&mut self, bytes: &[u8]) {
        if let Some(prev) = self.peer_syn {
            if prev.as_bytes() != bytes {
                self.fall_back(FallbackReason::SynOptionChanged);
            }
            return;
        }
        let Some(buf) = OptionsBuf::from_slice(bytes) else {
            return self.fall_back(FallbackReason::NoOptionSpace);
        };
        self.peer_syn = Some(buf);
        let own_b = self.opener == Opener::Passive || self.config.passive_role();
        let checked =
            select::parse(bytes).and_then(|repr| select::check_peer(own_b, &repr, &self.config));
        if let Err(reason) = checked {
            self.fall_back(reason);
        }
    }

    /// Fixes our SYN-form option: the first candidate that fits `space` (any if `None`).
    /// False if ENO fell back for lack of room.
    fn fix_own_option(&mut self, space: Option<usize>) -> bool {
        if self.own_fixed {
            return true;
        }
        self.own_fixed = true;
        let fits = |o: &&OptionsBuf| space.is_none_or(|s| o.len() <= s);
        let pick = self.candidates.iter().position(|o| fits(&o));
        self.own_syn = pick.map(|i| self.candidates[i]);
        if pick.is_none_or(|i| i >= self.resume_candidates) {
            self.secret = None;
        }
        self.candidates.clear();
        if self.own_syn.is_none() {
            self.fall_back(FallbackReason::NoOptionSpace);
            return false;
        }
        true
    }

    /// Resolves once both SYN options are known, and enables once an ACK with ENO has been
    /// both sent and received (§4.6).
    fn progress(&mut self) {
        if self.state != State::Pending {
            return;
        }
        if self.resolved.is_none() && self.peer_syn.is_some() {
            // A passive opener resolves once its SYN-ACK fixed its option. An active opener has
            // always sent its SYN before receiving one; be total anyway.
            if self.opener == Opener::Passive && !self.own_fixed {
                return;
            }
            if !self.fix_own_option(None) {
                return;
            }
            let (Some(own), Some(peer)) = (self.own_syn, self.peer_syn) else {
                return;
            };
            match select::resolve(
                own.as_bytes(),
                peer.as_bytes(),
                &self.config,
                self.secret.as_ref(),
            ) {
                Ok(r) => self.resolved = Some(r),
                Err(reason) => return self.fall_back(reason),
            }
        }
        if !(self.sent_ack_eno && self.recv_ack_eno) {
            return;
        }
        let Some(r) = self.resolved.take() else {
            return;
        };
        let resumption = match (r.sn, self.secret.take()) {
            (Some(sn), Some(secret)) => Some(Resumption { secret, sn }),
            _ => None,
        };
        self.negotiated = Some(Negotiated {
            role: r.role,
            tep: r.tep,
            tep_byte: r.tep_byte,
            transcript: r.transcript,
            peer_app_aware: r.peer_app_aware,
            cache_secrets: self.config.cache_secrets(),
            resumption,
        });
        self.state = State::Enabled;
    }

    /// Disables ENO: no more ENO options (except a committed vacuous SYN option), and the
    /// secret of a resumption offer is dropped (it stays burned in the cache).
    fn fall_back(&mut self, reason: FallbackReason) {
        if self.state == State::Pending {
            self.state = State::Disabled(reason);
            self.own_syn = None;
            self.own_fixed = true;
            self.candidates.clear();
            self.secret = None;
            self.resolved = None;
        }
    }

    /// Drops ENO from the next SYN-only retransmission (RFC 8547 §4.6: an active opener MAY,
    /// to get past middleboxes that drop SYNs with unknown options); ENO is then disabled.
    /// Returns false (and does nothing) unless this is a pending active open that has not yet
    /// received a SYN.
    pub fn drop_eno_on_retransmission(&mut self) -> bool {
        let allowed = self.opener == Opener::Active
            && self.state == State::Pending
            && self.peer_syn.is_none();
        if allowed {
            self.fall_back(FallbackReason::DroppedOnRetransmission);
        }
        allowed
    }

    /// Where the negotiation stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once no later segment of the connection, in either direction, matters to the
    /// negotiation: it is disabled (no ENO is sent any more, and nothing received can enable
    /// it), or it is enabled and a non-SYN segment has been received, which ends the duty to
    /// send ENO (§4.6; enablement means our ACK with ENO was sent too). A driver that inspects
    /// segments (a packet filter) can stop showing it the connection's segments from here on.
    pub fn is_settled(&self) -> bool {
        match self.state {
            State::Pending => false,
            State::Disabled(_) => true,
            State::Enabled => self.received_non_syn,
        }
    }

    /// The outcome once [`State::Enabled`], until taken.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Takes the outcome for the stream path; `Some` once, after [`State::Enabled`].
    pub fn take_negotiated(&mut self) -> Option<Negotiated> {
        self.negotiated.take()
    }

    /// Active or passive opener.
    pub fn opener(&self) -> Opener {
        self.opener
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Our role once both SYN options are known and compatible (RFC 8547 §4.3).
    pub fn role(&self) -> Option<Role> {
        self.resolved
            .as_ref()
            .map(|r| r.role)
            .or(self.negotiated.as_ref().map(|n| n.role))
    }

    /// The a bit the peer sent, once its SYN-form option is known (RFC 8547 §4.2 "MUST" API).
    pub fn peer_app_aware(&self) -> Option<bool> {
        let peer = self.peer_syn?;
        select::parse(peer.as_bytes()).ok().map(|r| r.global().a)
    }

    /// Our SYN-form option as sent, once fixed (`None` if we send none).
    pub fn own_syn_option(&self) -> Option<&[u8]> {
        self.own_syn
            .as_ref()
            .filter(|_| self.own_fixed)
            .map(OptionsBuf::as_bytes)
    }

    /// The peer's SYN-form option exactly as received, if any was accepted. Its presence after
    /// a fallback tells a prober that the peer speaks ENO (§4.6, vacuous probing).
    pub fn peer_syn_option(&self) -> Option<&[u8]> {
        self.peer_syn.as_ref().map(OptionsBuf::as_bytes)
    }
}

/// Emits a SYN-form option into a buffer; `None` if it cannot be encoded (never for the
/// options built here, which are at most 24 bytes).
fn encode(
    global: Option<crate::wire::eno::GlobalSuboption>,
    teps: Vec<TepSuboption<'_>>,
) -> Option<OptionsBuf> {
    let repr = SynEnoRepr::new(global, teps).ok()?;
    OptionsBuf::from_slice(&repr.to_vec())
}

/// A fresh resumption nonce of `len` bytes (RFC 8548 §3.5: random).
fn draw_nonce(rng: &mut dyn Rng, len: usize) -> NonceBuf {
    let mut nonce = NonceBuf {
        bytes: [0; RESUME_NONCE_MAX],
        len: len.min(RESUME_NONCE_MAX),
    };
    rng.fill(&mut nonce.bytes[..nonce.len]);
    nonce
}

struct NonceBuf {
    bytes: [u8; RESUME_NONCE_MAX],
    len: usize,
}

impl NonceBuf {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}
