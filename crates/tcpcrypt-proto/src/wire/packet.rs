//! Whole IP packets as NFQUEUE hands them over: IPv4 (RFC 791 §3.1), the IPv6 fixed header
//! (RFC 8200 §3) and the TCP header (RFC 9293 §3.1), as zero-copy views, plus the rewrites the
//! SYN path needs: replace the TCP options area ([`rewrite_tcp_options`]), drop SYN data
//! ([`strip_payload`], RFC 8547 §4.7), and the Internet checksum (RFC 1071) over the TCP
//! pseudo-header (RFC 9293 §3.1, RFC 8200 §8.1).
//!
//! Views follow smoltcp: `new_checked` validates every length once, after which getters never
//! panic; setters exist when the buffer is `AsMut<[u8]>`. [`TcpIpPacket`] is the entry point for
//! a whole packet: it reports anything other than one unfragmented TCP segment directly after the
//! IP header (IPv6 extension headers, IPv4 fragments, other protocols) as
//! [`PacketError::NotPlainTcp`], so the daemon can leave such a packet untouched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::consts::MAX_TCP_OPTIONS_LEN;
use crate::error::DecodeError;

/// IP protocol number of TCP (IANA "Assigned Internet Protocol Numbers").
pub const IP_PROTOCOL_TCP: u8 = 6;

/// Largest value of the IPv4 total length and of the IPv6 payload length (16-bit fields).
const MAX_IP_LEN: usize = 0xffff;

/// Why a packet could not be read or rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Malformed bytes: a length or version field contradicts the buffer.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A well-formed IP packet that is not a plain TCP segment (another protocol, IPv6 extension
    /// headers, an IPv4 fragment). The daemon leaves such a packet untouched.
    #[error("not a plain TCP packet: {reason}")]
    NotPlainTcp {
        /// What made it not plain TCP.
        reason: &'static str,
    },
    /// A replacement options area whose length is not a multiple of 4 or exceeds 40 bytes
    /// (RFC 9293 §3.1: the data offset counts 32-bit words, at most 15 of them).
    #[error("invalid TCP options area length {len}: must be a multiple of 4, at most 40")]
    OptionsLength {
        /// The rejected length.
        len: usize,
    },
    /// The rewritten packet would exceed the 16-bit IP length field.
    #[error("rewritten packet too long: {len} bytes")]
    TooLong {
        /// The length that did not fit.
        len: usize,
    },
    /// A checksum does not verify.
    #[error("bad {layer} checksum")]
    BadChecksum {
        /// "IPv4 header" or "TCP".
        layer: &'static str,
    },
}

// ---------------------------------------------------------------------------------------------
// IPv4

