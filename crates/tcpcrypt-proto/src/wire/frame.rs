//! The encryption frame (RFC 8548 §3.6, §4.2). Read RFC 8548 §4.2 first.
//!
//! ```text
//! frame     = control(1) | clen(2, BE) | ciphertext(clen)
//! control   = cres(7 bits: 0 when sent, ignored when received) | rekey (0x01)
//! plaintext = flags(1) [| urgent(2, BE), iff URGp] | data
//! flags     = fres(6 bits: 0 when sent, ignored when received) | URGp (0x02) | FINp (0x01)
//! AD        = control | clen                           (the 3 header bytes as on the wire)
//! nonce     = (0^(ae_nonce_len - 8) | offset(8, BE)) XOR NR
//! ```
//!
//! `clen` is the AEAD output length, plaintext plus the 16-byte tag, and must be below 2^16;
//! the smallest frame (flags byte only) has clen = 17 ([`MIN_CLEN`]).

use crate::consts::{
    AEAD_NONCE_LEN, CONTROL_REKEY, FLAG_FINP, FLAG_URGP, FRAME_HEADER_LEN, MIN_CLEN,
};
use crate::error::{DecodeError, Error, PeerMisbehaved};

/// Byte offsets of the frame header and of the plaintext header (RFC 8548 §4.2, §4.2.1).
mod field {
    use core::ops::Range;

    /// Header: the control byte.
    pub(super) const CONTROL: usize = 0;
    /// Header: clen, big-endian.
    pub(super) const CLEN: Range<usize> = 1..3;
    /// Plaintext: the flags byte.
    pub(super) const FLAGS: usize = 0;
    /// Plaintext: the urgent offset, big-endian, present iff URGp.
    pub(super) const URGENT: Range<usize> = 1..3;
}

/// Where the frame stream of a direction starts, as a byte offset of that direction's TCP data
/// stream: the project decision A1 (digest §5.3) for the frame ID of RFC 8548 §4.2.3.
///
/// RFC 8548 §3.6 defines the offset as "the zero-indexed byte offset of the beginning of this
/// frame in the underlying TCP datastream". We read this literally (reading II of the digest):
/// the offset counts *every* byte of the direction's TCP payload, so the Init message that
/// opens a fresh stream occupies offsets `0..init_len` and the first frame starts at
/// `init_len` (host A: len(Init1), host B: len(Init2), each as transmitted, trailing bytes
/// included). A resumed session has no Init message: `init_len` = 0, first frame at offset 0.
pub const fn first_frame_offset(init_len: usize) -> u64 {
    init_len as u64
}

/// The AEAD nonce of the frame that starts at stream `offset` (RFC 8548 §3.6, §4.2.3):
/// `frame ID = 0^(ae_nonce_len - 8) || offset (8 bytes, big-endian)`, `N = frame ID XOR NR`.
pub fn frame_nonce(offset: u64, nr: &[u8; AEAD_NONCE_LEN]) -> [u8; AEAD_NONCE_LEN] {
    let mut nonce = *nr;
    let offset = offset.to_be_bytes();
    for (n, o) in nonce[AEAD_NONCE_LEN - offset.len()..]
        .iter_mut()
        .zip(offset)
    {
        *n ^= o;
    }
    nonce
}

/// The 3-byte frame header (RFC 8548 §4.2); its bytes are also the AEAD associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The rekey bit: this frame is the first under a newly raised generation (§3.8).
    pub rekey: bool,
    /// Length of the ciphertext that follows, tag included.
    pub clen: u16,
}

impl FrameHeader {
    /// Parses the first [`FRAME_HEADER_LEN`] bytes of `bytes`. The `cres` bits are ignored.
    ///
    /// # Errors
    /// `Decode` (truncated) if fewer than 3 bytes; `PeerMisbehaved::FrameTooShort` if
    /// `clen` < [`MIN_CLEN`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let Some(header) = bytes.get(..FRAME_HEADER_LEN) else {
            return Err(DecodeError::truncated("frame header").into());
        };
        let clen = u16::from_be_bytes([header[field::CLEN.start], header[field::CLEN.end - 1]]);
        if usize::from(clen) < MIN_CLEN {
            return Err(PeerMisbehaved::FrameTooShort.into());
        }
        Ok(Self {
            rekey: header[field::CONTROL] & CONTROL_REKEY != 0,
            clen,
        })
    }

    /// The header bytes, `cres` = 0 (RFC 8548 §4.2: MUST be zero when sent).
    pub fn to_bytes(self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[field::CONTROL] = if self.rekey { CONTROL_REKEY } else { 0 };
        b[field::CLEN].copy_from_slice(&self.clen.to_be_bytes());
        b
    }

    /// The whole frame's length on the wire: header plus ciphertext.
    pub const fn frame_len(self) -> usize {
        FRAME_HEADER_LEN + self.clen as usize
    }
}

