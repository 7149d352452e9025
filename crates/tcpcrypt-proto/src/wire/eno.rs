//! The ENO TCP option, kind 69 (RFC 8547 §4.1-§4.4).
//!
//! ```text
//!  kind=69 | len=N+2 | contents (N bytes)
//! ```
//!
//! In a SYN the contents are a sequence of suboptions (SYN-form); elsewhere only the option's
//! presence matters and tcpcrypt sends it empty, `45 02` (non-SYN form, RFC 8547 §4.1). A
//! suboption's first byte is `v | glt` (Fig 4, Table 1):
//!
//! | byte      | meaning                                                              |
//! |-----------|----------------------------------------------------------------------|
//! | 0x00-0x1f | global suboption `0 0 0 z1 z2 z3 a b` (§4.2)                          |
//! | 0x20-0x7f | TEP identifier without data                                          |
//! | 0x80-0x9f | length byte `100nnnnn`: the next suboption is a TEP with nnnnn+1 data bytes (§4.4) |
//! | 0xa0-0xff | TEP identifier with data running to the end of the option            |
//!
//! [`EnoOption`] is the byte view (kind, length, contents); [`SynEnoRepr`] and [`EnoRepr`] are
//! the parsed values. Parsing is total: each malformed case RFC 8547 §4.4 names ("a length byte
//! followed by 0x00-0x9f", "length overrun") is a [`DecodeError`], after which the receiver MUST
//! ignore the option and disable encryption.

use crate::consts::{
    TepId, ENO_FIRST_TEP_GLT, ENO_GLOBAL_A, ENO_GLOBAL_B, ENO_GLT_MASK, ENO_LENGTH_MASK,
    ENO_MAX_LENGTH_BYTE_DATA, ENO_OPTION_KIND, ENO_V_BIT, MAX_ENO_CONTENTS_LEN,
    MAX_TCP_OPTIONS_LEN, TCP_OPTION_HEADER_LEN,
};
use crate::error::DecodeError;

/// Byte offsets inside the ENO option (RFC 8547 §4.1, Fig 3).
mod field {
    use core::ops::RangeFrom;

    pub(super) const KIND: usize = 0;
    pub(super) const LENGTH: usize = 1;
    pub(super) const CONTENTS: RangeFrom<usize> = 2..;
}

/// A byte view of one whole ENO option: kind, length and contents (RFC 8547 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnoOption<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EnoOption<T> {
    /// Wraps `buffer` without checking it (for emitting).
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// See [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let option = Self::new_unchecked(buffer);
        option.check_len()?;
        Ok(option)
    }

    /// Checks that the buffer is exactly one option of kind 69 whose length byte is the
    /// buffer's length; after this no accessor panics.
    ///
    /// # Errors
    /// "ENO option" truncated below two bytes; "ENO option kind" invalid if not 69; "ENO option
    /// length" invalid if the length byte disagrees with the buffer.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let bytes = self.buffer.as_ref();
        if bytes.len() < TCP_OPTION_HEADER_LEN {
            return Err(DecodeError::truncated("ENO option"));
        }
        if bytes[field::KIND] != ENO_OPTION_KIND {
            return Err(DecodeError::invalid("ENO option kind"));
        }
        if usize::from(bytes[field::LENGTH]) != bytes.len() {
            return Err(DecodeError::invalid("ENO option length"));
        }
        Ok(())
    }

    /// The kind byte (69).
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[field::KIND]
    }

    /// The length byte: contents length plus 2.
    pub fn length(&self) -> u8 {
        self.buffer.as_ref()[field::LENGTH]
    }

    /// The contents: suboptions in a SYN, ignored elsewhere.
    pub fn contents(&self) -> &[u8] {
        &self.buffer.as_ref()[field::CONTENTS]
    }

    /// The whole option, kind and length included: what goes into the transcript (§4.8).
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EnoOption<T> {
    /// Sets the kind byte.
    pub fn set_kind(&mut self, kind: u8) {
        self.buffer.as_mut()[field::KIND] = kind;
    }

    /// Sets the length byte.
    pub fn set_length(&mut self, length: u8) {
        self.buffer.as_mut()[field::LENGTH] = length;
    }

    /// The contents, mutably.
    pub fn contents_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::CONTENTS]
    }
}

/// The global suboption `0 0 0 z1 z2 z3 a b` (RFC 8547 §4.2, Fig 5). The reserved z bits are
/// ignored when received and sent as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GlobalSuboption {
    /// The passive-role bit: the sender is host B (§4.3).
    pub b: bool,
    /// The application-aware bit (§4.2).
    pub a: bool,
}

impl GlobalSuboption {
    /// Decodes a byte in 0x00-0x1f, ignoring the z bits.
    pub const fn from_byte(byte: u8) -> Self {
        Self {
            b: byte & ENO_GLOBAL_B != 0,
            a: byte & ENO_GLOBAL_A != 0,
        }
    }

