//! Looking up a connection's conntrack entry over ctnetlink (NETLINK_NETFILTER,
//! `NFNL_SUBSYS_CTNETLINK`, `IPCTNL_MSG_CT_GET`; linux/netfilter/nfnetlink_conntrack.h, the
//! kernel's `ctnetlink_get_conntrack`).
//!
//! # Why
//! The daemon's client side REDIRECTs an application's connection to its own listener and finds
//! the upstream socket it pre-connected by (application address, SO_ORIGINAL_DST). When the
//! redirected tuple (app_ip:P -> 127.0.0.1:L) clashes with a lingering (TIME_WAIT) conntrack
//! entry of an earlier connection from the same port P to another destination, NAT silently
//! remaps the source port to P', and the accepted socket's peer is app_ip:P'. The conntrack
//! entry still knows P: its *reply* tuple is the accepted socket's (local -> peer), its
//! *original* tuple is what the application sent (app_ip:P -> original destination).
//! [`original_tuple`] asks the kernel for it.
//!
//! # Protocol
//! One request, `NLM_F_REQUEST | NLM_F_ACK`, nfgenmsg family AF_INET/AF_INET6, zone 0:
//! `CTA_TUPLE_REPLY { CTA_TUPLE_IP { CTA_IP_V4_SRC/DST | CTA_IP_V6_SRC/DST }, CTA_TUPLE_PROTO {
//! CTA_PROTO_NUM = 6, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT } }` (addresses and ports in
//! network order). The kernel answers with one ctnetlink message that carries `CTA_TUPLE_ORIG`
//! (type `IPCTNL_MSG_CT_NEW` on Linux 6.18; older kernels echoed the request's
//! `IPCTNL_MSG_CT_GET`, accepted too), then the ack; or only an error: ENOENT when no entry
//! matches, EPERM without CAP_NET_ADMIN, EINVAL when ctnetlink is missing. For a subsystem it
//! does not have, nfnetlink first tries `request_module("nfnetlink-subsys-1")` (so a modular
//! kernel loads `nf_conntrack_netlink` by itself) and then answers EINVAL (seen on Linux 6.18
//! for its absent subsystem 12; the batch path answers EOPNOTSUPP). The request is one the
//! kernel accepts, so EINVAL is reported as [`ConntrackError::Unsupported`]. No socket for
//! NETLINK_NETFILTER at all (no nfnetlink) is EPROTONOSUPPORT, also `Unsupported`.
//!
//! The netlink codec and socket calls are nfqueue's (`nfqueue::netlink`); answers are parsed
//! in safe code, totally: a malformed or truncated answer is [`ConntrackError::Malformed`].
//!
//! The socket belongs to the network namespace of the thread that opens it. Receives block for
//! at most [`RECV_TIMEOUT`] (SO_RCVTIMEO), so a call never stalls its caller for long; it is
//! meant for the rare miss path, not for every connection.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::nfqueue::{self, netlink, NetlinkParseError};
use netlink::Request;

/// How long one receive waits for the kernel's answer (SO_RCVTIMEO). The kernel answers a
/// lookup synchronously, within the `sendto`; the timeout only bounds the unexpected.
pub const RECV_TIMEOUT: Duration = Duration::from_millis(200);

/// `NFNL_SUBSYS_CTNETLINK`, the high byte of ctnetlink message types.
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
/// `IPCTNL_MSG_CT_NEW`.
const IPCTNL_MSG_CT_NEW: u16 = 0;
/// `IPCTNL_MSG_CT_GET`.
const IPCTNL_MSG_CT_GET: u16 = 1;
/// The request's message type.
const MSG_CT_GET: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;

/// `enum ctattr_type`.
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
/// `enum ctattr_tuple`.
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
/// `enum ctattr_ip`.
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
/// `enum ctattr_l4proto`.
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;

