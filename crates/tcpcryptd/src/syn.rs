//! The SYN path (RFC 8547 §4.6, §4.7; digest §2.9, §3.13) as a pure function of packet bytes:
//! each queued segment goes in, a [`Decision`] (and sometimes an [`Outcome`]) comes out. No
//! sockets, no clocks (`now` is passed in), no kernel: unit-tested on synthetic packets.
//!
//! The kernel queues only handshake segments (the rules bound it with `connbytes`):
//!
//! ```text
//!  host A (client side)                                    host B (server side)
//!  app SYN ──▶ on_app_syn: Hold ─▶ daemon pre-connects upstream
//!  upstream SYN ──▶ on_outbound: + ENO (active)  ─────▶ on_server_syn: passive, Divert
//!                                                       listener SYN-ACK ──▶ on_outbound: + ENO
//!  SYN-ACK ──▶ on_inbound: read ENO  ◀──────────────────
//!  ACK, Init1 ──▶ on_outbound: + 45 02 ─▶ Outcome ────▶ on_inbound: read ENO ─▶ Outcome
//! ```
//!
//! Connections are keyed by [`ConnKey`] (this host's address, the peer's), so one table serves
//! both roles. The table is bounded ([`Limits::max_flows`]) and entries expire after
//! [`Limits::ttl`]; a connection the table cannot hold is left plain (no ENO is ever added to
//! it, so both ends fall back consistently).
//!
//! Entries outlive their connections (until the TTL), and a new connection may reuse a
//! 4-tuple at once (a port freed by a reset has no TIME_WAIT). A SYN is a retransmission only
//! if it has the sequence number (ISN) of the entry's SYN; a SYN with another ISN starts a new
//! connection and replaces the old entries of its tuple (hold, negotiation, untaken outcome).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tcpcrypt_proto::crypto::Rng;
use tcpcrypt_proto::eno::{self, FallbackReason, Negotiation, SegmentFlags, State};
use tcpcrypt_proto::keys::ResumableSecret;
use tcpcrypt_proto::resume::{CacheConfig, NoResumption, ResumeCache, ResumeStore};
use tcpcrypt_proto::wire::packet::{self, TcpIpPacket};
use tcpcrypt_proto::wire::tcp_option::insert_option;
use tcpcrypt_proto::Negotiated;
use tcpcrypt_sys::bpf;

/// A connection as this host sees it: its own address and the peer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// This host's address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

/// What to tell the kernel about a queued packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Accept unchanged.
    Accept,
    /// Accept with these bytes instead (ENO inserted, or SYN data stripped).
    Replace(Vec<u8>),
    /// Drop (a duplicate SYN while the first is still held).
    Drop,
}

/// What the SYN path made of one queued handshake segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    /// What to tell the kernel about the segment.
    pub decision: Decision,
    /// The connection whose outcome has just been decided ([`SynPath::take_outcome`]).
    pub ready: Option<ConnKey>,
    /// No later segment of this connection needs the SYN path (its negotiation is settled,
    /// [`Negotiation::is_settled`], or it is not tracked): the daemon marks the connection so
    /// that the kernel stops queueing it, and its entries here are gone.
    pub settled: bool,
}

impl Handled {
    fn new(decision: Decision, ready: Option<ConnKey>, settled: bool) -> Self {
        Self {
            decision,
            ready,
            settled,
        }
    }

    /// An untracked segment: accepted unchanged, nothing to wait for.
    fn untracked(settled: bool) -> Self {
        Self::new(Decision::Accept, None, settled)
    }
}

/// How a negotiation ended, for the proxy.
#[derive(Debug)]
pub enum Outcome {
    /// ENO enabled a tcpcrypt TEP: run a session.
    Enabled(Negotiated),
    /// Plain TCP (RFC 8547 §4.6 fallback), with the rule that decided it.
    Plain(FallbackReason),
}

/// The decision on an application's SYN (client side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppSyn {
    /// Not for us (excluded port, malformed): accept unchanged.
    Pass,
    /// New connection: hold the SYN, pre-connect upstream, then [`SynPath::decide`].
    Hold(ConnKey),
    /// A retransmission while the first SYN is still held: drop it.
    Duplicate,
    /// A retransmission after the decision: repeat the verdict mark (`None`: no mark).
    Repeat(Option<u32>),
}

