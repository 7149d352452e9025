//! The capture reader: classic pcap (both byte orders, micro- and nanosecond timestamps) and
//! pcapng (Section Header, Interface Description, Enhanced, Simple and obsolete Packet blocks;
//! each section with its own byte order), and the link layers that carry IP: Ethernet (1, with
//! 802.1Q/802.1ad tags), Linux cooked SLL (113) and SLL2 (276), raw IP (101, 12, 228, 229).
//!
//! An own reader rather than a crate: the formats are small and fixed (pcap: the
//! `libpcap` savefile format; pcapng: IETF draft-ietf-opsawg-pcapng), and every malformed
//! length here must become a typed [`CaptureError`], never a panic or an unbounded allocation,
//! which the `capture_reader` fuzz target checks.

/// Why a capture could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// The file starts with neither a pcap magic nor a pcapng Section Header Block.
    #[error("not a pcap or pcapng file (magic {0:#010x})")]
    UnknownFormat(u32),
    /// The file ends inside a header or block.
    #[error("capture truncated inside {0}")]
    Truncated(&'static str),
    /// A length field contradicts the format.
    #[error("malformed capture: {0}")]
    Malformed(&'static str),
    /// A link type this reader does not decode.
    #[error("unsupported link type {0} (supported: 1 Ethernet, 113 Linux SLL, 276 Linux SLL2, 101/12/228/229 raw IP)")]
    UnsupportedLinkType(u32),
}

/// Link types (the `LINKTYPE_*` registry).
pub mod linktype {
    /// Ethernet II.
    pub const ETHERNET: u32 = 1;
    /// Raw IP (OpenBSD's DLT_RAW value).
    pub const RAW_12: u32 = 12;
    /// Raw IP.
    pub const RAW: u32 = 101;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;

    /// True if [`super::ip_payload`] decodes this link type.
    pub const fn supported(link: u32) -> bool {
        matches!(
            link,
            ETHERNET | RAW_12 | RAW | LINUX_SLL | IPV4 | IPV6 | LINUX_SLL2
        )
    }
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Timestamp in nanoseconds since the epoch (0 when the format has none).
    pub ts_ns: u64,
    /// The link type of the interface it was captured on.
    pub link: u32,
    /// Length of the frame on the wire.
    pub orig_len: u32,
    /// The captured bytes (fewer than `orig_len` when the snap length cut it).
    pub data: Vec<u8>,
}

impl Record {
    /// The capture holds less than the frame.
    pub fn is_cut(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.orig_len)
    }
}

/// Largest record accepted: no frame of a real capture is bigger (64 KiB IP packets plus link
/// headers, and GRO/TSO super-frames of up to 256 KiB).
pub const MAX_RECORD_LEN: usize = 1 << 20;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_OPB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

/// The records of a capture, and why reading stopped early if it did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capture {
    /// Every record read, in file order.
    pub records: Vec<Record>,
    /// A capture cut mid-record (a killed `tcpdump`) or damaged later on: the records before
    /// the damage are kept and this says what stopped the reader.
    pub damaged: Option<CaptureError>,
}

/// Reads every record of a pcap or pcapng capture, checking that each interface's link type
/// is one [`ip_payload`] decodes.
///
/// # Errors
/// [`CaptureError`] when nothing can be read: unknown magic, a cut or malformed file header,
/// an unsupported link type (also on a later pcapng interface). Damage after the header ends
/// the reading with [`Capture::damaged`] set instead.
pub fn read(bytes: &[u8]) -> Result<Capture, CaptureError> {
    let magic_le = le32(bytes, 0).ok_or(CaptureError::Truncated("file magic"))?;
    let mut out = Vec::new();
    let result = match magic_le {
        PCAP_MAGIC_US | PCAP_MAGIC_NS => read_pcap(bytes, false, &mut out),
        m if m.swap_bytes() == PCAP_MAGIC_US || m.swap_bytes() == PCAP_MAGIC_NS => {
            read_pcap(bytes, true, &mut out)
        }
        PCAPNG_SHB => read_pcapng(bytes, &mut out),
        other => return Err(CaptureError::UnknownFormat(other)),
    };
    match result {
        Ok(()) => Ok(Capture {
            records: out,
            damaged: None,
        }),
        Err(Fault::Fatal(e)) => Err(e),
        Err(Fault::Damaged(e)) => Ok(Capture {
            records: out,
            damaged: Some(e),
        }),
    }
}

/// How bad a reading error is.
enum Fault {
    /// Nothing usable: the file header is bad or a link type is unsupported.
    Fatal(CaptureError),
    /// The records so far are good.
    Damaged(CaptureError),
}

impl From<CaptureError> for Fault {
    fn from(e: CaptureError) -> Self {
        match e {
            CaptureError::UnsupportedLinkType(_) | CaptureError::UnknownFormat(_) => Self::Fatal(e),
            _ => Self::Damaged(e),
        }
    }
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads a u32 in the given byte order.
fn u32_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
    le32(b, at).map(|v| if big { v.swap_bytes() } else { v })
}

