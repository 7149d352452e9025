//! `--write-plain`: a pcap that ordinary tools (tcpdump, Wireshark) read, with one synthetic
//! plain TCP connection per decrypted connection, carrying the recovered application bytes
//! (RFC 9293 segments with valid IPv4/IPv6 and TCP checksums, computed by the core's
//! [`TcpIpPacket::fill_checksums`]).
//!
//! Each connection gets a three-way handshake, the client's data, the server's data (in
//! segments of at most [`SEGMENT_DATA`] bytes, each acknowledged), and a FIN for each direction
//! whose FINp authenticated (a RST for a reset connection; nothing for a truncated one). The
//! addresses and ports are the original ones; sequence numbers start at 1000 (client) and
//! 5000 (server); timestamps count up from the original connection's first segment.

use std::net::{IpAddr, SocketAddr};

use tcpcrypt_proto::wire::packet::{TcpFlags, TcpIpPacket};

use crate::capture::linktype;
use crate::pcap_writer::{Format, Writer};
use crate::Inspection;

/// Payload per synthetic segment.
pub const SEGMENT_DATA: usize = 1400;

const CLIENT_ISN: u32 = 1000;
const SERVER_ISN: u32 = 5000;

/// The pcap for the connections whose plaintext was recovered with keys (tcpcrypt
/// connections with `keys: known`); `None` if there are none.
pub fn write(inspection: &Inspection) -> Option<Vec<u8>> {
    let mut w = Writer::new(
        Format::Pcap {
            big_endian: false,
            nanos: false,
        },
        linktype::ETHERNET,
    );
    let mut any = false;
    for (i, conn) in inspection.connections.iter().enumerate() {
        if conn.report.keys != crate::report::Keys::Known {
            continue;
        }
        let (Some(c2s), Some(s2c)) = (
            conn.plaintext.client_to_server.as_deref(),
            conn.plaintext.server_to_client.as_deref(),
        ) else {
            continue;
        };
        any = true;
        let mut t = (i as u64 + 1) * 1_000_000_000;
        let mut push = |w: &mut Writer, pkt: Vec<u8>| {
            t += 1000;
            w.push_ip(t, &pkt);
        };
        let (c, s) = (conn.client, conn.server);
        let mut cseq = CLIENT_ISN;
        let mut sseq = SERVER_ISN;
        push(&mut w, segment(c, s, cseq, 0, TcpFlags::SYN, &[]));
        cseq = cseq.wrapping_add(1);
        push(
            &mut w,
            segment(
                s,
                c,
                sseq,
                cseq,
                TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0),
                &[],
            ),
        );
        sseq = sseq.wrapping_add(1);
        push(&mut w, segment(c, s, cseq, sseq, TcpFlags::ACK, &[]));
        for chunk in c2s.chunks(SEGMENT_DATA) {
            push(&mut w, segment(c, s, cseq, sseq, psh_ack(), chunk));
            cseq = cseq.wrapping_add(chunk.len() as u32);
            push(&mut w, segment(s, c, sseq, cseq, TcpFlags::ACK, &[]));
        }
        for chunk in s2c.chunks(SEGMENT_DATA) {
            push(&mut w, segment(s, c, sseq, cseq, psh_ack(), chunk));
            sseq = sseq.wrapping_add(chunk.len() as u32);
            push(&mut w, segment(c, s, cseq, sseq, TcpFlags::ACK, &[]));
        }
        // A direction ends with a FIN only if its end was authenticated (FINp); a connection
        // that was reset, truncated or failed to verify stops where its plaintext stops, and
        // a reset one ends with a RST, so no tool mistakes it for a clean close.
        let fin_ack = TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0);
        if conn.clean_end.client_to_server {
            push(&mut w, segment(c, s, cseq, sseq, fin_ack, &[]));
            cseq = cseq.wrapping_add(1);
        }
        if conn.clean_end.server_to_client {
            push(&mut w, segment(s, c, sseq, cseq, fin_ack, &[]));
            sseq = sseq.wrapping_add(1);
            push(&mut w, segment(c, s, cseq, sseq, TcpFlags::ACK, &[]));
        }
        if conn.report.end == crate::report::End::Reset {
            push(&mut w, segment(c, s, cseq, 0, TcpFlags::RST, &[]));
        }
    }
    any.then(|| w.finish())
}

/// A pcap with no packets (the header alone), in the format [`write()`] uses.
pub fn empty() -> Vec<u8> {
    Writer::new(
        Format::Pcap {
            big_endian: false,
            nanos: false,
        },
        linktype::ETHERNET,
    )
    .finish()
}

fn psh_ack() -> TcpFlags {
    TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0)
}

/// One IPv4 or IPv6 packet with a 20-byte TCP header, checksums filled.
pub fn segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    segment_with_options(src, dst, seq, ack, flags, &[], payload)
}

/// [`segment`] with a TCP options area (a multiple of 4 bytes, at most 40).
pub fn segment_with_options(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let tcp_len = 20 + options.len() + payload.len();
    let mut p = Vec::with_capacity(40 + tcp_len);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + tcp_len) as u16;
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let to6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            p.extend_from_slice(&[6, 64]);
            p.extend_from_slice(&to6(s).octets());
            p.extend_from_slice(&to6(d).octets());
        }
    }
    p.extend_from_slice(&src.port().to_be_bytes());
    p.extend_from_slice(&dst.port().to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    let offset_words = ((20 + options.len()) / 4) as u8;
    p.push(offset_words << 4);
    p.push(flags.0);
    p.extend_from_slice(&65535u16.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(options);
    p.extend_from_slice(payload);
    if let Ok(mut packet) = TcpIpPacket::new_checked(&mut p[..]) {
        packet.fill_checksums();
    }
    p
}