/// The decrypted plaintext's header: flags and, with URGp, the urgent offset
/// (RFC 8548 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PlaintextHeader {
    /// FINp: this is the sender's last frame (§3.7).
    pub fin: bool,
    /// URGp and the urgent field: the offset of the last urgent byte counted from this frame's
    /// first data byte (0 = the first data byte is the last urgent one). This is the project's
    /// reading of RFC 8548 §3.7 (digest §5.3 A2-A3): the field is big-endian and counts
    /// application data bytes, not framing-stream bytes.
    pub urgent: Option<u16>,
}

impl PlaintextHeader {
    /// Parses the flags (and urgent field) at the start of a decrypted `plaintext` and returns
    /// the header and where the data starts. `fres` bits are ignored.
    ///
    /// # Errors
    /// `Decode` if `plaintext` is empty; `PeerMisbehaved::BadUrgentOffset` if URGp is set and
    /// the urgent field is missing or points at or past the end of the frame's data.
    pub fn parse(plaintext: &[u8]) -> Result<(Self, usize), Error> {
        let Some(&flags) = plaintext.get(field::FLAGS) else {
            return Err(DecodeError::truncated("frame flags").into());
        };
        let fin = flags & FLAG_FINP != 0;
        if flags & FLAG_URGP == 0 {
            return Ok((Self { fin, urgent: None }, field::FLAGS + 1));
        }
        let Some(u) = plaintext.get(field::URGENT) else {
            return Err(PeerMisbehaved::BadUrgentOffset.into());
        };
        let urgent = u16::from_be_bytes([u[0], u[1]]);
        let data_len = plaintext.len() - field::URGENT.end;
        if usize::from(urgent) >= data_len {
            return Err(PeerMisbehaved::BadUrgentOffset.into());
        }
        Ok((
            Self {
                fin,
                urgent: Some(urgent),
            },
            field::URGENT.end,
        ))
    }

    /// Bytes before the data: 1, or 3 with URGp.
    pub const fn buffer_len(&self) -> usize {
        match self.urgent {
            Some(_) => field::URGENT.end,
            None => field::FLAGS + 1,
        }
    }

    /// Writes the header into `buf[..self.buffer_len()]`, `fres` = 0.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) {
        let mut flags = if self.fin { FLAG_FINP } else { 0 };
        if let Some(u) = self.urgent {
            flags |= FLAG_URGP;
            buf[field::URGENT].copy_from_slice(&u.to_be_bytes());
        }
        buf[field::FLAGS] = flags;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::consts::{AEAD_TAG_LEN, MAX_CLEN};

