//! The key log: a session's secrets written out for debugging, like TLS's `SSLKEYLOGFILE`
//! (RFC 8547 §5 allows a debug mode that exports session keys; it is off unless a
//! [`KeyLog`] is configured, see [`SessionConfig::key_log`](crate::session::SessionConfig)).
//!
//! One line per encrypted connection, and this module is the only place that knows its format:
//!
//! ```text
//! TCPCRYPT_ES <session_id_hex> <es_hex>     a fresh key agreement: ES (RFC 8548 §3.3)
//! TCPCRYPT_SS <session_id_hex> <ss_hex>     a resumed session: the ss[i] it used (RFC 8548 §3.5)
//! # a comment
//! ```
//!
//! Lower-case hex, fields separated by one space. With a capture of the connection these are
//! enough to recompute every key: `ss[0] = Extract(N_A, eno_transcript || Init1 || Init2 || ES)`
//! needs only what was on the wire and ES, and a resumed session's keys follow from ss\[i\] and
//! the resumption nonces of its SYNs. Anyone holding a key log can decrypt the connections it
//! names.
//!
//! Writers implement [`KeyLog`] and format with [`KeyLogEntry::to_line`]; readers (the capture
//! inspector) use [`KeyLogFile::parse`].

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::consts::{K_LEN, SESSION_ID_LEN};
use crate::keys::SessionId;

/// Label of a fresh key agreement's line.
pub const LABEL_ES: &str = "TCPCRYPT_ES";
/// Label of a resumed session's line.
pub const LABEL_SS: &str = "TCPCRYPT_SS";
/// Longest ES accepted when reading a key log (the registered TEPs produce 32 to 66 bytes).
pub const MAX_ES_LEN: usize = 256;

/// The v bit of the TEP byte, set in the session ID of a resumed session (RFC 8548 §3.5).
const TEP_BYTE_V: u8 = 0x80;

/// Where a session's secrets go when key logging is on (RFC 8547 §5 debug mode).
///
/// A [`Session`](crate::session::Session) calls [`log`](Self::log) exactly once, when its keys
/// come into existence: after Init1/Init2 for a fresh session, at creation for a resumed one.
/// Implementations must not block for long (the call happens on the data path) and must never
/// print the entry through `Debug` (it is redacted anyway).
pub trait KeyLog: Send + Sync + fmt::Debug {
    /// Records one connection's secret.
    fn log(&self, entry: &KeyLogEntry<'_>);
}

/// One connection's secret, as handed to a [`KeyLog`].
#[derive(Clone, Copy)]
pub enum KeyLogEntry<'a> {
    /// A fresh key agreement: ES (RFC 8548 §3.3).
    SharedSecret {
        /// The session ID of the connection (RFC 8548 §3.4).
        session_id: &'a SessionId,
        /// ES, the result of the key agreement.
        es: &'a [u8],
    },
    /// A resumed session: the ss\[i\] it used (RFC 8548 §3.5).
    SessionSecret {
        /// The session ID of the connection (v bit set).
        session_id: &'a SessionId,
        /// ss\[i\].
        ss: &'a [u8; K_LEN],
    },
}

impl KeyLogEntry<'_> {
    /// The session ID the entry belongs to.
    pub fn session_id(&self) -> &SessionId {
        match self {
            Self::SharedSecret { session_id, .. } | Self::SessionSecret { session_id, .. } => {
                session_id
            }
        }
    }

    /// The line for the key log file, newline included:
    /// `TCPCRYPT_ES <session_id_hex> <es_hex>\n` or `TCPCRYPT_SS <session_id_hex> <ss_hex>\n`.
    /// Zeroed when dropped.
    pub fn to_line(&self) -> Zeroizing<String> {
        let (label, secret): (&str, &[u8]) = match self {
            Self::SharedSecret { es, .. } => (LABEL_ES, es),
            Self::SessionSecret { ss, .. } => (LABEL_SS, &ss[..]),
        };
        let mut line = Zeroizing::new(String::with_capacity(
            label.len() + 2 * SESSION_ID_LEN + 2 * secret.len() + 3,
        ));
        line.push_str(label);
        line.push(' ');
        line.push_str(&self.session_id().to_hex());
        line.push(' ');
        for b in secret {
            // Writing into a String cannot fail.
            let _ = write!(line, "{b:02x}");
        }
        line.push('\n');
        line
    }
}

impl fmt::Debug for KeyLogEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::SharedSecret { .. } => "SharedSecret",
            Self::SessionSecret { .. } => "SessionSecret",
        };
        write!(f, "KeyLogEntry::{kind}({}, redacted)", self.session_id())
    }
}

/// A secret read from a key log. Zeroed on drop; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub enum LoggedSecret {
    /// ES of a fresh key agreement (`TCPCRYPT_ES`).
    Es(Vec<u8>),
    /// ss\[i\] of a resumed session (`TCPCRYPT_SS`).
    Ss([u8; K_LEN]),
}

impl fmt::Debug for LoggedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Es(es) => write!(f, "Es({} bytes, redacted)", es.len()),
            Self::Ss(_) => f.write_str("Ss(redacted)"),
        }
    }
}

