//! TCP connections and their byte streams, rebuilt from captured segments (RFC 9293 §3.4
//! sequence numbers): one [`Connection`] per 4-tuple and SYN, one [`Stream`] per direction.
//!
//! Reassembly keeps the first copy of every byte: a retransmission that repeats bytes is
//! counted, one that *changes* them is an anomaly; out-of-order segments wait until the gap
//! before them fills; bytes beyond a gap that never fills are reported, not used (the stream
//! then ends at the gap and the connection counts as truncated).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use tcpcrypt_proto::wire::packet::{TcpFlags, TcpIpPacket};

use crate::capture::{ip_payload, Record};

/// One TCP segment as captured.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Index of the capture record (0-based).
    pub record: usize,
    /// Timestamp, nanoseconds.
    pub ts_ns: u64,
    /// Sent by the connection's client (the host that sent the first SYN).
    pub from_client: bool,
    /// Sequence number.
    pub seq: u32,
    /// TCP flags.
    pub flags: TcpFlags,
    /// The TCP options area.
    pub options: Vec<u8>,
    /// Payload length.
    pub payload_len: usize,
}

impl Segment {
    /// SYN set.
    pub fn syn(&self) -> bool {
        self.flags.contains(TcpFlags::SYN)
    }
    /// ACK set.
    pub fn ack(&self) -> bool {
        self.flags.contains(TcpFlags::ACK)
    }
}

/// One direction's reassembled byte stream.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// The sequence number of the first data byte (ISN + 1), once known.
    base: Option<u32>,
    /// Whether `base` came from a SYN (otherwise from the first data segment seen).
    pub saw_syn: bool,
    /// Contiguous bytes from the start of the stream.
    pub bytes: Vec<u8>,
    /// Segments waiting beyond a gap, by stream offset.
    pending: BTreeMap<u64, Vec<u8>>,
    /// Segments that repeated bytes already held.
    pub retransmissions: u64,
    /// Segments whose bytes differ from an earlier copy (the first copy is kept).
    pub conflicting_overlaps: u64,
    /// Segments that arrived before bytes preceding them.
    pub out_of_order: u64,
    /// Stream offset of the FIN, if one was seen.
    pub fin_at: Option<u64>,
    /// A RST was sent in this direction.
    pub rst: bool,
    /// Highest stream offset seen, to unwrap 32-bit sequence numbers.
    high: u64,
}

impl Stream {
    /// The stream offset of sequence number `seq`, unwrapped near the highest offset seen.
    fn offset(&self, base: u32, seq: u32) -> Option<u64> {
        let high_seq = base.wrapping_add(self.high as u32);
        let delta = i64::from(seq.wrapping_sub(high_seq) as i32);
        u64::try_from(self.high as i64 + delta).ok()
    }

    fn push(&mut self, seq: u32, syn: bool, fin: bool, payload: &[u8]) {
        if syn {
            self.base.get_or_insert(seq.wrapping_add(1));
            self.saw_syn = true;
        }
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        if self.base.is_none() && (!payload.is_empty() || fin) {
            self.base = Some(data_seq);
        }
        let Some(base) = self.base else { return };
        let Some(at) = self.offset(base, data_seq) else {
            // Before the stream's start: a stray old segment.
            self.conflicting_overlaps += u64::from(!payload.is_empty());
            return;
        };
        let end = at + payload.len() as u64;
        self.high = self.high.max(end);
        if fin {
            self.fin_at.get_or_insert(end);
        }
        if payload.is_empty() {
            return;
        }
        self.insert(at, payload);
        self.drain_pending();
    }

    fn insert(&mut self, at: u64, payload: &[u8]) {
        let have = self.bytes.len() as u64;
        if at > have {
            self.out_of_order += 1;
            let slot = self.pending.entry(at).or_default();
            if payload.len() > slot.len() {
                *slot = payload.to_vec();
            }
            return;
        }
        let skip = (have - at) as usize;
        let overlap = skip.min(payload.len());
        if overlap > 0 {
            if self.bytes[at as usize..at as usize + overlap] != payload[..overlap] {
                self.conflicting_overlaps += 1;
            } else {
                self.retransmissions += 1;
            }
        }
        if skip < payload.len() {
            self.bytes.extend_from_slice(&payload[skip..]);
        }
    }

    fn drain_pending(&mut self) {
        while let Some((&at, _)) = self.pending.first_key_value() {
            if at > self.bytes.len() as u64 {
                break;
            }
            if let Some(data) = self.pending.remove(&at) {
                // Counted once already as out of order; this merge is not a retransmission.
                let have = self.bytes.len() as u64;
                let skip = (have - at) as usize;
                if skip < data.len() {
                    self.bytes.extend_from_slice(&data[skip..]);
                }
            }
        }
    }