fn u16_at(b: &[u8], at: usize, big: bool) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    let v = u16::from_le_bytes([s[0], s[1]]);
    Some(if big { v.swap_bytes() } else { v })
}

fn read_pcap(bytes: &[u8], swapped: bool, out: &mut Vec<Record>) -> Result<(), Fault> {
    const HEADER: usize = 24;
    const REC_HEADER: usize = 16;
    let header = bytes
        .get(..HEADER)
        .ok_or(Fault::Fatal(CaptureError::Truncated("pcap file header")))?;
    // "swapped" relative to little-endian reading: the file is big-endian.
    let big = swapped;
    let magic = u32_at(header, 0, big).unwrap_or(0);
    let nanos = magic == PCAP_MAGIC_NS;
    // The link type is the low 28 bits of the last field (the top bits carry FCS flags).
    let link = u32_at(header, 20, big).unwrap_or(0) & 0x0fff_ffff;
    if !linktype::supported(link) {
        return Err(Fault::Fatal(CaptureError::UnsupportedLinkType(link)));
    }
    let mut at = HEADER;
    while at < bytes.len() {
        let rh = bytes
            .get(at..at + REC_HEADER)
            .ok_or(CaptureError::Truncated("pcap record header"))?;
        let sec = u64::from(u32_at(rh, 0, big).unwrap_or(0));
        let frac = u64::from(u32_at(rh, 4, big).unwrap_or(0));
        let incl = u32_at(rh, 8, big).unwrap_or(0) as usize;
        let orig_len = u32_at(rh, 12, big).unwrap_or(0);
        if incl > MAX_RECORD_LEN {
            return Err(CaptureError::Malformed("pcap record longer than 1 MiB").into());
        }
        let start = at + REC_HEADER;
        let data = bytes
            .get(start..start + incl)
            .ok_or(CaptureError::Truncated("pcap record"))?;
        let ts_ns = sec.saturating_mul(1_000_000_000).saturating_add(if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        });
        out.push(Record {
            ts_ns,
            link,
            orig_len: orig_len.max(incl as u32),
            data: data.to_vec(),
        });
        at = start + incl;
    }
    Ok(())
}

/// One pcapng interface: its link type and timestamp unit in nanoseconds (or, for units finer
/// than 1 ns, a divisor).
#[derive(Clone, Copy)]
struct Interface {
    link: u32,
    /// ts_ns = ticks * mul / div.
    mul: u64,
    div: u64,
}

fn read_pcapng(bytes: &[u8], out: &mut Vec<Record>) -> Result<(), Fault> {
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut big = false;
    let mut at = 0usize;
    while at < bytes.len() {
        let block_type_le = le32(bytes, at).ok_or(CaptureError::Truncated("pcapng block"))?;
        if block_type_le == PCAPNG_SHB {
            // A new section: its byte-order magic decides how everything in it is read.
            let bom =
                le32(bytes, at + 8).ok_or(CaptureError::Truncated("pcapng section header"))?;
            big = match bom {
                PCAPNG_BOM => false,
                b if b.swap_bytes() == PCAPNG_BOM => true,
                _ => return Err(CaptureError::Malformed("pcapng byte-order magic").into()),
            };
            interfaces.clear();
        }
        let block_type = u32_at(bytes, at, big).unwrap_or(0);
        let total =
            u32_at(bytes, at + 4, big).ok_or(CaptureError::Truncated("pcapng block"))? as usize;
        if total < 12 || total % 4 != 0 {
            return Err(CaptureError::Malformed("pcapng block length").into());
        }
        let block = bytes
            .get(at..at.saturating_add(total))
            .ok_or(CaptureError::Truncated("pcapng block"))?;
        if u32_at(block, total - 4, big) != Some(total as u32) {
            return Err(CaptureError::Malformed("pcapng trailing block length").into());
        }
        let body = &block[8..total - 4];
        match block_type {
            PCAPNG_IDB => interfaces.push(parse_idb(body, big)?),
            // The obsolete Packet Block has the Enhanced one's layout but a 16-bit interface
            // ID (followed by a 16-bit drop count).
            PCAPNG_EPB | PCAPNG_OPB => {
                let iface = if block_type == PCAPNG_EPB {
                    u32_at(body, 0, big)
                } else {
                    u16_at(body, 0, big).map(u32::from)
                }
                .ok_or(CaptureError::Truncated("pcapng packet block"))?;
                let iface = *interfaces
                    .get(iface as usize)
                    .ok_or(CaptureError::Malformed(
                        "pcapng EPB names an unknown interface",
                    ))?;
                let hi = u64::from(u32_at(body, 4, big).unwrap_or(0));
                let lo = u64::from(u32_at(body, 8, big).unwrap_or(0));
                let cap = u32_at(body, 12, big).unwrap_or(0) as usize;
                let orig_len = u32_at(body, 16, big).unwrap_or(0);
                if cap > MAX_RECORD_LEN {
                    return Err(CaptureError::Malformed("pcapng packet longer than 1 MiB").into());
                }
                let data = body
                    .get(20..20 + cap)
                    .ok_or(CaptureError::Malformed("pcapng EPB captured length"))?;
                let ticks = (hi << 32) | lo;
                let ts_ns = u64::try_from(
                    u128::from(ticks) * u128::from(iface.mul) / u128::from(iface.div),
                )
                .unwrap_or(u64::MAX);
                out.push(Record {
                    ts_ns,
                    link: iface.link,
                    orig_len: orig_len.max(cap as u32),
                    data: data.to_vec(),
                });
            }
            PCAPNG_SPB => {
                let iface = *interfaces
                    .first()
                    .ok_or(CaptureError::Malformed("pcapng SPB without an interface"))?;
                let orig_len = u32_at(body, 0, big).ok_or(CaptureError::Truncated("pcapng SPB"))?;
                let data = &body[4..];
                let cap = data.len().min(orig_len as usize);
                out.push(Record {
                    ts_ns: 0,
                    link: iface.link,
                    orig_len,
                    data: data[..cap].to_vec(),
                });
            }
            // Section headers were handled above; statistics, name resolution, custom and
            // other blocks carry no packets.
            _ => {}
        }
        at += total;
    }
    if at == 0 {
        return Err(Fault::Fatal(CaptureError::Truncated(
            "pcapng section header",
        )));
    }
    Ok(())
}

