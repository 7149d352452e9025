//! Two simulated hosts that run the whole protocol, as a daemon would drive the core: the
//! TCP-ENO options of the handshake segments as real option bytes inside a Linux-like TCP
//! options area (RFC 8547 §4), through a path that a test may tamper with, then the stream path
//! of RFC 8548 through [`Pair`], and the session-secret caches fed with what the sessions hand
//! back (RFC 8548 §3.5).

use std::time::{Duration, Instant};

use tcpcrypt_proto::eno::{Config, Negotiation, SegmentFlags, State};
use tcpcrypt_proto::resume::{CacheConfig, NoResumption, ResumeCache, ResumeStore};
use tcpcrypt_proto::session::{Event, SessionConfig};
use tcpcrypt_proto::wire::tcp_option::insert_option;
use tcpcrypt_proto::Negotiated;

use crate::{Pair, TestRng};

/// The options area of a Linux SYN or SYN-ACK: MSS, SACK permitted, timestamps, NOP, window
/// scale (20 bytes), leaving 20 bytes for ENO.
pub const LINUX_SYN_OPTIONS: [u8; 20] = [
    0x02, 0x04, 0x05, 0xb4, // MSS 1460
    0x04, 0x02, // SACK permitted
    0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 0,    // timestamps
    0x01, // NOP
    0x03, 0x03, 0x07, // window scale 7
];

/// The options area of a Linux non-SYN segment: NOP, NOP, timestamps.
pub const LINUX_ACK_OPTIONS: [u8; 12] = [0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 2, 0, 0, 0, 1];

/// Which way a segment travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From the active opener (host `a`) to the passive opener (host `b`).
    AToB,
    /// From `b` to `a`.
    BToA,
}

/// A handshake segment as it crosses the path: its flags and its whole TCP options area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Direction of travel.
    pub dir: Dir,
    /// SYN/ACK flags and whether it carries payload.
    pub flags: SegmentFlags,
    /// The TCP options area, ENO included when the sender added one.
    pub options: Vec<u8>,
}

/// One simulated host: its ENO and session settings, its session-secret cache, its randomness.
#[derive(Debug)]
pub struct Host {
    /// The name other hosts use as this host's identity in their caches.
    pub name: &'static str,
    /// ENO settings (TEPs, b, a, resumption policies).
    pub eno: Config,
    /// Stream-path settings (AEADs).
    pub session: SessionConfig,
    /// The session-secret cache (RFC 8548 §3.5).
    pub cache: ResumeCache<&'static str>,
    /// This host's randomness.
    pub rng: TestRng,
}

impl Host {
    /// A host with default settings.
    pub fn new(name: &'static str, seed: u64) -> Self {
        Self {
            name,
            eno: Config::default(),
            session: SessionConfig::default(),
            cache: ResumeCache::new(CacheConfig::default()),
            rng: TestRng::new(seed),
        }
    }
}

/// The SYN path of one connection: both negotiations and every segment as delivered.
#[derive(Debug)]
pub struct Handshake {
    /// The active opener's negotiation.
    pub a: Negotiation,
    /// The passive opener's negotiation.
    pub b: Negotiation,
    /// Every segment as it was delivered (after the path's changes).
    pub wire: Vec<Segment>,
}

impl Handshake {
    /// Both sides enabled encryption.
    pub fn both_enabled(&self) -> bool {
        self.a.state() == State::Enabled && self.b.state() == State::Enabled
    }

    /// Both sides fell back to plain TCP.
    pub fn both_disabled(&self) -> bool {
        matches!(self.a.state(), State::Disabled(_)) && matches!(self.b.state(), State::Disabled(_))
    }
}

/// A path: may rewrite any segment's options in flight (a middlebox, an attacker).
pub type PathFn<'p> = &'p mut dyn FnMut(&mut Segment);