/// A view of an IPv4 header and its payload (RFC 791 §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod ipv4_field {
    use core::ops::Range;

    pub(super) const VER_IHL: usize = 0;
    pub(super) const TOTAL_LEN: Range<usize> = 2..4;
    pub(super) const FLAGS_FRAG: Range<usize> = 6..8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: Range<usize> = 10..12;
    pub(super) const SRC_ADDR: Range<usize> = 12..16;
    pub(super) const DST_ADDR: Range<usize> = 16..20;
    /// Length of a header without options (IHL 5).
    pub(super) const MIN_HEADER_LEN: usize = 20;
    /// "More fragments" flag in the flags/fragment-offset word.
    pub(super) const MF: u16 = 0x2000;
    /// The fragment offset bits of the same word.
    pub(super) const FRAG_OFFSET: u16 = 0x1fff;
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`DecodeError`] naming the IPv4 field that contradicts the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks version 4, IHL ≥ 5, and header length ≤ total length ≤ buffer length.
    ///
    /// # Errors
    /// [`DecodeError`] naming the failing field.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let data = self.buffer.as_ref();
        if data.len() < ipv4_field::MIN_HEADER_LEN {
            return Err(DecodeError::truncated("IPv4 header"));
        }
        if self.version() != 4 {
            return Err(DecodeError::invalid("IPv4 version"));
        }
        let header_len = self.header_len();
        if header_len < ipv4_field::MIN_HEADER_LEN {
            return Err(DecodeError::invalid("IPv4 header length"));
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(DecodeError::invalid("IPv4 total length"));
        }
        if total_len > data.len() {
            return Err(DecodeError::truncated("IPv4 total length"));
        }
        Ok(())
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (4 for a valid packet).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[ipv4_field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[ipv4_field::VER_IHL] & 0x0f) * 4
    }

    /// The total length field: header plus payload.
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), ipv4_field::TOTAL_LEN)
    }

    /// True if this is a fragment: "more fragments" set or a non-zero fragment offset.
    pub fn is_fragment(&self) -> bool {
        let word = read_u16(self.buffer.as_ref(), ipv4_field::FLAGS_FRAG);
        word & (ipv4_field::MF | ipv4_field::FRAG_OFFSET) != 0
    }

    /// The protocol field (6 for TCP).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[ipv4_field::PROTOCOL]
    }

    /// The header checksum field.
    pub fn header_checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), ipv4_field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), ipv4_field::SRC_ADDR))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), ipv4_field::DST_ADDR))
    }

    /// True if the header checksum verifies (the one's complement sum of the header is zero).
    pub fn verify_header_checksum(&self) -> bool {
        let header = &self.buffer.as_ref()[..self.header_len()];
        fold(sum_words(header, 0)) == 0xffff
    }

    /// The payload: the bytes after the header, up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the total length field.
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), ipv4_field::TOTAL_LEN, len);
    }

    /// Sets the header checksum field.
    pub fn set_header_checksum(&mut self, checksum: u16) {
        write_u16(self.buffer.as_mut(), ipv4_field::CHECKSUM, checksum);
    }

    /// Computes and stores the header checksum (RFC 791 §3.1, RFC 1071).
    pub fn fill_header_checksum(&mut self) {
        self.set_header_checksum(0);
        let header = &self.buffer.as_ref()[..self.header_len()];
        let checksum = !fold(sum_words(header, 0));
        self.set_header_checksum(checksum);
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

// ---------------------------------------------------------------------------------------------
// IPv6

/// A view of the IPv6 fixed header and what follows it (RFC 8200 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod ipv6_field {
    use core::ops::Range;

    pub(super) const VERSION: usize = 0;
    pub(super) const PAYLOAD_LEN: Range<usize> = 4..6;
    pub(super) const NEXT_HEADER: usize = 6;
    pub(super) const SRC_ADDR: Range<usize> = 8..24;
    pub(super) const DST_ADDR: Range<usize> = 24..40;
    /// The fixed header's length.
    pub(super) const HEADER_LEN: usize = 40;
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`DecodeError`] naming the IPv6 field that contradicts the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks version 6 and that the fixed header plus the payload length fit the buffer.
    ///
    /// # Errors
    /// [`DecodeError`] naming the failing field.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let data = self.buffer.as_ref();
        if data.len() < ipv6_field::HEADER_LEN {
            return Err(DecodeError::truncated("IPv6 header"));
        }
        if self.version() != 6 {
            return Err(DecodeError::invalid("IPv6 version"));
        }
        if ipv6_field::HEADER_LEN + usize::from(self.payload_len()) > data.len() {
            return Err(DecodeError::truncated("IPv6 payload length"));
        }
        Ok(())
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (6 for a valid packet).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[ipv6_field::VERSION] >> 4
    }

    /// The payload length field: bytes after the fixed header.
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), ipv6_field::PAYLOAD_LEN)
    }

    /// The next header field (6 for TCP directly after the fixed header).
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[ipv6_field::NEXT_HEADER]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(self.buffer.as_ref(), ipv6_field::SRC_ADDR))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(self.buffer.as_ref(), ipv6_field::DST_ADDR))
    }

    /// The bytes after the fixed header, up to the payload length.
    pub fn payload(&self) -> &[u8] {
        let end = ipv6_field::HEADER_LEN + usize::from(self.payload_len());
        &self.buffer.as_ref()[ipv6_field::HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the payload length field.
    pub fn set_payload_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), ipv6_field::PAYLOAD_LEN, len);
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = ipv6_field::HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[ipv6_field::HEADER_LEN..end]
    }
}

