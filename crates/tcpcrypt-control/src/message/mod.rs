//! The messages of the control protocol and their line codec.
//!
//! Every message is one JSON object on one line. Field names are snake_case and stable: the CLI's
//! `--json` output passes them on to scripts, so a field is never renamed, only added. Decoding
//! ignores unknown fields, so an older client can read a newer daemon's replies.
//!
//! ```text
//! -> {"cmd":"status"}
//! <- {"status":{"version":"0.1.0","pid":4242,"uptime_secs":73,"policy":{...},"counters":{...},"load":{...}}}
//! -> {"cmd":"sessions"}
//! <- {"sessions":[{"local":"10.0.0.1:40000","remote":"10.0.0.2:80","state":"established",...}]}
//! -> {"cmd":"session_id","local":"10.0.0.1:40000","remote":"10.0.0.2:80"}
//! <- {"session_id":{"session_id":"2319…","role":"A","tep":"TCPCRYPT_ECDHE_Curve25519","resumed":false}}
//! <- {"error":{"code":"not_encrypted","message":"fell back to plain TCP: peer sent no ENO option"}}
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tcpcrypt_proto::{AeadId, Role, SessionId, TepId};

/// Version of the control protocol described by this module, reported in [`Status::protocol`].
///
/// Raised only for incompatible changes; adding a field or a request does not raise it.
pub const PROTOCOL_VERSION: u32 = 1;

/// A request from a client (the CLI or an application) to the daemon.
///
/// Tagged by `cmd`: `{"cmd":"status"}`, `{"cmd":"sessions"}`,
/// `{"cmd":"session_id","local":"127.0.0.1:5000","remote":"127.0.0.1:80"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The daemon's version, policy and counters; answered by [`Response::Status`].
    Status,
    /// One row per connection the daemon handles; answered by [`Response::Sessions`].
    Sessions,
    /// The session ID of one connection; answered by [`Response::SessionId`] or an error.
    ///
    /// The addresses are those the *application* sees on its own socket: `local` from
    /// getsockname and `remote` from getpeername. The daemon maps them to its proxied connection.
    SessionId {
        /// The application's local address (getsockname).
        local: SocketAddr,
        /// The application's peer address (getpeername).
        remote: SocketAddr,
    },
}

/// A reply from the daemon: exactly one per request.
///
/// Tagged by its single key: `{"status":{..}}`, `{"sessions":[..]}`, `{"session_id":{..}}`,
/// `{"error":{"code":..,"message":..}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Reply to [`Request::Status`].
    Status(Box<Status>),
    /// Reply to [`Request::Sessions`].
    Sessions(Vec<SessionInfo>),
    /// Reply to [`Request::SessionId`] when the connection is encrypted and established.
    SessionId(SessionIdReply),
    /// The request failed; `code` says why in a form programs can act on.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// One line for humans, e.g. the fallback reason for [`ErrorCode::NotEncrypted`].
        message: String,
    },
}

impl Response {
    /// Shorthand for [`Response::Error`].
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The daemon knows no connection with this 4-tuple.
    NotFound,
    /// The connection fell back to plain TCP (RFC 8547 §4.7); the message carries the reason.
    NotEncrypted,
    /// The connection is encrypted but its handshake has not finished: no session ID yet.
    Pending,
    /// The request could not be parsed, was too long, or is not allowed.
    BadRequest,
    /// A code this version of the crate does not know (sent by a newer daemon).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The wire name, e.g. `not_encrypted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::NotEncrypted => "not_encrypted",
            Self::Pending => "pending",
            Self::BadRequest => "bad_request",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The daemon's summary, like `wg show`: version, policy, counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The daemon's version (its crate version).
    pub version: String,
    /// The control protocol version the daemon speaks ([`PROTOCOL_VERSION`]).
    #[serde(default = "default_protocol")]
    pub protocol: u32,
    /// The daemon's process ID.
    pub pid: u32,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The policy in force.
    pub policy: Policy,
    /// Counters since the daemon started.
    pub counters: Counters,
    /// The daemon's capacity and how much of it is in use now; absent from daemons older than
    /// this field (a client shows nothing of it then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
}

