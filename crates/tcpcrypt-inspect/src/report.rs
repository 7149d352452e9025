//! What the inspector reports, as data: the JSON document (`--json`) and the text rendering.
//!
//! The fields listed in the issue (`client` .. `anomalies`) are agreed with the e2e tests and
//! never renamed; others may be added. `end` has one value beyond the agreed four: `"fin"`, a
//! TCP FIN both ways on a connection whose FINp frames could not be checked (plain TCP, or
//! tcpcrypt without keys), because reporting `"finp"` there would claim something unverified.

use std::fmt::Write as _;

use serde::Serialize;

/// The whole report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// One entry per TCP connection, in order of their first segment.
    pub connections: Vec<ConnectionReport>,
    /// What the capture held besides connections.
    pub capture: CaptureSummary,
}

/// Counts about the capture file itself.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct CaptureSummary {
    /// Records read.
    pub records: u64,
    /// Records that carry no IP packet.
    pub not_ip: u64,
    /// IP packets that are not plain TCP.
    pub not_tcp: u64,
    /// Records that could not be read as a TCP segment (cut by the snap length, malformed).
    pub unreadable: u64,
    /// Where and why reading stopped early (a capture cut mid-record), if it did.
    pub damaged: Option<String>,
}

/// A value per direction.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct PerDirection<T> {
    /// Client to server.
    pub client_to_server: T,
    /// Server to client.
    pub server_to_client: T,
}

/// The outcome of ENO on a connection.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// No ENO in the client's SYN.
    Plain,
    /// ENO was attempted and fell back to plain TCP (`fallback_reason` says why).
    Fallback,
    /// Encryption was enabled (RFC 8547 §4.6) with a tcpcrypt TEP.
    Tcpcrypt,
    /// The handshake is not in the capture.
    Incomplete,
}

/// Whether the connection's keys were found.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Keys {
    /// A key-log entry reproduced the session ID from the capture (and so its keys).
    Known,
    /// No key log, no entry for this connection, or not a tcpcrypt connection.
    Unknown,
    /// The key log has entries for this TEP that match no connection in the capture, and none
    /// opens this one: a wrong or corrupted key.
    Wrong,
}

/// How the connection ended.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum End {
    /// Both directions ended with an authenticated FINp frame (RFC 8548 §3.7), every byte
    /// before them authenticated (a RST after that is `reset_seen`).
    Finp,
    /// TCP FIN both ways with every byte before them, FINp not checked (plain TCP or keys
    /// unknown); with known keys, a FIN without FINp is an anomaly and ends as `fin` only
    /// without a RST.
    Fin,
    /// A RST before the connection ended cleanly.
    Reset,
    /// Bytes are missing: a gap, a frame cut at the end, a damaged capture.
    Truncated,
    /// Still open when the capture ends.
    Open,
}

/// Something wrong or suspicious.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Anomaly {
    /// Stable snake_case name (see [`kind`]).
    pub kind: String,
    /// Human-readable detail.
    pub detail: String,
}

/// The anomaly kinds.
pub mod kind {
    /// A frame's AEAD tag does not verify with keys that reproduced the session ID; nothing
    /// after it is decrypted.
    pub const TAG_FAILURE: &str = "tag_failure";
    /// A TCP FIN in a direction whose last authenticated frame had no FINp (RFC 8548 §3.7).
    pub const FIN_WITHOUT_FINP: &str = "fin_without_finp";
    /// The client's first ACK carried no ENO option though both SYNs did (RFC 8547 §4.6).
    pub const MISSING_ENO_FIRST_ACK: &str = "missing_eno_first_ack";
    /// Sequence space that never arrived.
    pub const STREAM_GAP: &str = "stream_gap";
    /// A retransmission that changes bytes already seen.
    pub const CONFLICTING_RETRANSMISSION: &str = "conflicting_retransmission";
    /// The stream ends inside a frame or Init message.
    pub const PARTIAL_FRAME: &str = "partial_frame";
    /// Bytes after an authenticated FINp frame (RFC 8548 §3.7).
    pub const DATA_AFTER_FINP: &str = "data_after_finp";
    /// A frame or Init message that does not parse.
    pub const MALFORMED: &str = "malformed";
    /// A SYN retransmission with a different ENO option (RFC 8547 §4.6).
    pub const SYN_OPTION_CHANGED: &str = "syn_option_changed";
    /// A key-log entry with this connection's session ID whose secret gives another ID.
    pub const KEY_MISMATCH: &str = "key_mismatch";
    /// The capture does not start with the connection's SYN.
    pub const NO_HANDSHAKE: &str = "no_handshake";
}