// ---------------------------------------------------------------------------------------------
// TCP

/// The TCP header's control bits (RFC 9293 §3.1; ECE and CWR from RFC 3168 §6.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: Self = Self(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: Self = Self(0x02);
    /// Reset the connection.
    pub const RST: Self = Self(0x04);
    /// Push function.
    pub const PSH: Self = Self(0x08);
    /// The acknowledgment field is significant.
    pub const ACK: Self = Self(0x10);
    /// The urgent pointer field is significant.
    pub const URG: Self = Self(0x20);
    /// ECN-Echo.
    pub const ECE: Self = Self(0x40);
    /// Congestion Window Reduced.
    pub const CWR: Self = Self(0x80);

    /// True if every bit of `other` is set here.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with the bits of `other` cleared.
    #[must_use]
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A view of a TCP segment: header, options area and payload (RFC 9293 §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

mod tcp_field {
    use core::ops::Range;

    pub(super) const SRC_PORT: Range<usize> = 0..2;
    pub(super) const DST_PORT: Range<usize> = 2..4;
    pub(super) const SEQ_NUM: Range<usize> = 4..8;
    pub(super) const ACK_NUM: Range<usize> = 8..12;
    /// Data offset in the high nibble.
    pub(super) const DATA_OFFSET: usize = 12;
    pub(super) const FLAGS: usize = 13;
    pub(super) const WINDOW: Range<usize> = 14..16;
    pub(super) const CHECKSUM: Range<usize> = 16..18;
    pub(super) const URGENT: Range<usize> = 18..20;
    /// Length of the header without options (data offset 5).
    pub(super) const MIN_HEADER_LEN: usize = 20;
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` (exactly one segment: header, options, payload) after
    /// [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`DecodeError`] naming the TCP field that contradicts the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the fixed header fits and 20 ≤ data offset × 4 ≤ buffer length.
    ///
    /// # Errors
    /// [`DecodeError`] naming the failing field.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < tcp_field::MIN_HEADER_LEN {
            return Err(DecodeError::truncated("TCP header"));
        }
        let header_len = self.header_len();
        if header_len < tcp_field::MIN_HEADER_LEN {
            return Err(DecodeError::invalid("TCP data offset"));
        }
        if header_len > len {
            return Err(DecodeError::truncated("TCP data offset"));
        }
        Ok(())
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), tcp_field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), tcp_field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        u32::from_be_bytes(read_array::<4>(self.buffer.as_ref(), tcp_field::SEQ_NUM))
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        u32::from_be_bytes(read_array::<4>(self.buffer.as_ref(), tcp_field::ACK_NUM))
    }

    /// Header length in bytes, options included (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[tcp_field::DATA_OFFSET] >> 4) * 4
    }

    /// The control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[tcp_field::FLAGS])
    }

    /// SYN is set.
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }

    /// ACK is set.
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }

    /// FIN is set.
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }

    /// RST is set.
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }

    /// PSH is set.
    pub fn psh(&self) -> bool {
        self.flags().contains(TcpFlags::PSH)
    }

    /// URG is set.
    pub fn urg(&self) -> bool {
        self.flags().contains(TcpFlags::URG)
    }

    /// Window field.
    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), tcp_field::WINDOW)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), tcp_field::CHECKSUM)
    }

    /// Urgent pointer field.
    pub fn urgent_at(&self) -> u16 {
        read_u16(self.buffer.as_ref(), tcp_field::URGENT)
    }

    /// The options area: the bytes between the fixed header and the payload (iterate it with
    /// [`TcpOptions`](crate::wire::tcp_option::TcpOptions)).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[tcp_field::MIN_HEADER_LEN..self.header_len()]
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), tcp_field::SRC_PORT, port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), tcp_field::DST_PORT, port);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, seq: u32) {
        self.buffer.as_mut()[tcp_field::SEQ_NUM].copy_from_slice(&seq.to_be_bytes());
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, ack: u32) {
        self.buffer.as_mut()[tcp_field::ACK_NUM].copy_from_slice(&ack.to_be_bytes());
    }

    /// Sets the header length in bytes; `len` must be a multiple of 4 in 20..=60 (the low two
    /// bits are dropped, the rest masked to the 4-bit field).
    pub fn set_header_len(&mut self, len: usize) {
        let words = ((len / 4) & 0x0f) as u8; // masked to the 4-bit field
        let byte = &mut self.buffer.as_mut()[tcp_field::DATA_OFFSET];
        *byte = (*byte & 0x0f) | (words << 4);
    }

    /// Sets the control bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[tcp_field::FLAGS] = flags.0;
    }

    /// Sets the window field.
    pub fn set_window_len(&mut self, window: u16) {
        write_u16(self.buffer.as_mut(), tcp_field::WINDOW, window);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.buffer.as_mut(), tcp_field::CHECKSUM, checksum);
    }

    /// Sets the urgent pointer field.
    pub fn set_urgent_at(&mut self, urgent: u16) {
        write_u16(self.buffer.as_mut(), tcp_field::URGENT, urgent);
    }

    /// The options area, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[tcp_field::MIN_HEADER_LEN..end]
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

// ---------------------------------------------------------------------------------------------
// Whole packets

/// The IP version of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4 (RFC 791).
    V4,
    /// IPv6 (RFC 8200).
    V6,
}

/// The 4-tuple that names a TCP connection as seen in one packet: (source address and port,
/// destination address and port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    /// The sender's address and port.
    pub src: SocketAddr,
    /// The receiver's address and port.
    pub dst: SocketAddr,
}

impl Flow {
    /// The same connection seen from the other direction.
    #[must_use]
    pub const fn reversed(self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
        }
    }

    /// The flow of the TCP segment in the whole IP packet `packet`.
    ///
    /// # Errors
    /// As [`TcpIpPacket::new_checked`].
    pub fn from_packet(packet: &[u8]) -> Result<Self, PacketError> {
        Ok(TcpIpPacket::new_checked(packet)?.flow())
    }
}

/// A whole IP packet (IPv4 or IPv6) that carries exactly one unfragmented TCP segment right
/// after the IP header. The TCP segment ends where the IP length fields say; any bytes after
/// that in the buffer are ignored (and dropped by the rewrites).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpIpPacket<T: AsRef<[u8]>> {
    buffer: T,
    version: IpVersion,
    /// Offset of the TCP header (the IP header length).
    tcp_start: usize,
    /// End of the TCP segment (the IP total length).
    tcp_end: usize,
}

impl<T: AsRef<[u8]>> TcpIpPacket<T> {
    /// Validates `buffer` as a whole IP packet carrying one plain TCP segment.
    ///
    /// # Errors
    /// [`PacketError::Decode`] if a length or version field contradicts the buffer;
    /// [`PacketError::NotPlainTcp`] for a well-formed packet that is not one plain TCP segment.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let data = buffer.as_ref();
        let Some(&first) = data.first() else {
            return Err(DecodeError::truncated("IP header").into());
        };
        let (version, tcp_start, tcp_end) = match first >> 4 {
            4 => {
                let ip = Ipv4Packet::new_checked(data)?;
                if ip.protocol() != IP_PROTOCOL_TCP {
                    return Err(PacketError::NotPlainTcp {
                        reason: "IPv4 protocol is not TCP",
                    });
                }
                if ip.is_fragment() {
                    return Err(PacketError::NotPlainTcp {
                        reason: "IPv4 fragment",
                    });
                }
                (IpVersion::V4, ip.header_len(), usize::from(ip.total_len()))
            }
            6 => {
                let ip = Ipv6Packet::new_checked(data)?;
                if ip.next_header() != IP_PROTOCOL_TCP {
                    return Err(PacketError::NotPlainTcp {
                        reason:
                            "IPv6 next header is not TCP (extension headers or another protocol)",
                    });
                }
                let end = ipv6_field::HEADER_LEN + usize::from(ip.payload_len());
                (IpVersion::V6, ipv6_field::HEADER_LEN, end)
            }
            _ => return Err(DecodeError::invalid("IP version").into()),
        };
        TcpPacket::new_checked(&data[tcp_start..tcp_end])?;
        Ok(Self {
            buffer,
            version,
            tcp_start,
            tcp_end,
        })
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The IP version.
    pub fn version(&self) -> IpVersion {
        self.version
    }

    /// Length of the IP header (IPv4 options included; the IPv6 fixed header).
    pub fn ip_header_len(&self) -> usize {
        self.tcp_start
    }

    /// Length of the packet as the IP header states it (without trailing buffer bytes).
    pub fn packet_len(&self) -> usize {
        self.tcp_end
    }

    /// Source address.
    pub fn src_addr(&self) -> IpAddr {
        match self.version {
            IpVersion::V4 => Ipv4Packet::new_unchecked(self.buffer.as_ref())
                .src_addr()
                .into(),
            IpVersion::V6 => Ipv6Packet::new_unchecked(self.buffer.as_ref())
                .src_addr()
                .into(),
        }
    }

    /// Destination address.
    pub fn dst_addr(&self) -> IpAddr {
        match self.version {
            IpVersion::V4 => Ipv4Packet::new_unchecked(self.buffer.as_ref())
                .dst_addr()
                .into(),
            IpVersion::V6 => Ipv6Packet::new_unchecked(self.buffer.as_ref())
                .dst_addr()
                .into(),
        }
    }

    /// The TCP segment.
    pub fn tcp(&self) -> TcpPacket<&[u8]> {
        TcpPacket::new_unchecked(&self.buffer.as_ref()[self.tcp_start..self.tcp_end])
    }

    /// The TCP options area (see [`TcpPacket::options`]).
    pub fn tcp_options(&self) -> &[u8] {
        let segment = &self.buffer.as_ref()[self.tcp_start..self.tcp_end];
        &segment[tcp_field::MIN_HEADER_LEN..TcpPacket::new_unchecked(segment).header_len()]
    }

    /// The TCP payload (see [`TcpPacket::payload`]).
    pub fn tcp_payload(&self) -> &[u8] {
        let segment = &self.buffer.as_ref()[self.tcp_start..self.tcp_end];
        &segment[TcpPacket::new_unchecked(segment).header_len()..]
    }

    /// The connection's 4-tuple as this packet names it.
    pub fn flow(&self) -> Flow {
        let tcp = self.tcp();
        Flow {
            src: SocketAddr::new(self.src_addr(), tcp.src_port()),
            dst: SocketAddr::new(self.dst_addr(), tcp.dst_port()),
        }
    }

    /// The checksum the TCP header should hold: the Internet checksum over the pseudo-header
    /// and the segment with its checksum field taken as zero (RFC 9293 §3.1, RFC 8200 §8.1).
    pub fn compute_tcp_checksum(&self) -> u16 {
        let segment = &self.buffer.as_ref()[self.tcp_start..self.tcp_end];
        let stored = TcpPacket::new_unchecked(segment).checksum();
        // Summing the segment includes the stored checksum; subtracting it in one's complement
        // arithmetic (adding its complement) gives the sum with the field as zero.
        let sum = sum_words(segment, self.pseudo_header_sum()) + u32::from(!stored);
        !fold(sum)
    }

    /// Checks the IPv4 header checksum (IPv4 only) and the TCP checksum.
    ///
    /// # Errors
    /// [`PacketError::BadChecksum`] naming the layer that does not verify.
    pub fn verify_checksums(&self) -> Result<(), PacketError> {
        if self.version == IpVersion::V4
            && !Ipv4Packet::new_unchecked(self.buffer.as_ref()).verify_header_checksum()
        {
            return Err(PacketError::BadChecksum {
                layer: "IPv4 header",
            });
        }
        let segment = &self.buffer.as_ref()[self.tcp_start..self.tcp_end];
        if fold(sum_words(segment, self.pseudo_header_sum())) != 0xffff {
            return Err(PacketError::BadChecksum { layer: "TCP" });
        }
        Ok(())
    }

    /// The one's complement sum of the TCP pseudo-header: addresses, protocol and TCP length
    /// (RFC 9293 §3.1 for IPv4, RFC 8200 §8.1 for IPv6; the sums coincide in 16-bit words).
    fn pseudo_header_sum(&self) -> u32 {
        let data = self.buffer.as_ref();
        let addrs = match self.version {
            IpVersion::V4 => &data[ipv4_field::SRC_ADDR.start..ipv4_field::DST_ADDR.end],
            IpVersion::V6 => &data[ipv6_field::SRC_ADDR.start..ipv6_field::DST_ADDR.end],
        };
        // The TCP length is at most 0xffff (it comes from a 16-bit IP length field).
        let tcp_len = (self.tcp_end - self.tcp_start) as u32;
        sum_words(addrs, u32::from(IP_PROTOCOL_TCP) + tcp_len)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpIpPacket<T> {
    /// The TCP segment, mutable.
    pub fn tcp_mut(&mut self) -> TcpPacket<&mut [u8]> {
        TcpPacket::new_unchecked(&mut self.buffer.as_mut()[self.tcp_start..self.tcp_end])
    }

    /// Recomputes the IPv4 header checksum (IPv4 only) and the TCP checksum.
    pub fn fill_checksums(&mut self) {
        if self.version == IpVersion::V4 {
            Ipv4Packet::new_unchecked(self.buffer.as_mut()).fill_header_checksum();
        }
        let checksum = self.compute_tcp_checksum();
        self.tcp_mut().set_checksum(checksum);
    }
}

/// The checksum the TCP header of the whole IP packet `packet` should hold (see
/// [`TcpIpPacket::compute_tcp_checksum`]).
///
/// # Errors
/// As [`TcpIpPacket::new_checked`].
pub fn tcp_checksum(packet: &[u8]) -> Result<u16, PacketError> {
    Ok(TcpIpPacket::new_checked(packet)?.compute_tcp_checksum())
}

/// Checks the IPv4 header checksum (IPv4 only) and the TCP checksum of the whole IP packet
/// `packet`.
///
/// # Errors
/// As [`TcpIpPacket::new_checked`], then [`PacketError::BadChecksum`].
pub fn verify_checksums(packet: &[u8]) -> Result<(), PacketError> {
    TcpIpPacket::new_checked(packet)?.verify_checksums()
}

/// Returns a copy of `packet` whose TCP options area is `new_options`, with the data offset,
/// the IPv4 total length and header checksum or the IPv6 payload length, and the TCP checksum
/// updated; header fields and payload bytes are kept. This is how the daemon inserts the ENO
/// option into a SYN (RFC 8547 §4.1) after building the area with
/// [`insert_option`](crate::wire::tcp_option::insert_option).
///
/// # Errors
/// As [`TcpIpPacket::new_checked`]; [`PacketError::OptionsLength`] if `new_options` is not a
/// multiple of 4 bytes or longer than 40 (RFC 9293 §3.1); [`PacketError::TooLong`] if the
/// result would not fit the 16-bit IP length field.
pub fn rewrite_tcp_options(packet: &[u8], new_options: &[u8]) -> Result<Vec<u8>, PacketError> {
    let mut out = Vec::new();
    rewrite_tcp_options_into(packet, new_options, &mut out)?;
    Ok(out)
}

/// [`rewrite_tcp_options`] into a caller's buffer: `out` is cleared, then holds the new packet.
/// On error `out` is left empty.
///
/// # Errors
/// As [`rewrite_tcp_options`].
pub fn rewrite_tcp_options_into(
    packet: &[u8],
    new_options: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), PacketError> {
    out.clear();
    if new_options.len() % 4 != 0 || new_options.len() > MAX_TCP_OPTIONS_LEN {
        return Err(PacketError::OptionsLength {
            len: new_options.len(),
        });
    }
    let parsed = TcpIpPacket::new_checked(packet)?;
    let ip_header = &packet[..parsed.ip_header_len()];
    let tcp_fixed = &packet[parsed.ip_header_len()..][..tcp_field::MIN_HEADER_LEN];
    let payload = parsed.tcp_payload();
    let tcp_header_len = tcp_field::MIN_HEADER_LEN + new_options.len();
    rebuild(
        &parsed,
        [ip_header, tcp_fixed, new_options, payload],
        tcp_header_len,
        None,
        out,
    )
}

/// Returns a copy of `packet` without its TCP payload, for the RFC 8547 §4.7 verdict "discard
/// SYN data": the receiver "MUST NOT acknowledge the discarded bytes", so the kernel must never
/// see them. FIN and URG are cleared with the data (and the urgent pointer zeroed): both refer
/// to sequence space after the data, which the sender will retransmit. Lengths and checksums
/// are updated; options are kept.
///
/// # Errors
/// As [`TcpIpPacket::new_checked`].
pub fn strip_payload(packet: &[u8]) -> Result<Vec<u8>, PacketError> {
    let parsed = TcpIpPacket::new_checked(packet)?;
    let header_len = parsed.tcp().header_len();
    let ip_header = &packet[..parsed.ip_header_len()];
    let tcp_header = &packet[parsed.ip_header_len()..][..header_len];
    let flags = parsed.tcp().flags().without(TcpFlags::FIN | TcpFlags::URG);
    let mut out = Vec::new();
    rebuild(
        &parsed,
        [ip_header, tcp_header, &[], &[]],
        header_len,
        Some(flags),
        &mut out,
    )?;
    TcpPacket::new_unchecked(&mut out[parsed.ip_header_len()..]).set_urgent_at(0);
    let mut fixed = TcpIpPacket::new_checked(out.as_mut_slice())?;
    fixed.fill_checksums();
    Ok(out)
}

/// Concatenates `parts` (IP header, TCP header bytes, options, payload) into `out`, then fixes
/// the IP length fields, the data offset (`tcp_header_len`), the flags if given, and the
/// checksums.
fn rebuild(
    original: &TcpIpPacket<&[u8]>,
    parts: [&[u8]; 4],
    tcp_header_len: usize,
    flags: Option<TcpFlags>,
    out: &mut Vec<u8>,
) -> Result<(), PacketError> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let ip_header_len = original.ip_header_len();
    let ip_len_field = match original.version() {
        IpVersion::V4 => total,
        IpVersion::V6 => total - ip_header_len,
    };
    let Ok(ip_len_field) = u16::try_from(ip_len_field) else {
        return Err(PacketError::TooLong { len: total });
    };
    debug_assert!(ip_len_field as usize <= MAX_IP_LEN);
    out.reserve(total);
    for part in parts {
        out.extend_from_slice(part);
    }
    match original.version() {
        IpVersion::V4 => Ipv4Packet::new_unchecked(out.as_mut_slice()).set_total_len(ip_len_field),
        IpVersion::V6 => {
            Ipv6Packet::new_unchecked(out.as_mut_slice()).set_payload_len(ip_len_field);
        }
    }
    let mut tcp = TcpPacket::new_unchecked(&mut out[ip_header_len..]);
    tcp.set_header_len(tcp_header_len);
    if let Some(flags) = flags {
        tcp.set_flags(flags);
    }
    match TcpIpPacket::new_checked(out.as_mut_slice()) {
        Ok(mut rebuilt) => {
            rebuilt.fill_checksums();
            Ok(())
        }
        Err(e) => {
            out.clear();
            Err(e)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Byte helpers (the only place offsets become slices)

fn read_u16(data: &[u8], range: core::ops::Range<usize>) -> u16 {
    u16::from_be_bytes(read_array::<2>(data, range))
}

fn write_u16(data: &mut [u8], range: core::ops::Range<usize>, value: u16) {
    data[range].copy_from_slice(&value.to_be_bytes());
}

fn read_array<const N: usize>(data: &[u8], range: core::ops::Range<usize>) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&data[range]);
    out
}

/// Adds the big-endian 16-bit words of `data` (an odd last byte padded with zero) to `initial`,
/// with end-around carries folded as it goes so the sum never overflows (RFC 1071 §4.1).
fn sum_words(data: &[u8], initial: u32) -> u32 {
    let mut sum = u64::from(initial);
    let mut chunks = data.chunks_exact(2);
    for word in &mut chunks {
        sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff_ffff {
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    sum as u32 // folded to 32 bits above
}

/// Folds a 32-bit one's complement sum to 16 bits.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16 // folded to 16 bits above
}

#[cfg(test)]
mod tests;