    /// Encodes with the z bits 0 ("MUST be 0 when sent", §4.2).
    pub const fn to_byte(self) -> u8 {
        (if self.b { ENO_GLOBAL_B } else { 0 }) | (if self.a { ENO_GLOBAL_A } else { 0 })
    }
}

/// One TEP suboption (RFC 8547 §4.1): the identifier, the `v` bit, and its data (empty when
/// v = 0; when v = 1 it may be empty only as the last suboption).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TepSuboption<'a> {
    /// The 7-bit TEP identifier.
    pub tep: TepId,
    /// The `v` bit: for tcpcrypt, 1 marks a resumption suboption (RFC 8548 §3.2).
    pub v: bool,
    /// Suboption data, without any length byte.
    pub data: &'a [u8],
}

impl TepSuboption<'_> {
    /// The suboption's first byte as on the wire, `v | glt`; for B's negotiated TEP this is
    /// byte 0 of the session ID (RFC 8547 §5.1).
    pub fn byte(&self) -> u8 {
        self.tep.get() | if self.v { ENO_V_BIT } else { 0 }
    }
}

/// A SYN-form ENO option (RFC 8547 §4.1): an optional explicit global suboption and the TEP
/// suboptions in order. Every value can be emitted: [`new`](Self::new) rejects the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynEnoRepr<'a> {
    global: Option<GlobalSuboption>,
    teps: Vec<TepSuboption<'a>>,
}

impl<'a> SynEnoRepr<'a> {
    /// Builds a SYN-form option. `global` = `None` leaves the global suboption implicit (0x00);
    /// a passive opener MUST send it explicitly with b = 1 (§4.2).
    ///
    /// # Errors
    /// "ENO TEP suboption data" invalid if a v = 0 suboption has data; "ENO length byte"
    /// invalid if a v = 1 suboption other than the last has 0 or more than 32 data bytes (no
    /// length byte can describe it, §4.4); "ENO option" too long beyond 40 bytes.
    pub fn new(
        global: Option<GlobalSuboption>,
        teps: Vec<TepSuboption<'a>>,
    ) -> Result<Self, DecodeError> {
        let last = teps.len().saturating_sub(1);
        for (i, s) in teps.iter().enumerate() {
            if !s.v && !s.data.is_empty() {
                return Err(DecodeError::invalid("ENO TEP suboption data"));
            }
            if s.v && i != last && !(1..=ENO_MAX_LENGTH_BYTE_DATA).contains(&s.data.len()) {
                return Err(DecodeError::invalid("ENO length byte"));
            }
        }
        let repr = Self { global, teps };
        if repr.buffer_len() > MAX_TCP_OPTIONS_LEN {
            return Err(DecodeError::too_long("ENO option"));
        }
        Ok(repr)
    }

    /// Parses a SYN-form option (RFC 8547 §4.1-§4.4, digest §2.19).
    ///
    /// Only the first global suboption counts; later ones are skipped ("MUST ignore all but the
    /// first", §4.2).
    ///
    /// # Errors
    /// "ENO option" too long if the contents exceed 38 bytes; "suboption after ENO length byte"
    /// invalid if a length byte is followed by a byte 0x00-0x9f; "ENO suboption data"
    /// truncated if a length byte runs past the end of the option (§4.4).
    pub fn parse(option: &EnoOption<&'a [u8]>) -> Result<Self, DecodeError> {
        let contents: &'a [u8] = &option.into_inner()[field::CONTENTS];
        Self::parse_contents(contents)
    }

    /// [`parse`](Self::parse) on the contents alone.
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn parse_contents(contents: &'a [u8]) -> Result<Self, DecodeError> {
        if contents.len() > MAX_ENO_CONTENTS_LEN {
            return Err(DecodeError::too_long("ENO option"));
        }
        let mut global = None;
        let mut teps = Vec::new();
        let mut rest = contents;
        while let Some((&c, after)) = rest.split_first() {
            let glt = c & ENO_GLT_MASK;
            let v = c & ENO_V_BIT != 0;
            if !v && glt < ENO_FIRST_TEP_GLT {
                global.get_or_insert(GlobalSuboption::from_byte(c));
                rest = after;
            } else if !v {
                teps.push(TepSuboption {
                    tep: tep_id(glt),
                    v: false,
                    data: &[],
                });
                rest = after;
            } else if glt < ENO_FIRST_TEP_GLT {
                let n = usize::from(c & ENO_LENGTH_MASK) + 1;
                let Some((&t, data_and_rest)) = after.split_first() else {
                    return Err(DecodeError::truncated("ENO suboption data"));
                };
                if t & ENO_V_BIT == 0 || t & ENO_GLT_MASK < ENO_FIRST_TEP_GLT {
                    return Err(DecodeError::invalid("suboption after ENO length byte"));
                }
                if data_and_rest.len() < n {
                    return Err(DecodeError::truncated("ENO suboption data"));
                }
                let (data, tail) = data_and_rest.split_at(n);
                teps.push(TepSuboption {
                    tep: tep_id(t & ENO_GLT_MASK),
                    v: true,
                    data,
                });
                rest = tail;
            } else {
                teps.push(TepSuboption {
                    tep: tep_id(glt),
                    v: true,
                    data: after,
                });
                rest = &[];
            }
        }
        // Parsed values always satisfy `new`'s rules: see the module tests.
        Ok(Self { global, teps })
    }