/// IPPROTO_TCP.
const PROTO_TCP: u8 = 6;
/// Receive buffer: an answer is one conntrack entry (a few hundred bytes) and an ack.
const RECV_BUFFER_LEN: usize = 8192;

/// A failed lookup.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    /// No conntrack entry has this reply tuple (ENOENT): the connection was not tracked (no
    /// NAT table loaded), or its entry is gone.
    #[error("conntrack: no entry with this reply tuple")]
    NotFound,
    /// The kernel has no ctnetlink: `socket(NETLINK_NETFILTER)` failed with EPROTONOSUPPORT
    /// (no nfnetlink), or the request with EINVAL or EOPNOTSUPP (no `nf_conntrack_netlink`,
    /// and nfnetlink could not load it; EINVAL would also be the answer to a request the
    /// kernel cannot parse, which this module's is not).
    #[error(
        "conntrack: the kernel answers no ctnetlink lookup ({source}); it needs \
         CONFIG_NF_CT_NETLINK (`modprobe nf_conntrack_netlink`)"
    )]
    Unsupported {
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// EPERM: ctnetlink requests need CAP_NET_ADMIN in the socket's network namespace.
    #[error("conntrack: permission denied (ctnetlink needs CAP_NET_ADMIN)")]
    PermissionDenied,
    /// The kernel rejected the request with another errno (ENOMEM, ENOBUFS, ...).
    #[error("conntrack: request rejected by the kernel: {source}")]
    Rejected {
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// No answer within the receive timeout.
    #[error("conntrack: no answer from the kernel within {0:?}")]
    Timeout(Duration),
    /// The answer does not parse, or lacks what it must carry.
    #[error("conntrack: malformed answer: {0}")]
    Malformed(&'static str),
    /// The two addresses asked about are not of one family (after mapping IPv4-mapped IPv6
    /// addresses to IPv4).
    #[error("conntrack: {src} and {dst} are not of one address family")]
    MixedFamilies {
        /// The reply tuple's source.
        src: SocketAddr,
        /// The reply tuple's destination.
        dst: SocketAddr,
    },
    /// A system call failed (`op` names it).
    #[error("conntrack {op}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<NetlinkParseError> for ConntrackError {
    fn from(e: NetlinkParseError) -> Self {
        Self::Malformed(e.0)
    }
}

/// The original-direction tuple `(src, dst)` of the TCP conntrack entry whose reply tuple is
/// `(reply_src -> reply_dst)`, looked up in the calling thread's network namespace, zone 0.
///
/// For a socket accepted through a REDIRECT: `reply_src` = its `local_addr()`
/// (127.0.0.1:4760), `reply_dst` = its `peer_addr()` (app_ip:P'); the answer is
/// (app_ip:P, original destination), P being the port the application really used even when
/// NAT remapped it to P'. A connection that was not NATed gets (peer, local) back.
///
/// IPv4-mapped IPv6 addresses (from a dual-stack listener) are looked up, and answered, as
/// IPv4. Opens one netlink socket for the call; [`Conntrack`] keeps one open.
///
/// # Errors
/// [`ConntrackError::NotFound`] when no entry matches; [`ConntrackError::Unsupported`],
/// [`ConntrackError::PermissionDenied`], [`ConntrackError::Timeout`],
/// [`ConntrackError::Malformed`], [`ConntrackError::MixedFamilies`] or the others as named.
pub fn original_tuple(
    reply_src: SocketAddr,
    reply_dst: SocketAddr,
) -> Result<(SocketAddr, SocketAddr), ConntrackError> {
    Conntrack::open()?.original_tuple(reply_src, reply_dst)
}

/// An open ctnetlink socket for repeated lookups (blocking, receive timeout [`RECV_TIMEOUT`]).
#[derive(Debug)]
pub struct Conntrack {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Conntrack {
    /// Opens a NETLINK_NETFILTER socket (close-on-exec) in the calling thread's network
    /// namespace with a receive timeout of [`RECV_TIMEOUT`].
    ///
    /// # Errors
    /// [`ConntrackError::Unsupported`] without nfnetlink, else [`ConntrackError::Io`].
    pub fn open() -> Result<Self, ConntrackError> {
        let fd = nfqueue::netfilter_socket(0).map_err(|source| match source.raw_os_error() {
            Some(libc::EPROTONOSUPPORT) => ConntrackError::Unsupported { source },
            _ => ConntrackError::Io {
                op: "socket(NETLINK_NETFILTER)",
                source,
            },
        })?;
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: RECV_TIMEOUT.as_micros() as libc::suseconds_t, // 200 000, below 1 s
        };
        // SAFETY: setsockopt reads one timeval we own; the fd is open.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::addr_of!(timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(ConntrackError::Io {
                op: "setsockopt(SO_RCVTIMEO)",
                source: io::Error::last_os_error(),
            });
        }
        Ok(Self {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUFFER_LEN],
        })
    }

    /// As [`original_tuple`], on this socket.
    ///
    /// # Errors
    /// As [`original_tuple`].
    pub fn original_tuple(
        &mut self,
        reply_src: SocketAddr,
        reply_dst: SocketAddr,
    ) -> Result<(SocketAddr, SocketAddr), ConntrackError> {
        let (src, dst) = (canonical(reply_src), canonical(reply_dst));
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(ConntrackError::MixedFamilies {
                src: reply_src,
                dst: reply_dst,
            });
        }
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.send(&get_request(seq, src, dst))?;
        let deadline = Instant::now() + RECV_TIMEOUT;
        let mut tuple = None;
        loop {
            // Each receive waits at most RECV_TIMEOUT; answers to earlier, timed-out requests
            // are skipped by sequence number, and bounded by the deadline.
            if Instant::now() > deadline {
                return Err(ConntrackError::Timeout(RECV_TIMEOUT));
            }
            let len = self.recv()?;
            let reply = parse_reply(&self.buf[..len], seq, family_of(&src))?;
            tuple = tuple.or(reply.tuple);
            if let Some(errno) = reply.status {
                return match (errno, tuple) {
                    (0, Some(tuple)) => Ok(tuple),
                    (0, None) => Err(ConntrackError::Malformed("ack without a conntrack entry")),
                    (errno, _) => Err(status_error(errno)),
                };
            }
        }
    }

    fn send(&self, message: &[u8]) -> Result<(), ConntrackError> {
        nfqueue::send_to_kernel(self.fd.as_fd(), message)
            .map_err(|source| ConntrackError::Io { op: "send", source })
    }

    /// One datagram into `buf`; its length.
    fn recv(&mut self) -> Result<usize, ConntrackError> {
        match nfqueue::recv_datagram(self.fd.as_fd(), &mut self.buf) {
            Ok(n) if n > self.buf.len() => {
                Err(ConntrackError::Malformed("answer larger than 8 KiB"))
            }
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(ConntrackError::Timeout(RECV_TIMEOUT))
            }
            Err(source) => Err(ConntrackError::Io { op: "recv", source }),
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4; anything else unchanged.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

fn family_of(addr: &SocketAddr) -> u8 {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET as u8,
        SocketAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// The error for a non-zero errno in the kernel's answer.
fn status_error(errno: i32) -> ConntrackError {
    match errno {
        libc::ENOENT => ConntrackError::NotFound,
        libc::EPERM => ConntrackError::PermissionDenied,
        libc::EINVAL | libc::EOPNOTSUPP => ConntrackError::Unsupported {
            source: io::Error::from_raw_os_error(errno),
        },
        _ => ConntrackError::Rejected {
            source: io::Error::from_raw_os_error(errno),
        },
    }
}

/// The IPCTNL_MSG_CT_GET request for the entry with reply tuple `src -> dst` (one family).
fn get_request(seq: u32, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let flags = netlink::NLM_F_REQUEST | netlink::NLM_F_ACK;
    Request::with_nfgenmsg(MSG_CT_GET, flags, seq, family_of(&src), 0)
        .nested(CTA_TUPLE_REPLY, |tuple| tuple_attrs(tuple, src, dst))
        .finish()
}

/// Adds the attributes of the TCP tuple `src -> dst`: `CTA_TUPLE_IP`, `CTA_TUPLE_PROTO`.
fn tuple_attrs(tuple: Request, src: SocketAddr, dst: SocketAddr) -> Request {
    tuple
        .nested(CTA_TUPLE_IP, |ip| match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => ip
                .attr(CTA_IP_V4_SRC, &s.octets())
                .attr(CTA_IP_V4_DST, &d.octets()),
            (s, d) => ip
                .attr(CTA_IP_V6_SRC, &v6_octets(s))
                .attr(CTA_IP_V6_DST, &v6_octets(d)),
        })
        .nested(CTA_TUPLE_PROTO, |proto| {
            proto
                .attr(CTA_PROTO_NUM, &[PROTO_TCP])
                .attr(CTA_PROTO_SRC_PORT, &src.port().to_be_bytes())
                .attr(CTA_PROTO_DST_PORT, &dst.port().to_be_bytes())
        })
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    }
}