fn default_protocol() -> u32 {
    PROTOCOL_VERSION
}

/// The policy in force, as descriptions the daemon's configuration spells.
///
/// Port and address lists are strings so that the daemon's configuration syntax (ranges, CIDR
/// prefixes) reaches the user unchanged, e.g. `["all"]`, `["80", "8000-8100", "10.0.0.0/8"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Which connections are offered tcpcrypt (ports and addresses).
    pub encrypt: Vec<String>,
    /// Ports never offered tcpcrypt.
    pub exclude_ports: Vec<String>,
    /// Ports where plain-TCP fallback is refused (the connection is reset instead).
    pub mandatory_ports: Vec<String>,
    /// Addresses and ranges where plain-TCP fallback is refused (as destinations on the client
    /// side, as this host's own addresses on the server side).
    pub mandatory_addrs: Vec<String>,
    /// TEPs in order of preference, most preferred first, by RFC name (see [`tep_name`]).
    pub teps: Vec<String>,
    /// AEADs in order of preference, most preferred first, by registry name (see [`aead_name`]).
    pub aeads: Vec<String>,
    /// Whether session resumption (RFC 8548 §3.5) is on.
    pub resumption: bool,
    /// The key log file when the debug mode of RFC 8547 §5 is on (every encrypted
    /// connection's secret is written there); absent when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keylog: Option<String>,
    /// Who writes and reads the ENO options of the daemon's own connections: `bpf` (a
    /// sock_ops program in the kernel) or `nfqueue` (each handshake segment queued to the
    /// daemon); absent from daemons that do not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub option_path: Option<String>,
    /// Whether the kernel filters the SYNs the daemon has nothing to decide (to a cached server
    /// without tcpcrypt, or carrying no ENO) instead of queueing them (xt_bpf matches, on the
    /// BPF option path); absent from daemons that do not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syn_filters: Option<bool>,
}

/// Counters since the daemon started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Connections whose tcpcrypt handshake completed (fresh and resumed).
    pub connections_encrypted: u64,
    /// Of those, connections that resumed a cached session (RFC 8548 §3.5).
    pub connections_resumed: u64,
    /// Connections that ran as plain TCP (fallback or not offered).
    pub connections_plain: u64,
    /// Fallbacks to plain TCP by reason, e.g. `{"no_eno_from_peer": 3, "no_common_tep": 1}`.
    pub fallbacks: BTreeMap<String, u64>,
    /// Connections that ended in an error.
    pub failures: Failures,
    /// Sessions open now.
    pub active_sessions: u64,
    /// Application bytes received from peers (plaintext, after decryption).
    pub bytes_in: u64,
    /// Application bytes sent to peers (plaintext, before encryption).
    pub bytes_out: u64,
}

/// The daemon's limits and how much of them is in use.
///
/// Every field defaults to 0 when missing, which a client reads as "not reported": in
/// particular a `max_connections` of 0 is no limit the daemon could have reached (it refuses
/// to start with 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Load {
    /// Connections the daemon proxies now, each counted from its held SYN to the end of both of
    /// its TCP connections (so it can exceed [`Counters::active_sessions`] briefly).
    pub live_connections: u64,
    /// The most connections the daemon proxies at once (its `max_connections`); while
    /// `live_connections` is there, new connections are left plain TCP (fail-open).
    pub max_connections: u64,
    /// Worker threads of the daemon's runtime.
    pub worker_threads: u64,
}

impl Load {
    /// Whether the daemon proxies as many connections as it may, so that new ones are left
    /// plain TCP (never when `max_connections` was not reported).
    pub fn at_limit(&self) -> bool {
        self.max_connections > 0 && self.live_connections >= self.max_connections
    }
}

