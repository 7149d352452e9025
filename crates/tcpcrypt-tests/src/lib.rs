//! Shared helpers for the cross-crate tests: a seeded [`TestRng`], [`Negotiated`] builders and
//! the in-memory [`Pair`] harness, which joins two [`Session`]s by byte queues with fault hooks
//! (chunking, bit flips, truncation, a dropped TCP FIN).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tcpcrypt_crypto::DefaultProvider;
use tcpcrypt_proto::crypto::{CryptoProvider, Rng};
use tcpcrypt_proto::keys::{ResumableSecret, SessionSecret};
use tcpcrypt_proto::negotiated::ResumeNonces;
use tcpcrypt_proto::session::{Event, Read, SessionConfig};
use tcpcrypt_proto::{AeadId, Error, Negotiated, Resumption, Role, TepId};

pub use tcpcrypt_proto::session::Session;

/// A's SYN option `45 03 23` then B's SYN-ACK option `45 04 01 23` (RFC 8547 §6).
pub const TRANSCRIPT: &[u8] = &[0x45, 0x03, 0x23, 0x45, 0x04, 0x01, 0x23];

/// A deterministic generator for tests: SHA-256(seed || counter) blocks. Not for production.
#[derive(Clone, Debug)]
pub struct TestRng {
    seed: u64,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl TestRng {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }
}

impl Rng for TestRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.used == self.block.len() {
                let mut h = Sha256::new();
                h.update(self.seed.to_be_bytes());
                h.update(self.counter.to_be_bytes());
                self.block.copy_from_slice(&h.finalize());
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }
}

/// The default crypto provider, shared.
pub fn provider() -> Arc<dyn CryptoProvider> {
    Arc::new(DefaultProvider)
}

/// All four tcpcrypt TEPs.
pub const TEPS: [TepId; 4] = TepId::TCPCRYPT_ALL;

/// A fresh negotiation result for `role` (RFC 8548 §3.3): B's TEP byte has v = 0.
pub fn fresh(role: Role, tep: TepId) -> Negotiated {
    Negotiated {
        role,
        tep,
        tep_byte: tep.get(),
        transcript: TRANSCRIPT.to_vec(),
        peer_app_aware: false,
        cache_secrets: true,
        resumption: None,
    }
}

/// A resumed negotiation result (RFC 8548 §3.5): ss\[i\] = `secret`, this host was
/// `original_role` when ss\[0\] was made, sn = `nonce_a || nonce_b`, TEP byte with v = 1.
/// The resumed session uses `aead`, the AEAD of the session that made ss\[0\].
pub fn resumed(
    role: Role,
    tep: TepId,
    original_role: Role,
    aead: AeadId,
    secret: [u8; 32],
) -> Negotiated {
    let sn = ResumeNonces::new(&[1, 2, 3, 4, 5, 6, 7, 8], &[9, 10, 11, 12, 13, 14, 15, 16]);
    Negotiated {
        role,
        tep,
        tep_byte: tep.get() | 0x80,
        transcript: TRANSCRIPT.to_vec(),
        peer_app_aware: false,
        cache_secrets: true,
        resumption: Some(Resumption {
            secret: ResumableSecret {
                tep,
                original_role,
                aead,
                secret: SessionSecret::from_bytes(secret),
            },
            // Both nonces are 8 bytes, within the 0..=8 limit.
            sn: sn.unwrap_or_default(),
        }),
    }
}