/// What one datagram says about the request with sequence number `seq`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Reply {
    /// The original tuple of the conntrack entry, if the datagram carried it.
    tuple: Option<(SocketAddr, SocketAddr)>,
    /// The ack (0) or error (positive errno), if the datagram carried it.
    status: Option<i32>,
}

/// Parses a received datagram; messages for other sequence numbers are skipped. Total.
fn parse_reply(datagram: &[u8], seq: u32, family: u8) -> Result<Reply, ConntrackError> {
    let mut reply = Reply::default();
    for message in netlink::messages(datagram) {
        let message = message?;
        if message.seq != seq {
            continue;
        }
        match message.msg_type {
            netlink::NLMSG_ERROR => reply.status = Some(netlink::error_code(message.body)?),
            t if t >> 8 == NFNL_SUBSYS_CTNETLINK
                && matches!(t & 0xff, IPCTNL_MSG_CT_NEW | IPCTNL_MSG_CT_GET) =>
            {
                reply.tuple = Some(parse_entry(message.body, family)?);
            }
            _ => {}
        }
    }
    Ok(reply)
}

/// The `CTA_TUPLE_ORIG` of a ctnetlink entry message body (nfgenmsg + attributes).
fn parse_entry(body: &[u8], family: u8) -> Result<(SocketAddr, SocketAddr), ConntrackError> {
    let nfgenmsg = body
        .get(..netlink::NFGENMSG_LEN)
        .ok_or(ConntrackError::Malformed("nfgenmsg"))?;
    if nfgenmsg[0] != family {
        return Err(ConntrackError::Malformed(
            "nfgen_family differs from the request",
        ));
    }
    let mut orig = None;
    for attr in netlink::attributes(&body[netlink::NFGENMSG_LEN..]) {
        let (attr_type, value) = attr?;
        if attr_type == CTA_TUPLE_ORIG {
            orig = Some(parse_tuple(value, family)?);
        }
    }
    orig.ok_or(ConntrackError::Malformed("no CTA_TUPLE_ORIG"))
}