/// What was wrong with a key log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyLogErrorKind {
    /// The first field is neither `TCPCRYPT_ES` nor `TCPCRYPT_SS`.
    #[error("unknown label (expected TCPCRYPT_ES or TCPCRYPT_SS)")]
    UnknownLabel,
    /// Not exactly three fields separated by single spaces.
    #[error("expected three fields separated by single spaces")]
    FieldCount,
    /// A field is not an even number of hex digits.
    #[error("{0} is not hex")]
    NotHex(&'static str),
    /// The session ID is not 33 bytes.
    #[error("session ID is not 33 bytes")]
    SessionIdLength,
    /// ES is empty or longer than [`MAX_ES_LEN`], or ss\[i\] is not 32 bytes.
    #[error("secret has the wrong length")]
    SecretLength,
    /// `TCPCRYPT_ES` with a resumed session ID (v bit set) or `TCPCRYPT_SS` with a fresh one.
    #[error("label does not match the session ID's v bit (ES: fresh, SS: resumed)")]
    ResumptionMismatch,
    /// The session ID appeared before with a different secret.
    #[error("session ID already logged with a different secret")]
    Conflict,
}

/// A malformed key log line: its 1-based number and what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("key log line {line}: {kind}")]
pub struct KeyLogError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub kind: KeyLogErrorKind,
}

/// A parsed key log: the secret of each logged session ID.
///
/// Blank lines and lines starting with `#` are skipped. A session ID logged twice with the same
/// secret (both hosts' logs concatenated) is kept once; with a different secret it is an error.
#[derive(Clone, Default)]
pub struct KeyLogFile {
    secrets: HashMap<SessionId, LoggedSecret>,
}

impl KeyLogFile {
    /// Parses a whole key log.
    ///
    /// # Errors
    /// The first malformed line, as a [`KeyLogError`] with its line number.
    pub fn parse(text: &str) -> Result<Self, KeyLogError> {
        let mut file = Self::default();
        for (index, raw) in text.lines().enumerate() {
            let at = |kind| KeyLogError {
                line: index + 1,
                kind,
            };
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (session_id, secret) = parse_line(line).map_err(at)?;
            match file.secrets.get(&session_id) {
                Some(known) if *known != secret => return Err(at(KeyLogErrorKind::Conflict)),
                Some(_) => {}
                None => {
                    file.secrets.insert(session_id, secret);
                }
            }
        }
        Ok(file)
    }

    /// The secret logged for `session_id`.
    pub fn get(&self, session_id: &SessionId) -> Option<&LoggedSecret> {
        self.secrets.get(session_id)
    }

    /// Every logged session, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&SessionId, &LoggedSecret)> {
        self.secrets.iter()
    }

    /// Number of logged sessions.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// True if no session is logged.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

impl fmt::Debug for KeyLogFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyLogFile({} sessions, redacted)", self.secrets.len())
    }
}

/// One non-comment line (without its newline).
fn parse_line(line: &str) -> Result<(SessionId, LoggedSecret), KeyLogErrorKind> {
    let mut fields = line.split(' ');
    let (Some(label), Some(sid), Some(secret), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(KeyLogErrorKind::FieldCount);
    };
    let resumed = match label {
        LABEL_ES => false,
        LABEL_SS => true,
        _ => return Err(KeyLogErrorKind::UnknownLabel),
    };
    let sid = decode_hex(sid, "session ID")?;
    let sid: [u8; SESSION_ID_LEN] = sid
        .as_slice()
        .try_into()
        .map_err(|_| KeyLogErrorKind::SessionIdLength)?;
    if (sid[0] & TEP_BYTE_V != 0) != resumed {
        return Err(KeyLogErrorKind::ResumptionMismatch);
    }
    let bytes = Zeroizing::new(decode_hex(secret, "secret")?);
    let secret = if resumed {
        let ss: [u8; K_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyLogErrorKind::SecretLength)?;
        LoggedSecret::Ss(ss)
    } else {
        if bytes.is_empty() || bytes.len() > MAX_ES_LEN {
            return Err(KeyLogErrorKind::SecretLength);
        }
        LoggedSecret::Es(bytes.to_vec())
    };
    Ok((SessionId::from_bytes(sid), secret))
}

