//! Round trips and wire forms of every control message.

use super::*;

pub(crate) fn sample_id(first: u8) -> SessionId {
    let mut b = [0u8; 33];
    b[0] = first;
    for (i, x) in b.iter_mut().enumerate().skip(1) {
        *x = i as u8;
    }
    SessionId::from_bytes(b)
}

fn sample_status() -> Status {
    let mut fallbacks = BTreeMap::new();
    fallbacks.insert("no_eno_from_peer".to_owned(), 3);
    Status {
        version: "0.1.0".into(),
        protocol: PROTOCOL_VERSION,
        pid: 4242,
        uptime_secs: 73,
        policy: Policy {
            encrypt: vec!["all".into()],
            exclude_ports: vec!["22".into()],
            mandatory_ports: vec!["8443".into()],
            mandatory_addrs: vec!["10.0.0.0/8".into()],
            teps: vec![tep_name(TepId::TCPCRYPT_ECDHE_CURVE25519)],
            aeads: vec![aead_name(AeadId::AES_128_GCM)],
            resumption: true,
            keylog: Some("/root/keys.log".into()),
            option_path: Some("bpf".into()),
            syn_filters: Some(false),
        },
        counters: Counters {
            connections_encrypted: 10,
            connections_resumed: 4,
            connections_plain: 3,
            fallbacks,
            failures: Failures {
                auth_failures: 1,
                truncations: 2,
                resets: 3,
                handshake_timeouts: 4,
            },
            active_sessions: 2,
            bytes_in: 1000,
            bytes_out: 2000,
        },
        load: Some(Load {
            live_connections: 3,
            max_connections: 16384,
            worker_threads: 1,
        }),
    }
}

fn sample_session() -> SessionInfo {
    SessionInfo {
        local: "[::1]:40000".parse().unwrap(),
        remote: "[::1]:80".parse().unwrap(),
        direction: Direction::Outgoing,
        state: SessionState::Established,
        role: Some(Role::A),
        tep: Some(tep_name(TepId::TCPCRYPT_ECDHE_CURVE25519)),
        aead: Some(aead_name(AeadId::AES_128_GCM)),
        session_id: Some(sample_id(0xa3)),
        resumed: true,
        fallback_reason: None,
        bytes_in: 5,
        bytes_out: 6,
        age_secs: 7,
    }
}

fn round_trip<T: Serialize + for<'a> Deserialize<'a> + PartialEq + fmt::Debug>(msg: &T) {
    let line = encode_line(msg);
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    let back: T = decode_line(&line).unwrap();
    assert_eq!(&back, msg);
}

#[test]
fn requests_round_trip_and_have_their_wire_form() {
    let sid = Request::SessionId {
        local: "127.0.0.1:5000".parse().unwrap(),
        remote: "[::1]:80".parse().unwrap(),
    };
    for req in [Request::Status, Request::Sessions, sid.clone()] {
        round_trip(&req);
    }
    assert_eq!(encode_line(&Request::Status), b"{\"cmd\":\"status\"}\n");
    assert_eq!(encode_line(&Request::Sessions), b"{\"cmd\":\"sessions\"}\n");
    assert_eq!(
        String::from_utf8(encode_line(&sid)).unwrap(),
        "{\"cmd\":\"session_id\",\"local\":\"127.0.0.1:5000\",\"remote\":\"[::1]:80\"}\n"
    );
}

#[test]
fn responses_round_trip() {
    let reply = SessionIdReply {
        session_id: sample_id(0x23),
        role: Role::B,
    };
    let mut plain = sample_session();
    plain.state = SessionState::Plain;
    plain.role = None;
    plain.tep = None;
    plain.aead = None;
    plain.session_id = None;
    plain.resumed = false;
    plain.fallback_reason = Some("peer sent no ENO option".into());
    for resp in [
        Response::Status(Box::new(sample_status())),
        Response::Sessions(vec![sample_session(), plain]),
        Response::Sessions(vec![]),
        Response::SessionId(reply),
        Response::error(ErrorCode::NotFound, "no such connection"),
        Response::error(ErrorCode::NotEncrypted, "peer sent no ENO option"),
        Response::error(ErrorCode::Pending, "handshake in progress"),
        Response::error(ErrorCode::BadRequest, "line too long"),
    ] {
        round_trip(&resp);
    }
}