/// The decision on an incoming SYN (server side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerSyn {
    /// Not for the daemon (not a new connection's SYN, an excluded port, full tables):
    /// accept unmarked; the proxy is not in the path.
    Pass,
    /// ENO is disabled for this connection, for this reason (RFC 8547 §4.6; a client without
    /// tcpcrypt sends no ENO): accept unmarked, it runs as plain TCP without the proxy.
    Plain(FallbackReason),
    /// No ENO on a mandatory port: refuse (reject mark).
    Refuse,
    /// ENO offered: pre-connect to the service, then divert with the replacement packet if
    /// any (SYN data stripped, RFC 8547 §4.7), and [`SynPath::decide`].
    Divert {
        /// The connection.
        key: ConnKey,
        /// Replacement bytes when the SYN's payload must be discarded.
        replace: Option<Vec<u8>>,
    },
    /// A retransmission while the first SYN is still held: drop it.
    Duplicate,
    /// A retransmission after the decision: repeat the verdict mark.
    Repeat(Option<u32>),
}

/// Bounds of the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Negotiations and held SYNs tracked at once (each table).
    pub max_flows: usize,
    /// Lifetime of an entry.
    pub ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_flows: 16384,
            ttl: Duration::from_secs(60),
        }
    }
}

/// Which policy applies to a port, as the SYN path needs it.
pub trait PortPolicy: Send {
    /// Never intercepted.
    fn excluded(&self, port: u16) -> bool;
    /// Plain TCP to this destination (address and port) refused.
    fn mandatory(&self, dst: SocketAddr) -> bool;
}

impl PortPolicy for crate::config::Config {
    fn excluded(&self, port: u16) -> bool {
        self.exclude_ports.contains(port)
    }
    fn mandatory(&self, dst: SocketAddr) -> bool {
        Self::mandatory(self, dst)
    }
}

struct Flow {
    neg: Negotiation,
    created: Instant,
    reported: bool,
    /// The sequence number of the connection's first SYN.
    isn: u32,
}

#[derive(Clone, Copy)]
enum Hold {
    Pending,
    Decided(Option<u32>),
}

/// The SYN-path state of the whole host.
pub struct SynPath {
    eno: eno::Config,
    policy: Box<dyn PortPolicy>,
    limits: Limits,
    rng: Box<dyn Rng + Send>,
    flows: HashMap<ConnKey, Flow>,
    /// Held or decided SYNs, with their sequence numbers.
    holds: HashMap<ConnKey, (Hold, Instant, u32)>,
    /// Outcomes not yet taken by the proxy.
    outcomes: HashMap<ConnKey, (Outcome, Instant)>,
    /// BPF option path: active negotiations by socket cookie, from just before their
    /// `connect()` until their SYN-ACK names their connection ([`SynPath::start_active`]).
    pending: HashMap<u64, Flow>,
    cache: ResumeCache<IpAddr>,
    /// When a server SYN next runs [`expire`](Self::expire).
    next_expire: Option<Instant>,
}

const SYN: SegmentFlags = SegmentFlags {
    syn: true,
    ack: false,
    payload: false,
};
const ACK: SegmentFlags = SegmentFlags {
    syn: false,
    ack: true,
    payload: false,
};

/// How often the server SYN path drops expired entries.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

impl SynPath {
    /// A SYN path negotiating with `eno`, applying `policy`.
    pub fn new(
        eno: eno::Config,
        policy: Box<dyn PortPolicy>,
        limits: Limits,
        rng: Box<dyn Rng + Send>,
    ) -> Self {
        Self {
            eno,
            policy,
            limits,
            rng,
            flows: HashMap::new(),
            holds: HashMap::new(),
            outcomes: HashMap::new(),
            pending: HashMap::new(),
            cache: ResumeCache::new(CacheConfig::default()),
            next_expire: None,
        }
    }