/// One direction of the in-memory connection, with its fault hooks.
#[derive(Debug, Default)]
pub struct Link {
    /// Bytes sent but not yet consumed by the receiver.
    pub queue: VecDeque<u8>,
    /// Sizes in which bytes are offered to `handle_ciphertext`, used in a cycle (empty: all).
    pub chunks: Vec<usize>,
    chunk_index: usize,
    /// Stream bytes that entered the link so far.
    pub sent: u64,
    /// Flip these bits of the byte at this stream offset as it passes.
    pub flip: Option<(u64, u8)>,
    /// Cut the stream after this many bytes and deliver a TCP FIN there (an injected FIN).
    pub truncate_at: Option<u64>,
    /// Do not deliver the sender's TCP FIN.
    pub drop_fin: bool,
    /// The sender reported that its stream ended (Transmit::fin), or the stream was cut.
    pub fin_sent: bool,
    /// The TCP FIN was handed to the receiver.
    pub fin_delivered: bool,
    /// Stream offset just past the Init message (where PSH goes).
    pub init_end: Option<u64>,
    /// Stream offset at which the sender's FIN was reported.
    pub fin_at: Option<u64>,
    /// When `Some`, every byte that entered the link (after the flip hook) is appended here: the
    /// stream as a capture would show it.
    pub tap: Option<Vec<u8>>,
}

impl Link {
    fn next_chunk(&mut self) -> usize {
        if self.chunks.is_empty() {
            return usize::MAX;
        }
        let c = self.chunks[self.chunk_index % self.chunks.len()].max(1);
        self.chunk_index += 1;
        c
    }

    /// Appends sent bytes, applying the flip and truncation hooks.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.truncate_at.is_some_and(|t| self.sent >= t) {
                self.fin_sent = true;
                return;
            }
            let mut b = b;
            if let Some((at, mask)) = self.flip {
                if at == self.sent {
                    b ^= mask;
                }
            }
            self.queue.push_back(b);
            if let Some(tap) = self.tap.as_mut() {
                tap.push(b);
            }
            self.sent += 1;
        }
        if self.truncate_at == Some(self.sent) {
            self.fin_sent = true;
        }
    }
}

/// One end of the pair and what it has seen.
#[derive(Debug)]
pub struct End {
    /// The session.
    pub session: Session,
    /// Plaintext read so far.
    pub received: Vec<u8>,
    /// Events polled so far.
    pub events: Vec<Event>,
    /// `read_plaintext` returned `Eof`.
    pub eof: bool,
    /// The first error any call returned.
    pub error: Option<Error>,
    /// Drive this end through the zero-copy calls: `send_buffer` + `commit`,
    /// `peek_ciphertext` + `consume_ciphertext` (in pieces of at most `zero_copy_piece`
    /// bytes), and `open_in_place` on the driver's copy of each chunk.
    pub zero_copy: bool,
    /// Largest piece taken per `consume_ciphertext` in zero-copy mode (0: everything).
    pub zero_copy_piece: usize,
    out: Vec<u8>,
}

impl End {
    fn new(session: Session) -> Self {
        Self {
            session,
            received: Vec::new(),
            events: Vec::new(),
            eof: false,
            error: None,
            zero_copy: false,
            zero_copy_piece: 0,
            out: Vec::new(),
        }
    }

    fn record<T>(&mut self, r: Result<T, Error>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    /// Writes as much of `data` as the session takes now (the harness drains between partial
    /// writes): `write_plaintext`, or in zero-copy mode `send_buffer` + `commit` per frame.
    pub fn write(&mut self, data: &[u8]) -> usize {
        if !self.zero_copy {
            let r = self.session.write_plaintext(data);
            return self.record(r).unwrap_or(0);
        }
        let mut at = 0;
        while at < data.len() {
            let r = self.session.send_buffer().and_then(|mut w| {
                let n = w.len().min(data.len() - at);
                w[..n].copy_from_slice(&data[at..at + n]);
                w.commit(n)
            });
            match self.record(r) {
                Some(n) if n > 0 => at += n,
                _ => break,
            }
        }
        at
    }

    fn drain_outputs(&mut self) {
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
        let mut buf = [0u8; 4096];
        loop {
            let r = self.session.read_plaintext(&mut buf);
            match self.record(r) {
                Some(Read::Data(n)) if n > 0 => self.received.extend_from_slice(&buf[..n]),
                Some(Read::Eof) => {
                    self.eof = true;
                    break;
                }
                _ => break,
            }
        }
    }

    /// How many `Rekeyed` events were seen, and the last `(local, remote)`.
    pub fn last_generations(&self) -> (u64, u64) {
        (
            self.session.local_generation(),
            self.session.remote_generation(),
        )
    }
}

/// Two sessions joined in memory: `a` is role A, `b` is role B; `ab` carries A's stream.
#[derive(Debug)]
pub struct Pair {
    /// Host A.
    pub a: End,
    /// Host B.
    pub b: End,
    /// A -> B.
    pub ab: Link,
    /// B -> A.
    pub ba: Link,
    /// The virtual clock.
    pub now: Instant,
}

impl Pair {
    /// A fresh pair for `tep` with `config` on both sides.
    ///
    /// # Panics
    /// If either session cannot be created (a test setup error).
    pub fn fresh(tep: TepId, config: SessionConfig) -> Self {
        Self::with_configs(
            fresh(Role::A, tep),
            fresh(Role::B, tep),
            config.clone(),
            config,
        )
    }