#[test]
fn session_info_has_the_required_keys() {
    let v = serde_json::to_value(sample_session()).unwrap();
    let obj = v.as_object().unwrap();
    for key in [
        "local",
        "remote",
        "direction",
        "state",
        "role",
        "tep",
        "aead",
        "session_id",
        "resumed",
        "fallback_reason",
        "bytes_in",
        "bytes_out",
        "age_secs",
    ] {
        assert!(obj.contains_key(key), "missing {key}");
    }
    assert_eq!(obj.len(), 13);
    assert_eq!(v["local"], "[::1]:40000");
    assert_eq!(v["remote"], "[::1]:80");
    assert_eq!(v["state"], "established");
    assert_eq!(v["direction"], "outgoing");
    assert_eq!(v["role"], "A");
    assert_eq!(v["tep"], "TCPCRYPT_ECDHE_Curve25519");
    assert_eq!(v["aead"], "AEAD_AES_128_GCM");
    assert_eq!(v["session_id"], sample_id(0xa3).to_hex());
    assert_eq!(v["session_id"].as_str().unwrap().len(), 66);
    assert_eq!(v["resumed"], true);
}

#[test]
fn plain_session_keeps_its_keys_as_null() {
    let mut plain = sample_session();
    plain.role = None;
    plain.session_id = None;
    let v = serde_json::to_value(plain).unwrap();
    assert!(v["role"].is_null());
    assert!(v["session_id"].is_null());
}

#[test]
fn status_has_the_required_keys() {
    let v = serde_json::to_value(sample_status()).unwrap();
    for key in [
        "version",
        "protocol",
        "pid",
        "uptime_secs",
        "policy",
        "counters",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    for key in [
        "encrypt",
        "exclude_ports",
        "mandatory_ports",
        "mandatory_addrs",
        "teps",
        "aeads",
        "resumption",
    ] {
        assert!(v["policy"].get(key).is_some(), "missing policy.{key}");
    }
    for key in [
        "connections_encrypted",
        "connections_resumed",
        "connections_plain",
        "fallbacks",
        "failures",
        "active_sessions",
        "bytes_in",
        "bytes_out",
    ] {
        assert!(v["counters"].get(key).is_some(), "missing counters.{key}");
    }
    for key in [
        "auth_failures",
        "truncations",
        "resets",
        "handshake_timeouts",
    ] {
        assert!(
            v["counters"]["failures"].get(key).is_some(),
            "missing {key}"
        );
    }
    assert_eq!(v["counters"]["fallbacks"]["no_eno_from_peer"], 3);
    assert_eq!(v["load"]["live_connections"], 3);
    assert_eq!(v["load"]["max_connections"], 16384);
    assert_eq!(v["load"]["worker_threads"], 1);
    assert_eq!(v["load"].as_object().unwrap().len(), 3);
}

#[test]
fn status_without_load_has_no_load_key() {
    let mut st = sample_status();
    st.load = None;
    let v = serde_json::to_value(&st).unwrap();
    assert!(v.get("load").is_none(), "{v}");
    round_trip(&Response::Status(Box::new(st)));
}

/// A client that predates [`Status::load`]: it reads a new daemon's status, load and all.
#[test]
fn an_older_client_reads_a_newer_status() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct OldStatus {
        version: String,
        #[serde(default = "default_protocol")]
        protocol: u32,
        pid: u32,
        uptime_secs: u64,
        policy: Policy,
        counters: Counters,
    }
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum OldResponse {
        Status(Box<OldStatus>),
    }
    let new = sample_status();
    let line = encode_line(&Response::Status(Box::new(new.clone())));
    assert!(String::from_utf8_lossy(&line).contains("\"load\":{"));
    let OldResponse::Status(old) = decode_line(&line).unwrap();
    assert_eq!(
        (old.pid, old.uptime_secs, &old.policy, &old.counters),
        (new.pid, new.uptime_secs, &new.policy, &new.counters)
    );
}

