//! Every codepoint, label and size of RFC 8547 and RFC 8548, in one place.
//!
//! Codepoints are newtypes with associated constants so that unknown values stay representable
//! (a peer may offer a TEP or an AEAD we do not know; we must skip it, not fail to parse it).

use core::fmt;

/// TCP option kind of the ENO option (RFC 8547 §4.1, §11).
pub const ENO_OPTION_KIND: u8 = 69;

/// Shared experimental TCP option kind (RFC 6994) used by pre-RFC implementations of ENO.
pub const LEGACY_EXPERIMENTAL_KIND: u8 = 253;

/// Experiment ID that marked draft-era ENO in option kind 253 (RFC 8547 §11).
///
/// Recognised only, never negotiated with: "current and new implementations MUST use 69".
pub const LEGACY_ENO_EXID: u16 = 0x454e;

/// A TCP encryption protocol identifier, the 7-bit `glt` of a TEP suboption (RFC 8547 §4.1).
///
/// Values 0x20..=0x7f are TEP identifiers; the `v` bit is not part of the identifier.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TepId(u8);

impl TepId {
    /// Experimental use (RFC 8547 §11, Table 3).
    pub const EXPERIMENTAL: Self = Self(0x20);
    /// TCPCRYPT_ECDHE_P256 (RFC 8548 §7, Table 4). OPTIONAL.
    pub const TCPCRYPT_ECDHE_P256: Self = Self(0x21);
    /// TCPCRYPT_ECDHE_P521 (RFC 8548 §7, Table 4). OPTIONAL.
    pub const TCPCRYPT_ECDHE_P521: Self = Self(0x22);
    /// TCPCRYPT_ECDHE_Curve25519 (RFC 8548 §7, Table 4). REQUIRED.
    pub const TCPCRYPT_ECDHE_CURVE25519: Self = Self(0x23);
    /// TCPCRYPT_ECDHE_Curve448 (RFC 8548 §7, Table 4). RECOMMENDED.
    pub const TCPCRYPT_ECDHE_CURVE448: Self = Self(0x24);

    /// All tcpcrypt TEPs, in the order this implementation prefers them (least preferred first,
    /// as a host B lists them, RFC 8547 §4.5).
    pub const TCPCRYPT_ALL: [Self; 4] = [
        Self::TCPCRYPT_ECDHE_P521,
        Self::TCPCRYPT_ECDHE_P256,
        Self::TCPCRYPT_ECDHE_CURVE448,
        Self::TCPCRYPT_ECDHE_CURVE25519,
    ];

    /// Builds a TEP id from its 7-bit value; `None` outside 0x20..=0x7f.
    pub const fn new(glt: u8) -> Option<Self> {
        if glt >= 0x20 && glt <= 0x7f {
            Some(Self(glt))
        } else {
            None
        }
    }

    /// The 7-bit identifier.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// True for the four TEPs defined by RFC 8548.
    pub const fn is_tcpcrypt(self) -> bool {
        self.0 >= 0x21 && self.0 <= 0x24
    }

    /// The RFC's name, for logs and the CLI.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0x21 => Some("TCPCRYPT_ECDHE_P256"),
            0x22 => Some("TCPCRYPT_ECDHE_P521"),
            0x23 => Some("TCPCRYPT_ECDHE_Curve25519"),
            0x24 => Some("TCPCRYPT_ECDHE_Curve448"),
            0x20 => Some("experimental"),
            _ => None,
        }
    }
}

impl fmt::Debug for TepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "TepId({:#04x})", self.0),
        }
    }
}

impl fmt::Display for TepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A 16-bit AEAD algorithm identifier of the tcpcrypt AEAD registry (RFC 8548 §6, §7 Table 5).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AeadId(pub u16);

