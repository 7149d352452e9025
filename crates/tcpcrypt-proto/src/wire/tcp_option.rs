//! The TCP options area: a total, zero-copy iterator and the helpers a driver needs to insert an
//! ENO option (RFC 9293 §3.1; RFC 8547 §4.1, §11).
//!
//! Every option other than End of Option List and No-Operation is `kind, length, data`, where
//! `length` counts the two header bytes. ENO is kind 69 ([`TcpOption::Eno`]). The draft-era
//! encoding, kind 253 with experiment ID 0x454E, is recognised as [`TcpOption::LegacyEno`] so
//! that a SYN holding both can be treated as holding two ENO options (RFC 8547 §11), but it is
//! never negotiated with. Any other option is kept as [`TcpOption::Unknown`] with its bytes, so a
//! driver re-emits it unchanged.

use crate::consts::{
    ENO_OPTION_KIND, EXPERIMENT_ID_LEN, LEGACY_ENO_EXID, LEGACY_EXPERIMENTAL_KIND,
    MAX_TCP_OPTIONS_LEN, TCP_OPTION_EOL, TCP_OPTION_FAST_OPEN, TCP_OPTION_HEADER_LEN,
    TCP_OPTION_NOP,
};
use crate::error::DecodeError;
use crate::wire::eno::EnoOption;

/// Byte offsets inside one option (RFC 9293 §3.1).
mod field {
    use core::ops::{Range, RangeFrom};

    pub(super) const KIND: usize = 0;
    pub(super) const LENGTH: usize = 1;
    pub(super) const DATA: RangeFrom<usize> = 2..;
    /// The RFC 6994 experiment ID at the start of kind 253's data.
    pub(super) const EXID: Range<usize> = 2..4;
    pub(super) const EXPERIMENT_DATA: RangeFrom<usize> = 4..;
}

/// One TCP option, borrowed from the options area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of Option List (kind 0): the rest of the area is padding.
    EndOfList,
    /// No-Operation (kind 1).
    NoOperation,
    /// ENO, kind 69 (RFC 8547 §4.1): the whole option, kind and length bytes included.
    Eno(EnoOption<&'a [u8]>),
    /// Draft-era ENO: kind 253 with experiment ID 0x454E (RFC 8547 §11). `data` follows the
    /// experiment ID. Recognised, never negotiated with.
    LegacyEno {
        /// The bytes after the experiment ID.
        data: &'a [u8],
    },
    /// Any other option, kept byte for byte.
    Unknown {
        /// The option kind.
        kind: u8,
        /// The bytes after kind and length.
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    /// Parses the option at the start of `buffer` and returns the bytes after it.
    ///
    /// # Errors
    /// A [`DecodeError`] naming "TCP option length" if a length byte is missing, below 2 (or
    /// below 4 for kind 253 with an experiment ID), or runs past the end of `buffer`.
    pub fn parse(buffer: &'a [u8]) -> Result<(&'a [u8], Self), DecodeError> {
        let Some(&kind) = buffer.get(field::KIND) else {
            return Err(DecodeError::truncated("TCP option kind"));
        };
        match kind {
            TCP_OPTION_EOL => return Ok((&buffer[1..], Self::EndOfList)),
            TCP_OPTION_NOP => return Ok((&buffer[1..], Self::NoOperation)),
            _ => {}
        }
        let Some(&length) = buffer.get(field::LENGTH) else {
            return Err(DecodeError::truncated("TCP option length"));
        };
        let length = usize::from(length);
        if length < TCP_OPTION_HEADER_LEN {
            return Err(DecodeError::invalid("TCP option length"));
        }
        let Some(option) = buffer.get(..length) else {
            return Err(DecodeError::truncated("TCP option length"));
        };
        let rest = &buffer[length..];
        let parsed = match kind {
            ENO_OPTION_KIND => Self::Eno(EnoOption::new_checked(option)?),
            LEGACY_EXPERIMENTAL_KIND if option.get(field::EXID) == Some(&LEGACY_EXID_BYTES) => {
                Self::LegacyEno {
                    data: &option[field::EXPERIMENT_DATA],
                }
            }
            _ => Self::Unknown {
                kind,
                data: &option[field::DATA],
            },
        };
        Ok((rest, parsed))
    }

    /// Bytes this option occupies when emitted.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::EndOfList | Self::NoOperation => 1,
            Self::Eno(eno) => eno.as_bytes().len(),
            Self::LegacyEno { data } => TCP_OPTION_HEADER_LEN + EXPERIMENT_ID_LEN + data.len(),
            Self::Unknown { data, .. } => TCP_OPTION_HEADER_LEN + data.len(),
        }
    }

    /// Writes the option into the start of `buffer` and returns the bytes after it.
    ///
    /// # Panics
    /// If `buffer` is shorter than [`buffer_len`](Self::buffer_len), or the option is longer
    /// than 255 bytes (impossible for a parsed option; callers building one by hand keep data
    /// within [`MAX_TCP_OPTIONS_LEN`]).
    pub fn emit<'b>(&self, buffer: &'b mut [u8]) -> &'b mut [u8] {
        let len = self.buffer_len();
        let (out, rest) = buffer.split_at_mut(len);
        match self {
            Self::EndOfList => out[field::KIND] = TCP_OPTION_EOL,
            Self::NoOperation => out[field::KIND] = TCP_OPTION_NOP,
            Self::Eno(eno) => out.copy_from_slice(eno.as_bytes()),
            Self::LegacyEno { data } => {
                out[field::KIND] = LEGACY_EXPERIMENTAL_KIND;
                out[field::LENGTH] = option_length(len);
                out[field::EXID].copy_from_slice(&LEGACY_EXID_BYTES);
                out[field::EXPERIMENT_DATA].copy_from_slice(data);
            }
            Self::Unknown { kind, data } => {
                out[field::KIND] = *kind;
                out[field::LENGTH] = option_length(len);
                out[field::DATA].copy_from_slice(data);
            }
        }
        rest
    }

    /// True for a TCP Fast Open option carrying a cookie (RFC 7413 §4.1.1). RFC 8547 §4.7: a
    /// SYN carrying ENO MUST NOT carry one, and SYN data next to one is never ENO's.
    pub fn is_fast_open_cookie(&self) -> bool {
        matches!(self, Self::Unknown { kind: TCP_OPTION_FAST_OPEN, data } if !data.is_empty())
    }
}

