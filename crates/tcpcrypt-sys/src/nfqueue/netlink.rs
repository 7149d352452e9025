//! The nfnetlink_queue message codec, in safe code on byte slices: building config and verdict
//! requests, and parsing the kernel's packet and error messages (netlink(7), linux/netlink.h,
//! linux/netfilter/nfnetlink.h, linux/netfilter/nfnetlink_queue.h). The generic part (the
//! [`Request`] builder with nested attributes, [`messages`], [`attributes`], [`error_code`]) is
//! shared with the ctnetlink client (`crate::conntrack`).
//!
//! Layout: `nlmsghdr` (16 bytes, host order) + `nfgenmsg` (4 bytes: family, version, queue
//! number in network order) + attributes (`nlattr`: 2-byte length, 2-byte type, host order,
//! payload padded to 4). nfqueue attribute values are in network byte order.

/// `NFNL_SUBSYS_QUEUE`, the high byte of every nfqueue message type.
const NFNL_SUBSYS_QUEUE: u16 = 3;
/// `NFQNL_MSG_PACKET`: a queued packet, kernel to user.
pub(super) const MSG_PACKET: u16 = NFNL_SUBSYS_QUEUE << 8;
/// `NFQNL_MSG_VERDICT`.
pub(super) const MSG_VERDICT: u16 = (NFNL_SUBSYS_QUEUE << 8) | 1;
/// `NFQNL_MSG_CONFIG`.
pub(super) const MSG_CONFIG: u16 = (NFNL_SUBSYS_QUEUE << 8) | 2;

/// `NLMSG_ERROR`: an ack (error 0) or an error report.
pub(crate) const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`.
pub(crate) const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_ACK`.
pub(crate) const NLM_F_ACK: u16 = 4;

/// Config attributes (`enum nfqnl_attr_config`).
pub(super) const NFQA_CFG_CMD: u16 = 1;
pub(super) const NFQA_CFG_PARAMS: u16 = 2;
pub(super) const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
pub(super) const NFQA_CFG_MASK: u16 = 4;
pub(super) const NFQA_CFG_FLAGS: u16 = 5;
/// `NFQNL_CFG_CMD_BIND`.
pub(super) const CMD_BIND: u8 = 1;
/// `NFQNL_COPY_PACKET`.
pub(super) const COPY_PACKET: u8 = 2;
/// `NFQA_CFG_F_FAIL_OPEN`: accept instead of drop when the queue is full.
pub(super) const CFG_F_FAIL_OPEN: u32 = 1;
/// `NFQA_CFG_F_GSO`: hand over GSO packets unsegmented, checksums possibly partial.
pub(super) const CFG_F_GSO: u32 = 4;

/// Packet attributes (`enum nfqnl_attr_type`).
const NFQA_PACKET_HDR: u16 = 1;
pub(super) const NFQA_VERDICT_HDR: u16 = 2;
pub(super) const NFQA_MARK: u16 = 3;
const NFQA_IFINDEX_INDEV: u16 = 5;
const NFQA_IFINDEX_OUTDEV: u16 = 6;
pub(super) const NFQA_PAYLOAD: u16 = 10;
const NFQA_CAP_LEN: u16 = 13;

/// `NF_DROP`, `NF_ACCEPT` and `NF_REPEAT` (linux/netfilter.h).
pub(super) const NF_DROP: u32 = 0;
pub(super) const NF_ACCEPT: u32 = 1;
pub(super) const NF_REPEAT: u32 = 4;

const NLMSG_HDR_LEN: usize = 16;
/// `struct nfgenmsg`: family, version, res_id (big-endian).
pub(crate) const NFGENMSG_LEN: usize = 4;
const NLA_HDR_LEN: usize = 4;
/// The type bits of `nla_type` (without NLA_F_NESTED and NLA_F_NET_BYTEORDER).
const NLA_TYPE_MASK: u16 = 0x3fff;

const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Builds one nfnetlink message.
pub(crate) struct Request {
    buf: Vec<u8>,
}

impl Request {
    /// Starts a message of `msg_type` for `queue_num`.
    pub(super) fn new(msg_type: u16, flags: u16, seq: u32, queue_num: u16) -> Self {
        Self::with_nfgenmsg(msg_type, flags, seq, libc::AF_UNSPEC as u8, queue_num)
    }

    /// Starts a message of `msg_type` whose `nfgenmsg` carries `family` and `res_id` (the
    /// queue number for nfqueue, the conntrack zone for ctnetlink).
    pub(crate) fn with_nfgenmsg(
        msg_type: u16,
        flags: u16,
        seq: u32,
        family: u8,
        res_id: u16,
    ) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, set by `finish`
        buf.extend_from_slice(&msg_type.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel
        buf.push(family); // nfgen_family
        buf.push(0); // NFNETLINK_V0
        buf.extend_from_slice(&res_id.to_be_bytes());
        Self { buf }
    }