/// Connections that ended in an error, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Failures {
    /// AEAD authentication failures (RFC 8548 §4.2); the application saw a reset.
    pub auth_failures: u64,
    /// Streams that ended in the middle of a frame.
    pub truncations: u64,
    /// Connections reset by the peer or by the daemon for another error.
    pub resets: u64,
    /// Handshakes that did not finish in time.
    pub handshake_timeouts: u64,
}

/// One connection the daemon handles, as `tcpcrypt sessions` shows it.
///
/// All keys are always present; the encryption fields are `null` where they do not apply (a
/// plain connection has no TEP, a connection in handshake no session ID yet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The application's local address, "ip:port" (IPv6 as "\[::1\]:80").
    pub local: SocketAddr,
    /// The application's peer address, "ip:port".
    pub remote: SocketAddr,
    /// Whether the application opened the connection or accepted it.
    pub direction: Direction,
    /// Where the connection is in its life.
    pub state: SessionState,
    /// The ENO role of this host (RFC 8547 §4.3), `"A"` or `"B"`; `null` without ENO.
    #[serde(with = "role_serde")]
    pub role: Option<Role>,
    /// The negotiated TEP by RFC name (see [`tep_name`]); `null` when none was negotiated.
    pub tep: Option<String>,
    /// The AEAD by registry name (see [`aead_name`]); `null` before Init2 or when plain.
    pub aead: Option<String>,
    /// The session ID, 66 lower-case hex characters; `null` until the handshake is done.
    #[serde(with = "session_id_serde")]
    pub session_id: Option<SessionId>,
    /// Whether the session was resumed (RFC 8548 §3.5) rather than fresh.
    pub resumed: bool,
    /// Why the connection is plain, for [`SessionState::Plain`]; `null` otherwise.
    #[serde(default)]
    pub fallback_reason: Option<String>,
    /// Application bytes received from the peer.
    pub bytes_in: u64,
    /// Application bytes sent to the peer.
    pub bytes_out: u64,
    /// Seconds since the connection was set up.
    pub age_secs: u64,
}

/// Whether the application opened or accepted a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The application connected (active open).
    Outgoing,
    /// The application accepted (passive open).
    Incoming,
}

impl Direction {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Outgoing => "outgoing",
            Self::Incoming => "incoming",
        }
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// ENO negotiated tcpcrypt; Init1/Init2 not yet exchanged.
    Handshake,
    /// Keys are in place and data flows encrypted.
    Established,
    /// A FIN was sent or received; draining.
    Closing,
    /// Runs as plain TCP (fallback, or not offered by policy).
    Plain,
    /// Ended in an error (authentication failure, truncation, timeout).
    Failed,
    /// A state this version of the crate does not know (sent by a newer daemon).
    #[serde(other)]
    Unknown,
}

impl SessionState {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Established => "established",
            Self::Closing => "closing",
            Self::Plain => "plain",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

/// The session ID of one connection, with this host's role (RFC 8547 §5.1).
///
/// An application that authenticates the session ID (signing it, comparing it out of band) needs
/// the role too: RFC 8547 §5.1 asks that applications "bind the role" so that A and B sign
/// different messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionIdReply {
    /// The 33-byte session ID (RFC 8548 §3.4), 66 lower-case hex characters on the wire.
    #[serde(with = "session_id_serde::required")]
    pub session_id: SessionId,
    /// This host's ENO role, `"A"` or `"B"`.
    #[serde(with = "role_serde::required")]
    pub role: Role,
}

/// The RFC name of a TEP for [`SessionInfo::tep`] and [`Policy::teps`], e.g.
/// `TCPCRYPT_ECDHE_Curve25519`; an unknown one as `0x25`.
pub fn tep_name(tep: TepId) -> String {
    match tep.name() {
        Some(name) => name.to_owned(),
        None => format!("{:#04x}", tep.get()),
    }
}