const LEGACY_EXID_BYTES: [u8; EXPERIMENT_ID_LEN] = LEGACY_ENO_EXID.to_be_bytes();

/// The length byte of an option of `len` bytes.
fn option_length(len: usize) -> u8 {
    // Invariant documented on `emit`: options are at most 255 bytes.
    u8::try_from(len).unwrap_or(u8::MAX)
}

/// An iterator over the options area of a TCP header (RFC 9293 §3.1).
///
/// It yields each option in order and stops after [`TcpOption::EndOfList`] (what follows is
/// padding) or after the first error, which it yields once. It never panics.
#[derive(Clone, Debug)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> TcpOptions<'a> {
    /// Iterates over `area`, the bytes between the fixed TCP header and the payload.
    pub fn new(area: &'a [u8]) -> Self {
        Self {
            rest: area,
            done: false,
        }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        match TcpOption::parse(self.rest) {
            Ok((rest, option)) => {
                self.rest = rest;
                self.done = option == TcpOption::EndOfList;
                Some(Ok(option))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for TcpOptions<'_> {}

/// A fixed-capacity buffer of at most [`MAX_TCP_OPTIONS_LEN`] bytes: one option, or a whole
/// options area. `Copy`, so a state machine can hand it out without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OptionsBuf {
    bytes: [u8; MAX_TCP_OPTIONS_LEN],
    len: u8,
}

impl OptionsBuf {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            bytes: [0; MAX_TCP_OPTIONS_LEN],
            len: 0,
        }
    }

    /// Copies `bytes`; `None` if longer than [`MAX_TCP_OPTIONS_LEN`].
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut buf = Self::new();
        buf.extend(bytes).then_some(buf)
    }

    /// Appends `bytes`; false (and no change) if they do not fit.
    fn extend(&mut self, bytes: &[u8]) -> bool {
        let start = usize::from(self.len);
        let Some(dst) = self.bytes.get_mut(start..start + bytes.len()) else {
            return false;
        };
        dst.copy_from_slice(bytes);
        self.len += bytes.len() as u8; // at most MAX_TCP_OPTIONS_LEN, fits in u8
        true
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for OptionsBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for OptionsBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OptionsBuf(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Why an option could not be inserted into an options area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The existing area, or the option to insert, does not parse.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// The result, padded to a multiple of 4, would exceed the 40-byte options area.
    #[error("no room in the TCP options area: {needed} bytes needed")]
    NoSpace {
        /// Bytes the padded result would need.
        needed: usize,
    },
}

/// Bytes the real options of `area` occupy: every option but No-Operation and End of Option
/// List. Those two are only padding and alignment, which [`insert_option`] drops: "there is no
/// guarantee that senders will use this option, so receivers MUST be prepared to process options
/// even if they do not begin on a word boundary" (RFC 9293 §3.1).
///
/// Reclaiming the alignment NOP of a Linux SYN (MSS, SACK-permitted, timestamps, NOP, window
/// scale: 19 bytes of options in a 20-byte area) is what lets host B's 21-byte resumption reply
/// fit (RFC 8548 §3.5; digest §3.7 option-space budget).
///
/// # Errors
/// [`DecodeError`] if `area` is malformed.
pub fn used_len(area: &[u8]) -> Result<usize, DecodeError> {
    let mut used = 0;
    for option in TcpOptions::new(area) {
        match option? {
            TcpOption::EndOfList => break,
            TcpOption::NoOperation => {}
            other => used += other.buffer_len(),
        }
    }
    Ok(used)
}

/// Bytes left for a new option in `area` once its padding is reclaimed: what
/// [`insert_option`] can still fit (before its own padding to a multiple of 4).
///
/// # Errors
/// [`DecodeError`] if `area` is malformed.
pub fn free_space(area: &[u8]) -> Result<usize, DecodeError> {
    Ok(MAX_TCP_OPTIONS_LEN.saturating_sub(used_len(area)?))
}

/// Builds a new options area: the options of `area` in their order, without No-Operation and
/// End of Option List bytes (see [`used_len`]), then `option` (one encoded option, for example
/// what [`Negotiation::on_send`](crate::eno::Negotiation::on_send) returned), then No-Operation
/// bytes up to a multiple of 4 bytes (RFC 9293 §3.1: the header length counts 32-bit words).
/// Every other option is re-emitted byte for byte. The driver sets the data offset from the
/// result's length.
///
/// # Errors
/// [`InsertError::Malformed`] if `area` or `option` does not parse (or `option` is not exactly
/// one option); [`InsertError::NoSpace`] if the padded result exceeds 40 bytes.
pub fn insert_option(area: &[u8], option: &[u8]) -> Result<OptionsBuf, InsertError> {
    let (rest, _) = TcpOption::parse(option)?;
    if !rest.is_empty() {
        return Err(DecodeError::invalid("inserted TCP option").into());
    }
    let used = used_len(area)?;
    let needed = (used + option.len()).next_multiple_of(4);
    if needed > MAX_TCP_OPTIONS_LEN {
        return Err(InsertError::NoSpace { needed });
    }
    let mut out = OptionsBuf::new();
    let mut fits = true;
    for existing in TcpOptions::new(area) {
        // Parsed once already by `used_len`: every item is Ok.
        let Ok(existing) = existing else { break };
        match existing {
            TcpOption::EndOfList => break,
            TcpOption::NoOperation => {}
            other => {
                let mut buf = [0u8; MAX_TCP_OPTIONS_LEN];
                let len = other.buffer_len();
                let _ = other.emit(&mut buf[..len]);
                fits &= out.extend(&buf[..len]);
            }
        }
    }
    fits = fits
        && out.extend(option)
        && out.extend(&[TCP_OPTION_NOP; 3][..needed - used - option.len()]);
    debug_assert!(fits, "needed <= MAX_TCP_OPTIONS_LEN was checked");
    Ok(out)
}

/// True if `area` holds a TCP Fast Open option with a cookie (RFC 8547 §4.7). Malformed areas
/// count as not holding one.
pub fn has_fast_open_cookie(area: &[u8]) -> bool {
    TcpOptions::new(area).any(|o| o.is_ok_and(|o| o.is_fast_open_cookie()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Linux SYN's options: MSS 1460, SACK-permitted, timestamps, NOP, window scale 7.
    const LINUX_SYN: [u8; 20] = [
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    fn collect(area: &[u8]) -> Vec<Result<TcpOption<'_>, DecodeError>> {
        TcpOptions::new(area).collect()
    }

    #[test]
    fn deconstruct_linux_syn_with_eno() {
        let mut area = LINUX_SYN.to_vec();
        area.extend_from_slice(&[0x45, 0x03, 0x23, 0x00]);
        let opts: Vec<_> = collect(&area).into_iter().map(Result::unwrap).collect();
        assert_eq!(opts.len(), 7); // 6 options, then EOL; the iterator stops there
        assert_eq!(
            opts[0],
            TcpOption::Unknown {
                kind: 2,
                data: &[0x05, 0xb4]
            }
        );
        assert_eq!(opts[1], TcpOption::Unknown { kind: 4, data: &[] });
        assert_eq!(opts[3], TcpOption::NoOperation);
        match opts[5] {
            TcpOption::Eno(eno) => assert_eq!(eno.as_bytes(), &[0x45, 0x03, 0x23]),
            other => panic!("expected ENO, got {other:?}"),
        }
        assert_eq!(opts[6], TcpOption::EndOfList);
    }

    #[test]
    fn stops_after_end_of_list() {
        let area = [0x01, 0x00, 0x45, 0x00];
        let opts = collect(&area);
        assert_eq!(
            opts,
            vec![Ok(TcpOption::NoOperation), Ok(TcpOption::EndOfList)]
        );
    }

    #[test]
    fn construct_reemits_byte_for_byte() {
        let mut area = LINUX_SYN.to_vec();
        area.extend_from_slice(&[0xfd, 0x06, 0x45, 0x4e, 0x23, 0x11, 0x45, 0x02]);
        let mut out = vec![0u8; area.len()];
        let mut rest = &mut out[..];
        for o in TcpOptions::new(&area) {
            rest = o.unwrap().emit(rest);
        }
        assert!(rest.is_empty());
        assert_eq!(out, area);
    }

    #[test]
    fn legacy_eno_recognised_other_exids_unknown() {
        let legacy = [0xfd, 0x05, 0x45, 0x4e, 0x23];
        assert_eq!(
            collect(&legacy),
            vec![Ok(TcpOption::LegacyEno { data: &[0x23] })]
        );
        let other = [0xfd, 0x05, 0x12, 0x34, 0x23];
        assert_eq!(
            collect(&other),
            vec![Ok(TcpOption::Unknown {
                kind: 253,
                data: &[0x12, 0x34, 0x23]
            })]
        );
        // Kind 253 too short for an experiment ID stays Unknown.
        let short = [0xfd, 0x03, 0x45];
        assert_eq!(
            collect(&short),
            vec![Ok(TcpOption::Unknown {
                kind: 253,
                data: &[0x45]
            })]
        );
    }

    #[test]
    fn truncated_and_impossible_lengths() {
        let cases: &[(&[u8], DecodeError)] = &[
            (&[0x02], DecodeError::truncated("TCP option length")),
            (
                &[0x02, 0x04, 0x05],
                DecodeError::truncated("TCP option length"),
            ),
            (&[0x02, 0x00], DecodeError::invalid("TCP option length")),
            (&[0x02, 0x01], DecodeError::invalid("TCP option length")),
            (&[0x45, 0x01], DecodeError::invalid("TCP option length")),
            (
                &[0x45, 0x05, 0x23],
                DecodeError::truncated("TCP option length"),
            ),
            (
                &[0x01, 0x08, 0x0a, 0x00],
                DecodeError::truncated("TCP option length"),
            ),
        ];
        for (area, err) in cases {
            let got = collect(area);
            assert_eq!(got.last(), Some(&Err(*err)), "{area:02x?}");
            // The iterator is fused after an error.
            let mut it = TcpOptions::new(area);
            while let Some(Ok(_)) = it.next() {}
            assert!(it.next().is_none());
        }
    }

    #[test]
    fn insert_pads_with_nops_and_checks_space() {
        // 20-byte Linux SYN (19 bytes of options and an alignment NOP) + 3-byte ENO -> the NOP
        // is reclaimed: 19 + 3 = 22, padded to 24; every other option byte for byte, in order.
        let out = insert_option(&LINUX_SYN, &[0x45, 0x03, 0x23]).unwrap();
        assert_eq!(out.len(), 24);
        assert_eq!(&out.as_bytes()[..16], &LINUX_SYN[..16]);
        assert_eq!(&out.as_bytes()[16..19], &LINUX_SYN[17..]);
        assert_eq!(&out.as_bytes()[19..], &[0x45, 0x03, 0x23, 0x01, 0x01]);
        // Trailing padding (NOPs, EOL and what follows) of the old area is reclaimed.
        let padded = [0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x00, 0x00];
        assert_eq!(used_len(&padded), Ok(4));
        let out = insert_option(&padded, &[0x45, 0x02]).unwrap();
        assert_eq!(
            out.as_bytes(),
            &[0x02, 0x04, 0x05, 0xb4, 0x45, 0x02, 0x01, 0x01]
        );
        // Exactly 40 fits (19 + 21: host B's resumption reply); 41 does not.
        let mut opt = vec![0x45, 21];
        opt.resize(21, 0x23);
        let out = insert_option(&LINUX_SYN, &opt).unwrap();
        assert_eq!(out.len(), 40);
        assert_eq!(
            TcpOptions::new(out.as_bytes()).count(),
            5,
            "MSS, SACK-ok, TS, WS, ENO"
        );
        opt.push(0x23);
        opt[1] = 22;
        assert_eq!(
            insert_option(&LINUX_SYN, &opt),
            Err(InsertError::NoSpace { needed: 44 })
        );
        assert_eq!(free_space(&LINUX_SYN), Ok(21));
        // Malformed inputs.
        assert!(matches!(
            insert_option(&[0x02], &[0x45, 0x02]),
            Err(InsertError::Malformed(_))
        ));
        assert!(matches!(
            insert_option(&[], &[0x45, 0x02, 0x01]),
            Err(InsertError::Malformed(_))
        ));
    }

    #[test]
    fn fast_open_cookie_detection() {
        assert!(has_fast_open_cookie(&[0x22, 0x06, 1, 2, 3, 4]));
        assert!(!has_fast_open_cookie(&[0x22, 0x02])); // cookie request, empty
        assert!(!has_fast_open_cookie(&LINUX_SYN));
    }

    mod prop {
        use proptest::prelude::*;

        use super::*;

        /// Options that re-parse as themselves (no Unknown that looks like EOL/NOP/ENO/legacy).
        fn owned_option() -> impl Strategy<Value = (u8, Vec<u8>)> {
            prop_oneof![
                Just((0u8, vec![])),
                Just((1u8, vec![])),
                proptest::collection::vec(any::<u8>(), 0..12).prop_map(|d| (69u8, d)),
                proptest::collection::vec(any::<u8>(), 0..12).prop_map(|d| (253u8, d)),
                (2u8..=252, proptest::collection::vec(any::<u8>(), 0..12))
                    .prop_filter("not ENO", |(k, _)| *k != 69),
            ]
        }

        fn encode(kind: u8, data: &[u8]) -> Vec<u8> {
            match kind {
                0 | 1 => vec![kind],
                253 => [&[253, data.len() as u8 + 4, 0x45, 0x4e][..], data].concat(),
                _ => [&[kind, data.len() as u8 + 2][..], data].concat(),
            }
        }

        proptest! {
            #[test]
            fn parse_emit_round_trip(opts in proptest::collection::vec(owned_option(), 0..6)) {
                let mut area = Vec::new();
                for (k, d) in &opts {
                    area.extend(encode(*k, d));
                    if *k == 0 { break; }
                }
                let parsed: Vec<TcpOption<'_>> =
                    TcpOptions::new(&area).map(Result::unwrap).collect();
                let mut out = vec![0u8; parsed.iter().map(TcpOption::buffer_len).sum()];
                let mut rest = &mut out[..];
                for o in &parsed {
                    rest = o.emit(rest);
                }
                prop_assert_eq!(&out[..], &area[..out.len()]);
                let reparsed: Vec<TcpOption<'_>> =
                    TcpOptions::new(&out).map(Result::unwrap).collect();
                prop_assert_eq!(reparsed, parsed);
            }

            #[test]
            fn never_panics(area in proptest::collection::vec(any::<u8>(), 0..64),
                            opt in proptest::collection::vec(any::<u8>(), 0..48)) {
                for o in TcpOptions::new(&area).flatten() {
                    let mut buf = vec![0u8; o.buffer_len()];
                    o.emit(&mut buf);
                }
                let _ = used_len(&area);
                let _ = free_space(&area);
                let _ = has_fast_open_cookie(&area);
                if let Ok(out) = insert_option(&area, &opt) {
                    prop_assert!(out.len() % 4 == 0 && out.len() <= MAX_TCP_OPTIONS_LEN);
                }
            }
        }
    }
}
