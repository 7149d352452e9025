//! Writes captures: classic pcap (either byte order, micro- or nanosecond timestamps) and
//! pcapng, and wraps IP packets in the link layers [`capture`](crate::capture) reads. Used by
//! [`plain_pcap`](crate::plain_pcap) and by the tests, which write one capture per format and
//! link type and read it back.

use crate::capture::linktype;

/// The container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap.
    Pcap {
        /// Big-endian headers (as written on a big-endian host).
        big_endian: bool,
        /// Nanosecond timestamps (magic 0xa1b23c4d).
        nanos: bool,
    },
    /// pcapng with one section and one interface.
    Pcapng {
        /// Big-endian section.
        big_endian: bool,
    },
}

/// A capture being written into memory.
#[derive(Debug, Clone)]
pub struct Writer {
    format: Format,
    link: u32,
    out: Vec<u8>,
}

impl Writer {
    /// Starts a capture of link type `link`.
    pub fn new(format: Format, link: u32) -> Self {
        let mut w = Self {
            format,
            link,
            out: Vec::new(),
        };
        match format {
            Format::Pcap { nanos, .. } => {
                w.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
                w.u16(2);
                w.u16(4);
                w.u32(0); // thiszone
                w.u32(0); // sigfigs
                w.u32(262_144); // snaplen
                w.u32(link);
            }
            Format::Pcapng { .. } => {
                // Section Header Block: type, length 28, BOM, version 1.0, section length -1.
                w.u32(0x0a0d_0d0a);
                w.u32(28);
                w.u32(0x1a2b_3c4d);
                w.u16(1);
                w.u16(0);
                w.u32(u32::MAX);
                w.u32(u32::MAX);
                w.u32(28);
                // Interface Description Block with if_tsresol = 9 (nanoseconds).
                w.u32(1);
                w.u32(32);
                w.u16(link as u16);
                w.u16(0);
                w.u32(262_144);
                w.u16(9);
                w.u16(1);
                w.out.extend_from_slice(&[9, 0, 0, 0]);
                w.u16(0);
                w.u16(0);
                w.u32(32);
            }
        }
        w
    }

    fn big(&self) -> bool {
        match self.format {
            Format::Pcap { big_endian, .. } | Format::Pcapng { big_endian } => big_endian,
        }
    }

    fn u32(&mut self, v: u32) {
        let b = if self.big() {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    fn u16(&mut self, v: u16) {
        let b = if self.big() {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    /// Appends an IP packet, wrapped in this capture's link layer, at `ts_ns`.
    pub fn push_ip(&mut self, ts_ns: u64, ip: &[u8]) {
        let frame = encapsulate(self.link, ip);
        self.push_frame(ts_ns, &frame);
    }

    /// Appends a link-layer frame as is.
    pub fn push_frame(&mut self, ts_ns: u64, frame: &[u8]) {
        let len = frame.len() as u32;
        match self.format {
            Format::Pcap { nanos, .. } => {
                let sec = (ts_ns / 1_000_000_000) as u32;
                let sub = ts_ns % 1_000_000_000;
                self.u32(sec);
                self.u32(if nanos {
                    sub as u32
                } else {
                    (sub / 1000) as u32
                });
                self.u32(len);
                self.u32(len);
                self.out.extend_from_slice(frame);
            }
            Format::Pcapng { .. } => {
                let padded = frame.len().div_ceil(4) * 4;
                let total = 32 + padded as u32;
                self.u32(6);
                self.u32(total);
                self.u32(0);
                self.u32((ts_ns >> 32) as u32);
                self.u32(ts_ns as u32);
                self.u32(len);
                self.u32(len);
                self.out.extend_from_slice(frame);
                self.out.resize(self.out.len() + padded - frame.len(), 0);
                self.u32(total);
            }
        }
    }

    /// The capture's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Wraps an IP packet in the link-layer header of `link` (addresses are made up).
pub fn encapsulate(link: u32, ip: &[u8]) -> Vec<u8> {
    let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
    let ethertype: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    let mut f = Vec::with_capacity(ip.len() + 20);
    match link {
        linktype::ETHERNET => {
            f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
            f.extend_from_slice(&ethertype);
        }
        linktype::LINUX_SLL => {
            // packet type, ARPHRD_ETHER, address length 6, address (8), protocol.
            f.extend_from_slice(&[0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 1, 0, 0]);
            f.extend_from_slice(&ethertype);
        }
        linktype::LINUX_SLL2 => {
            // protocol, reserved, interface index, ARPHRD_ETHER, packet type, address
            // length, address (8).
            f.extend_from_slice(&ethertype);
            f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
            f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0, 0]);
        }
        _ => {}
    }
    f.extend_from_slice(ip);
    f
}
