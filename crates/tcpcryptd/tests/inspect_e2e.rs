//! The project's own e2e captures through the capture inspector, as root: both daemons write
//! key logs (RFC 8547 §5 debug mode), tcpdump records A's veth in full, and the inspector
//! (`tcpcrypt-inspect`) must compute the session IDs both daemons report and decrypt every
//! connection to exactly the bytes the applications sent: fresh sessions for every TEP × AEAD
//! over IPv4 and IPv6, a resumed session (RFC 8548 §3.5) and rekeyed ones (§3.8, forced by the
//! debug knob `--rekey-after-bytes`). Negative cases on copies of a real capture: no key log,
//! wrong keys, a tampered byte, a truncated capture are never reported as a clean success.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::hosts::{addr, capture, wait_encrypted, wait_session, Net, TIMEOUT};
use common::inspect::{
    assert_clean_tcpcrypt, by_session, inspect, inspect_bytes, json, sha256_hex, to_server,
};
use serde_json::Value;
use tcpcryptd::config::{AEAD_NAMES, TEP_NAMES};

/// The request/response service's port.
const RR_PORT: u16 = 8090;

/// Deterministic bytes: `len` of them, different for every `seed`.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The reply the service sends to `request`: different bytes and length than the request.
fn reply_to(request: &[u8]) -> Vec<u8> {
    let seed = request
        .iter()
        .take(8)
        .fold(7u32, |a, &b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    pattern(request.len() / 2 + 1000, seed)
}

/// A service on B's [`RR_PORT`]: reads the request to its end, sends the reply, closes.
fn rr_service(net: &Net) {
    net.service(RR_PORT, |mut conn| {
        let _ = conn.set_read_timeout(Some(TIMEOUT));
        let mut request = Vec::new();
        if conn.read_to_end(&mut request).is_err() {
            return;
        }
        let _ = conn.write_all(&reply_to(&request));
        let _ = conn.shutdown(Shutdown::Write);
    });
}

/// What one connection carried and the ID both daemons reported for it.
struct Sent {
    session_id: String,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    server: SocketAddr,
}

/// One request/response connection from A to `dst` through both daemons.
fn request(net: &Net, ca: &Path, cb: &Path, dst: SocketAddr, len: usize, seed: u32) -> Sent {
    let c2s = pattern(len, seed);
    let mut s = net.connect(dst).expect("connect through both daemons");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(&c2s).expect("send the request");
    let row_a = wait_encrypted(ca, s.local_addr().unwrap());
    let id = row_a.session_id.expect("an established row has the ID");
    wait_session(cb, id);
    s.shutdown(Shutdown::Write).unwrap();
    let mut s2c = Vec::new();
    s.read_to_end(&mut s2c)
        .expect("the reply, then a clean end");
    assert_eq!(s2c, reply_to(&c2s));
    Sent {
        session_id: id.to_hex(),
        c2s,
        s2c,
        server: dst,
    }
}

/// Stops the capture after the last FIN/ACKs went out.
fn stop(dump: common::hosts::Proc) {
    std::thread::sleep(Duration::from_millis(300));
    drop(dump);
}

#[test]
fn every_tep_and_aead_over_ipv4_and_ipv6_decrypts_to_the_bytes_sent() {
    let net = Net::new();
    rr_service(&net);
    let (_db, cb) = net.daemon(&net.b, "b");
    let pcap = net.dir.join("matrix.pcap");
    let dump = capture(&net, &pcap, 0);
    let mut sent = Vec::new();
    let mut seed = 0;
    for &(tep_name, tep) in TEP_NAMES {
        for &(aead_name, aead) in AEAD_NAMES {
            // A offers only this TEP and AEAD; no resumption, so every session is fresh.
            let args = [
                "--teps",
                tep_name,
                "--aeads",
                aead_name,
                "--resumption",
                "false",
            ];
            let (mut da, ca) = net.daemon_with(&net.a, "a", &args);
            for v6 in [false, true] {
                seed += 1;
                let s = request(
                    &net,
                    &ca,
                    &cb,
                    addr('b', v6, RR_PORT),
                    40_000 + seed as usize * 997,
                    seed,
                );
                sent.push((tep, aead, s));
            }
            assert!(da.signal_and_wait("TERM").success());
        }
    }
    stop(dump);
    let ins = inspect(&pcap, &[&net.keys("a")]);
    let ours: usize = [false, true]
        .into_iter()
        .map(|v6| to_server(&ins, addr('b', v6, RR_PORT)).len())
        .sum();
    assert_eq!(ours, sent.len(), "one report entry per connection");
    for (tep, aead, s) in &sent {
        let conn = by_session(&ins, &s.session_id);
        assert_eq!(conn.server, s.server);
        assert_clean_tcpcrypt(conn, &s.session_id, &s.c2s, &s.s2c);
        let j = json(conn);
        assert_eq!(j["tep"], tep.to_string(), "{j}");
        assert_eq!(j["aead"], aead.to_string(), "{j}");
        assert_eq!(j["resumed"], false, "{j}");
        assert_eq!(j["rekeys"]["client_to_server"], 0, "{j}");
    }
    // Every TEP and AEAD was covered, on both families.
    for &(_, tep) in TEP_NAMES {
        assert!(sent.iter().filter(|(t, _, _)| *t == tep).count() == 2 * AEAD_NAMES.len());
    }
}

/// A capture with a fresh, a resumed and a second-family connection, all rekeyed often.
struct Recorded {
    net: Net,
    pcap: std::path::PathBuf,
    sent: Vec<Sent>,
}

fn record_resumed_and_rekeyed() -> Recorded {
    let net = Net::new();
    rr_service(&net);
    // Rekey after every 16 KiB of ciphertext (a debug setting) on both sides.
    let args = ["--rekey-after-bytes", "16384"];
    let (da, ca) = net.daemon_with(&net.a, "a", &args);
    let (db, cb) = net.daemon_with(&net.b, "b", &args);
    let pcap = net.dir.join("resume.pcap");
    let dump = capture(&net, &pcap, 0);
    let sent = vec![
        request(&net, &ca, &cb, addr('b', false, RR_PORT), 300_000, 101),
        request(&net, &ca, &cb, addr('b', false, RR_PORT), 200_000, 102),
        request(&net, &ca, &cb, addr('b', true, RR_PORT), 100_000, 103),
    ];
    stop(dump);
    drop((da, db));
    Recorded { net, pcap, sent }
}

#[test]
fn resumed_and_rekeyed_sessions_decrypt_and_damage_is_never_a_clean_success() {
    let Recorded { net, pcap, sent } = record_resumed_and_rekeyed();
    let (keys_a, keys_b) = (net.keys("a"), net.keys("b"));
    let (keys_a, keys_b) = (keys_a.as_path(), keys_b.as_path());
    // With either daemon's key log, and with both concatenated.
    for logs in [&[keys_a][..], &[keys_b], &[keys_a, keys_b]] {
        let ins = inspect(&pcap, logs);
        for s in &sent {
            let conn = by_session(&ins, &s.session_id);
            assert_clean_tcpcrypt(conn, &s.session_id, &s.c2s, &s.s2c);
            let j = json(conn);
            let resumed = u8::from_str_radix(&s.session_id[..2], 16).unwrap() & 0x80 != 0;
            assert_eq!(j["resumed"], resumed, "{j}");
            for dir in ["client_to_server", "server_to_client"] {
                assert!(j["rekeys"][dir].as_u64().unwrap() > 0, "{dir} rekeyed: {j}");
            }
        }
    }
    assert_eq!(
        json(by_session(&inspect(&pcap, &[keys_a]), &sent[1].session_id))["resumed"],
        true
    );
    let wire = std::fs::read(&pcap).unwrap();

    // No key log: still recognised as tcpcrypt, but nothing claimed about the contents.
    let ins = inspect_bytes(&wire, &[]);
    let ours = to_server(&ins, sent[0].server);
    assert_eq!(ours.len(), 2);
    for conn in ours {
        let j = json(conn);
        assert_eq!(j["outcome"], "tcpcrypt", "{j}");
        assert_eq!(j["keys"], "unknown", "{j}");
        assert_eq!(j["session_id"], Value::Null, "{j}");
        assert_eq!(
            j["plaintext_sha256"]["client_to_server"],
            Value::Null,
            "{j}"
        );
        assert_ne!(
            j["end"], "finp",
            "FINp cannot be verified without keys: {j}"
        );
    }

    // Wrong keys: one hex digit of every secret changed.
    let wrong = net.dir.join("wrong.keys");
    let text = std::fs::read_to_string(keys_a).unwrap();
    let flipped: String = text
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                let (head, last) = l.split_at(l.len() - 1);
                let last = if last == "0" { "1" } else { "0" };
                format!("{head}{last}\n")
            }
        })
        .collect();
    std::fs::write(&wrong, flipped).unwrap();
    let ins = inspect_bytes(&wire, &[wrong.as_path()]);
    let ours: Vec<_> = ins
        .connections
        .iter()
        .filter(|c| c.server.port() == RR_PORT)
        .collect();
    assert_eq!(ours.len(), sent.len());
    for conn in ours {
        let j = json(conn);
        assert_eq!(j["outcome"], "tcpcrypt", "{j}");
        assert_ne!(j["keys"], "known", "a wrong key is never 'known': {j}");
        assert_eq!(j["session_id"], Value::Null, "{j}");
        assert!(conn.plaintext.client_to_server.is_none(), "{j}");
        assert!(
            j["keys"] == "wrong" || !j["anomalies"].as_array().unwrap().is_empty(),
            "a wrong key is reported: {j}"
        );
    }

    // A tampered byte deep inside the largest packet (ciphertext of a frame).
    let mut tampered = wire.clone();
    let (offset, len) = largest_record(&wire);
    tampered[offset + len - 40] ^= 0x20;
    let ins = inspect_bytes(&tampered, &[keys_a]);
    let mut damaged = 0;
    for s in &sent {
        let conn = by_session_or_server(&ins, s);
        let j = json(conn);
        let clean = j["end"] == "finp"
            && j["anomalies"].as_array().is_some_and(Vec::is_empty)
            && conn.plaintext.client_to_server.as_deref() == Some(&s.c2s[..])
            && conn.plaintext.server_to_client.as_deref() == Some(&s.s2c[..]);
        if !clean {
            damaged += 1;
            assert!(
                !j["anomalies"].as_array().unwrap().is_empty(),
                "the damage is named: {j}"
            );
            assert_ne!(j["end"], "finp", "{j}");
        } else {
            assert_eq!(
                j["plaintext_sha256"]["client_to_server"],
                sha256_hex(&s.c2s)
            );
        }
    }
    assert_eq!(
        damaged, 1,
        "exactly the tampered connection is reported damaged"
    );

    // A capture cut in the middle of a record of the second connection.
    let cut = cut_point(&wire, 0.5);
    let ins = inspect_bytes(&wire[..cut], &[keys_a]);
    assert!(ins.report.capture.damaged.is_some(), "the cut is reported");
    let mut incomplete = 0;
    for s in &sent {
        let Some(conn) = ins
            .connections
            .iter()
            .find(|c| json(c)["session_id"] == s.session_id.as_str())
        else {
            incomplete += 1; // not even its keys could be matched: certainly no success
            continue;
        };
        let j = json(conn);
        if j["end"] == "finp" {
            assert_clean_tcpcrypt(conn, &s.session_id, &s.c2s, &s.s2c);
        } else {
            incomplete += 1;
            assert!(
                j["end"] == "truncated" || j["end"] == "open",
                "a cut connection ends truncated or open: {j}"
            );
            if let Some(got) = conn.plaintext.client_to_server.as_deref() {
                assert!(
                    got.len() <= s.c2s.len() && s.c2s.starts_with(got),
                    "a prefix at most"
                );
            }
        }
    }
    assert!(incomplete >= 1, "the cut left a connection incomplete");
}

