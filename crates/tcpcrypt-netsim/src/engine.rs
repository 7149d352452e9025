//! The sans-IO impairment engine: Ethernet frames in, impaired frames out at the times they are
//! due. No sockets and no clock: every input takes `now`, and the random choices come from a
//! seeded generator, so a run is reproducible from its seed and its input.
//!
//! Contract (after quinn's `Connection`): feed every received frame to [`Engine::push`], then
//! drain [`Engine::poll`] until it returns `None`, and wake up again at
//! [`Engine::next_timeout`]. Frames that are not TCP over IPv4/IPv6 (ARP, neighbour discovery,
//! ICMP) pass at once and untouched, except during a path cut, which drops everything. Every
//! TCP frame that passes has its checksums recomputed (so offloaded partial checksums and the
//! box's own edits both leave valid packets).
//!
//! The order of the work on one TCP frame is: path cut, header edits (record the SYN's
//! ENO, strip ENO, echo the SYN's ENO into the SYN-ACK, flip a payload bit, forge a
//! RST/FIN after it), resegmentation, then per resulting frame loss, duplication and the delay
//! (fixed + jitter + the reorder hold). Packets are parsed and rewritten with
//! `tcpcrypt_proto::wire::packet` and `tcp_option`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use tcpcrypt_proto::wire::packet::{
    rewrite_tcp_options, Flow, IpVersion, Ipv4Packet, Ipv6Packet, TcpFlags, TcpIpPacket,
};
use tcpcrypt_proto::wire::tcp_option::{insert_option, TcpOption, TcpOptions};

use crate::config::{Config, Impairment, Inject};
use crate::rng::Rng;

/// Length of an Ethernet II header (no VLAN tag: the box bridges two veths).
pub const ETH_HEADER_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// How long resegmentation holds the tail of the stream waiting for more bytes to join.
const RESEGMENT_HOLD: Duration = Duration::from_millis(1);
/// Default hold of a reordered packet.
const DEFAULT_REORDER_GAP: Duration = Duration::from_millis(3);
/// Bound of the per-connection state (the tables are cleared past it: a test box, not a router).
const MAX_FLOWS: usize = 65_536;

/// The direction a frame travels through the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From A's side to B's side.
    AtoB,
    /// From B's side to A's side.
    BtoA,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Self::AtoB => 0,
            Self::BtoA => 1,
        }
    }
}

/// What the box did, per direction (index 0: A to B, 1: B to A).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames received.
    pub frames_in: [u64; 2],
    /// Frames sent (duplicates, resegmented pieces and forged segments included).
    pub frames_out: [u64; 2],
    /// TCP payload bytes received.
    pub payload_in: [u64; 2],
    /// Frames dropped by the loss rate.
    pub lost: [u64; 2],
    /// Frames dropped by the path cut.
    pub cut: [u64; 2],
    /// Extra copies sent.
    pub duplicated: [u64; 2],
    /// Frames held back to be overtaken.
    pub reordered: [u64; 2],
    /// Segments emitted by resegmentation at new boundaries.
    pub resegmented: [u64; 2],
    /// Segments whose ENO option was removed.
    pub eno_stripped: [u64; 2],
    /// SYN-ACKs whose options were replaced by the SYN's.
    pub echoed: [u64; 2],
    /// Payload bits flipped.
    pub flipped: [u64; 2],
    /// RSTs forged.
    pub rst_injected: [u64; 2],
    /// FINs forged.
    pub fin_injected: [u64; 2],
    /// TCP payloads that contained the configured canary.
    pub canary_hits: [u64; 2],
}