    /// An application's SYN, seen in mangle OUTPUT before it leaves (client side).
    pub fn on_app_syn(&mut self, bytes: &[u8], now: Instant) -> AppSyn {
        let Some((key, flags, isn)) = parse(bytes, Dir::Out) else {
            return AppSyn::Pass;
        };
        if !flags.syn || flags.ack || self.policy.excluded(key.remote.port()) {
            return AppSyn::Pass;
        }
        match self.begin_hold(key, isn, now) {
            Some(Hold::Pending) => AppSyn::Duplicate,
            Some(Hold::Decided(mark)) => AppSyn::Repeat(mark),
            None if self.holds.len() >= self.limits.max_flows => AppSyn::Pass,
            None => {
                self.holds.insert(key, (Hold::Pending, now, isn));
                AppSyn::Hold(key)
            }
        }
    }

    /// An incoming SYN, seen in raw PREROUTING (server side).
    pub fn on_server_syn(&mut self, bytes: &[u8], now: Instant) -> ServerSyn {
        let Some((key, flags, isn)) = parse(bytes, Dir::In) else {
            return ServerSyn::Pass;
        };
        let port = key.local.port();
        if !flags.syn || flags.ack || self.policy.excluded(port) {
            return ServerSyn::Pass;
        }
        match self.begin_hold(key, isn, now) {
            Some(Hold::Pending) => return ServerSyn::Duplicate,
            Some(Hold::Decided(mark)) => return ServerSyn::Repeat(mark),
            None => {}
        }
        self.expire_amortized(now);
        if self.flows.len() >= self.limits.max_flows || self.holds.len() >= self.limits.max_flows {
            return ServerSyn::Pass;
        }
        let Ok(pkt) = TcpIpPacket::new_checked(bytes) else {
            return ServerSyn::Pass;
        };
        let store: &mut dyn ResumeStore = if self.eno.accept_resumption() {
            &mut self.cache
        } else {
            &mut NoResumption
        };
        let (neg, verdict) = Negotiation::passive(
            self.eno.clone(),
            flags,
            pkt.tcp_options(),
            store,
            now,
            self.rng.as_mut(),
        );
        if let State::Disabled(reason) = neg.state() {
            return if self.policy.mandatory(key.local) {
                ServerSyn::Refuse
            } else {
                ServerSyn::Plain(reason)
            };
        }
        if neg.state() != State::Pending {
            // A passive negotiation is never enabled by the SYN alone.
            return ServerSyn::Pass;
        }
        let replace = if verdict.discard_syn_data {
            match packet::strip_payload(bytes) {
                Ok(stripped) => Some(stripped),
                Err(_) => return ServerSyn::Pass,
            }
        } else {
            None
        };
        self.flows.insert(
            key,
            Flow {
                neg,
                created: now,
                reported: false,
                isn,
            },
        );
        self.holds.insert(key, (Hold::Pending, now, isn));
        ServerSyn::Divert { key, replace }
    }

    /// Records the verdict mark given to a held SYN (`None`: accepted without mark), so that
    /// retransmissions get the same; a server-side connection that was not diverted forgets
    /// its negotiation.
    pub fn decide(&mut self, key: ConnKey, mark: Option<u32>, diverted: bool, now: Instant) {
        if let Some(entry) = self.holds.get_mut(&key) {
            *entry = (Hold::Decided(mark), now, entry.2);
        }
        if !diverted {
            self.flows.remove(&key);
        }
    }

