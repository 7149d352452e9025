//! Synthetic captures from the in-memory simulated hosts (`tcpcrypt_tests::endpoint`): the
//! handshake's real ENO option bytes, the sessions' real ciphertext, wrapped in IPv4/IPv6 TCP
//! segments and written as pcap or pcapng; the key log comes from the sessions' own
//! `SessionConfig::key_log` hook.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tcpcrypt_inspect::capture::linktype;
use tcpcrypt_inspect::pcap_writer::{Format, Writer};
use tcpcrypt_inspect::plain_pcap::segment_with_options;
use tcpcrypt_proto::keylog::{KeyLog, KeyLogEntry};
use tcpcrypt_proto::session::{Event, Read, Session, SessionConfig};
use tcpcrypt_proto::wire::packet::TcpFlags;
use tcpcrypt_proto::{AeadId, Negotiated, SessionId, TepId};
use tcpcrypt_tests::endpoint::{self, Dir, Host, PathFn, Segment, LINUX_ACK_OPTIONS};
use tcpcrypt_tests::provider;

/// Collects key-log lines.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<String>);

impl KeyLog for Recorder {
    fn log(&self, entry: &KeyLogEntry<'_>) {
        self.0.lock().unwrap().push_str(&entry.to_line());
    }
}

impl Recorder {
    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// What the applications do on one connection.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Written by the client (host A) ...
    pub client_data: Vec<u8>,
    /// ... and by the server.
    pub server_data: Vec<u8>,
    /// Rekeys the client starts, spread over its data.
    pub client_rekeys: usize,
    /// Rekeys the server starts.
    pub server_rekeys: usize,
    /// Sent by the client as urgent data (one URGp frame each) after its data.
    pub client_urgent: Vec<Vec<u8>>,
    /// Both close with FINp (else the connection stays open).
    pub close: bool,
}

/// One connection as it will appear in the capture.
#[derive(Clone, Debug)]
pub struct Conn {
    /// Opened by two SYNs (the handshake has SYN, SYN, SYN-ACK, SYN-ACK).
    pub simultaneous: bool,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// The handshake segments as delivered (client = A = active opener).
    pub handshake: Vec<Segment>,
    /// The byte streams on the wire.
    pub c2s: Vec<u8>,
    pub s2c: Vec<u8>,
    /// Send a TCP FIN after the stream.
    pub c2s_fin: bool,
    pub s2c_fin: bool,
    /// Send a RST from the client at the end.
    pub client_rst: bool,
    /// The application bytes each side read.
    pub server_received: Vec<u8>,
    pub client_received: Vec<u8>,
    /// The session ID both sessions report.
    pub session_id: Option<SessionId>,
    pub aead: Option<AeadId>,
    pub resumed: bool,
    /// The generation each host ended sending with: the rekey frames it sent.
    pub client_generation: u64,
    pub server_generation: u64,
}

pub fn host(name: &'static str, seed: u64, log: &Arc<Recorder>) -> Host {
    let mut h = Host::new(name, seed);
    h.session = SessionConfig::default().with_key_log(log.clone());
    h
}

pub fn with_aead(h: &mut Host, aead: AeadId) {
    h.session.aead_offer = vec![aead];
    h.session.aead_preference = vec![aead];
}

pub fn with_tep(h: &mut Host, tep: TepId) {
    h.eno = tcpcrypt_proto::eno::Config::new(&[tep]).unwrap();
}

/// A whole connection between `a` (client) and `b` (server) over `path`; sessions run when
/// both sides enabled ENO, else the script's data travel as plain TCP.
pub fn connection(
    a: &mut Host,
    b: &mut Host,
    path: PathFn<'_>,
    client: SocketAddr,
    server: SocketAddr,
    script: &Script,
) -> Conn {
    let hs = endpoint::three_way(a, b, path);
    run_connection(hs, a, b, client, server, script, false)
}

/// A simultaneous open (RFC 8547 §4.6): both hosts send a SYN, then a SYN-ACK; `a` sends first
/// and is the capture's client.
pub fn simultaneous(
    a: &mut Host,
    b: &mut Host,
    client: SocketAddr,
    server: SocketAddr,
    script: &Script,
) -> Conn {
    let hs = endpoint::simultaneous_open(a, b, &mut endpoint::clean_path());
    run_connection(hs, a, b, client, server, script, true)
}