impl AeadId {
    /// AEAD_AES_128_GCM (RFC 5116). REQUIRED.
    pub const AES_128_GCM: Self = Self(0x0001);
    /// AEAD_AES_256_GCM (RFC 5116). RECOMMENDED.
    pub const AES_256_GCM: Self = Self(0x0002);
    /// AEAD_CHACHA20_POLY1305 (RFC 8439). RECOMMENDED.
    pub const CHACHA20_POLY1305: Self = Self(0x0010);

    /// The three AEADs of RFC 8548 §6.
    pub const ALL: [Self; 3] = [
        Self::AES_128_GCM,
        Self::AES_256_GCM,
        Self::CHACHA20_POLY1305,
    ];

    /// The registry name, for logs and the CLI.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0x0001 => Some("AEAD_AES_128_GCM"),
            0x0002 => Some("AEAD_AES_256_GCM"),
            0x0010 => Some("AEAD_CHACHA20_POLY1305"),
            _ => None,
        }
    }
}

impl fmt::Debug for AeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "AeadId({:#06x})", self.0),
        }
    }
}

impl fmt::Display for AeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The ENO role of a host (RFC 8547 §4.3): A sent b=0, B sent b=1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The host that sent b=0; normally the active opener. Sends Init1, encrypts with k_ab.
    A,
    /// The host that sent b=1; normally the passive opener. Sends Init2, encrypts with k_ba.
    B,
}

impl Role {
    /// The other role.
    pub const fn peer(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::A => "A",
            Self::B => "B",
        })
    }
}

/// Key-derivation labels of RFC 8548 §4.3, used as the CPRF `info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// CONST_NEXTK: ss\[i\] = CPRF(ss\[i-1\], CONST_NEXTK, K_LEN).
    NextK,
    /// CONST_SESSID: session_id\[i\] = TEP-byte || CPRF(ss\[i\], CONST_SESSID || sn\[i\], K_LEN).
    SessId,
    /// CONST_REKEY: mk\[0\] = CPRF(ss\[i\], CONST_REKEY || sn\[i\], K_LEN); mk\[j\] = CPRF(mk\[j-1\], ...).
    Rekey,
    /// CONST_KEY_A: k_ab\[j\] = CPRF(mk\[j\], CONST_KEY_A, ae_key_len + ae_nonce_len).
    KeyA,
    /// CONST_KEY_B: k_ba\[j\] = CPRF(mk\[j\], CONST_KEY_B, ae_key_len + ae_nonce_len).
    KeyB,
    /// CONST_RESUME: resume\[i\] = CPRF(ss\[i\], CONST_RESUME, 18).
    Resume,
}

impl Label {
    /// The byte value (RFC 8548 §4.3). The only place these numbers appear.
    pub const fn byte(self) -> u8 {
        match self {
            Self::NextK => 0x01,
            Self::SessId => 0x02,
            Self::Rekey => 0x03,
            Self::KeyA => 0x04,
            Self::KeyB => 0x05,
            Self::Resume => 0x06,
        }
    }
}

/// INIT1_MAGIC (RFC 8548 §4.3), big-endian on the wire.
pub const INIT1_MAGIC: u32 = 0x1510_1a0e;
/// INIT2_MAGIC (RFC 8548 §4.3), big-endian on the wire.
pub const INIT2_MAGIC: u32 = 0x0971_05e0;

/// N_A_LEN (RFC 8548 §5): length of host A's nonce in Init1.
pub const N_A_LEN: usize = 32;
/// N_B_LEN (RFC 8548 §5): length of host B's nonce in Init2.
pub const N_B_LEN: usize = 32;
/// K_LEN (RFC 8548 §5): length of ss\[i\], mk\[j\] and the hash part of the session ID.
pub const K_LEN: usize = 32;
/// Session ID length: the TEP byte plus K_LEN (RFC 8548 §3.4; RFC 8547 §5.1 minimum 33).
pub const SESSION_ID_LEN: usize = 1 + K_LEN;
/// Length of resume\[i\] (RFC 8548 §3.5); each host sends a 9-byte half.
pub const RESUME_ID_LEN: usize = 18;
/// Length of one half of resume\[i\] (RFC 8548 §3.5).
pub const RESUME_HALF_LEN: usize = RESUME_ID_LEN / 2;
/// Maximum resumption nonce length (RFC 8548 §3.5).
pub const RESUME_NONCE_MAX: usize = 8;
/// Default resumption nonce length: "MUST default to 8 bytes" when reuse cannot be ruled out.
pub const RESUME_NONCE_DEFAULT: usize = 8;