/// Hex digits (either case) to bytes.
fn decode_hex(text: &str, field: &'static str) -> Result<Vec<u8>, KeyLogErrorKind> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let text = text.as_bytes();
    if text.is_empty() || text.len() % 2 != 0 {
        return Err(KeyLogErrorKind::NotHex(field));
    }
    let mut out = Vec::with_capacity(text.len() / 2);
    for pair in text.chunks_exact(2) {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
            _ => {
                out.zeroize();
                return Err(KeyLogErrorKind::NotHex(field));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(first: u8) -> SessionId {
        let mut b = [0u8; SESSION_ID_LEN];
        b[0] = first;
        for (i, x) in b.iter_mut().enumerate().skip(1) {
            *x = i as u8;
        }
        SessionId::from_bytes(b)
    }

    #[test]
    fn es_line_format() {
        let id = sid(0x22);
        let line = KeyLogEntry::SharedSecret {
            session_id: &id,
            es: &[0xab, 0x01, 0xff],
        }
        .to_line();
        assert_eq!(
            line.as_str(),
            format!("TCPCRYPT_ES 22{} ab01ff\n", &id.to_hex()[2..])
        );
        assert!(line.starts_with("TCPCRYPT_ES 220102030405"));
    }

    #[test]
    fn ss_line_format() {
        let id = sid(0xa3);
        let ss = [0x5a; K_LEN];
        let line = KeyLogEntry::SessionSecret {
            session_id: &id,
            ss: &ss,
        }
        .to_line();
        assert_eq!(
            line.as_str(),
            format!("TCPCRYPT_SS {} {}\n", id.to_hex(), "5a".repeat(K_LEN))
        );
    }

    #[test]
    fn parse_round_trip_with_comments_and_duplicates() {
        let fresh = sid(0x21);
        let resumed = sid(0xa1);
        let es: Vec<u8> = (0..56).collect();
        let ss = [7u8; K_LEN];
        let es_line = KeyLogEntry::SharedSecret {
            session_id: &fresh,
            es: &es,
        }
        .to_line();
        let ss_line = KeyLogEntry::SessionSecret {
            session_id: &resumed,
            ss: &ss,
        }
        .to_line();
        let text = format!("# tcpcryptd key log\n\n{}{}{}\r\n", *es_line, *ss_line, {
            // The peer's copy of the same line, as when both hosts' logs are concatenated.
            es_line.trim_end()
        });
        let file = KeyLogFile::parse(&text).expect("valid key log");
        assert_eq!(file.len(), 2);
        assert_eq!(file.get(&fresh), Some(&LoggedSecret::Es(es)));
        assert_eq!(file.get(&resumed), Some(&LoggedSecret::Ss(ss)));
        assert_eq!(file.get(&sid(0x22)), None);
        assert_eq!(file.iter().count(), 2);
        assert!(KeyLogFile::parse("").expect("empty").is_empty());
    }

    #[test]
    fn malformed_lines_are_typed_errors_with_line_numbers() {
        let fresh = sid(0x21).to_hex();
        let resumed = sid(0xa1).to_hex();
        let ss = "00".repeat(K_LEN);
        let cases: Vec<(String, KeyLogErrorKind)> = vec![
            (
                format!("TCPCRYPT_XX {fresh} 00"),
                KeyLogErrorKind::UnknownLabel,
            ),
            (format!("TCPCRYPT_ES {fresh}"), KeyLogErrorKind::FieldCount),
            (
                format!("TCPCRYPT_ES  {fresh} 00"),
                KeyLogErrorKind::FieldCount,
            ),
            (
                format!("TCPCRYPT_ES {fresh} 00 00"),
                KeyLogErrorKind::FieldCount,
            ),
            (
                format!("TCPCRYPT_ES {fresh} 0g"),
                KeyLogErrorKind::NotHex("secret"),
            ),
            (
                format!("TCPCRYPT_ES {fresh} 000"),
                KeyLogErrorKind::NotHex("secret"),
            ),
            (
                format!("TCPCRYPT_ES {} 00", &fresh[2..]),
                KeyLogErrorKind::SessionIdLength,
            ),
            (
                format!("TCPCRYPT_ES x{} 00", &fresh[1..]),
                KeyLogErrorKind::NotHex("session ID"),
            ),
            (
                format!("TCPCRYPT_SS {resumed} 00"),
                KeyLogErrorKind::SecretLength,
            ),
            (
                format!("TCPCRYPT_ES {fresh} {}", "00".repeat(MAX_ES_LEN + 1)),
                KeyLogErrorKind::SecretLength,
            ),
            (
                format!("TCPCRYPT_SS {fresh} {ss}"),
                KeyLogErrorKind::ResumptionMismatch,
            ),
            (
                format!("TCPCRYPT_ES {resumed} 00"),
                KeyLogErrorKind::ResumptionMismatch,
            ),
        ];
        for (line, kind) in cases {
            let text = format!("# header\nTCPCRYPT_ES {fresh} 01\n{line}\n");
            let err = KeyLogFile::parse(&text).expect_err(&line);
            assert_eq!(err, KeyLogError { line: 3, kind }, "{line}");
        }
        let conflict = format!("TCPCRYPT_ES {fresh} 01\nTCPCRYPT_ES {fresh} 02\n");
        assert_eq!(
            KeyLogFile::parse(&conflict).expect_err("conflict"),
            KeyLogError {
                line: 2,
                kind: KeyLogErrorKind::Conflict
            }
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let id = sid(0x21);
        let es = [0xee; 32];
        let entry = KeyLogEntry::SharedSecret {
            session_id: &id,
            es: &es,
        };
        let text = format!(
            "{entry:?} {:?} {:?}",
            LoggedSecret::Es(es.to_vec()),
            LoggedSecret::Ss(es)
        );
        assert!(!text.contains("eeee"), "{text}");
        let file = KeyLogFile::parse(&entry.to_line()).expect("valid");
        assert!(!format!("{file:?}").contains("eeee"));
    }
}