/// The connection of `s` by session ID, else the first to its server without one.
fn by_session_or_server<'a>(
    ins: &'a tcpcrypt_inspect::Inspection,
    s: &Sent,
) -> &'a tcpcrypt_inspect::Inspected {
    ins.connections
        .iter()
        .find(|c| json(c)["session_id"] == s.session_id.as_str())
        .or_else(|| {
            ins.connections
                .iter()
                .find(|c| c.server == s.server && json(c)["session_id"].is_null())
        })
        .expect("the connection is in the report")
}

/// Classic pcap records: (data offset, captured length) of each.
fn records(pcap: &[u8]) -> Vec<(usize, usize)> {
    assert!(pcap.len() >= 24, "pcap header");
    let le = match pcap[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("tcpdump -w writes classic pcap"),
    };
    let u32_at = |at: usize| {
        let b = [pcap[at], pcap[at + 1], pcap[at + 2], pcap[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let incl = u32_at(at + 8) as usize;
        if at + 16 + incl > pcap.len() {
            break;
        }
        out.push((at + 16, incl));
        at += 16 + incl;
    }
    out
}

fn largest_record(pcap: &[u8]) -> (usize, usize) {
    records(pcap)
        .into_iter()
        .max_by_key(|&(_, len)| len)
        .expect("records")
}

/// An offset inside the record that holds the `fraction` point of the file.
fn cut_point(pcap: &[u8], fraction: f64) -> usize {
    let target = (pcap.len() as f64 * fraction) as usize;
    let (offset, len) = records(pcap)
        .into_iter()
        .find(|&(o, l)| o + l > target && l > 200)
        .expect("a record after the midpoint");
    offset + len / 2
}
