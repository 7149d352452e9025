//! Runs the `tcpcrypt` binary against a fake daemon on a temporary Unix socket.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::thread;

use tcpcrypt_control::message::PROTOCOL_VERSION;
use tcpcrypt_control::server::{self, DEFAULT_SOCKET_MODE};
use tcpcrypt_control::{
    Counters, Direction, ErrorCode, Failures, Handler, Load, Policy, Request, Response,
    SessionIdReply, SessionInfo, SessionState, Status,
};
use tcpcrypt_proto::{Role, SessionId};

fn id(first: u8) -> SessionId {
    let mut b = [0u8; 33];
    b[0] = first;
    for (i, x) in b.iter_mut().enumerate().skip(1) {
        *x = 0x10 + i as u8;
    }
    SessionId::from_bytes(b)
}

fn rows() -> Vec<SessionInfo> {
    vec![
        SessionInfo {
            local: "127.0.0.1:40000".parse().unwrap(),
            remote: "127.0.0.1:80".parse().unwrap(),
            direction: Direction::Outgoing,
            state: SessionState::Established,
            role: Some(Role::A),
            tep: Some("TCPCRYPT_ECDHE_Curve25519".into()),
            aead: Some("AEAD_AES_128_GCM".into()),
            session_id: Some(id(0x23)),
            resumed: false,
            fallback_reason: None,
            bytes_in: 1536,
            bytes_out: 100,
            age_secs: 185,
        },
        SessionInfo {
            local: "[::1]:443".parse().unwrap(),
            remote: "[::1]:51000".parse().unwrap(),
            direction: Direction::Incoming,
            state: SessionState::Plain,
            role: None,
            tep: None,
            aead: None,
            session_id: None,
            resumed: false,
            fallback_reason: Some("peer sent no ENO option".into()),
            bytes_in: 0,
            bytes_out: 0,
            age_secs: 2,
        },
    ]
}

fn status() -> Status {
    Status {
        version: "0.1.0".into(),
        protocol: PROTOCOL_VERSION,
        pid: 4242,
        uptime_secs: 3723,
        policy: Policy {
            encrypt: vec!["all".into()],
            exclude_ports: vec!["22".into()],
            mandatory_ports: vec![],
            mandatory_addrs: vec![],
            teps: vec![
                "TCPCRYPT_ECDHE_Curve25519".into(),
                "TCPCRYPT_ECDHE_Curve448".into(),
            ],
            aeads: vec!["AEAD_AES_128_GCM".into()],
            resumption: true,
            keylog: None,
            option_path: Some("bpf".into()),
            syn_filters: Some(true),
        },
        counters: Counters {
            connections_encrypted: 10,
            connections_resumed: 4,
            connections_plain: 3,
            fallbacks: BTreeMap::from([("no_eno_from_peer".to_owned(), 3)]),
            failures: Failures {
                auth_failures: 1,
                truncations: 2,
                resets: 3,
                handshake_timeouts: 4,
            },
            active_sessions: 2,
            bytes_in: 1000,
            bytes_out: 2048,
        },
        load: Some(Load {
            live_connections: 3,
            max_connections: 16384,
            worker_threads: 1,
        }),
    }
}

/// A daemon that answers `status` with its status.
struct Fake(Status);

impl Handler for Fake {
    fn handle(&self, req: Request) -> Response {
        match req {
            Request::Status => Response::Status(Box::new(self.0.clone())),
            Request::Sessions => Response::Sessions(rows()),
            Request::SessionId { local, .. } if local.port() == 40000 => {
                Response::SessionId(SessionIdReply {
                    session_id: id(0x23),
                    role: Role::A,
                })
            }
            Request::SessionId { .. } => Response::error(ErrorCode::NotFound, "no such connection"),
        }
    }
}

fn start() -> (tempfile::TempDir, PathBuf) {
    start_with(status())
}

fn start_with(status: Status) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tcpcryptd.sock");
    let listener = server::bind(&path, DEFAULT_SOCKET_MODE).unwrap();
    let handler: Arc<dyn Handler> = Arc::new(Fake(status));
    thread::spawn(move || server::serve(listener, handler));
    (dir, path)
}