/// A frame waiting for its release time; ordered by (time, arrival order).
#[derive(Debug, PartialEq, Eq)]
struct Scheduled {
    at: Instant,
    order: u64,
    dir: Dir,
    frame: Vec<u8>,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Resegmentation state of one direction of one connection: the in-order bytes not sent yet.
#[derive(Debug, Default)]
struct Recut {
    /// The sequence number the next in-order byte has.
    expected: Option<u32>,
    /// Sequence number of `buf[0]`.
    buf_seq: u32,
    buf: Vec<u8>,
    /// The newest in-order data frame: headers for the pieces.
    template: Vec<u8>,
    flush_at: Option<Instant>,
}

/// Per direction of one connection.
#[derive(Debug)]
struct FlowDir {
    /// The direction this flow's frames travel.
    dir: Dir,
    /// Payload bytes seen (retransmissions included).
    bytes: u64,
    flipped: bool,
    injected: bool,
    recut: Recut,
}

impl FlowDir {
    fn new(dir: Dir) -> Self {
        Self {
            dir,
            bytes: 0,
            flipped: false,
            injected: false,
            recut: Recut::default(),
        }
    }
}

/// The engine. See the module docs for the contract.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    rng: Rng,
    queue: BinaryHeap<Reverse<Scheduled>>,
    order: u64,
    flows: HashMap<Flow, FlowDir>,
    /// The ENO options of each connection's SYN, by the SYN's flow.
    syn_options: HashMap<Flow, Vec<Vec<u8>>>,
    /// Payload bytes crossed (both directions), for the path cut.
    total_bytes: u64,
    cut_until: Option<Instant>,
    stats: Stats,
}

