//! The e2e captures through the capture inspector (`tcpcrypt-inspect`, the library behind
//! `tcpcrypt inspect`), decrypted with the daemons' key logs ([`super::hosts::Net::keys`]).
//! Assertions read the agreed JSON fields of the report, and compare the recovered bytes with
//! what the applications sent.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;
use tcpcrypt_inspect::{Inspected, Inspection};
use tcpcrypt_proto::keylog::KeyLogFile;

/// Inspects `pcap`, decrypting with the concatenation of `keylogs` (none: no key log).
pub fn inspect(pcap: &Path, keylogs: &[&Path]) -> Inspection {
    let bytes = std::fs::read(pcap).expect("read the capture");
    inspect_bytes(&bytes, keylogs)
}

/// Inspects capture bytes (see [`inspect`]).
pub fn inspect_bytes(bytes: &[u8], keylogs: &[&Path]) -> Inspection {
    let log = (!keylogs.is_empty()).then(|| {
        let text: String = keylogs
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read a key log"))
            .collect();
        KeyLogFile::parse(&text).expect("the daemons' key logs parse")
    });
    tcpcrypt_inspect::inspect(bytes, log.as_ref()).expect("the capture can be read")
}

/// The agreed JSON of one connection.
pub fn json(conn: &Inspected) -> Value {
    serde_json::to_value(&conn.report).expect("the report serialises")
}

/// The connections to `server`, in capture order.
pub fn to_server(ins: &Inspection, server: SocketAddr) -> Vec<&Inspected> {
    ins.connections
        .iter()
        .filter(|c| c.server == server)
        .collect()
}

/// The connection whose computed session ID is `session_id` (hex); panics if none.
pub fn by_session<'a>(ins: &'a Inspection, session_id: &str) -> &'a Inspected {
    ins.connections
        .iter()
        .find(|c| json(c)["session_id"] == session_id)
        .unwrap_or_else(|| {
            panic!(
                "no connection with session ID {session_id}: {}",
                ins.report.to_json()
            )
        })
}

/// A tcpcrypt connection decrypted completely and cleanly: outcome `tcpcrypt`, keys known,
/// the session ID both daemons reported, FINp both ways, no anomaly, and exactly `c2s` and
/// `s2c` recovered (bytes, counts and SHA-256 in the JSON alike).
pub fn assert_clean_tcpcrypt(conn: &Inspected, session_id: &str, c2s: &[u8], s2c: &[u8]) {
    let j = json(conn);
    let ctx = || serde_json::to_string_pretty(&j).unwrap_or_default();
    assert_eq!(j["outcome"], "tcpcrypt", "{}", ctx());
    assert_eq!(j["keys"], "known", "{}", ctx());
    assert_eq!(j["session_id"], session_id, "{}", ctx());
    assert_eq!(j["end"], "finp", "{}", ctx());
    assert_eq!(j["anomalies"], Value::Array(vec![]), "{}", ctx());
    assert_eq!(j["fallback_reason"], Value::Null, "{}", ctx());
    for (dir, sent) in [("client_to_server", c2s), ("server_to_client", s2c)] {
        assert_eq!(
            j["plaintext_bytes"][dir],
            sent.len() as u64,
            "{dir}: {}",
            ctx()
        );
        assert_eq!(
            j["plaintext_sha256"][dir],
            sha256_hex(sent),
            "{dir}: {}",
            ctx()
        );
        assert!(
            j["frames"][dir].as_u64().unwrap_or(0) > 0,
            "{dir}: {}",
            ctx()
        );
    }
    let got_c2s = conn.plaintext.client_to_server.as_deref();
    let got_s2c = conn.plaintext.server_to_client.as_deref();
    assert!(got_c2s == Some(c2s), "client-to-server bytes differ");
    assert!(got_s2c == Some(s2c), "server-to-client bytes differ");
}

/// A connection that stayed plain TCP (`plain` or `fallback`): no session ID, no keys, and the
/// TCP payload is what the applications sent.
pub fn assert_plain(conn: &Inspected, c2s: &[u8], s2c: &[u8]) {
    let j = json(conn);
    let ctx = || serde_json::to_string_pretty(&j).unwrap_or_default();
    let outcome = j["outcome"].as_str().unwrap_or_default();
    assert!(outcome == "plain" || outcome == "fallback", "{}", ctx());
    assert_eq!(j["session_id"], Value::Null, "{}", ctx());
    assert_eq!(j["keys"], "unknown", "{}", ctx());
    assert_eq!(j["tep"], Value::Null, "{}", ctx());
    assert_eq!(
        j["plaintext_sha256"]["client_to_server"],
        sha256_hex(c2s),
        "{}",
        ctx()
    );
    assert_eq!(
        j["plaintext_sha256"]["server_to_client"],
        sha256_hex(s2c),
        "{}",
        ctx()
    );
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