    /// Bytes held beyond a gap that never filled (0 if the stream is whole).
    pub fn bytes_beyond_gap(&self) -> u64 {
        self.pending.values().map(|v| v.len() as u64).sum()
    }

    /// The stream has a hole: bytes or a FIN beyond what was reassembled.
    pub fn has_gap(&self) -> bool {
        !self.pending.is_empty() || self.fin_at.is_some_and(|f| f > self.bytes.len() as u64)
    }

    /// A FIN was seen and every byte before it is here.
    pub fn fin_complete(&self) -> bool {
        self.fin_at == Some(self.bytes.len() as u64)
    }
}

/// One TCP connection.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The host that sent the first SYN (or, without one, the first segment's sender).
    pub client: SocketAddr,
    /// The other host.
    pub server: SocketAddr,
    /// Every segment, in capture order.
    pub segments: Vec<Segment>,
    /// Client to server.
    pub c2s: Stream,
    /// Server to client.
    pub s2c: Stream,
}

impl Connection {
    fn new(client: SocketAddr, server: SocketAddr) -> Self {
        Self {
            client,
            server,
            segments: Vec::new(),
            c2s: Stream::default(),
            s2c: Stream::default(),
        }
    }

    /// The connection has ended (FIN both ways, or a RST) and a new SYN may start another one
    /// on the same 4-tuple.
    fn ended(&self) -> bool {
        self.c2s.rst || self.s2c.rst || (self.c2s.fin_at.is_some() && self.s2c.fin_at.is_some())
    }
}

/// What the packets of a capture hold besides connections.
#[derive(Debug, Clone, Default)]
pub struct Skipped {
    /// Records that are not IP (ARP, ...).
    pub not_ip: u64,
    /// IP packets that are not plain TCP (UDP, ICMP, fragments, extension headers).
    pub not_tcp: u64,
    /// Records cut by the snap length or malformed, so no segment could be read.
    pub unreadable: u64,
}

/// Splits the capture into connections, in order of their first segment.
pub fn connections(records: &[Record]) -> (Vec<Connection>, Skipped) {
    let mut conns: Vec<Connection> = Vec::new();
    let mut by_tuple: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    let mut skipped = Skipped::default();
    for (index, record) in records.iter().enumerate() {
        let Ok(ip) = ip_payload(record.link, &record.data) else {
            skipped.not_ip += 1;
            continue;
        };
        let packet = match TcpIpPacket::new_checked(ip) {
            Ok(p) => p,
            Err(tcpcrypt_proto::wire::packet::PacketError::NotPlainTcp { .. }) => {
                skipped.not_tcp += 1;
                continue;
            }
            Err(_) => {
                skipped.unreadable += 1;
                continue;
            }
        };
        let flow = packet.flow();
        let tcp = packet.tcp();
        let flags = tcp.flags();
        let syn_only = flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK);
        let key = (flow.src, flow.dst);
        let rev = (flow.dst, flow.src);
        let existing = by_tuple.get(&key).or_else(|| by_tuple.get(&rev)).copied();
        let idx = match existing {
            Some(i)
                if !(syn_only
                    && conns[i].ended()
                    && is_new_syn(&conns[i], &flow.src, tcp.seq_number())) =>
            {
                i
            }
            _ => {
                let (client, server) =
                    if flags.contains(TcpFlags::SYN) && flags.contains(TcpFlags::ACK) {
                        (flow.dst, flow.src)
                    } else {
                        (flow.src, flow.dst)
                    };
                conns.push(Connection::new(client, server));
                let i = conns.len() - 1;
                by_tuple.insert((client, server), i);
                by_tuple.remove(&(server, client));
                i
            }
        };
        let conn = &mut conns[idx];
        let from_client = flow.src == conn.client;
        let payload = packet.tcp_payload();
        let stream = if from_client {
            &mut conn.c2s
        } else {
            &mut conn.s2c
        };
        if flags.contains(TcpFlags::RST) {
            stream.rst = true;
        }
        stream.push(
            tcp.seq_number(),
            flags.contains(TcpFlags::SYN),
            flags.contains(TcpFlags::FIN),
            if flags.contains(TcpFlags::RST) {
                &[]
            } else {
                payload
            },
        );
        conn.segments.push(Segment {
            record: index,
            ts_ns: record.ts_ns,
            from_client,
            seq: tcp.seq_number(),
            flags,
            options: packet.tcp_options().to_vec(),
            payload_len: payload.len(),
        });
    }
    (conns, skipped)
}

/// A SYN from `src` with a sequence number other than the connection's own SYN's.
fn is_new_syn(conn: &Connection, src: &SocketAddr, seq: u32) -> bool {
    !conn.segments.iter().any(|s| {
        s.syn()
            && !s.ack()
            && (if s.from_client {
                conn.client
            } else {
                conn.server
            }) == *src
            && s.seq == seq
    })
}