/// ae_nonce_len of every AEAD of RFC 8548 §6; the frame ID has this length (§4.2.3).
pub const AEAD_NONCE_LEN: usize = 12;
/// Tag length of every AEAD of RFC 8548 §6 (RFC 5116 §5.1, RFC 8439 §2.8).
pub const AEAD_TAG_LEN: usize = 16;
/// Largest AEAD key among the registered AEADs (AES-256-GCM, ChaCha20-Poly1305).
pub const AEAD_MAX_KEY_LEN: usize = 32;

/// Frame header: control (1) + clen (2) (RFC 8548 §4.2).
pub const FRAME_HEADER_LEN: usize = 3;
/// "clen < 2^16" (RFC 8548 §3.6): the largest ciphertext of one frame.
pub const MAX_CLEN: usize = 0xffff;
/// Smallest valid clen: the flags byte plus the tag of an empty frame.
pub const MIN_CLEN: usize = 1 + AEAD_TAG_LEN;
/// Largest application payload of a frame without urgent data: clen - tag - flags.
pub const MAX_FRAME_DATA: usize = MAX_CLEN - AEAD_TAG_LEN - 1;
/// Largest application payload of a frame with URGp set (two more bytes for `urgent`).
pub const MAX_FRAME_DATA_URGENT: usize = MAX_FRAME_DATA - 2;
/// Bytes a frame adds around its application data (header, flags byte, tag).
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_LEN + 1 + AEAD_TAG_LEN;

/// Control byte: the rekey bit (RFC 8548 §4.2); the other seven bits are `cres`.
pub const CONTROL_REKEY: u8 = 0x01;
/// Plaintext flags: FINp (RFC 8548 §4.2.1).
pub const FLAG_FINP: u8 = 0x01;
/// Plaintext flags: URGp (RFC 8548 §4.2.1).
pub const FLAG_URGP: u8 = 0x02;

/// Largest Init1/Init2 `message_len` this implementation buffers (digest §5.3 A6).
///
/// RFC 8548 §4.1 sets no maximum, but every field has a bounded size: the largest conforming
/// Init1 is 9 + 2 * 255 + 32 + 69 = 620 bytes (255 ciphers, P-521). Anything longer is trailing
/// "ignored" junk, which we accept and hash (RFC 8548 §4.1) only up to this cap.
pub const MAX_INIT_LEN: usize = 4096;

/// Bytes of an Init message before its variable fields: magic (4) + message_len (4)
/// (RFC 8548 §4.1).
pub const INIT_HEADER_LEN: usize = 8;

/// Largest frame on the wire: header plus the largest ciphertext (RFC 8548 §3.6, §4.2).
pub const MAX_FRAME_LEN: usize = FRAME_HEADER_LEN + MAX_CLEN;

/// Sealed ciphertext a session holds before the driver takes it with `poll_ciphertext`. Once
/// reached, `write_plaintext` accepts nothing more and incoming ciphertext is no longer consumed
/// (so mandatory rekey answers cannot pile up either). Four maximum-size frames.
pub const MAX_SEND_BUFFER: usize = 4 * MAX_FRAME_LEN;

/// Automatic rekey after this many frames sent under one key generation (RFC 8548 §3.8 leaves
/// the interval open; digest §5.3 A14).
///
/// 2^24 frames keeps AES-GCM and ChaCha20-Poly1305 far inside their usage limits
/// (draft-irtf-cfrg-aead-limits: for AES-GCM the confidentiality advantage is about
/// sigma^2 / 2^129 for sigma blocks; at 2^24 maximum-size frames, sigma < 2^36, giving about
/// 2^-57).
pub const REKEY_AFTER_FRAMES: u64 = 1 << 24;