    /// Appends an attribute.
    ///
    /// # Panics
    /// If `data` is longer than an attribute can be (65531 bytes); callers pass at most one
    /// IP packet (65535 bytes are refused before this by the caller).
    pub(crate) fn attr(mut self, attr_type: u16, data: &[u8]) -> Self {
        let len = u16::try_from(NLA_HDR_LEN + data.len()).expect("attribute fits in 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&attr_type.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// Appends a big-endian u32 attribute.
    pub(super) fn attr_u32(self, attr_type: u16, value: u32) -> Self {
        self.attr(attr_type, &value.to_be_bytes())
    }

    /// Sets the length and returns the bytes to send.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32; // at most one packet plus headers
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// The largest payload a verdict can carry: an attribute's 16-bit length minus its header.
pub(super) const MAX_VERDICT_PAYLOAD: usize = u16::MAX as usize - NLA_HDR_LEN;

/// One message of a received datagram.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Message<'a> {
    /// A queued packet.
    Packet(PacketAttrs<'a>),
    /// An ack (`errno == 0`) or an error report for the request with sequence number `seq`.
    Error {
        /// The positive errno, or 0 for an ack.
        errno: i32,
        /// The sequence number of the request it answers.
        seq: u32,
    },
    /// Anything else (NLMSG_NOOP, NLMSG_DONE, other types): ignored.
    Other,
}

/// The attributes of a queued packet.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct PacketAttrs<'a> {
    pub(super) packet_id: u32,
    pub(super) hw_protocol: u16,
    pub(super) hook: u8,
    pub(super) mark: u32,
    pub(super) indev: Option<u32>,
    pub(super) outdev: Option<u32>,
    pub(super) cap_len: Option<u32>,
    pub(super) payload: &'a [u8],
}

/// Why a datagram did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed netlink message: {0}")]
pub struct NetlinkParseError(pub &'static str);

/// One message of a datagram, undecoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawMessage<'a> {
    /// `nlmsg_type`.
    pub(crate) msg_type: u16,
    /// `nlmsg_seq`.
    pub(crate) seq: u32,
    /// Everything after the `nlmsghdr` (for nfnetlink: `nfgenmsg` and attributes).
    pub(crate) body: &'a [u8],
}

/// The messages of a received datagram, in order; an `Err` (a length that does not fit) ends
/// it. Trailing bytes shorter than a header are ignored. Total: never panics.
pub(crate) fn messages(
    data: &[u8],
) -> impl Iterator<Item = Result<RawMessage<'_>, NetlinkParseError>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDR_LEN {
            return None;
        }
        let len = u32_ne(&rest[0..4]) as usize;
        if len < NLMSG_HDR_LEN || len > rest.len() {
            rest = &[];
            return Some(Err(NetlinkParseError("nlmsg_len")));
        }
        let message = RawMessage {
            msg_type: u16::from_ne_bytes([rest[4], rest[5]]),
            seq: u32_ne(&rest[8..12]),
            body: &rest[NLMSG_HDR_LEN..len],
        };
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(message))
    })
}

/// The positive errno of an `NLMSG_ERROR` message's body (`struct nlmsgerr`), 0 for an ack.
pub(crate) fn error_code(body: &[u8]) -> Result<i32, NetlinkParseError> {
    match body {
        [a, b, c, d, ..] => Ok(i32::from_ne_bytes([*a, *b, *c, *d]).saturating_neg()),
        _ => Err(NetlinkParseError("nlmsgerr")),
    }
}

/// The attributes of an attribute block as (type without the NLA_F_* flags, value), in
/// order; an `Err` (a length that does not fit) ends it. Trailing bytes shorter than an
/// attribute header are ignored. Total: never panics.
pub(crate) fn attributes(
    data: &[u8],
) -> impl Iterator<Item = Result<(u16, &[u8]), NetlinkParseError>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < NLA_HDR_LEN {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let attr_type = u16::from_ne_bytes([rest[2], rest[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDR_LEN || len > rest.len() {
            rest = &[];
            return Some(Err(NetlinkParseError("nla_len")));
        }
        let value = &rest[NLA_HDR_LEN..len];
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some(Ok((attr_type, value)))
    })
}

/// Splits a received datagram into messages. Total: never panics.
pub(super) fn parse_datagram(data: &[u8]) -> Result<Vec<Message<'_>>, NetlinkParseError> {
    let mut out = Vec::new();
    for message in messages(data) {
        let RawMessage {
            msg_type,
            seq,
            body,
        } = message?;
        out.push(match msg_type {
            NLMSG_ERROR => Message::Error {
                errno: error_code(body)?,
                seq,
            },
            MSG_PACKET => Message::Packet(parse_packet(body)?),
            NLMSG_DONE => Message::Other,
            _ => Message::Other,
        });
    }
    Ok(out)
}