/// The registry name of an AEAD for [`SessionInfo::aead`] and [`Policy::aeads`], e.g.
/// `AEAD_AES_128_GCM`; an unknown one as `0x0020`.
pub fn aead_name(aead: AeadId) -> String {
    match aead.name() {
        Some(name) => name.to_owned(),
        None => format!("{:#06x}", aead.0),
    }
}

/// Parses a session ID from its 66 lower-case hex characters.
///
/// Returns `None` for any other length, upper-case or non-hex input.
pub fn session_id_from_hex(hex: &str) -> Option<SessionId> {
    let bytes = hex.as_bytes();
    let mut id = [0u8; tcpcrypt_proto::consts::SESSION_ID_LEN];
    if bytes.len() != 2 * id.len() {
        return None;
    }
    for (out, pair) in id.iter_mut().zip(bytes.chunks_exact(2)) {
        *out = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(SessionId::from_bytes(id))
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Serde for `Option<Role>` as `"A"`, `"B"` or `null` (the proto crate has no serde).
mod role_serde {
    use serde::{de, Deserialize, Deserializer, Serializer};
    use tcpcrypt_proto::Role;

    pub(super) fn serialize<S: Serializer>(role: &Option<Role>, s: S) -> Result<S::Ok, S::Error> {
        match role {
            Some(role) => required::serialize(role, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Role>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| parse(&s))
            .transpose()
    }

    fn parse<E: de::Error>(s: &str) -> Result<Role, E> {
        match s {
            "A" => Ok(Role::A),
            "B" => Ok(Role::B),
            other => Err(E::invalid_value(
                de::Unexpected::Str(other),
                &"\"A\" or \"B\"",
            )),
        }
    }

    pub(super) mod required {
        use serde::{Deserialize, Deserializer, Serializer};
        use tcpcrypt_proto::Role;

        pub(in super::super) fn serialize<S: Serializer>(
            role: &Role,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.serialize_str(match role {
                Role::A => "A",
                Role::B => "B",
            })
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Role, D::Error> {
            super::parse(&String::deserialize(d)?)
        }
    }
}

/// Serde for `Option<SessionId>` as 66 lower-case hex characters or `null`.
mod session_id_serde {
    use serde::{de, Deserialize, Deserializer, Serializer};
    use tcpcrypt_proto::SessionId;

    pub(super) fn serialize<S: Serializer>(
        id: &Option<SessionId>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_str(&id.to_hex()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SessionId>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| parse(&s))
            .transpose()
    }

    fn parse<E: de::Error>(s: &str) -> Result<SessionId, E> {
        super::session_id_from_hex(s).ok_or_else(|| {
            E::invalid_value(de::Unexpected::Str(s), &"66 lower-case hex characters")
        })
    }

    pub(super) mod required {
        use serde::{Deserialize, Deserializer, Serializer};
        use tcpcrypt_proto::SessionId;

        pub(in super::super) fn serialize<S: Serializer>(
            id: &SessionId,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.serialize_str(&id.to_hex())
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<SessionId, D::Error> {
            super::parse(&String::deserialize(d)?)
        }
    }
}

/// Encodes a message as one line: compact JSON followed by `\n`.
///
/// Serialising these types cannot fail (no maps with non-string keys, no custom errors), so the
/// line is always produced.
pub fn encode_line<T: Serialize>(msg: &T) -> Vec<u8> {
    // Invariant: every message type here serialises to JSON infallibly (string-keyed maps only).
    let mut line = serde_json::to_vec(msg).expect("control messages always serialise");
    line.push(b'\n');
    line
}

/// Decodes one line (with or without its trailing `\n`).
///
/// # Errors
/// The JSON error when the line is not a valid message.
pub fn decode_line<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Result<T, serde_json::Error> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice(line)
}

#[cfg(test)]
mod tests;