impl Anomaly {
    /// A new anomaly.
    pub fn new(kind: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            detail: detail.into(),
        }
    }
}

/// A SYN-form ENO option as sent (RFC 8547 §4.1-§4.4).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SynOptionReport {
    /// The whole option, kind and length included, as hex.
    pub hex: String,
    /// The b (passive role) bit (§4.2).
    pub b: bool,
    /// The a (application-aware) bit (§4.2).
    pub a: bool,
    /// TEP suboptions in order.
    pub teps: Vec<TepReport>,
    /// Why the option is ill-formed, if it is.
    pub error: Option<String>,
}

/// One TEP suboption.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TepReport {
    /// The identifier, `0x23`.
    pub id: String,
    /// Its registry name, if known.
    pub name: Option<String>,
    /// The v bit.
    pub v: bool,
    /// The suboption data as hex.
    pub data: String,
    /// For a tcpcrypt resumption suboption (RFC 8548 §3.5): the identifier half and nonce.
    pub resumption: Option<ResumptionReport>,
}

/// A resumption suboption's content.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResumptionReport {
    /// The 9-byte identifier half, hex.
    pub identifier_half: String,
    /// The nonce (0-8 bytes), hex.
    pub nonce: String,
}

/// What each host sent in its SYN (or SYN-ACK).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct EnoReport {
    /// The client's SYN-form option (kind 69), if any.
    pub client: Option<SynOptionReport>,
    /// The server's SYN-form option, if any.
    pub server: Option<SynOptionReport>,
    /// The client's SYN carried the draft-era kind 253 / 0x454E option (RFC 8547 §11).
    pub client_legacy: bool,
    /// The server's SYN carried it.
    pub server_legacy: bool,
    /// The client's first segment with ACK (its SYN-ACK in a simultaneous open) carried ENO
    /// (`None` if no such segment was captured).
    pub client_first_ack_eno: Option<bool>,
}

/// Which host had which role (RFC 8547 §4.3).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Roles {
    /// "A" or "B".
    pub client: String,
    /// "A" or "B".
    pub server: String,
}

/// One connection.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConnectionReport {
    /// `addr:port` of the host that sent the SYN.
    pub client: String,
    /// `addr:port` of the other host.
    pub server: String,
    /// What ENO came to.
    pub outcome: Outcome,
    /// For `fallback`: the rule (the core's `FallbackReason` name, e.g. `missing_eno`).
    pub fallback_reason: Option<String>,
    /// A draft-era kind-253 ENO option was seen in either SYN.
    pub legacy_eno_seen: bool,
    /// The session resumed a previous one (RFC 8548 §3.5).
    pub resumed: bool,
    /// The negotiated TEP's name.
    pub tep: Option<String>,
    /// The AEAD's name (from Init2, or for a resumed session the one that verified).
    pub aead: Option<String>,
    /// The session ID, hex, once a key reproduced it.
    pub session_id: Option<String>,
    /// Whether the keys were found.
    pub keys: Keys,
    /// Frames per direction (counted from the length fields, even without keys).
    pub frames: PerDirection<u64>,
    /// Frames with the rekey bit per direction (the bit is in the clear, RFC 8548 §4.2).
    pub rekeys: PerDirection<u64>,
    /// Per direction, the application-stream index of the last urgent byte of each frame with
    /// URGp (RFC 8548 §3.7), in order; known only with keys.
    pub urgent_marks: PerDirection<Vec<u64>>,
    /// Application bytes per direction: decrypted frames for tcpcrypt with keys, the TCP
    /// payload for plain and fallback connections, 0 otherwise.
    pub plaintext_bytes: PerDirection<u64>,
    /// SHA-256 of those bytes (null when none could be recovered).
    pub plaintext_sha256: PerDirection<Option<String>>,
    /// How it ended.
    pub end: End,
    /// A RST was seen in either direction (also after a clean end, which `end` reports).
    pub reset_seen: bool,
    /// Everything wrong.
    pub anomalies: Vec<Anomaly>,
    /// The ENO options each host sent.
    pub eno: EnoReport,
    /// Roles, once both SYN options agree on them.
    pub roles: Option<Roles>,
    /// The byte host B sent for the negotiated TEP (session ID byte 0), hex.
    pub tep_byte: Option<String>,
    /// TCP segments per direction.
    pub segments: PerDirection<u64>,
    /// Reassembled TCP payload bytes per direction.
    pub stream_bytes: PerDirection<u64>,
}