fn parse_packet(body: &[u8]) -> Result<PacketAttrs<'_>, NetlinkParseError> {
    let attrs = body
        .get(NFGENMSG_LEN..)
        .ok_or(NetlinkParseError("nfgenmsg"))?;
    let mut packet = PacketAttrs::default();
    let mut have_header = false;
    for attr in attributes(attrs) {
        let (attr_type, value) = attr?;
        match attr_type {
            NFQA_PACKET_HDR => {
                // struct nfqnl_msg_packet_hdr { __be32 packet_id; __be16 hw_protocol; __u8 hook; }
                let hdr = value
                    .get(0..7)
                    .ok_or(NetlinkParseError("NFQA_PACKET_HDR"))?;
                packet.packet_id = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
                packet.hw_protocol = u16::from_be_bytes([hdr[4], hdr[5]]);
                packet.hook = hdr[6];
                have_header = true;
            }
            NFQA_MARK => packet.mark = be_u32(value, "NFQA_MARK")?,
            NFQA_IFINDEX_INDEV => packet.indev = Some(be_u32(value, "NFQA_IFINDEX_INDEV")?),
            NFQA_IFINDEX_OUTDEV => packet.outdev = Some(be_u32(value, "NFQA_IFINDEX_OUTDEV")?),
            NFQA_CAP_LEN => packet.cap_len = Some(be_u32(value, "NFQA_CAP_LEN")?),
            NFQA_PAYLOAD => packet.payload = value,
            _ => {}
        }
    }
    if have_header {
        Ok(packet)
    } else {
        Err(NetlinkParseError("packet without NFQA_PACKET_HDR"))
    }
}

fn be_u32(value: &[u8], what: &'static str) -> Result<u32, NetlinkParseError> {
    match value {
        [a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(NetlinkParseError(what)),
    }
}

fn u32_ne(b: &[u8]) -> u32 {
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet message as the kernel builds it, assembled here with the request builder.
    fn packet_message(id: u32, payload: &[u8]) -> Vec<u8> {
        let mut hdr = id.to_be_bytes().to_vec();
        hdr.extend_from_slice(&0x0800u16.to_be_bytes());
        hdr.push(3); // NF_INET_LOCAL_OUT
        Request::new(MSG_PACKET, 0, 0, 7)
            .attr(NFQA_PACKET_HDR, &hdr)
            .attr_u32(NFQA_MARK, 0x10)
            .attr_u32(NFQA_IFINDEX_OUTDEV, 1)
            .attr(NFQA_PAYLOAD, payload)
            .finish()
    }

    #[test]
    fn parses_packets_and_errors_in_one_datagram() {
        let mut datagram = packet_message(42, b"\x45abc");
        datagram.extend(packet_message(43, b"xyz"));
        let mut err = Request::new(NLMSG_ERROR, 0, 9, 0).finish();
        err.truncate(NLMSG_HDR_LEN);
        err.extend_from_slice(&(-libc::EINVAL).to_ne_bytes());
        let len = err.len() as u32;
        err[..4].copy_from_slice(&len.to_ne_bytes());
        datagram.extend(&err);
        let msgs = parse_datagram(&datagram).unwrap();
        assert_eq!(msgs.len(), 3);
        let Message::Packet(p) = &msgs[0] else {
            panic!("{msgs:?}")
        };
        assert_eq!(
            (
                p.packet_id,
                p.hw_protocol,
                p.hook,
                p.mark,
                p.outdev,
                p.indev
            ),
            (42, 0x0800, 3, 0x10, Some(1), None)
        );
        assert_eq!(p.payload, b"\x45abc");
        assert!(matches!(&msgs[1], Message::Packet(p) if p.packet_id == 43));
        assert_eq!(
            msgs[2],
            Message::Error {
                errno: libc::EINVAL,
                seq: 9
            }
        );
    }

    #[test]
    fn malformed_datagrams_are_errors_not_panics() {
        let good = packet_message(1, b"payload");
        for cut in 0..good.len() {
            let _ = parse_datagram(&good[..cut]);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 3, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = parse_datagram(&bad);
            }
        }
        let mut no_hdr = Request::new(MSG_PACKET, 0, 0, 0)
            .attr(NFQA_PAYLOAD, b"x")
            .finish();
        assert!(parse_datagram(&no_hdr).is_err());
        no_hdr[0] = 0xff;
        assert_eq!(parse_datagram(&no_hdr), Err(NetlinkParseError("nlmsg_len")));
    }

    #[test]
    fn verdict_request_layout() {
        let msg = Request::new(MSG_VERDICT, NLM_F_REQUEST, 5, 0x0102)
            .attr(NFQA_VERDICT_HDR, &[0, 0, 0, 1, 0, 0, 0, 42])
            .attr_u32(NFQA_MARK, 4)
            .attr(NFQA_PAYLOAD, b"abcde")
            .finish();
        assert_eq!(msg.len(), 16 + 4 + 12 + 8 + 12);
        assert_eq!(u32_ne(&msg[0..4]) as usize, msg.len());
        assert_eq!(&msg[18..20], &[0x01, 0x02], "queue number, network order");
        assert_eq!(&msg[msg.len() - 3..], &[0, 0, 0], "padding");
    }
}