    /// A pair from two negotiation results and configs.
    ///
    /// # Panics
    /// If either session cannot be created (a test setup error).
    pub fn with_configs(
        a: Negotiated,
        b: Negotiated,
        ca: SessionConfig,
        cb: SessionConfig,
    ) -> Self {
        let p = provider();
        let now = Instant::now();
        let sa =
            Session::new(a, Arc::new(ca), p.clone(), &mut TestRng::new(1), now).expect("session A");
        let sb = Session::new(b, Arc::new(cb), p, &mut TestRng::new(2), now).expect("session B");
        Self::from_sessions_at(sa, sb, now)
    }

    /// Wraps two sessions; the virtual clock starts at the real time (after their creation).
    pub fn from_sessions(a: Session, b: Session) -> Self {
        Self::from_sessions_at(a, b, Instant::now())
    }

    /// Wraps two sessions created at or before `now`, the virtual clock's start.
    pub fn from_sessions_at(a: Session, b: Session, now: Instant) -> Self {
        Self {
            a: End::new(a),
            b: End::new(b),
            ab: Link::default(),
            ba: Link::default(),
            now,
        }
    }

    /// Moves bytes both ways until nothing changes. Returns the number of rounds.
    pub fn drive(&mut self) -> usize {
        for round in 0..100_000 {
            let mut progress = transmit(&mut self.a, &mut self.ab);
            progress |= transmit(&mut self.b, &mut self.ba);
            progress |= deliver(&mut self.ab, &mut self.b);
            progress |= deliver(&mut self.ba, &mut self.a);
            if !progress {
                return round;
            }
        }
        panic!("pair did not settle");
    }

    /// Writes `data` from A, driving while backpressured. Returns the bytes accepted (less
    /// than `data.len()` only if A stops accepting, e.g. not established or failed).
    pub fn send_a(&mut self, data: &[u8]) -> usize {
        self.send(true, data)
    }

    /// Writes `data` from B, driving while backpressured. Returns the bytes accepted.
    pub fn send_b(&mut self, data: &[u8]) -> usize {
        self.send(false, data)
    }

    fn send(&mut self, from_a: bool, data: &[u8]) -> usize {
        let mut at = 0;
        let mut stalls = 0;
        while at < data.len() && stalls < 3 {
            let end = if from_a { &mut self.a } else { &mut self.b };
            let n = end.write(&data[at..]);
            at += n;
            stalls = if n == 0 { stalls + 1 } else { 0 };
            self.drive();
        }
        self.drive();
        at
    }

    /// Advances the virtual clock and calls `handle_timeout` on both ends when due.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.fire_due_timers();
        self.drive();
    }

    /// Drives until the pair stalls and then, like a driver whose timer fires, jumps the
    /// virtual clock to the earliest armed deadline (`poll_timeout`) and calls `handle_timeout`;
    /// repeats until nothing moves and no timer is armed. Returns the virtual time that passed.
    ///
    /// # Panics
    /// If the pair never settles (a deadline that keeps being re-armed).
    pub fn settle(&mut self) -> Duration {
        let start = self.now;
        for _ in 0..1000 {
            self.drive();
            let next = [&self.a, &self.b]
                .into_iter()
                .filter(|end| end.error.is_none())
                .filter_map(|end| end.session.poll_timeout())
                .min();
            let Some(deadline) = next else {
                return self.now - start;
            };
            self.now = self.now.max(deadline);
            self.fire_due_timers();
        }
        panic!("pair did not settle: timers keep firing");
    }