fn tcpcrypt(control: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcpcrypt"));
    cmd.env_remove("TCPCRYPT_CONTROL");
    if let Some(path) = control {
        cmd.arg("--control").arg(path);
    }
    cmd.args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn status_summary() {
    let (_dir, path) = start();
    let out = tcpcrypt(Some(&path), &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "daemon: tcpcryptd 0.1.0\n",
        "  pid: 4242\n",
        "  uptime: 1h02m\n",
        "  encrypt: all\n",
        "  exclude ports: 22\n",
        "  mandatory ports: none\n",
        "  teps: TCPCRYPT_ECDHE_Curve25519, TCPCRYPT_ECDHE_Curve448\n",
        "  aeads: AEAD_AES_128_GCM\n",
        "  resumption: on\n",
        "  encrypted: 10 (4 resumed)\n",
        "  plain: 3\n",
        "  active sessions: 2\n",
        "  fallbacks: 3 no_eno_from_peer\n",
        "  failures: 1 auth, 2 truncated, 3 reset, 4 handshake timeout\n",
        "  transfer: 1000B received, 2.0K sent\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("key log"), "key log is off:\n{text}");
    assert!(
        text.ends_with(
            "\nload:\n  connections: 3 proxied now (max 16384)\n  worker threads: 1\n  ENO \
             option path: bpf (written by a sock_ops program; only SYNs and SYN-ACKs are \
             queued)\n  SYN filters: on (SYNs to cached servers without tcpcrypt, and SYNs \
             without ENO, are not queued)\n"
        ),
        "{text}"
    );
    assert!(!text.contains("limit reached"), "below the limit:\n{text}");
    let out = tcpcrypt(Some(&path), &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"], 4242);
    assert_eq!(v["counters"]["failures"]["resets"], 3);
    assert_eq!(v["load"]["live_connections"], 3);
    assert_eq!(v["load"]["max_connections"], 16384);
    assert_eq!(v["load"]["worker_threads"], 1);
    assert_eq!(v["policy"]["option_path"], "bpf");
    assert_eq!(v["policy"]["syn_filters"], true);
}

#[test]
fn status_at_the_connection_limit_says_new_connections_are_plain() {
    let mut full = status();
    full.load = Some(Load {
        live_connections: 8,
        max_connections: 8,
        worker_threads: 2,
    });
    let (_dir, path) = start_with(full);
    let out = tcpcrypt(Some(&path), &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("  connections: 8 proxied now (max 8)\n"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l
            == "WARNING: connection limit reached (8 of max_connections 8): new connections are \
                left plain TCP, NOT encrypted, until some of these end"),
        "{text}"
    );
    let out = tcpcrypt(Some(&path), &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["load"]["live_connections"], v["load"]["max_connections"]);
}

#[test]
fn status_of_a_daemon_without_load() {
    let mut old = status();
    old.load = None;
    let (_dir, path) = start_with(old);
    let out = tcpcrypt(Some(&path), &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("  active sessions: 2\n"), "{text}");
    assert!(!text.contains("load:") && !text.contains("limit"), "{text}");
    let out = tcpcrypt(Some(&path), &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.get("load").is_none(), "{v}");
}

#[test]
fn sessions_table() {
    let (_dir, path) = start();
    let out = tcpcrypt(Some(&path), &["sessions"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let expected = [
        "LOCAL            REMOTE        STATE        ROLE  TEP         AEAD         RESUMED    \
         IN   OUT    AGE  SESSION-ID",
        "127.0.0.1:40000  127.0.0.1:80  established  A     Curve25519  AES_128_GCM  no       \
         1.5K  100B  3m05s  2311121314151617...",
        "[::1]:443        [::1]:51000   plain        -     -           -            -          \
         0B    0B     2s  -",
    ];
    assert_eq!(lines, expected, "\n{text}");

    let out = tcpcrypt(Some(&path), &["sessions", "--full"]);
    let text = stdout(&out);
    assert!(text.contains(&id(0x23).to_hex()), "{text}");
    assert!(
        text.contains("TCPCRYPT_ECDHE_Curve25519  AEAD_AES_128_GCM"),
        "{text}"
    );
}

#[test]
fn sessions_json_is_the_array_as_received() {
    let (_dir, path) = start();
    let out = tcpcrypt(Some(&path), &["sessions", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = serde_json::to_string(&rows()).unwrap() + "\n";
    assert_eq!(stdout(&out), expected);
    let v: serde_json::Value = serde_json::from_str(&expected).unwrap();
    for key in [
        "local",
        "remote",
        "role",
        "tep",
        "aead",
        "session_id",
        "resumed",
    ] {
        assert!(v[0].get(key).is_some(), "missing {key}");
    }
}

#[test]
fn sessions_json_keeps_fields_this_version_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut row = serde_json::to_value(&rows()[0]).unwrap();
    row["shiny_new_field"] = 7.into();
    let array = serde_json::to_string(&vec![row]).unwrap();
    let reply = format!("{{\"sessions\":{array}}}\n");
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        s.write_all(reply.as_bytes()).unwrap();
    });
    let out = tcpcrypt(Some(&path), &["sessions", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{array}\n"));
}

#[test]
fn session_id_for_scripts() {
    let (_dir, path) = start();
    let args = [
        "session-id",
        "--local",
        "127.0.0.1:40000",
        "--remote",
        "127.0.0.1:80",
    ];
    let out = tcpcrypt(Some(&path), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n", id(0x23).to_hex()));
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = tcpcrypt(Some(&path), &json_args);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["role"], "A");
    assert_eq!(v["session_id"], id(0x23).to_hex());

    // An error reply: exit 1, one line on stderr, nothing on stdout.
    let out = tcpcrypt(
        Some(&path),
        &["session-id", "--local", "[::1]:1", "--remote", "[::1]:2"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "tcpcrypt: tcpcryptd: no such connection (not_found)\n"
    );
}

#[test]
fn unreachable_daemon_exits_3_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.sock");
    let out = tcpcrypt(Some(&missing), &["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        format!(
            "tcpcrypt: is tcpcryptd running? no control socket at {}\n",
            missing.display()
        )
    );
}

#[test]
fn control_path_from_the_environment() {
    let (_dir, path) = start();
    let out = Command::new(env!("CARGO_BIN_EXE_tcpcrypt"))
        .env("TCPCRYPT_CONTROL", &path)
        .arg("sessions")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("LOCAL"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["session-id", "--local", "127.0.0.1:1"],
        &["session-id", "--local", "nonsense", "--remote", "1.2.3.4:5"],
        &["inspect"],
    ] {
        let out = tcpcrypt(None, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = tcpcrypt(None, &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("sessions"));
}

#[test]
fn addresses_parse_like_the_json() {
    let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let v6: SocketAddr = "[::1]:80".parse().unwrap();
    assert_eq!(serde_json::to_value(v4).unwrap(), "127.0.0.1:80");
    assert_eq!(serde_json::to_value(v6).unwrap(), "[::1]:80");
}