/// Whether sequence number `a` comes after `b` (RFC 9293 §3.4, modulo 2^32).
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The options area without ENO (kind 69) and the draft-era kind 253 ENO, padded with EOL to
/// a multiple of four; `None` if there is no ENO (or the area does not parse, which is then
/// left alone).
pub fn strip_eno_options(area: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(area.len());
    let mut found = false;
    for option in TcpOptions::new(area) {
        let option = option.ok()?;
        match option {
            TcpOption::EndOfList => break,
            TcpOption::Eno(_) | TcpOption::LegacyEno { .. } => found = true,
            other => {
                let start = out.len();
                out.resize(start + other.buffer_len(), 0);
                other.emit(&mut out[start..]);
            }
        }
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    found.then_some(out)
}

/// The ENO options (kind 69) of an options area, each as its whole encoding.
fn eno_options(area: &[u8]) -> Vec<Vec<u8>> {
    TcpOptions::new(area)
        .filter_map(|o| match o {
            Ok(TcpOption::Eno(e)) => Some(e.as_bytes().to_vec()),
            _ => None,
        })
        .collect()
}

/// The options area of the TCP packet in `frame`.
fn options_of(frame: &[u8]) -> Vec<u8> {
    TcpIpPacket::new_checked(&frame[ETH_HEADER_LEN..])
        .map(|p| p.tcp_options().to_vec())
        .unwrap_or_default()
}

/// Whether the options area holds ENO in either encoding.
pub fn has_eno(area: &[u8]) -> bool {
    TcpOptions::new(area)
        .any(|o| matches!(o, Ok(TcpOption::Eno(_)) | Ok(TcpOption::LegacyEno { .. })))
}

/// The IP packet inside an Ethernet frame, if the EtherType is IPv4 or IPv6.
fn ip_of(frame: &[u8]) -> Option<&[u8]> {
    if frame.len() < ETH_HEADER_LEN {
        return None;
    }
    match u16::from_be_bytes([frame[12], frame[13]]) {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Some(&frame[ETH_HEADER_LEN..]),
        _ => None,
    }
}

/// Recomputes the checksums of the TCP packet in `frame` (a no-op for anything else).
fn fix_checksums(frame: &mut [u8]) {
    if frame.len() > ETH_HEADER_LEN {
        if let Ok(mut p) = TcpIpPacket::new_checked(&mut frame[ETH_HEADER_LEN..]) {
            p.fill_checksums();
        }
    }
}

/// A frame whose TCP segment has `payload` instead of its own (IP lengths updated; checksums
/// left to [`fix_checksums`]), `seq` as sequence number and `flags`.
fn with_payload(frame: &[u8], payload: &[u8], seq: u32, flags: TcpFlags) -> Option<Vec<u8>> {
    let p = TcpIpPacket::new_checked(&frame[ETH_HEADER_LEN..]).ok()?;
    let headers = ETH_HEADER_LEN + p.ip_header_len() + p.tcp().header_len();
    let version = p.version();
    let mut out = Vec::with_capacity(headers + payload.len());
    out.extend_from_slice(&frame[..headers]);
    out.extend_from_slice(payload);
    let ip_len = out.len() - ETH_HEADER_LEN;
    match version {
        IpVersion::V4 => {
            Ipv4Packet::new_unchecked(&mut out[ETH_HEADER_LEN..])
                .set_total_len(u16::try_from(ip_len).ok()?);
        }
        IpVersion::V6 => {
            Ipv6Packet::new_unchecked(&mut out[ETH_HEADER_LEN..])
                .set_payload_len(u16::try_from(ip_len - 40).ok()?);
        }
    }
    let mut p = TcpIpPacket::new_checked(&mut out[ETH_HEADER_LEN..]).ok()?;
    let mut tcp = p.tcp_mut();
    tcp.set_seq_number(seq);
    tcp.set_flags(flags);
    Some(out)
}

/// A frame whose TCP options area is `options` (lengths fixed by the core's rewrite).
fn with_options(frame: &[u8], options: &[u8]) -> Option<Vec<u8>> {
    let ip = rewrite_tcp_options(&frame[ETH_HEADER_LEN..], options).ok()?;
    let mut out = Vec::with_capacity(ETH_HEADER_LEN + ip.len());
    out.extend_from_slice(&frame[..ETH_HEADER_LEN]);
    out.extend_from_slice(&ip);
    Some(out)
}

impl Engine {
    /// An engine with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            rng: Rng::new(config.seed),
            config,
            queue: BinaryHeap::new(),
            order: 0,
            flows: HashMap::new(),
            syn_options: HashMap::new(),
            total_bytes: 0,
            cut_until: None,
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the engine did so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn imp(&self, dir: Dir) -> &Impairment {
        match dir {
            Dir::AtoB => &self.config.a_to_b,
            Dir::BtoA => &self.config.b_to_a,
        }
    }

    fn schedule(&mut self, dir: Dir, at: Instant, frame: Vec<u8>) {
        self.order += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            order: self.order,
            dir,
            frame,
        }));
    }

    /// Takes one frame received from `dir`'s sender at `now`.
    pub fn push(&mut self, dir: Dir, now: Instant, frame: Vec<u8>) {
        let d = dir.index();
        self.stats.frames_in[d] += 1;
        if let Some(until) = self.cut_until {
            if now < until {
                self.stats.cut[d] += 1;
                return;
            }
        }
        let is_tcp = ip_of(&frame).is_some_and(|ip| TcpIpPacket::new_checked(ip).is_ok());
        if !is_tcp {
            self.schedule(dir, now, frame);
            return;
        }
        let mut out = Vec::new();
        self.edit(dir, now, frame, &mut out);
        for frame in out {
            self.impair(dir, now, frame);
        }
    }

    /// Header edits and resegmentation of one TCP frame; the frames to send go to `out`.
    fn edit(&mut self, dir: Dir, now: Instant, mut frame: Vec<u8>, out: &mut Vec<Vec<u8>>) {
        let d = dir.index();
        let imp = self.imp(dir).clone();
        let (flow, flags, seq, ack, payload_len, options) = {
            let p = TcpIpPacket::new_checked(&frame[ETH_HEADER_LEN..]).expect("checked in push");
            let tcp = p.tcp();
            (
                p.flow(),
                tcp.flags(),
                tcp.seq_number(),
                tcp.ack_number(),
                p.tcp_payload().len(),
                p.tcp_options().to_vec(),
            )
        };
        let syn = flags.contains(TcpFlags::SYN);
        let ackf = flags.contains(TcpFlags::ACK);
        if let Some(canary) = &self.config.canary {
            let p = TcpIpPacket::new_checked(&frame[ETH_HEADER_LEN..]).expect("checked");
            if !canary.is_empty() && p.tcp_payload().windows(canary.len()).any(|w| w == canary) {
                self.stats.canary_hits[d] += 1;
            }
        }
        self.stats.payload_in[d] += payload_len as u64;
        self.total_bytes += payload_len as u64;
        if let Some(cut) = self.config.cut {
            if self.cut_until.is_none() && self.total_bytes >= cut.after_bytes {
                self.cut_until = Some(now + cut.duration);
            }
        }
        if self.flows.len() >= MAX_FLOWS {
            self.flows.clear();
            self.syn_options.clear();
        }
        // The SYN's ENO options, as they leave A's side (before this box strips anything).
        if syn && !ackf && dir == Dir::AtoB {
            self.syn_options.insert(flow, eno_options(&options));
        }
        // Strip ENO.
        let strip = if syn {
            if ackf {
                imp.strip_eno.syn_ack
            } else {
                imp.strip_eno.syn
            }
        } else {
            imp.strip_eno.non_syn
        };
        if strip {
            if let Some(area) = strip_eno_options(&options) {
                if let Some(f) = with_options(&frame, &area) {
                    frame = f;
                    self.stats.eno_stripped[d] += 1;
                }
            }
        }
        // Echo the SYN's ENO in the SYN-ACK (instead of the SYN-ACK's own, if any).
        if syn && ackf && imp.echo_syn_options {
            if let Some(eno) = self.syn_options.get(&flow.reversed()).cloned() {
                let current = options_of(&frame);
                let mut area = strip_eno_options(&current).unwrap_or(current);
                let mut fits = true;
                for option in &eno {
                    match insert_option(&area, option) {
                        Ok(buf) => area = buf.as_bytes().to_vec(),
                        Err(_) => fits = false,
                    }
                }
                if fits && !eno.is_empty() {
                    if let Some(f) = with_options(&frame, &area) {
                        frame = f;
                        self.stats.echoed[d] += 1;
                    }
                }
            }
        }
        let state = self.flows.entry(flow).or_insert_with(|| FlowDir::new(dir));
        let before = state.bytes;
        state.bytes += payload_len as u64;
        // Flip one payload bit.
        let mut flipped = false;
        if let Some(after) = imp.flip_after {
            if payload_len > 0 && !state.flipped && state.bytes > after {
                let offset = usize::try_from(after.saturating_sub(before))
                    .unwrap_or(0)
                    .min(payload_len - 1);
                let mut p = TcpIpPacket::new_checked(&mut frame[ETH_HEADER_LEN..]).expect("ok");
                p.tcp_mut().payload_mut()[offset] ^= 0x10;
                state.flipped = true;
                flipped = true;
            }
        }
        // Forge a RST or FIN right after this segment.
        let mut forged = None;
        if let Some(inject) = imp.inject {
            let (after, fin) = match inject {
                Inject::Rst { after_bytes } => (after_bytes, false),
                Inject::Fin { after_bytes } => (after_bytes, true),
            };
            if payload_len > 0 && !state.injected && state.bytes >= after && !syn {
                state.injected = true;
                let next = seq.wrapping_add(payload_len as u32);
                let flags = if fin {
                    TcpFlags::FIN | TcpFlags::ACK
                } else {
                    TcpFlags::RST | TcpFlags::ACK
                };
                forged = with_options(&frame, &[]).and_then(|f| {
                    let mut f = with_payload(&f, &[], next, flags)?;
                    let mut p = TcpIpPacket::new_checked(&mut f[ETH_HEADER_LEN..]).ok()?;
                    p.tcp_mut().set_ack_number(ack);
                    Some(f)
                });
            }
        }
        if flipped {
            self.stats.flipped[d] += 1;
        }
        // Resegmentation.
        if imp.resegment {
            self.resegment(dir, now, flow, frame, flags, seq, payload_len, out);
        } else {
            out.push(frame);
        }
        if let Some(f) = forged {
            if fin_of(&f) {
                self.stats.fin_injected[d] += 1;
            } else {
                self.stats.rst_injected[d] += 1;
            }
            out.push(f);
        }
    }

    /// The stream re-cutter (see [`Impairment::resegment`]).
    #[allow(clippy::too_many_arguments)]
    fn resegment(
        &mut self,
        dir: Dir,
        now: Instant,
        flow: Flow,
        frame: Vec<u8>,
        flags: TcpFlags,
        seq: u32,
        payload_len: usize,
        out: &mut Vec<Vec<u8>>,
    ) {
        let mtu = self.config.mtu;
        let plain_data = payload_len > 0
            && !flags.contains(TcpFlags::SYN)
            && !flags.contains(TcpFlags::RST)
            && !flags.contains(TcpFlags::FIN)
            && !flags.contains(TcpFlags::URG);
        let state = self.flows.entry(flow).or_insert_with(|| FlowDir::new(dir));
        let r = &mut state.recut;
        if plain_data && r.expected == Some(seq) {
            let p = TcpIpPacket::new_checked(&frame[ETH_HEADER_LEN..]).expect("checked");
            if r.buf.is_empty() {
                r.buf_seq = seq;
                r.flush_at = Some(now + RESEGMENT_HOLD);
            }
            r.buf.extend_from_slice(p.tcp_payload());
            let headers = p.ip_header_len() + p.tcp().header_len();
            r.expected = Some(seq.wrapping_add(payload_len as u32));
            r.template = frame;
            let max = mtu.saturating_sub(headers).max(1);
            loop {
                // Mostly large pieces, sometimes tiny ones.
                let target = if self.rng.chance(0.2) {
                    1 + self.rng.below(64) as usize
                } else {
                    max / 4 + self.rng.below((max - max / 4) as u64 + 1) as usize
                }
                .clamp(1, max);
                let r = &mut self.flows.get_mut(&flow).expect("present").recut;
                if r.buf.len() < target {
                    break;
                }
                let piece: Vec<u8> = r.buf.drain(..target).collect();
                let piece_seq = r.buf_seq;
                r.buf_seq = r.buf_seq.wrapping_add(target as u32);
                let tflags = TcpIpPacket::new_checked(&r.template[ETH_HEADER_LEN..])
                    .expect("checked")
                    .tcp()
                    .flags();
                if let Some(f) = with_payload(&r.template, &piece, piece_seq, tflags) {
                    out.push(f);
                    self.stats.resegmented[dir.index()] += 1;
                }
            }
            let r = &mut self.flows.get_mut(&flow).expect("present").recut;
            if r.buf.is_empty() {
                r.flush_at = None;
            }
            return;
        }
        // Anything else: what is held goes first (before a FIN, RST or out-of-order data),
        // except for bare ACKs, which may overtake held data.
        let bare_ack = payload_len == 0
            && !flags.contains(TcpFlags::SYN)
            && !flags.contains(TcpFlags::FIN)
            && !flags.contains(TcpFlags::RST);
        if !bare_ack {
            if let Some(f) = Self::take_held(r) {
                out.push(f);
                self.stats.resegmented[dir.index()] += 1;
            }
        }
        let r = &mut self.flows.get_mut(&flow).expect("present").recut;
        let mut end = seq.wrapping_add(payload_len as u32);
        if flags.contains(TcpFlags::SYN) || flags.contains(TcpFlags::FIN) {
            end = end.wrapping_add(1);
        }
        if !flags.contains(TcpFlags::RST)
            && (payload_len > 0 || flags.contains(TcpFlags::SYN) || flags.contains(TcpFlags::FIN))
        {
            r.expected = match r.expected {
                Some(e) if !seq_after(end, e) => Some(e),
                _ => Some(end),
            };
            if flags.contains(TcpFlags::FIN) {
                // Nothing in order follows a FIN.
                r.expected = None;
            }
        }
        out.push(frame);
    }

    /// The held tail of a resegmented stream as one segment, if any.
    fn take_held(r: &mut Recut) -> Option<Vec<u8>> {
        r.flush_at = None;
        if r.buf.is_empty() {
            return None;
        }
        let piece = std::mem::take(&mut r.buf);
        let flags = TcpIpPacket::new_checked(&r.template[ETH_HEADER_LEN..])
            .ok()?
            .tcp()
            .flags();
        let f = with_payload(&r.template, &piece, r.buf_seq, flags)?;
        r.buf_seq = r.buf_seq.wrapping_add(piece.len() as u32);
        Some(f)
    }

    /// Loss, duplication and delay of one frame that is ready to go.
    fn impair(&mut self, dir: Dir, now: Instant, mut frame: Vec<u8>) {
        let d = dir.index();
        let imp = self.imp(dir).clone();
        fix_checksums(&mut frame);
        if imp.loss > 0.0 && self.rng.chance(imp.loss) {
            self.stats.lost[d] += 1;
            return;
        }
        let copies = if imp.duplicate > 0.0 && self.rng.chance(imp.duplicate) {
            self.stats.duplicated[d] += 1;
            2
        } else {
            1
        };
        for copy in 0..copies {
            let mut at = now + imp.delay;
            if !imp.jitter.is_zero() {
                let j = self.rng.below(imp.jitter.as_micros() as u64 + 1);
                at += Duration::from_micros(j);
            }
            if copy == 0 && imp.reorder > 0.0 && self.rng.chance(imp.reorder) {
                self.stats.reordered[d] += 1;
                at += if imp.reorder_gap.is_zero() {
                    DEFAULT_REORDER_GAP
                } else {
                    imp.reorder_gap
                };
            }
            if copy == 1 {
                at += Duration::from_micros(200);
            }
            let f = if copy + 1 == copies {
                std::mem::take(&mut frame)
            } else {
                frame.clone()
            };
            self.schedule(dir, at, f);
        }
    }

    /// Moves held resegmentation tails that are due at `now` to the schedule.
    fn flush_due(&mut self, now: Instant) {
        let due: Vec<Flow> = self
            .flows
            .iter()
            .filter(|(_, s)| s.recut.flush_at.is_some_and(|t| t <= now))
            .map(|(f, _)| *f)
            .collect();
        for flow in due {
            let Some(state) = self.flows.get_mut(&flow) else {
                continue;
            };
            let dir = state.dir;
            let Some(frame) = Self::take_held(&mut state.recut) else {
                continue;
            };
            self.stats.resegmented[dir.index()] += 1;
            self.impair(dir, now, frame);
        }
    }

    /// The next frame due at `now`, with the direction it leaves in.
    pub fn poll(&mut self, now: Instant) -> Option<(Dir, Vec<u8>)> {
        self.flush_due(now);
        if self.queue.peek().is_some_and(|Reverse(s)| s.at <= now) {
            let Reverse(s) = self.queue.pop().expect("peeked");
            self.stats.frames_out[s.dir.index()] += 1;
            return Some((s.dir, s.frame));
        }
        None
    }

    /// When the engine next has something to do (a frame due, a held tail to flush).
    pub fn next_timeout(&self) -> Option<Instant> {
        let queued = self.queue.peek().map(|Reverse(s)| s.at);
        let held = self.flows.values().filter_map(|s| s.recut.flush_at).min();
        match (queued, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn fin_of(frame: &[u8]) -> bool {
    TcpIpPacket::new_checked(&frame[ETH_HEADER_LEN..])
        .map(|p| p.tcp().fin())
        .unwrap_or(false)
}