fn run_connection(
    mut hs: endpoint::Handshake,
    a: &mut Host,
    b: &mut Host,
    client: SocketAddr,
    server: SocketAddr,
    script: &Script,
    simultaneous: bool,
) -> Conn {
    let mut conn = Conn {
        simultaneous,
        client,
        server,
        handshake: hs.wire.clone(),
        c2s: Vec::new(),
        s2c: Vec::new(),
        c2s_fin: script.close,
        s2c_fin: script.close,
        client_rst: false,
        server_received: Vec::new(),
        client_received: Vec::new(),
        session_id: None,
        aead: None,
        resumed: false,
        client_generation: 0,
        server_generation: 0,
    };
    if !hs.both_enabled() {
        conn.c2s = script.client_data.clone();
        conn.s2c = script.server_data.clone();
        conn.server_received = script.client_data.clone();
        conn.client_received = script.server_data.clone();
        return conn;
    }
    let na: Negotiated = hs.a.take_negotiated().unwrap();
    let nb: Negotiated = hs.b.take_negotiated().unwrap();
    let now = Instant::now();
    let p = provider();
    let mut sa = Session::new(na, Arc::new(a.session.clone()), p.clone(), &mut a.rng, now).unwrap();
    let mut sb = Session::new(nb, Arc::new(b.session.clone()), p, &mut b.rng, now).unwrap();
    let mut d = Driver::default();
    d.pump(&mut sa, &mut sb);
    write_with_rekeys(
        &mut d,
        &mut sa,
        &mut sb,
        true,
        &script.client_data,
        script.client_rekeys,
    );
    write_with_rekeys(
        &mut d,
        &mut sa,
        &mut sb,
        false,
        &script.server_data,
        script.server_rekeys,
    );
    for urgent in &script.client_urgent {
        assert_eq!(sa.write_urgent(urgent).unwrap(), urgent.len());
        d.pump(&mut sa, &mut sb);
    }
    if script.close {
        sa.close().unwrap();
        sb.close().unwrap();
        d.pump(&mut sa, &mut sb);
    }
    assert!(
        sa.error().is_none() && sb.error().is_none(),
        "{:?} {:?}",
        sa.error(),
        sb.error()
    );
    assert_eq!(sa.session_id(), sb.session_id());
    let (a_name, b_name) = (a.name, b.name);
    for (s, host, peer) in [(&mut sa, &mut *a, b_name), (&mut sb, &mut *b, a_name)] {
        while let Some(e) = s.poll_event() {
            if let Event::ResumableSecret(secret) = e {
                host.cache.insert(peer, secret, Instant::now());
            }
        }
    }
    conn.session_id = sa.session_id();
    conn.aead = sa.aead();
    conn.resumed = sa.is_resumed();
    conn.client_generation = sa.local_generation();
    conn.server_generation = sb.local_generation();
    conn.c2s = d.ab;
    conn.s2c = d.ba;
    conn.server_received = d.b_recv;
    conn.client_received = d.a_recv;
    conn
}

/// [`connection`] over a path that changes nothing.
pub fn clean(
    a: &mut Host,
    b: &mut Host,
    client: SocketAddr,
    server: SocketAddr,
    script: &Script,
) -> Conn {
    connection(a, b, &mut endpoint::clean_path(), client, server, script)
}

fn write_with_rekeys(
    d: &mut Driver,
    sa: &mut Session,
    sb: &mut Session,
    from_a: bool,
    data: &[u8],
    rekeys: usize,
) {
    let pieces = rekeys + 1;
    let step = data.len().div_ceil(pieces).max(1);
    for (i, chunk) in data.chunks(step).enumerate() {
        let s = if from_a { &mut *sa } else { &mut *sb };
        if i > 0 {
            assert!(s.initiate_rekey().unwrap());
        }
        let mut at = 0;
        for _ in 0..10_000 {
            if at == chunk.len() {
                break;
            }
            let s = if from_a { &mut *sa } else { &mut *sb };
            at += s.write_plaintext(&chunk[at..]).unwrap();
            d.pump(sa, sb);
        }
        assert_eq!(at, chunk.len());
    }
    if data.is_empty() && rekeys > 0 {
        let s = if from_a { &mut *sa } else { &mut *sb };
        assert!(s.initiate_rekey().unwrap());
    }
    d.pump(sa, sb);
}