    fn fire_due_timers(&mut self) {
        for end in [&mut self.a, &mut self.b] {
            if end.session.poll_timeout().is_some_and(|t| t <= self.now) {
                let r = end.session.handle_timeout(self.now);
                end.record(r);
                end.drain_outputs();
            }
        }
    }
}

/// Takes the sender's ciphertext into the link. Returns true if anything moved.
fn transmit(end: &mut End, link: &mut Link) -> bool {
    if end.zero_copy {
        return transmit_in_place(end, link);
    }
    end.out.clear();
    let t = end.session.poll_ciphertext(&mut end.out);
    if let Some(e) = t.init_end {
        link.init_end = Some(link.sent + e as u64);
    }
    link.push(&end.out);
    if t.fin {
        link.fin_sent = true;
        link.fin_at = Some(link.sent);
    }
    end.drain_outputs();
    t.len > 0 || t.fin
}

/// Zero-copy sending: sends straight from the session's buffer, in pieces.
fn transmit_in_place(end: &mut End, link: &mut Link) -> bool {
    let mut moved = false;
    loop {
        let pending = end.session.peek_ciphertext();
        let n = match end.zero_copy_piece {
            0 => pending.len(),
            piece => pending.len().min(piece),
        };
        let before = link.sent;
        link.push(&pending[..n]);
        let t = end.session.consume_ciphertext(n);
        if let Some(e) = t.init_end {
            link.init_end = Some(before + e as u64);
        }
        if t.fin {
            link.fin_sent = true;
            link.fin_at = Some(link.sent);
        }
        moved |= t.len > 0 || t.fin;
        if t.len == 0 {
            break;
        }
    }
    end.drain_outputs();
    moved
}

/// Zero-copy receiving: opens frames in the driver's own copy of the chunk. Returns the bytes
/// consumed.
fn deliver_in_place(end: &mut End, chunk: &mut [u8]) -> usize {
    let mut at = 0;
    while at < chunk.len() {
        let r = end.session.open_in_place(&mut chunk[at..]);
        let Some(opened) = end.record(r) else {
            break;
        };
        let (consumed, data) = (opened.consumed, opened.data.to_vec());
        // The session's own plaintext (a frame that straddled a chunk) comes first.
        end.drain_outputs();
        end.received.extend_from_slice(&data);
        at += consumed;
        if consumed == 0 {
            break;
        }
    }
    end.drain_outputs();
    at
}

/// Offers queued bytes to the receiver in the link's chunk sizes, then the TCP FIN.
fn deliver(link: &mut Link, end: &mut End) -> bool {
    let mut progress = false;
    while !link.queue.is_empty() && end.error.is_none() {
        let n = link.next_chunk().min(link.queue.len());
        let mut chunk: Vec<u8> = link.queue.iter().take(n).copied().collect();
        let used = if end.zero_copy {
            deliver_in_place(end, &mut chunk)
        } else {
            let r = end.session.handle_ciphertext(&chunk);
            end.record(r).unwrap_or(0)
        };
        link.queue.drain(..used);
        end.drain_outputs();
        if used == 0 {
            break;
        }
        progress = true;
    }
    if link.queue.is_empty()
        && link.fin_sent
        && !link.fin_delivered
        && !link.drop_fin
        && end.error.is_none()
    {
        link.fin_delivered = true;
        let r = end.session.handle_peer_fin();
        end.record(r);
        end.drain_outputs();
        progress = true;
    }
    progress
}

/// Deterministic test data: `len` bytes from `seed`.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    TestRng::new(seed ^ 0x5eed).fill(&mut v);
    v
}
pub mod endpoint;