/// A TCP tuple `{ CTA_TUPLE_IP, CTA_TUPLE_PROTO }` of `family`.
fn parse_tuple(data: &[u8], family: u8) -> Result<(SocketAddr, SocketAddr), ConntrackError> {
    let (mut src_ip, mut dst_ip, mut ports, mut proto) = (None, None, (None, None), None);
    for attr in netlink::attributes(data) {
        match attr? {
            (CTA_TUPLE_IP, ip) => {
                for attr in netlink::attributes(ip) {
                    match (attr?, family == libc::AF_INET as u8) {
                        ((CTA_IP_V4_SRC, v), true) => src_ip = Some(ipv4(v)?),
                        ((CTA_IP_V4_DST, v), true) => dst_ip = Some(ipv4(v)?),
                        ((CTA_IP_V6_SRC, v), false) => src_ip = Some(ipv6(v)?),
                        ((CTA_IP_V6_DST, v), false) => dst_ip = Some(ipv6(v)?),
                        _ => {}
                    }
                }
            }
            (CTA_TUPLE_PROTO, l4) => {
                for attr in netlink::attributes(l4) {
                    match attr? {
                        (CTA_PROTO_NUM, [num]) => proto = Some(*num),
                        (CTA_PROTO_NUM, _) => {
                            return Err(ConntrackError::Malformed("CTA_PROTO_NUM"))
                        }
                        (CTA_PROTO_SRC_PORT, v) => ports.0 = Some(port(v)?),
                        (CTA_PROTO_DST_PORT, v) => ports.1 = Some(port(v)?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    match (src_ip, dst_ip, ports, proto) {
        (Some(s), Some(d), (Some(sp), Some(dp)), Some(PROTO_TCP)) => {
            Ok((SocketAddr::new(s, sp), SocketAddr::new(d, dp)))
        }
        (_, _, _, Some(p)) if p != PROTO_TCP => Err(ConntrackError::Malformed("not a TCP entry")),
        (None, _, _, _) | (_, None, _, _) => {
            Err(ConntrackError::Malformed("tuple without addresses"))
        }
        _ => Err(ConntrackError::Malformed("tuple without ports or protocol")),
    }
}

fn ipv4(v: &[u8]) -> Result<IpAddr, ConntrackError> {
    let octets: [u8; 4] = v
        .try_into()
        .map_err(|_| ConntrackError::Malformed("IPv4 address"))?;
    Ok(IpAddr::V4(Ipv4Addr::from(octets)))
}

fn ipv6(v: &[u8]) -> Result<IpAddr, ConntrackError> {
    let octets: [u8; 16] = v
        .try_into()
        .map_err(|_| ConntrackError::Malformed("IPv6 address"))?;
    Ok(IpAddr::V6(Ipv6Addr::from(octets)))
}

fn port(v: &[u8]) -> Result<u16, ConntrackError> {
    match v {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(ConntrackError::Malformed("port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AF_INET: u8 = libc::AF_INET as u8;
    const AF_INET6: u8 = libc::AF_INET6 as u8;

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// An entry message (as the kernel sends it, seq 1) whose attribute `attr` holds what
    /// `tuple` adds.
    fn entry(family: u8, attr: u16, tuple: impl FnOnce(Request) -> Request) -> Request {
        Request::with_nfgenmsg(MSG_CT_GET, 0, 1, family, 0).nested(attr, tuple)
    }

    /// The answer to a CT_GET: the entry (orig and reply tuples, a status) then the ack.
    fn answer(seq: u32, family: u8, orig: (SocketAddr, SocketAddr)) -> Vec<u8> {
        let reply_src = SocketAddr::new(orig.1.ip(), 4760);
        let mut bytes = Request::with_nfgenmsg(MSG_CT_GET, 0, seq, family, 0)
            .nested(CTA_TUPLE_ORIG, |t| tuple_attrs(t, orig.0, orig.1))
            .nested(CTA_TUPLE_REPLY, |t| tuple_attrs(t, reply_src, orig.0))
            .attr(3, &0x18eu32.to_be_bytes()) // CTA_STATUS
            .finish();
        bytes.extend(ack(seq, 0));
        bytes
    }

    /// An NLMSG_ERROR message: `struct nlmsgerr` with the negative errno (the echoed request
    /// header is left out; parsing needs only the errno).
    fn ack(seq: u32, errno: i32) -> Vec<u8> {
        let mut m = Request::with_nfgenmsg(netlink::NLMSG_ERROR, 0, seq, 0, 0).finish();
        m.truncate(16);
        m.extend_from_slice(&(-errno).to_ne_bytes());
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn request_layout_matches_the_kernel_structs() {
        let msg = get_request(7, v4("127.0.0.1:4760"), v4("10.0.0.1:40000"));
        // nlmsghdr 16 + nfgenmsg 4 + REPLY(4 + IP(4 + 8 + 8) + PROTO(4 + 8 + 8 + 8)) = 72
        assert_eq!(msg.len(), 72);
        assert_eq!(u32::from_ne_bytes(msg[0..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes([msg[4], msg[5]]), 0x0101, "CT_GET");
        assert_eq!(u16::from_ne_bytes([msg[6], msg[7]]), 1 | 4, "REQUEST|ACK");
        assert_eq!(&msg[16..20], &[AF_INET, 0, 0, 0], "family, v0, zone 0");
        assert_eq!(
            u16::from_ne_bytes([msg[22], msg[23]]),
            0x8000 | CTA_TUPLE_REPLY
        );
        assert_eq!(u16::from_ne_bytes([msg[20], msg[21]]), 52, "nested length");
        // CTA_IP_V4_SRC value at 20 + 4 + 4 + 4.
        assert_eq!(&msg[32..36], &[127, 0, 0, 1]);
        assert_eq!(&msg[40..44], &[10, 0, 0, 1]);
        // CTA_PROTO_NUM, then the ports in network order.
        assert_eq!(&msg[48..53], &[5, 0, 1, 0, 6]);
        assert_eq!(&msg[60..62], &4760u16.to_be_bytes());
        assert_eq!(&msg[68..70], &40000u16.to_be_bytes());
        let v6 = get_request(
            1,
            "[::1]:4760".parse().unwrap(),
            "[fd00::1]:1".parse().unwrap(),
        );
        assert_eq!(v6.len(), 72 + 2 * 12, "two 16-byte addresses");
        assert_eq!(v6[16], AF_INET6);
    }

    #[test]
    fn parses_the_original_tuple_then_the_ack() {
        let orig = (v4("10.99.0.10:40000"), v4("10.99.0.2:80"));
        let bytes = answer(9, AF_INET, orig);
        let reply = parse_reply(&bytes, 9, AF_INET).unwrap();
        assert_eq!(
            reply,
            Reply {
                tuple: Some(orig),
                status: Some(0)
            }
        );
        // Another request's answer is skipped.
        assert_eq!(parse_reply(&bytes, 8, AF_INET).unwrap(), Reply::default());
        let v6: (SocketAddr, SocketAddr) = (
            "[fd00::10]:40000".parse().unwrap(),
            "[fd00::2]:80".parse().unwrap(),
        );
        let reply = parse_reply(&answer(1, AF_INET6, v6), 1, AF_INET6).unwrap();
        assert_eq!(reply.tuple, Some(v6));
        // An IPv6 answer to an IPv4 request is refused.
        assert!(matches!(
            parse_reply(&answer(1, AF_INET6, v6), 1, AF_INET),
            Err(ConntrackError::Malformed(_))
        ));
    }

    #[test]
    fn errors_map_to_typed_variants() {
        let reply = parse_reply(&ack(3, libc::ENOENT), 3, AF_INET).unwrap();
        assert_eq!(reply.status, Some(libc::ENOENT));
        assert!(matches!(
            status_error(libc::ENOENT),
            ConntrackError::NotFound
        ));
        assert!(matches!(
            status_error(libc::EPERM),
            ConntrackError::PermissionDenied
        ));
        assert!(matches!(
            status_error(libc::EOPNOTSUPP),
            ConntrackError::Unsupported { .. }
        ));
        assert!(matches!(
            status_error(libc::EINVAL),
            ConntrackError::Unsupported { .. }
        ));
        assert!(matches!(
            status_error(libc::ENOBUFS),
            ConntrackError::Rejected { .. }
        ));
    }

    #[test]
    fn truncated_or_corrupted_answers_are_errors_not_panics() {
        let orig = (v4("10.99.0.10:40000"), v4("10.99.0.2:80"));
        let good = answer(9, AF_INET, orig);
        let entry_len = u32::from_ne_bytes(good[0..4].try_into().unwrap()) as usize;
        for cut in 0..good.len() {
            let result = parse_reply(&good[..cut], 9, AF_INET);
            // Cut inside the entry: an error, or (shorter than a header) nothing at all. Never
            // a tuple made of partial data.
            if cut < entry_len {
                match result {
                    Ok(reply) => assert_eq!(reply, Reply::default(), "cut {cut}"),
                    Err(ConntrackError::Malformed(_)) => {}
                    Err(e) => panic!("cut {cut}: {e}"),
                }
            } else if let Ok(reply) = result {
                assert_eq!(reply.tuple, Some(orig), "cut {cut}");
            }
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 2, 3, 4, 5, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = parse_reply(&bad, 9, AF_INET);
            }
        }
    }

    #[test]
    fn entries_without_what_they_must_carry_are_malformed() {
        let (a, b) = (v4("10.0.0.1:1"), v4("10.0.0.2:2"));
        let udp = |t: Request| {
            t.nested(CTA_TUPLE_IP, |ip| {
                ip.attr(CTA_IP_V4_SRC, &[10, 0, 0, 1])
                    .attr(CTA_IP_V4_DST, &[10, 0, 0, 2])
            })
            .nested(CTA_TUPLE_PROTO, |p| {
                p.attr(CTA_PROTO_NUM, &[17])
                    .attr(CTA_PROTO_SRC_PORT, &[0, 1])
                    .attr(CTA_PROTO_DST_PORT, &[0, 2])
            })
        };
        let cases = [
            (
                entry(AF_INET, CTA_TUPLE_REPLY, |t| tuple_attrs(t, b, a)),
                "no CTA_TUPLE_ORIG",
            ),
            (entry(AF_INET, CTA_TUPLE_ORIG, udp), "not a TCP entry"),
            (
                entry(AF_INET, CTA_TUPLE_ORIG, |t| {
                    t.nested(CTA_TUPLE_IP, |ip| ip.attr(CTA_IP_V4_SRC, &[10, 0, 0]))
                }),
                "IPv4 address",
            ),
            (
                entry(AF_INET, CTA_TUPLE_ORIG, |t| {
                    t.nested(CTA_TUPLE_PROTO, |p| p.attr(CTA_PROTO_SRC_PORT, &[0, 0, 1]))
                }),
                "port",
            ),
            (
                entry(AF_INET, CTA_TUPLE_ORIG, |t| {
                    t.nested(CTA_TUPLE_PROTO, |p| p.attr(CTA_PROTO_NUM, &[6, 0]))
                }),
                "CTA_PROTO_NUM",
            ),
            (
                entry(AF_INET, CTA_TUPLE_ORIG, |t| {
                    t.nested(CTA_TUPLE_PROTO, |p| p.attr(CTA_PROTO_NUM, &[6]))
                }),
                "tuple without addresses",
            ),
        ];
        for (message, expected) in cases {
            match parse_reply(&message.finish(), 1, AF_INET) {
                Err(ConntrackError::Malformed(what)) => assert_eq!(what, expected),
                other => panic!("{expected}: {other:?}"),
            }
        }
    }

    #[test]
    fn mapped_addresses_are_ipv4_and_mixed_families_are_refused() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4760".parse().unwrap();
        assert_eq!(canonical(mapped), v4("127.0.0.1:4760"));
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        assert_eq!(canonical(v6), v6);
        // Refused before any socket is opened.
        let mut never_used = Conntrack {
            fd: std::fs::File::open("/dev/null").unwrap().into(),
            seq: 0,
            buf: Vec::new(),
        };
        assert!(matches!(
            never_used.original_tuple(v4("127.0.0.1:1"), v6),
            Err(ConntrackError::MixedFamilies { .. })
        ));
    }
}