impl Report {
    /// The JSON document.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// True if any connection has an anomaly or keys that did not match.
    pub fn has_anomalies(&self) -> bool {
        self.connections
            .iter()
            .any(|c| !c.anomalies.is_empty() || c.keys == Keys::Wrong)
    }

    /// The human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let c = &self.capture;
        let _ = writeln!(
            s,
            "capture: {} records, {} connections ({} not IP, {} not TCP, {} unreadable){}",
            c.records,
            self.connections.len(),
            c.not_ip,
            c.not_tcp,
            c.unreadable,
            c.damaged
                .as_ref()
                .map(|d| format!("; DAMAGED: {d}"))
                .unwrap_or_default()
        );
        for (i, conn) in self.connections.iter().enumerate() {
            conn.write_text(i + 1, &mut s);
        }
        s
    }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

fn syn_text(o: &Option<SynOptionReport>, legacy: bool) -> String {
    let mut t = match o {
        None => "no ENO".to_owned(),
        Some(o) => {
            let teps: Vec<String> = o
                .teps
                .iter()
                .map(|t| {
                    let mut x = t.name.clone().unwrap_or_else(|| t.id.clone());
                    if let Some(r) = &t.resumption {
                        let _ = write!(x, " (resume {} nonce {})", r.identifier_half, r.nonce);
                    } else if t.v {
                        let _ = write!(x, " (v=1 data {})", t.data);
                    }
                    x
                })
                .collect();
            let mut x = format!(
                "{} b={} a={} TEPs [{}]",
                o.hex,
                u8::from(o.b),
                u8::from(o.a),
                teps.join(", ")
            );
            if let Some(e) = &o.error {
                let _ = write!(x, " ILL-FORMED: {e}");
            }
            x
        }
    };
    if legacy {
        t.push_str(" + legacy kind 253");
    }
    t
}

impl ConnectionReport {
    fn write_text(&self, n: usize, s: &mut String) {
        let outcome = match self.outcome {
            Outcome::Plain => "plain TCP".to_owned(),
            Outcome::Fallback => format!("fallback to plain TCP ({})", opt(&self.fallback_reason)),
            Outcome::Tcpcrypt if self.resumed => "tcpcrypt, resumed".to_owned(),
            Outcome::Tcpcrypt => "tcpcrypt, fresh".to_owned(),
            Outcome::Incomplete => "incomplete (handshake not captured)".to_owned(),
        };
        let _ = writeln!(s, "\n#{n} {} -> {}: {outcome}", self.client, self.server);
        let _ = writeln!(
            s,
            "  client SYN: {}",
            syn_text(&self.eno.client, self.eno.client_legacy)
        );
        let _ = writeln!(
            s,
            "  server SYN: {}",
            syn_text(&self.eno.server, self.eno.server_legacy)
        );
        if let Some(r) = &self.roles {
            let _ = writeln!(s, "  roles: client is {}, server is {}", r.client, r.server);
        }
        if self.outcome == Outcome::Tcpcrypt {
            let _ = writeln!(
                s,
                "  TEP {} (byte {}), AEAD {}, keys {:?}",
                opt(&self.tep),
                opt(&self.tep_byte),
                opt(&self.aead),
                self.keys
            );
            let _ = writeln!(s, "  session ID {}", opt(&self.session_id));
            for (dir, marks) in [
                ("c->s", &self.urgent_marks.client_to_server),
                ("s->c", &self.urgent_marks.server_to_client),
            ] {
                if !marks.is_empty() {
                    let _ = writeln!(s, "  urgent data {dir}: last urgent bytes at {marks:?}");
                }
            }
            let _ = writeln!(
                s,
                "  frames c->s {} s->c {}, rekeys c->s {} s->c {}",
                self.frames.client_to_server,
                self.frames.server_to_client,
                self.rekeys.client_to_server,
                self.rekeys.server_to_client
            );
        }
        let _ = writeln!(
            s,
            "  plaintext c->s {} bytes sha256 {}, s->c {} bytes sha256 {}",
            self.plaintext_bytes.client_to_server,
            opt(&self.plaintext_sha256.client_to_server),
            self.plaintext_bytes.server_to_client,
            opt(&self.plaintext_sha256.server_to_client)
        );
        let _ = writeln!(
            s,
            "  end: {:?}{}",
            self.end,
            if self.reset_seen && self.end != End::Reset {
                " (then a RST)"
            } else {
                ""
            }
        );
        for a in &self.anomalies {
            let _ = writeln!(s, "  ANOMALY {}: {}", a.kind, a.detail);
        }
    }
}
