//! A capture inspector for TCP-ENO (RFC 8547) and tcpcrypt (RFC 8548): the library behind
//! `tcpcrypt inspect`.
//!
//! ```text
//!  pcap/pcapng ─capture─▶ records ─flow─▶ connections, streams ─analysis─▶ ENO outcome
//!                                                   │                         │
//!                              key log ──decrypt────┴─────── frames, plaintext┘
//!                                                   │
//!                                   report (text, JSON), dump, plain_pcap
//! ```
//!
//! Everything protocol-specific comes from the core: option decoding (`wire::eno`,
//! `wire::tcp_option`), TEP selection (`eno::observe`), Init and frame formats (`wire::init`,
//! `wire::frame`), the key schedule (`keys`), frame opening (`session::FrameOpener`) and the key
//! log format (`keylog::KeyLogFile`). This crate adds the capture formats, TCP reassembly and
//! the judgement of what a connection did.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
pub mod capture;
pub mod decrypt;
pub mod dump;
pub mod flow;
pub mod pcap_writer;
pub mod plain_pcap;
pub mod report;

use std::collections::HashSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tcpcrypt_proto::crypto::CryptoProvider;
use tcpcrypt_proto::keylog::KeyLogFile;
use tcpcrypt_proto::SessionId;

use crate::capture::CaptureError;
use crate::decrypt::Decrypted;
use crate::flow::Connection;
use crate::report::{
    kind, Anomaly, CaptureSummary, ConnectionReport, End, Keys, Outcome, PerDirection, Report,
};

/// One inspected connection: its report and the application bytes recovered per direction
/// (decrypted for tcpcrypt with keys, the TCP payload for plain TCP).
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The report entry.
    pub report: ConnectionReport,
    /// The connection's addresses.
    pub client: std::net::SocketAddr,
    /// The server's address.
    pub server: std::net::SocketAddr,
    /// Recovered application bytes, client to server and server to client.
    pub plaintext: PerDirection<Option<Vec<u8>>>,
    /// The direction's end was authenticated: FINp with known keys, or a TCP FIN after every
    /// byte for plain TCP.
    pub clean_end: PerDirection<bool>,
}

/// The result of inspecting a capture.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The report.
    pub report: Report,
    /// Per connection, in report order.
    pub connections: Vec<Inspected>,
}