/// Automatic rekey after this many ciphertext bytes sent under one key generation (digest §5.3
/// A14). 2^36 bytes = 2^32 AES blocks, an AES-GCM confidentiality advantage near 2^-65; it also
/// guarantees a new key long before the 64-bit frame offset could wrap (RFC 8548 §3.6: "MUST NOT
/// send more than 2^64 bytes" under one key).
pub const REKEY_AFTER_BYTES: u64 = 1 << 36;

/// Default time a liveness probe waits for the peer's mandatory rekey answer (RFC 8548 §3.9).
pub const DEFAULT_LIVENESS_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(30);

/// Default time the Init1/Init2 exchange may take before the session fails (RFC 8548 §3.3
/// gives no limit; without one, a tampered message_len makes both hosts wait forever).
pub const DEFAULT_HANDSHAKE_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(30);

/// TCP option kind End of Option List (RFC 9293 §3.1).
pub const TCP_OPTION_EOL: u8 = 0;
/// TCP option kind No-Operation (RFC 9293 §3.1), also used as padding.
pub const TCP_OPTION_NOP: u8 = 1;
/// TCP option kind TCP Fast Open cookie (RFC 7413 §4.1.1); RFC 8547 §4.7 forbids a non-empty
/// one in a SYN carrying ENO.
pub const TCP_OPTION_FAST_OPEN: u8 = 34;
/// Size of the TCP options area at most: 60-byte header limit minus the 20-byte fixed header
/// (RFC 9293 §3.1).
pub const MAX_TCP_OPTIONS_LEN: usize = 40;
/// Size of an option's kind and length bytes (RFC 9293 §3.1).
pub const TCP_OPTION_HEADER_LEN: usize = 2;
/// Bytes of an RFC 6994 experiment ID following kind and length in option 253.
pub const EXPERIMENT_ID_LEN: usize = 2;
/// Largest contents of one ENO option: the options area minus kind and length (RFC 8547 §4.1).
pub const MAX_ENO_CONTENTS_LEN: usize = MAX_TCP_OPTIONS_LEN - TCP_OPTION_HEADER_LEN;

/// ENO suboption byte: the `v` bit (RFC 8547 §4.1, Fig 4).
pub const ENO_V_BIT: u8 = 0x80;
/// ENO suboption byte: the 7-bit `glt` field (RFC 8547 §4.1, Fig 4).
pub const ENO_GLT_MASK: u8 = 0x7f;
/// `glt` values below this are global suboptions (v = 0) or length bytes (v = 1); from here on
/// they are TEP identifiers (RFC 8547 §4.1, Table 1).
pub const ENO_FIRST_TEP_GLT: u8 = 0x20;
/// Global suboption: the passive-role bit `b` (RFC 8547 §4.2, Fig 5).
pub const ENO_GLOBAL_B: u8 = 0x01;
/// Global suboption: the application-aware bit `a` (RFC 8547 §4.2, Fig 5).
pub const ENO_GLOBAL_A: u8 = 0x02;
/// Length byte: mask of `nnnnn`; the data length is `nnnnn + 1` (RFC 8547 §4.4).
pub const ENO_LENGTH_MASK: u8 = 0x1f;
/// Largest data length a length byte can announce, `0x1f + 1` (RFC 8547 §4.4).
pub const ENO_MAX_LENGTH_BYTE_DATA: usize = 32;
/// Smallest data of a tcpcrypt resumption suboption: the identifier half (RFC 8548 §3.5); a v=1
/// suboption with less is a fresh offer.
pub const RESUME_SUBOPTION_MIN_DATA: usize = RESUME_HALF_LEN;
/// Largest data of a tcpcrypt resumption suboption: identifier half plus an 8-byte nonce
/// (RFC 8548 §3.5).
pub const RESUME_SUBOPTION_MAX_DATA: usize = RESUME_HALF_LEN + RESUME_NONCE_MAX;