#[test]
fn load_at_limit() {
    let load = |live, max| Load {
        live_connections: live,
        max_connections: max,
        worker_threads: 1,
    };
    assert!(!load(7, 8).at_limit());
    assert!(load(8, 8).at_limit());
    assert!(load(9, 8).at_limit());
    // Not reported (a partial object from another daemon): never "at the limit".
    assert!(!load(0, 0).at_limit());
    assert!(!Load::default().at_limit());
}

#[test]
fn response_wire_forms() {
    let err = Response::error(ErrorCode::NotEncrypted, "no ENO");
    assert_eq!(
        String::from_utf8(encode_line(&err)).unwrap(),
        "{\"error\":{\"code\":\"not_encrypted\",\"message\":\"no ENO\"}}\n"
    );
    let reply = Response::SessionId(SessionIdReply {
        session_id: sample_id(0x23),
        role: Role::A,
    });
    let v = serde_json::to_value(reply).unwrap();
    assert_eq!(v["session_id"]["role"], "A");
    assert_eq!(v["session_id"]["session_id"], sample_id(0x23).to_hex());
    assert_eq!(
        serde_json::to_string(&Response::Sessions(vec![])).unwrap(),
        "{\"sessions\":[]}"
    );
}

#[test]
fn forward_compatible_decoding() {
    let err: Response = decode_line(br#"{"error":{"code":"shiny_new","message":"x"}}"#).unwrap();
    assert_eq!(err, Response::error(ErrorCode::Unknown, "x"));
    let mut v = serde_json::to_value(sample_session()).unwrap();
    v["state"] = "migrating".into();
    v["future_field"] = 1.into();
    let s: SessionInfo = serde_json::from_value(v).unwrap();
    assert_eq!(s.state, SessionState::Unknown);
    let st: Status =
        decode_line(br#"{"version":"9","pid":1,"uptime_secs":2,"policy":{},"counters":{}}"#)
            .unwrap();
    assert_eq!(st.protocol, PROTOCOL_VERSION);
    assert_eq!(st.counters, Counters::default());
    assert_eq!(st.load, None, "a daemon that predates load");
    let st: Status = decode_line(
        br#"{"version":"9","pid":1,"uptime_secs":2,"policy":{},"counters":{},"load":{"live_connections":4,"future":true}}"#,
    )
    .unwrap();
    assert_eq!(
        st.load,
        Some(Load {
            live_connections: 4,
            ..Load::default()
        })
    );
}

#[test]
fn malformed_lines_are_rejected() {
    for line in [
        &b"{\"cmd\":\"reboot\"}"[..],
        b"{\"cmd\":\"session_id\",\"local\":\"nonsense\",\"remote\":\"1.2.3.4:5\"}",
        b"{\"cmd\":\"session_id\"}",
        b"not json",
        b"",
    ] {
        assert!(decode_line::<Request>(line).is_err(), "{line:?}");
    }
    let mut v = serde_json::to_value(sample_session()).unwrap();
    v["session_id"] = "A3".repeat(33).into();
    assert!(serde_json::from_value::<SessionInfo>(v.clone()).is_err());
    v["session_id"] = "a3".repeat(32).into();
    assert!(serde_json::from_value::<SessionInfo>(v.clone()).is_err());
    v["session_id"] = "a3".repeat(33).into();
    v["role"] = "C".into();
    assert!(serde_json::from_value::<SessionInfo>(v).is_err());
}

#[test]
fn names_and_hex() {
    assert_eq!(tep_name(TepId::new(0x30).unwrap()), "0x30");
    assert_eq!(aead_name(AeadId(0x20)), "0x0020");
    let id = sample_id(0xa4);
    assert_eq!(session_id_from_hex(&id.to_hex()), Some(id));
    assert_eq!(session_id_from_hex("zz"), None);
}