/// Inspects the capture `bytes` (pcap or pcapng), decrypting with `keylog` when given.
///
/// # Errors
/// Only a capture that cannot be read at all (not pcap/pcapng, an unsupported link type, a
/// cut file header). A capture cut mid-record is read up to the cut and reported as damaged.
pub fn inspect(bytes: &[u8], keylog: Option<&KeyLogFile>) -> Result<Inspection, CaptureError> {
    let capture = capture::read(bytes)?;
    let (conns, skipped) = flow::connections(&capture.records);
    let provider: Arc<dyn CryptoProvider> = Arc::new(tcpcrypt_crypto::DefaultProvider);
    let summary = CaptureSummary {
        records: capture.records.len() as u64,
        not_ip: skipped.not_ip,
        not_tcp: skipped.not_tcp,
        unreadable: skipped.unreadable,
        damaged: capture.damaged.as_ref().map(ToString::to_string),
    };
    let mut staged = Vec::new();
    for conn in &conns {
        let eno = analysis::analyze(conn);
        let dec = if eno.outcome == Outcome::Tcpcrypt {
            decrypt::decrypt(conn, &eno, keylog, &provider)
        } else {
            Decrypted::default()
        };
        staged.push((eno, dec));
    }
    // Entries that opened a connection; the others may be wrong keys for the rest.
    let used: HashSet<SessionId> = staged.iter().filter_map(|(_, d)| d.session_id).collect();
    let connections = conns
        .iter()
        .zip(staged)
        .map(|(conn, (eno, dec))| build(conn, eno, dec, keylog, &used, capture.damaged.is_some()))
        .collect::<Vec<_>>();
    Ok(Inspection {
        report: Report {
            connections: connections.iter().map(|c| c.report.clone()).collect(),
            capture: summary,
        },
        connections,
    })
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn build(
    conn: &Connection,
    eno: analysis::EnoAnalysis,
    dec: Decrypted,
    keylog: Option<&KeyLogFile>,
    used: &HashSet<SessionId>,
    damaged: bool,
) -> Inspected {
    let mut anomalies = eno.anomalies.clone();
    anomalies.extend(dec.anomalies.iter().cloned());
    for (stream, dir) in [
        (&conn.c2s, "client to server"),
        (&conn.s2c, "server to client"),
    ] {
        if stream.has_gap() {
            anomalies.push(Anomaly::new(
                kind::STREAM_GAP,
                format!(
                    "{dir}: bytes missing after offset {} ({} bytes held beyond the gap)",
                    stream.bytes.len(),
                    stream.bytes_beyond_gap()
                ),
            ));
        }
        if stream.conflicting_overlaps > 0 {
            anomalies.push(Anomaly::new(
                kind::CONFLICTING_RETRANSMISSION,
                format!(
                    "{dir}: {} segments repeat sequence space with other bytes (the first copy is used)",
                    stream.conflicting_overlaps
                ),
            ));
        }
    }
    let tcpcrypt = eno.outcome == Outcome::Tcpcrypt;
    let mut keys = if dec.session_id.is_some() {
        Keys::Known
    } else {
        Keys::Unknown
    };
    if tcpcrypt && keys == Keys::Unknown {
        if let (Some(log), Some(tep_byte)) = (keylog, dec.tep_byte) {
            let unmatched = log
                .iter()
                .filter(|(sid, _)| sid.as_bytes()[0] == tep_byte && !used.contains(sid))
                .count();
            if unmatched > 0 {
                keys = Keys::Wrong;
                anomalies.push(Anomaly::new(
                    kind::KEY_MISMATCH,
                    format!(
                        "the key log has {unmatched} entries for TEP byte {tep_byte:#04x} that match no connection in the capture, and none reproduces this connection's session ID"
                    ),
                ));
            }
        }
    }
    let plain_like = matches!(eno.outcome, Outcome::Plain | Outcome::Fallback);
    let plaintext = if plain_like {
        PerDirection {
            client_to_server: Some(conn.c2s.bytes.clone()),
            server_to_client: Some(conn.s2c.bytes.clone()),
        }
    } else if keys == Keys::Known {
        PerDirection {
            client_to_server: dec.c2s.decrypted_or_partial(),
            server_to_client: dec.s2c.decrypted_or_partial(),
        }
    } else {
        PerDirection::default()
    };
    let any_rst = conn.c2s.rst || conn.s2c.rst;
    let gap = conn.c2s.has_gap() || conn.s2c.has_gap() || dec.c2s.partial || dec.s2c.partial;
    let ended = conn.c2s.fin_at.is_some() && conn.s2c.fin_at.is_some();
    // A clean end wins over a later RST (a socket closed abortively after both directions
    // ended, as Linux does when a daemon exits): every byte up to the end was delivered.
    let finp_both = keys == Keys::Known && dec.c2s.finp && dec.s2c.finp;
    let fin_both = conn.c2s.fin_complete() && conn.s2c.fin_complete();
    let end = if finp_both && !gap {
        End::Finp
    } else if fin_both && !gap && !(tcpcrypt && keys == Keys::Known) {
        End::Fin
    } else if any_rst {
        End::Reset
    } else if gap || (damaged && !ended) {
        End::Truncated
    } else if fin_both {
        End::Fin
    } else {
        End::Open
    };
    let per = |f: fn(&decrypt::DirectionResult) -> u64| PerDirection {
        client_to_server: f(&dec.c2s),
        server_to_client: f(&dec.s2c),
    };
    let count = |client: bool| {
        conn.segments
            .iter()
            .filter(|s| s.from_client == client)
            .count() as u64
    };
    let report = ConnectionReport {
        client: conn.client.to_string(),
        server: conn.server.to_string(),
        outcome: eno.outcome,
        fallback_reason: eno.fallback_reason.clone(),
        legacy_eno_seen: eno.legacy_seen(),
        resumed: dec.resumed,
        tep: dec.tep.map(|t| t.to_string()),
        aead: dec.aead.map(|a| a.to_string()),
        session_id: dec.session_id.map(|s| s.to_hex()),
        keys,
        frames: per(|d| d.frames),
        rekeys: per(|d| d.rekeys),
        urgent_marks: PerDirection {
            client_to_server: dec.c2s.urgent_marks.clone(),
            server_to_client: dec.s2c.urgent_marks.clone(),
        },
        plaintext_bytes: PerDirection {
            client_to_server: plaintext
                .client_to_server
                .as_ref()
                .map_or(0, |p| p.len() as u64),
            server_to_client: plaintext
                .server_to_client
                .as_ref()
                .map_or(0, |p| p.len() as u64),
        },
        plaintext_sha256: PerDirection {
            client_to_server: plaintext.client_to_server.as_deref().map(sha_hex),
            server_to_client: plaintext.server_to_client.as_deref().map(sha_hex),
        },
        end,
        reset_seen: any_rst,
        anomalies,
        eno: eno.report.clone(),
        roles: eno.roles(),
        tep_byte: dec.tep_byte.map(|b| format!("{b:#04x}")),
        segments: PerDirection {
            client_to_server: count(true),
            server_to_client: count(false),
        },
        stream_bytes: PerDirection {
            client_to_server: conn.c2s.bytes.len() as u64,
            server_to_client: conn.s2c.bytes.len() as u64,
        },
    };
    let clean = |finp: bool, stream: &flow::Stream| {
        if plain_like {
            stream.fin_complete()
        } else {
            keys == Keys::Known && finp
        }
    };
    Inspected {
        report,
        client: conn.client,
        server: conn.server,
        plaintext,
        clean_end: PerDirection {
            client_to_server: clean(dec.c2s.finp, &conn.c2s),
            server_to_client: clean(dec.s2c.finp, &conn.s2c),
        },
    }
}