/// Moves ciphertext between two sessions and records it.
#[derive(Default)]
struct Driver {
    ab: Vec<u8>,
    ba: Vec<u8>,
    ab_at: usize,
    ba_at: usize,
    a_fin: bool,
    b_fin: bool,
    a_fin_given: bool,
    b_fin_given: bool,
    a_recv: Vec<u8>,
    b_recv: Vec<u8>,
}

impl Driver {
    fn pump(&mut self, sa: &mut Session, sb: &mut Session) {
        for _ in 0..100_000 {
            let mut progress = false;
            let mut out = Vec::new();
            let t = sa.poll_ciphertext(&mut out);
            progress |= !out.is_empty();
            self.ab.extend_from_slice(&out);
            self.a_fin |= t.fin;
            out.clear();
            let t = sb.poll_ciphertext(&mut out);
            progress |= !out.is_empty();
            self.ba.extend_from_slice(&out);
            self.b_fin |= t.fin;
            progress |= deliver(&self.ab, &mut self.ab_at, sb, &mut self.b_recv);
            progress |= deliver(&self.ba, &mut self.ba_at, sa, &mut self.a_recv);
            if self.a_fin && self.ab_at == self.ab.len() && !self.a_fin_given {
                self.a_fin_given = true;
                sb.handle_peer_fin().unwrap();
                progress = true;
            }
            if self.b_fin && self.ba_at == self.ba.len() && !self.b_fin_given {
                self.b_fin_given = true;
                sa.handle_peer_fin().unwrap();
                progress = true;
            }
            if !progress {
                return;
            }
        }
        panic!("sessions did not settle");
    }
}

fn deliver(stream: &[u8], at: &mut usize, s: &mut Session, recv: &mut Vec<u8>) -> bool {
    let mut progress = false;
    loop {
        if *at < stream.len() {
            let n = s.handle_ciphertext(&stream[*at..]).unwrap();
            *at += n;
            progress |= n > 0;
        }
        let mut buf = [0u8; 8192];
        match s.read_plaintext(&mut buf).unwrap() {
            Read::Data(n) if n > 0 => {
                recv.extend_from_slice(&buf[..n]);
                progress = true;
            }
            _ => return progress,
        }
    }
}

/// How the segments of a connection are put on the wire.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wire {
    /// Payload bytes per segment.
    pub mss: usize,
    /// Send every third data segment twice.
    pub retransmit: bool,
    /// Swap neighbouring data segments.
    pub reorder: bool,
    /// Added to both initial sequence numbers (a later connection on the same 4-tuple).
    pub isn_shift: u32,
}

/// Pads an options area to a multiple of 4 with EOL bytes.
fn pad(options: &[u8]) -> Vec<u8> {
    let mut o = options.to_vec();
    o.resize(o.len().div_ceil(4) * 4, 0);
    o
}

