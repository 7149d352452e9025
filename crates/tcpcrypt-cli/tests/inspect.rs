//! `tcpcrypt inspect` end to end: captures of the simulated hosts (the inspector's own test
//! harness), the outputs it writes, exit codes and error messages.

#[path = "../../tcpcrypt-inspect/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use common::*;

fn tcpcrypt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpcrypt"))
        .env_remove("TCPCRYPT_CONTROL")
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A capture of one fresh tcpcrypt connection, its key log, and what each side sent.
fn scenario(dir: &Path, tamper: bool) -> (std::path::PathBuf, std::path::PathBuf, Script) {
    let log = Arc::new(Recorder::default());
    let (mut a, mut b) = (host("a", 51, &log), host("b", 52, &log));
    for h in [&mut a, &mut b] {
        h.session.max_frame_data = 1000;
    }
    let sc = Script {
        client_data: data(8000, 5),
        server_data: data(6000, 6),
        client_rekeys: 1,
        close: true,
        ..Script::default()
    };
    let mut conn = clean(&mut a, &mut b, v4(1, 40100), v4(2, 8080), &sc);
    if tamper {
        let at = conn.s2c.len() / 2;
        conn.s2c[at] ^= 1;
    }
    let cap = dir.join("cap.pcapng");
    std::fs::write(
        &cap,
        capture(
            tcpcrypt_inspect::pcap_writer::Format::Pcapng { big_endian: false },
            tcpcrypt_inspect::capture::linktype::LINUX_SLL2,
            &packets(&conn, Wire::default()),
        ),
    )
    .unwrap();
    let keys = dir.join("keys.log");
    std::fs::write(&keys, log.text()).unwrap();
    (cap, keys, sc)
}

#[test]
fn json_dump_and_plain_pcap() {
    let dir = tempfile::tempdir().unwrap();
    let (cap, keys, sc) = scenario(dir.path(), false);
    let dump = dir.path().join("dump");
    let plain = dir.path().join("plain.pcap");
    let out = tcpcrypt(&[
        "inspect",
        s(&cap),
        "--keylog",
        s(&keys),
        "--dump",
        s(&dump),
        "--write-plain",
        s(&plain),
        "--json",
        "--strict",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["connections"][0];
    assert_eq!(c["client"], "10.77.0.1:40100");
    assert_eq!(c["server"], "10.77.0.2:8080");
    assert_eq!(c["outcome"], "tcpcrypt");
    assert_eq!(c["keys"], "known");
    assert_eq!(c["end"], "finp");
    assert_eq!(c["resumed"], false);
    assert_eq!(c["legacy_eno_seen"], false);
    assert_eq!(c["fallback_reason"], serde_json::Value::Null);
    assert_eq!(c["anomalies"].as_array().unwrap().len(), 0);
    assert_eq!(c["rekeys"]["client_to_server"], 1);
    assert_eq!(c["plaintext_bytes"]["client_to_server"], 8000);
    assert_eq!(
        c["plaintext_sha256"]["client_to_server"],
        sha(&sc.client_data)
    );
    assert_eq!(
        c["plaintext_sha256"]["server_to_client"],
        sha(&sc.server_data)
    );
    assert_eq!(c["session_id"].as_str().unwrap().len(), 66);
    assert_eq!(
        std::fs::read(dump.join("conn001.client_to_server.bin")).unwrap(),
        sc.client_data
    );
    assert_eq!(
        std::fs::read(dump.join("conn001.server_to_client.bin")).unwrap(),
        sc.server_data
    );
    // The plaintext pcap reads back as one plain connection with the same bytes.
    let out = tcpcrypt(&["inspect", s(&plain), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["connections"][0];
    assert_eq!(c["outcome"], "plain");
    assert_eq!(
        c["plaintext_sha256"]["client_to_server"],
        sha(&sc.client_data)
    );
    assert_eq!(
        c["plaintext_sha256"]["server_to_client"],
        sha(&sc.server_data)
    );
    // The text report names the outcome and the session ID.
    let out = tcpcrypt(&["inspect", s(&cap), "--keylog", s(&keys)]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("tcpcrypt, fresh"), "{text}");
    assert!(text.contains("roles: client is A, server is B"), "{text}");
    assert!(!text.contains("ANOMALY"), "{text}");
}

#[test]
fn a_tampered_capture_is_an_anomaly_and_fails_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let (cap, keys, _) = scenario(dir.path(), true);
    let out = tcpcrypt(&["inspect", s(&cap), "--keylog", s(&keys)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ANOMALY tag_failure"), "{text}");
    let out = tcpcrypt(&[
        "inspect",
        s(&cap),
        "--keylog",
        s(&keys),
        "--strict",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connections"][0]["anomalies"][0]["kind"], "tag_failure");
    assert_ne!(v["connections"][0]["end"], "finp");
}

#[test]
fn unreadable_inputs_exit_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pcap");
    let garbage = dir.path().join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture at all").unwrap();
    let wifi = dir.path().join("wifi.pcap");
    std::fs::write(
        &wifi,
        tcpcrypt_inspect::pcap_writer::Writer::new(
            tcpcrypt_inspect::pcap_writer::Format::Pcap {
                big_endian: false,
                nanos: false,
            },
            105,
        )
        .finish(),
    )
    .unwrap();
    let (cap, _, _) = scenario(dir.path(), false);
    let bad_keys = dir.path().join("bad.log");
    std::fs::write(&bad_keys, "# header\nTCPCRYPT_ES 00 11\n").unwrap();
    for (args, needle) in [
        (vec!["inspect", s(&missing)], "cannot read capture"),
        (vec!["inspect", s(&garbage)], "not a pcap or pcapng file"),
        (vec!["inspect", s(&wifi)], "unsupported link type 105"),
        (
            vec!["inspect", s(&cap), "--keylog", s(&bad_keys)],
            "key log line 2",
        ),
        (
            vec!["inspect", s(&cap), "--keylog", s(&missing)],
            "cannot read key log",
        ),
    ] {
        let out = tcpcrypt(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty());
    }
}