    /// The explicit global suboption, if any.
    pub fn explicit_global(&self) -> Option<GlobalSuboption> {
        self.global
    }

    /// The global suboption, 0x00 when implicit (RFC 8547 §4.2).
    pub fn global(&self) -> GlobalSuboption {
        self.global.unwrap_or_default()
    }

    /// The TEP suboptions in order.
    pub fn teps(&self) -> &[TepSuboption<'a>] {
        &self.teps
    }

    /// True if the option lists no TEP (RFC 8547 §4.6, "vacuous").
    pub fn is_vacuous(&self) -> bool {
        self.teps.is_empty()
    }

    /// Length of the whole emitted option, kind and length bytes included.
    pub fn buffer_len(&self) -> usize {
        let last = self.teps.len().saturating_sub(1);
        let teps: usize = self
            .teps
            .iter()
            .enumerate()
            .map(|(i, s)| 1 + s.data.len() + usize::from(s.v && i != last))
            .sum();
        TCP_OPTION_HEADER_LEN + usize::from(self.global.is_some()) + teps
    }

    /// Writes the option: kind 69, length, the global suboption first if explicit, then the
    /// TEP suboptions, with a length byte before each v = 1 suboption that is not last (§4.4).
    ///
    /// # Panics
    /// If `option` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, option: &mut EnoOption<T>) {
        let len = self.buffer_len();
        option.set_kind(ENO_OPTION_KIND);
        option.set_length(len as u8); // new() bounds len by MAX_TCP_OPTIONS_LEN
        let out = option.contents_mut();
        let mut at = 0;
        let mut put = |b: &[u8]| {
            out[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        };
        if let Some(g) = self.global {
            put(&[g.to_byte()]);
        }
        let last = self.teps.len().saturating_sub(1);
        for (i, s) in self.teps.iter().enumerate() {
            if s.v && i != last {
                // 100nnnnn with nnnnn + 1 = data length (1..=32, checked by new()).
                put(&[ENO_V_BIT | (s.data.len() as u8 - 1)]);
            }
            put(&[s.byte()]);
            put(s.data);
        }
    }

    /// Emits into a fresh `Vec` (convenience for tests and drivers).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut EnoOption::new_unchecked(&mut buf[..]));
        buf
    }
}

/// A TEP id from a `glt` known to be >= 0x20.
fn tep_id(glt: u8) -> TepId {
    // Callers pass glt in 0x20..=0x7f; the fallback is unreachable but keeps this total.
    TepId::new(glt).unwrap_or(TepId::EXPERIMENTAL)
}

/// An ENO option in either form (RFC 8547 §4.1). Which form depends on the segment: SYN-form
/// in SYN segments, non-SYN form elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnoRepr<'a> {
    /// SYN-form: suboptions.
    Syn(SynEnoRepr<'a>),
    /// Non-SYN form: a one-bit acknowledgment. Its contents are ignored when received and
    /// empty when sent, as tcpcrypt gives them no meaning (`45 02`, RFC 8547 §4.1).
    NonSyn,
}

impl<'a> EnoRepr<'a> {
    /// Parses `option` in the form a segment with SYN = `syn` carries.
    ///
    /// # Errors
    /// As [`SynEnoRepr::parse`] for SYN-form; never for non-SYN form.
    pub fn parse(option: &EnoOption<&'a [u8]>, syn: bool) -> Result<Self, DecodeError> {
        if syn {
            SynEnoRepr::parse(option).map(Self::Syn)
        } else {
            Ok(Self::NonSyn)
        }
    }

    /// Length of the emitted option.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::Syn(s) => s.buffer_len(),
            Self::NonSyn => TCP_OPTION_HEADER_LEN,
        }
    }

    /// Writes the option.
    ///
    /// # Panics
    /// If `option` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, option: &mut EnoOption<T>) {
        match self {
            Self::Syn(s) => s.emit(option),
            Self::NonSyn => {
                option.set_kind(ENO_OPTION_KIND);
                option.set_length(TCP_OPTION_HEADER_LEN as u8);
            }
        }
    }
}

/// The non-SYN-form ENO option tcpcrypt sends, `45 02` (RFC 8547 §4.1, §4.6).
pub const NON_SYN_ENO: [u8; TCP_OPTION_HEADER_LEN] = [ENO_OPTION_KIND, TCP_OPTION_HEADER_LEN as u8];

#[cfg(test)]
mod tests;