/// Interface Description Block: link type, snap length, options (`if_tsresol` = 9).
fn parse_idb(body: &[u8], big: bool) -> Result<Interface, CaptureError> {
    let link = u32::from(u16_at(body, 0, big).ok_or(CaptureError::Truncated("pcapng IDB"))?);
    if !linktype::supported(link) {
        return Err(CaptureError::UnsupportedLinkType(link));
    }
    let mut iface = Interface {
        link,
        mul: 1000,
        div: 1,
    };
    let mut at = 8;
    while let (Some(code), Some(len)) = (u16_at(body, at, big), u16_at(body, at + 2, big)) {
        let len = usize::from(len);
        let value = body.get(at + 4..at + 4 + len).unwrap_or(&[]);
        match (code, value) {
            (0, _) => break,
            (9, [res]) => {
                let exp = u32::from(res & 0x7f);
                let unit_per_sec: u128 = if res & 0x80 != 0 {
                    1u128.checked_shl(exp).unwrap_or(u128::MAX)
                } else {
                    10u128.checked_pow(exp).unwrap_or(u128::MAX)
                };
                // ns = ticks * 1e9 / units_per_sec
                let g = gcd(1_000_000_000, unit_per_sec);
                iface.mul = u64::try_from(1_000_000_000 / g).unwrap_or(1);
                iface.div = u64::try_from(unit_per_sec / g).unwrap_or(u64::MAX).max(1);
            }
            _ => {}
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    Ok(iface)
}

fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

/// Why a record holds no IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The link header is cut short.
    #[error("link-layer header truncated")]
    Truncated,
    /// The frame carries something other than IPv4 or IPv6 (ARP, LLDP, ...).
    #[error("not IP (ethertype {0:#06x})")]
    NotIp(u16),
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;

/// The IP packet inside a record of link type `link`.
///
/// # Errors
/// [`LinkError`] for a cut link header or a frame that is not IP.
pub fn ip_payload(link: u32, frame: &[u8]) -> Result<&[u8], LinkError> {
    let be16 = |at: usize| -> Result<u16, LinkError> {
        frame
            .get(at..at + 2)
            .map(|s| u16::from_be_bytes([s[0], s[1]]))
            .ok_or(LinkError::Truncated)
    };
    let (ethertype, start) = match link {
        linktype::ETHERNET => {
            let mut at = 12;
            let mut ethertype = be16(at)?;
            while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
                at += 4;
                ethertype = be16(at)?;
            }
            (ethertype, at + 2)
        }
        linktype::LINUX_SLL => (be16(14)?, 16),
        linktype::LINUX_SLL2 => (be16(0)?, 20),
        linktype::IPV4 => (ETHERTYPE_IPV4, 0),
        linktype::IPV6 => (ETHERTYPE_IPV6, 0),
        _ => match frame.first().map(|b| b >> 4) {
            Some(4) => (ETHERTYPE_IPV4, 0),
            Some(6) => (ETHERTYPE_IPV6, 0),
            Some(_) => (0, 0),
            None => return Err(LinkError::Truncated),
        },
    };
    if ethertype != ETHERTYPE_IPV4 && ethertype != ETHERTYPE_IPV6 {
        return Err(LinkError::NotIp(ethertype));
    }
    frame.get(start..).ok_or(LinkError::Truncated)
}