/// The virtual time every simulated connection starts at.
fn epoch() -> Instant {
    use std::sync::OnceLock;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Builds the segment `neg` sends with `flags` over `base` options.
fn send(neg: &mut Negotiation, dir: Dir, flags: SegmentFlags, base: &[u8]) -> Segment {
    let options = match neg.on_send(flags, base) {
        Some(eno) => insert_option(base, eno.as_bytes())
            .expect("the Linux-like areas leave room for ENO")
            .as_bytes()
            .to_vec(),
        None => base.to_vec(),
    };
    Segment {
        dir,
        flags,
        options,
    }
}

/// Runs the three-way handshake of an active open by `a` to a listening `b` (RFC 8547 §4.6),
/// then the first data segment each way, so that both stop adding ENO. `path` sees each
/// segment before delivery.
pub fn three_way(a: &mut Host, b: &mut Host, path: PathFn<'_>) -> Handshake {
    let now = epoch();
    let offer = a.cache.take_offer(&b.name, now);
    let mut na = Negotiation::active(a.eno.clone(), offer, &mut a.rng);
    let mut wire = Vec::new();

    let mut syn = send(&mut na, Dir::AToB, SegmentFlags::SYN, &LINUX_SYN_OPTIONS);
    path(&mut syn);
    let store: &mut dyn ResumeStore = if b.eno.accept_resumption() {
        &mut b.cache
    } else {
        &mut NoResumption
    };
    let (mut nb, verdict) = Negotiation::passive(
        b.eno.clone(),
        syn.flags,
        &syn.options,
        store,
        now,
        &mut b.rng,
    );
    assert!(!verdict.discard_syn_data, "the SYN carried no data");
    wire.push(syn);

    let mut syn_ack = send(
        &mut nb,
        Dir::BToA,
        SegmentFlags::SYN_ACK,
        &LINUX_SYN_OPTIONS,
    );
    path(&mut syn_ack);
    let _ = na.on_receive(syn_ack.flags, &syn_ack.options);
    wire.push(syn_ack);

    // The third segment and A's first data segment (Init1 or a first frame), then B's first
    // data segment, the first non-SYN segment A receives (§4.6: A stops adding ENO after it).
    for (flags, dir) in [
        (SegmentFlags::ACK, Dir::AToB),
        (SegmentFlags::ACK.with_payload(), Dir::AToB),
        (SegmentFlags::ACK.with_payload(), Dir::BToA),
    ] {
        let (from, to) = match dir {
            Dir::AToB => (&mut na, &mut nb),
            Dir::BToA => (&mut nb, &mut na),
        };
        let mut seg = send(from, dir, flags, &LINUX_ACK_OPTIONS);
        path(&mut seg);
        let _ = to.on_receive(seg.flags, &seg.options);
        wire.push(seg);
    }
    Handshake { a: na, b: nb, wire }
}

/// A simultaneous open (RFC 8547 §4.6, §8.3): both hosts send a SYN-only segment, receive the
/// other's, then each sends and receives a SYN-ACK.
pub fn simultaneous_open(a: &mut Host, b: &mut Host, path: PathFn<'_>) -> Handshake {
    let mut na = Negotiation::active(a.eno.clone(), None, &mut a.rng);
    let mut nb = Negotiation::active(b.eno.clone(), None, &mut b.rng);
    let mut wire = Vec::new();
    for flags in [SegmentFlags::SYN, SegmentFlags::SYN_ACK] {
        let mut sa = send(&mut na, Dir::AToB, flags, &LINUX_SYN_OPTIONS);
        let mut sb = send(&mut nb, Dir::BToA, flags, &LINUX_SYN_OPTIONS);
        path(&mut sa);
        path(&mut sb);
        let _ = nb.on_receive(sa.flags, &sa.options);
        let _ = na.on_receive(sb.flags, &sb.options);
        wire.extend([sa, sb]);
    }
    Handshake { a: na, b: nb, wire }
}

/// A whole connection: its handshake and, when both sides enabled encryption, the running
/// sessions.
#[derive(Debug)]
pub struct Connection {
    /// The SYN path.
    pub handshake: Handshake,
    /// The stream path, when ENO succeeded on both ends.
    pub pair: Option<Pair>,
}

/// Opens a connection from `a` to `b` over `path`: the handshake, then the sessions, driven
/// until both are established; each host caches the secret its session hands back (none under
/// the "cache nothing" policy, RFC 8548 §3.5).
pub fn connect(a: &mut Host, b: &mut Host, path: PathFn<'_>) -> Connection {
    let mut handshake = three_way(a, b, path);
    let pair = start(&mut handshake, a, b);
    Connection { handshake, pair }
}

/// Starts the sessions of an enabled handshake and feeds the caches.
pub fn start(handshake: &mut Handshake, a: &mut Host, b: &mut Host) -> Option<Pair> {
    if !handshake.both_enabled() {
        return None;
    }
    let na: Negotiated = handshake.a.take_negotiated()?;
    let nb: Negotiated = handshake.b.take_negotiated()?;
    let mut pair = Pair::with_configs(na, nb, a.session.clone(), b.session.clone());
    pair.drive();
    let now = epoch() + Duration::from_secs(1);
    let (a_name, b_name) = (a.name, b.name);
    for (host, events, peer) in [(a, &pair.a.events, b_name), (b, &pair.b.events, a_name)] {
        for event in events {
            if let Event::ResumableSecret(secret) = event {
                host.cache.insert(peer, secret.clone(), now);
            }
        }
    }
    Some(pair)
}

/// A path that changes nothing.
pub fn clean_path() -> impl FnMut(&mut Segment) {
    |_: &mut Segment| {}
}

/// Removes every ENO option (kind 69) from the segments `matches` selects, as a middlebox that
/// strips unknown options would (RFC 8547 §9).
pub fn strip_eno(matches: impl Fn(&Segment) -> bool) -> impl FnMut(&mut Segment) {
    use tcpcrypt_proto::wire::tcp_option::{TcpOption, TcpOptions};
    move |seg: &mut Segment| {
        if !matches(seg) {
            return;
        }
        let mut kept = Vec::new();
        for opt in TcpOptions::new(&seg.options).flatten() {
            if matches!(opt, TcpOption::Eno(_)) {
                continue;
            }
            let mut buf = vec![0; opt.buffer_len()];
            let _ = opt.emit(&mut buf);
            kept.extend_from_slice(&buf);
        }
        seg.options = kept;
    }
}