    #[test]
    fn deconstruct_header() {
        let h = FrameHeader::parse(&[0x01, 0x00, 0x11]).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                rekey: true,
                clen: 17
            }
        );
        assert_eq!(h.frame_len(), 20);
        let h = FrameHeader::parse(&[0x00, 0xff, 0xff, 0xaa]).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                rekey: false,
                clen: 0xffff
            }
        );
        assert_eq!(h.frame_len(), MAX_CLEN + 3);
    }

    #[test]
    fn construct_header() {
        assert_eq!(
            FrameHeader {
                rekey: true,
                clen: 0x1234
            }
            .to_bytes(),
            [0x01, 0x12, 0x34]
        );
        assert_eq!(
            FrameHeader {
                rekey: false,
                clen: 17
            }
            .to_bytes(),
            [0x00, 0x00, 0x11]
        );
    }

    #[test]
    fn cres_bits_are_ignored() {
        let h = FrameHeader::parse(&[0xfe, 0x00, 0x20]).unwrap();
        assert!(!h.rekey);
        assert!(FrameHeader::parse(&[0xff, 0x00, 0x20]).unwrap().rekey);
    }

    #[test]
    fn truncated_header() {
        for n in 0..3 {
            assert!(matches!(
                FrameHeader::parse(&[0, 0, 17][..n]),
                Err(Error::Decode(_))
            ));
        }
    }

    #[test]
    fn clen_below_minimum() {
        for clen in [0u16, 1, 16] {
            let b = FrameHeader { rekey: false, clen }.to_bytes();
            assert_eq!(
                FrameHeader::parse(&b),
                Err(Error::PeerMisbehaved(PeerMisbehaved::FrameTooShort))
            );
        }
        assert_eq!(MIN_CLEN, 1 + AEAD_TAG_LEN);
    }

    #[test]
    fn plaintext_flags() {
        assert_eq!(
            PlaintextHeader::parse(&[0x01, b'x']).unwrap(),
            (
                PlaintextHeader {
                    fin: true,
                    urgent: None
                },
                1
            )
        );
        // fres bits are ignored.
        assert_eq!(
            PlaintextHeader::parse(&[0xfc]).unwrap(),
            (
                PlaintextHeader {
                    fin: false,
                    urgent: None
                },
                1
            )
        );
        assert_eq!(
            PlaintextHeader::parse(&[0x02, 0x00, 0x01, b'a', b'b']).unwrap(),
            (
                PlaintextHeader {
                    fin: false,
                    urgent: Some(1)
                },
                3
            )
        );
        assert!(matches!(PlaintextHeader::parse(&[]), Err(Error::Decode(_))));
    }

    #[test]
    fn urgent_outside_frame() {
        let bad = Err(Error::PeerMisbehaved(PeerMisbehaved::BadUrgentOffset));
        assert_eq!(PlaintextHeader::parse(&[0x02]), bad);
        assert_eq!(PlaintextHeader::parse(&[0x02, 0x00]), bad);
        assert_eq!(
            PlaintextHeader::parse(&[0x02, 0x00, 0x00]),
            bad,
            "no data, no urgent byte"
        );
        assert_eq!(PlaintextHeader::parse(&[0x02, 0x00, 0x02, b'a', b'b']), bad);
        assert!(PlaintextHeader::parse(&[0x03, 0x00, 0x01, b'a', b'b']).is_ok());
    }

    #[test]
    fn emit_plaintext_header() {
        let mut b = [0u8; 3];
        let h = PlaintextHeader {
            fin: true,
            urgent: Some(0x0102),
        };
        assert_eq!(h.buffer_len(), 3);
        h.emit(&mut b);
        assert_eq!(b, [0x03, 0x01, 0x02]);
        let h = PlaintextHeader {
            fin: false,
            urgent: None,
        };
        assert_eq!(h.buffer_len(), 1);
        h.emit(&mut b);
        assert_eq!(b[0], 0);
    }

    /// Decision A1: the first frame's offset is the length of the Init message before it.
    #[test]
    fn frame_offset_origin_counts_init_bytes() {
        assert_eq!(first_frame_offset(0), 0, "resumed sessions start at 0");
        // X25519 Init1 with three ciphers: 73 + 2 * 3 = 79 bytes; Init2: 74 bytes.
        assert_eq!(first_frame_offset(79), 79);
        assert_eq!(first_frame_offset(74), 74);
    }

    #[test]
    fn nonce_construction() {
        let nr = [0u8; 12];
        assert_eq!(frame_nonce(0, &nr), [0; 12]);
        assert_eq!(
            frame_nonce(0x0102_0304_0506_0708, &nr),
            [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        let nr = [0xff; 12];
        assert_eq!(
            frame_nonce(0x0102_0304_0506_0708, &nr),
            [0xff, 0xff, 0xff, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7]
        );
        let nr: [u8; 12] = core::array::from_fn(|i| i as u8);
        assert_eq!(
            frame_nonce(74, &nr)[..4],
            nr[..4],
            "padding bytes are NR itself"
        );
        assert_eq!(frame_nonce(74, &nr)[11], 11 ^ 74);
    }

    proptest! {
        #[test]
        fn header_round_trip(rekey in any::<bool>(), clen in (MIN_CLEN as u16)..=u16::MAX) {
            let h = FrameHeader { rekey, clen };
            prop_assert_eq!(FrameHeader::parse(&h.to_bytes()).unwrap(), h);
        }

        #[test]
        fn plaintext_header_round_trip(
            fin in any::<bool>(),
            data in prop::collection::vec(any::<u8>(), 0..64),
            u in any::<u16>(),
        ) {
            let urgent = (!data.is_empty()).then(|| u % data.len() as u16);
            let h = PlaintextHeader { fin, urgent };
            let mut buf = vec![0u8; h.buffer_len()];
            h.emit(&mut buf);
            buf.extend_from_slice(&data);
            prop_assert_eq!(PlaintextHeader::parse(&buf).unwrap(), (h, h.buffer_len()));
        }

        #[test]
        fn nonce_is_injective_in_offset(a in any::<u64>(), b in any::<u64>(), nr in any::<[u8; 12]>()) {
            prop_assert_eq!(frame_nonce(a, &nr) == frame_nonce(b, &nr), a == b);
        }
    }
}