/// The IP packets of a connection, in capture order.
pub fn packets(conn: &Conn, wire: Wire) -> Vec<Vec<u8>> {
    let (c, s) = (conn.client, conn.server);
    // The client's ISN wraps past 2^32 within the first kilobytes.
    let (c_isn, s_isn) = (
        0xffff_fc00_u32.wrapping_add(wire.isn_shift),
        7_000_u32.wrapping_add(wire.isn_shift),
    );
    let mut out = Vec::new();
    let ack_flags = TcpFlags::ACK;
    let syn_ack_flags = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
    let hs = &conn.handshake;
    let (first_a, first_b) = if conn.simultaneous {
        // SYN both ways, then SYN-ACK both ways (each acknowledging the other's SYN).
        let (ca, sa) = (c_isn.wrapping_add(1), s_isn.wrapping_add(1));
        out.push(segment_with_options(
            c,
            s,
            c_isn,
            0,
            TcpFlags::SYN,
            &pad(&hs[0].options),
            &[],
        ));
        out.push(segment_with_options(
            s,
            c,
            s_isn,
            0,
            TcpFlags::SYN,
            &pad(&hs[1].options),
            &[],
        ));
        out.push(segment_with_options(
            c,
            s,
            c_isn,
            sa,
            syn_ack_flags,
            &pad(&hs[2].options),
            &[],
        ));
        out.push(segment_with_options(
            s,
            c,
            s_isn,
            ca,
            syn_ack_flags,
            &pad(&hs[3].options),
            &[],
        ));
        (None, None)
    } else {
        let (syn, syn_ack, ack) = (&hs[0], &hs[1], &hs[2]);
        out.push(segment_with_options(
            c,
            s,
            c_isn,
            0,
            TcpFlags::SYN,
            &pad(&syn.options),
            &[],
        ));
        out.push(segment_with_options(
            s,
            c,
            s_isn,
            c_isn.wrapping_add(1),
            syn_ack_flags,
            &pad(&syn_ack.options),
            &[],
        ));
        out.push(segment_with_options(
            c,
            s,
            c_isn.wrapping_add(1),
            s_isn.wrapping_add(1),
            ack_flags,
            &pad(&ack.options),
            &[],
        ));
        (
            hs.get(3).map(|s| s.options.clone()),
            hs.get(4).map(|s| s.options.clone()),
        )
    };
    let mss = if wire.mss == 0 { 1000 } else { wire.mss };
    let psh = TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0);
    let mut data = Vec::new();
    for (from_client, stream, first_opts) in
        [(true, &conn.c2s, &first_a), (false, &conn.s2c, &first_b)]
    {
        let (src, dst, isn, peer_isn) = if from_client {
            (c, s, c_isn, s_isn)
        } else {
            (s, c, s_isn, c_isn)
        };
        for (i, chunk) in stream.chunks(mss).enumerate() {
            let opts = match (i, first_opts) {
                (0, Some(o)) => pad(o),
                _ => LINUX_ACK_OPTIONS.to_vec(),
            };
            let seq = isn.wrapping_add(1).wrapping_add((i * mss) as u32);
            data.push(segment_with_options(
                src,
                dst,
                seq,
                peer_isn.wrapping_add(1),
                psh,
                &opts,
                chunk,
            ));
        }
    }
    if wire.reorder {
        for pair in data.chunks_mut(2) {
            pair.reverse();
        }
    }
    for (i, p) in data.into_iter().enumerate() {
        if wire.retransmit && i % 3 == 1 {
            out.push(p.clone());
        }
        out.push(p);
    }
    let fin = TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0);
    let c_end = c_isn.wrapping_add(1).wrapping_add(conn.c2s.len() as u32);
    let s_end = s_isn.wrapping_add(1).wrapping_add(conn.s2c.len() as u32);
    if conn.c2s_fin {
        out.push(segment_with_options(
            c,
            s,
            c_end,
            s_end,
            fin,
            &LINUX_ACK_OPTIONS,
            &[],
        ));
    }
    if conn.s2c_fin {
        out.push(segment_with_options(
            s,
            c,
            s_end,
            c_end.wrapping_add(1),
            fin,
            &LINUX_ACK_OPTIONS,
            &[],
        ));
    }
    if conn.client_rst {
        out.push(segment_with_options(
            c,
            s,
            c_end,
            0,
            TcpFlags::RST,
            &[],
            &[],
        ));
    }
    out
}

/// Writes packets as a capture in `format` with link type `link`.
pub fn capture(format: Format, link: u32, packets: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::new(format, link);
    for (i, p) in packets.iter().enumerate() {
        w.push_ip(1_700_000_000_000_000_000 + i as u64 * 1_000_123, p);
    }
    w.finish()
}

/// The common case: little-endian pcap, Ethernet.
pub fn pcap(packets: &[Vec<u8>]) -> Vec<u8> {
    capture(
        Format::Pcap {
            big_endian: false,
            nanos: false,
        },
        linktype::ETHERNET,
        packets,
    )
}

pub fn v4(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 77, 0, host], port))
}

pub fn v6(host: u16, port: u16) -> SocketAddr {
    SocketAddr::from(([0xfd77, 0, 0, 0, 0, 0, 0, host], port))
}

/// Deterministic application data.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    tcpcrypt_tests::data(len, seed)
}

pub fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Endpoint directions, re-exported for path closures.
pub fn is_dir(seg: &Segment, dir: Dir) -> bool {
    seg.dir == dir
}