    /// A segment this host sends on an intercepted connection (mangle OUTPUT): the client
    /// proxy's upstream (created here at its SYN) or the server listener's SYN-ACK.
    pub fn on_outbound(&mut self, bytes: &[u8], now: Instant) -> Handled {
        let Some((key, flags, isn)) = parse(bytes, Dir::Out) else {
            return Handled::untracked(false);
        };
        let new_syn = flags.syn && !flags.ack;
        if new_syn && self.flows.get(&key).is_some_and(|f| f.isn != isn) {
            // A new connection on the tuple of an old one.
            self.flows.remove(&key);
            self.outcomes.remove(&key);
        }
        if !self.flows.contains_key(&key) {
            if !flags.syn || flags.ack || !self.make_room(now) {
                return Handled::untracked(true);
            }
            let offer = if self.eno.offer_resumption() {
                self.cache.take_offer(&key.remote.ip(), now)
            } else {
                None
            };
            let neg = Negotiation::active(self.eno.clone(), offer, self.rng.as_mut());
            self.flows.insert(
                key,
                Flow {
                    neg,
                    created: now,
                    reported: false,
                    isn,
                },
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return Handled::untracked(true);
        };
        let Ok(pkt) = TcpIpPacket::new_checked(bytes) else {
            return Handled::untracked(false);
        };
        let decision = match flow.neg.on_send(flags, pkt.tcp_options()) {
            None => Decision::Accept,
            Some(option) => match insert_option(pkt.tcp_options(), option.as_bytes())
                .ok()
                .and_then(|area| packet::rewrite_tcp_options(bytes, area.as_bytes()).ok())
            {
                Some(new) => Decision::Replace(new),
                // The negotiation saw the free space first, so this does not happen; if it
                // did, the segment goes without ENO and the peer falls back.
                None => Decision::Accept,
            },
        };
        let ready = self.report(key, now);
        Handled::new(decision, ready, self.settle(key))
    }

    /// A segment received on an intercepted connection (mangle PREROUTING): the SYN-ACK and
    /// first segments for the client's upstream, the third ACK and first segments for the
    /// server's diverted connection.
    pub fn on_inbound(&mut self, bytes: &[u8], now: Instant) -> Handled {
        let Some((key, flags, _)) = parse(bytes, Dir::In) else {
            return Handled::untracked(false);
        };
        let Some(flow) = self.flows.get_mut(&key) else {
            return Handled::untracked(true);
        };
        let Ok(pkt) = TcpIpPacket::new_checked(bytes) else {
            return Handled::untracked(false);
        };
        let verdict = flow.neg.on_receive(flags, pkt.tcp_options());
        let decision = if verdict.discard_syn_data {
            packet::strip_payload(bytes).map_or(Decision::Drop, Decision::Replace)
        } else {
            Decision::Accept
        };
        let ready = self.report(key, now);
        Handled::new(decision, ready, self.settle(key))
    }

    // -----------------------------------------------------------------------------------------
    // The BPF option path (`tcpcrypt_sys::bpf`): the kernel writes the options decided here into
    // the client upstream's segments as it builds them, and records the server's completing
    // ACK, so those segments themselves are not seen. The calls below stand for them, sized by
    // the room the kernel leaves (`bpf::SYN_ROOM`, `bpf::ACK_ROOM`). The server's SYN-ACK still
    // goes through `on_outbound` (see `tcpcrypt_sys::bpf` for why).

    /// Client side: the daemon's upstream socket `cookie` is about to connect to `remote`.
    /// Starts its negotiation and returns the SYN-form option its SYN (and every
    /// retransmission) carries: empty if ENO gave up at once (no option fits), the outcome then
    /// being plain at the SYN-ACK; `None` when the table is full: the upstream goes without
    /// ENO, untracked, as on the NFQUEUE path.
    pub fn start_active(
        &mut self,
        cookie: u64,
        remote: SocketAddr,
        now: Instant,
    ) -> Option<Vec<u8>> {
        if self.pending.len() >= self.limits.max_flows {
            self.expire(now);
            if self.pending.len() >= self.limits.max_flows {
                return None;
            }
        }
        let offer = if self.eno.offer_resumption() {
            self.cache.take_offer(&remote.ip(), now)
        } else {
            None
        };
        let mut neg = Negotiation::active(self.eno.clone(), offer, self.rng.as_mut());
        let option = neg
            .on_send_with_space(SYN, bpf::SYN_ROOM)
            .map(|o| o.as_bytes().to_vec())
            .unwrap_or_default();
        self.pending.insert(
            cookie,
            Flow {
                neg,
                created: now,
                reported: false,
                isn: 0,
            },
        );
        Some(option)
    }

    /// Client side: the SYN-ACK of an upstream (raw PREROUTING), held while this runs. `cookie`
    /// names the upstream's socket from the connection's key (the BPF program's record).
    /// Checks the SYN-ACK (§4.6) and returns, besides the usual [`Handled`], the connection
    /// (if it is a tracked upstream) and whether the kernel's ACK and the segments after it
    /// carry `45 02`: then host A has sent an ACK with
    /// ENO and, the SYN-ACK being one received, ENO is enabled (§4.6) and the outcome ready.
    /// Nothing later of the connection is seen here, so its entries go at once.
    pub fn on_upstream_syn_ack(
        &mut self,
        bytes: &[u8],
        cookie: impl FnOnce(ConnKey) -> Option<u64>,
        now: Instant,
    ) -> (Handled, Option<(ConnKey, bool)>) {
        let Some((key, flags, _)) = parse(bytes, Dir::In) else {
            return (Handled::untracked(false), None);
        };
        if !self.flows.contains_key(&key) {
            let Some(flow) = cookie(key).and_then(|c| self.pending.remove(&c)) else {
                // A retransmitted SYN-ACK, or an upstream started without ENO.
                return (Handled::untracked(false), None);
            };
            self.flows.insert(key, flow);
        }
        let mut handled = self.on_inbound(bytes, now);
        let Some(flow) = self.flows.get_mut(&key) else {
            return (handled, Some((key, false)));
        };
        let ack_eno = flags.syn
            && flags.ack
            && flow.neg.state() == State::Pending
            && flow.neg.on_send_with_space(ACK, bpf::ACK_ROOM).is_some();
        handled.ready = handled.ready.or(self.report(key, now));
        self.flows.remove(&key);
        self.holds.remove(&key);
        (handled, Some((key, ack_eno)))
    }

    /// Server side, BPF option path: the option of the SYN-ACK of `key` (its SYN just
    /// diverted by [`on_server_syn`](Self::on_server_syn)) for the kernel to write into the
    /// `room` it leaves, if the option the core wants to send fits it. `None` otherwise (a
    /// resumption answer is longer than a Linux SYN-ACK's room): the SYN-ACK then goes through
    /// [`on_outbound`](Self::on_outbound), whose rewrite of the whole option area makes room,
    /// so that a lack of room never turns a resumption into a fresh key exchange.
    pub fn syn_ack_option(&mut self, key: ConnKey, room: usize) -> Option<Vec<u8>> {
        let flow = self.flows.get_mut(&key)?;
        if flow.neg.state() != State::Pending || flow.neg.own_option_len()? > room {
            return None;
        }
        let option = flow.neg.on_send_with_space(SegmentFlags::SYN_ACK, room)?;
        Some(option.as_bytes().to_vec())
    }

    /// Server side: the segment that completed `key`'s handshake (its SYN went through
    /// [`on_server_syn`](Self::on_server_syn), its SYN-ACK through
    /// [`syn_ack_option`](Self::syn_ack_option) or [`on_outbound`](Self::on_outbound)), as the
    /// BPF program recorded it (its flags, whether it had payload, its ENO option whole or
    /// empty). Returns the negotiation's outcome; the entries go.
    pub fn on_passive_established(
        &mut self,
        key: ConnKey,
        flags: SegmentFlags,
        eno_option: &[u8],
        now: Instant,
    ) -> Option<Outcome> {
        let flow = self.flows.get_mut(&key)?;
        let _ = flow.neg.on_receive(flags, eno_option);
        self.report(key, now);
        self.flows.remove(&key);
        self.holds.remove(&key);
        self.take_outcome(&key)
    }

    /// Forgets `key`'s negotiation and held SYN once the negotiation is settled (its outcome
    /// was stored by [`report`](Self::report) first): the connection is established on this
    /// host, so no SYN of it can be retransmitted, and the kernel stops queueing its segments.
    /// Freeing the entries now, not at the TTL, is what lets the tables serve any connection
    /// rate. True if settled.
    fn settle(&mut self, key: ConnKey) -> bool {
        if !self.flows.get(&key).is_some_and(|f| f.neg.is_settled()) {
            return false;
        }
        self.flows.remove(&key);
        self.holds.remove(&key);
        true
    }

    /// The application's connection `key` was accepted by the client proxy: its SYN can no
    /// longer be retransmitted, so its held-SYN entry goes (freeing the table at once).
    pub fn accepted(&mut self, key: &ConnKey) {
        self.holds.remove(key);
    }

    /// Takes the outcome of `key`'s negotiation once decided.
    pub fn take_outcome(&mut self, key: &ConnKey) -> Option<Outcome> {
        self.outcomes.remove(key).map(|(o, _)| o)
    }

    /// Gives up on `key`: its negotiation (if any) is forgotten.
    pub fn forget(&mut self, key: &ConnKey) {
        self.flows.remove(key);
        self.outcomes.remove(key);
    }

    /// Caches the secret a session handed back, for one later resumption with `peer`
    /// (RFC 8548 §3.5).
    pub fn cache_secret(&mut self, peer: IpAddr, secret: ResumableSecret, now: Instant) {
        if self.eno.cache_secrets() {
            self.cache.insert(peer, secret, now);
        }
    }

    /// Negotiations in progress or finished but unexpired.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Drops expired entries at most once per [`EXPIRE_EVERY`] (each pass scans every table,
    /// so once per SYN would cost time in proportion to the connection rate), and at once when
    /// a table is full.
    fn expire_amortized(&mut self, now: Instant) {
        let full =
            self.flows.len() >= self.limits.max_flows || self.holds.len() >= self.limits.max_flows;
        if full || self.next_expire.is_none_or(|t| now >= t) {
            self.expire(now);
            self.next_expire = Some(now + EXPIRE_EVERY);
        }
    }

    /// Drops expired entries.
    pub fn expire(&mut self, now: Instant) {
        let ttl = self.limits.ttl;
        let live = |t: Instant| now.saturating_duration_since(t) < ttl;
        self.flows.retain(|_, f| live(f.created));
        self.holds.retain(|_, (_, t, _)| live(*t));
        self.outcomes.retain(|_, (_, t)| live(*t));
        self.pending.retain(|_, f| live(f.created));
        self.cache.purge_expired(now);
    }

    /// The earlier decision if this SYN retransmits the held one (same ISN, unexpired);
    /// otherwise the tuple's old entries are dropped and `None` says: a new connection.
    fn begin_hold(&mut self, key: ConnKey, isn: u32, now: Instant) -> Option<Hold> {
        match self.holds.get(&key) {
            Some(&(hold, t, seq))
                if seq == isn && now.saturating_duration_since(t) < self.limits.ttl =>
            {
                Some(hold)
            }
            Some(_) => {
                self.holds.remove(&key);
                self.flows.remove(&key);
                self.outcomes.remove(&key);
                None
            }
            None => None,
        }
    }

    fn make_room(&mut self, now: Instant) -> bool {
        if self.flows.len() >= self.limits.max_flows {
            self.expire(now);
        }
        self.flows.len() < self.limits.max_flows
    }

    /// Stores the outcome when the negotiation has just left `Pending`; returns the key then.
    fn report(&mut self, key: ConnKey, now: Instant) -> Option<ConnKey> {
        let flow = self.flows.get_mut(&key)?;
        if flow.reported {
            return None;
        }
        let outcome = match flow.neg.state() {
            State::Pending => return None,
            State::Enabled => Outcome::Enabled(flow.neg.take_negotiated()?),
            State::Disabled(reason) => Outcome::Plain(reason),
        };
        flow.reported = true;
        self.outcomes.insert(key, (outcome, now));
        Some(key)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Sent by this host: source is local.
    Out,
    /// Received: destination is local.
    In,
}

/// The connection key, ENO flags and sequence number of a plain TCP packet; `None` for
/// anything else.
fn parse(bytes: &[u8], dir: Dir) -> Option<(ConnKey, SegmentFlags, u32)> {
    let pkt = TcpIpPacket::new_checked(bytes).ok()?;
    let tcp = pkt.tcp();
    let src = SocketAddr::new(pkt.src_addr(), tcp.src_port());
    let dst = SocketAddr::new(pkt.dst_addr(), tcp.dst_port());
    let key = match dir {
        Dir::Out => ConnKey {
            local: src,
            remote: dst,
        },
        Dir::In => ConnKey {
            local: dst,
            remote: src,
        },
    };
    let flags = SegmentFlags {
        syn: tcp.syn(),
        ack: tcp.ack(),
        payload: !pkt.tcp_payload().is_empty(),
    };
    Some((key, flags, tcp.seq_number()))
}

#[cfg(test)]
mod tests;
