//! The control protocol over real Unix sockets: a fake daemon ([`Handler`]) in a temp directory,
//! the blocking client, the session-ID API on real TCP connections, and `bind`'s safety rules.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use tcpcrypt_control::message::{decode_line, encode_line, tep_name};
use tcpcrypt_control::server::{self, BindError, DEFAULT_SOCKET_MODE, MAX_REQUEST_LEN};
use tcpcrypt_control::{
    session_id_at, Client, ControlError, Counters, Direction, ErrorCode, Handler, Load, Policy,
    Request, Response, SessionIdError, SessionIdReply, SessionInfo, SessionState, Status,
};
use tcpcrypt_proto::{Role, SessionId, TepId};

/// A daemon stand-in: knows three TCP listeners' ports and answers by the remote port.
struct FakeDaemon {
    encrypted_port: u16,
    plain_port: u16,
    pending_port: u16,
}

/// The session ID the fake daemon reports for a 4-tuple: a function of the tuple, so a test can
/// check that the daemon was asked about exactly the socket's own addresses.
fn fake_id(local: SocketAddr, remote: SocketAddr) -> SessionId {
    let mut b = [0u8; 33];
    b[0] = 0x23;
    b[1..3].copy_from_slice(&local.port().to_be_bytes());
    b[3..5].copy_from_slice(&remote.port().to_be_bytes());
    for (i, x) in b.iter_mut().enumerate().skip(5) {
        *x = 0xa0 + i as u8;
    }
    SessionId::from_bytes(b)
}

fn status() -> Status {
    Status {
        version: "0.1.0".into(),
        protocol: tcpcrypt_control::message::PROTOCOL_VERSION,
        pid: 7,
        uptime_secs: 9,
        policy: Policy {
            encrypt: vec!["all".into()],
            teps: vec![tep_name(TepId::TCPCRYPT_ECDHE_CURVE25519)],
            resumption: true,
            ..Policy::default()
        },
        counters: Counters {
            connections_encrypted: 3,
            ..Counters::default()
        },
        load: Some(Load {
            live_connections: 2,
            max_connections: 8,
            worker_threads: 1,
        }),
    }
}

fn session_row() -> SessionInfo {
    let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let remote: SocketAddr = "127.0.0.1:80".parse().unwrap();
    SessionInfo {
        local,
        remote,
        direction: Direction::Outgoing,
        state: SessionState::Established,
        role: Some(Role::A),
        tep: Some("TCPCRYPT_ECDHE_Curve25519".into()),
        aead: Some("AEAD_AES_128_GCM".into()),
        session_id: Some(fake_id(local, remote)),
        resumed: false,
        fallback_reason: None,
        bytes_in: 1,
        bytes_out: 2,
        age_secs: 3,
    }
}

impl Handler for FakeDaemon {
    fn handle(&self, req: Request) -> Response {
        match req {
            Request::Status => Response::Status(Box::new(status())),
            Request::Sessions => Response::Sessions(vec![session_row()]),
            Request::SessionId { local, remote } => {
                // The application's own socket: the connecting side has the listener as remote.
                let port = remote.port();
                if port == self.encrypted_port || local.port() == self.encrypted_port {
                    let role = if port == self.encrypted_port {
                        Role::A
                    } else {
                        Role::B
                    };
                    Response::SessionId(SessionIdReply {
                        session_id: fake_id(local, remote),
                        role,
                    })
                } else if port == self.plain_port {
                    Response::error(ErrorCode::NotEncrypted, "peer sent no ENO option")
                } else if port == self.pending_port {
                    Response::error(ErrorCode::Pending, "handshake in progress")
                } else {
                    Response::error(ErrorCode::NotFound, "no such connection")
                }
            }
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    encrypted: TcpListener,
    plain: TcpListener,
    pending: TcpListener,
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// Starts a fake daemon on a fresh socket in a temp directory.
fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tcpcryptd.sock");
    let (encrypted, plain, pending) = (listener(), listener(), listener());
    let handler = Arc::new(FakeDaemon {
        encrypted_port: encrypted.local_addr().unwrap().port(),
        plain_port: plain.local_addr().unwrap().port(),
        pending_port: pending.local_addr().unwrap().port(),
    });
    let sock = server::bind(&path, DEFAULT_SOCKET_MODE).unwrap();
    thread::spawn(move || server::serve(sock, handler));
    Fixture {
        _dir: dir,
        path,
        encrypted,
        plain,
        pending,
    }
}

fn connect_to(l: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    (client, server)
}

#[test]
fn status_and_sessions_over_one_connection() {
    let fx = start();
    let mut client = Client::connect(&fx.path).unwrap();
    assert_eq!(
        client.request(&Request::Status).unwrap(),
        Response::Status(Box::new(status()))
    );
    assert_eq!(
        client.request(&Request::Sessions).unwrap(),
        Response::Sessions(vec![session_row()])
    );
    // The raw line is what the daemon wrote, byte for byte.
    let raw = client.request_raw(&Request::Sessions).unwrap();
    let expected = encode_line(&Response::Sessions(vec![session_row()]));
    assert_eq!(raw.as_bytes(), &expected[..expected.len() - 1]);
}

#[test]
fn session_id_request_found_not_found_not_encrypted_pending() {
    let fx = start();
    let mut client = Client::connect(&fx.path).unwrap();
    let (c, _s) = connect_to(&fx.encrypted);
    let (local, remote) = (c.local_addr().unwrap(), c.peer_addr().unwrap());
    assert_eq!(
        client
            .request(&Request::SessionId { local, remote })
            .unwrap(),
        Response::SessionId(SessionIdReply {
            session_id: fake_id(local, remote),
            role: Role::A,
        })
    );
    let unknown = Request::SessionId {
        local,
        remote: "127.0.0.1:1".parse().unwrap(),
    };
    assert!(matches!(
        client.request(&unknown).unwrap(),
        Response::Error {
            code: ErrorCode::NotFound,
            ..
        }
    ));
    let plain = Request::SessionId {
        local,
        remote: fx.plain.local_addr().unwrap(),
    };
    assert_eq!(
        client.request(&plain).unwrap(),
        Response::error(ErrorCode::NotEncrypted, "peer sent no ENO option")
    );
}

#[test]
fn session_id_api_on_real_sockets() {
    let fx = start();
    let (c, s) = connect_to(&fx.encrypted);
    let reply = session_id_at(&fx.path, &c).unwrap();
    assert_eq!(
        reply.session_id,
        fake_id(c.local_addr().unwrap(), c.peer_addr().unwrap())
    );
    assert_eq!(reply.role, Role::A);
    let reply = session_id_at(&fx.path, &s).unwrap();
    assert_eq!(reply.role, Role::B);
    assert_eq!(
        reply.session_id,
        fake_id(s.local_addr().unwrap(), s.peer_addr().unwrap())
    );

    let (plain, _s1) = connect_to(&fx.plain);
    match session_id_at(&fx.path, &plain) {
        Err(SessionIdError::NotEncrypted { reason }) => {
            assert_eq!(reason, "peer sent no ENO option")
        }
        other => panic!("{other:?}"),
    }
    let (pending, _s2) = connect_to(&fx.pending);
    assert!(matches!(
        session_id_at(&fx.path, &pending),
        Err(SessionIdError::Pending)
    ));
    let other = listener();
    let (unknown, _s3) = connect_to(&other);
    assert!(matches!(
        session_id_at(&fx.path, &unknown),
        Err(SessionIdError::NotFound { .. })
    ));
}

#[test]
fn session_id_api_rejects_unsuitable_sockets() {
    let fx = start();
    let unconnected =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    assert!(matches!(
        session_id_at(&fx.path, &unconnected),
        Err(SessionIdError::NotConnected)
    ));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect("127.0.0.1:9").unwrap();
    assert!(matches!(
        session_id_at(&fx.path, &udp),
        Err(SessionIdError::NotTcp)
    ));
    let (unix, _peer) = UnixStream::pair().unwrap();
    assert!(matches!(
        session_id_at(&fx.path, &unix),
        Err(SessionIdError::NotTcp)
    ));
    let file = fs::File::open("/dev/null").unwrap();
    assert!(matches!(
        session_id_at(&fx.path, &file),
        Err(SessionIdError::Socket(_))
    ));
}

#[test]
fn unreachable_daemon_is_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.sock");
    let err = Client::connect(&missing).unwrap_err();
    assert!(matches!(err, ControlError::NoSocket { .. }));
    assert!(err.is_unreachable());
    assert_eq!(
        err.to_string(),
        format!(
            "is tcpcryptd running? no control socket at {}",
            missing.display()
        )
    );
    // A stale socket: the file exists, nobody listens.
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    assert!(matches!(
        Client::connect(&stale),
        Err(ControlError::NoSocket { .. })
    ));
    let l = listener();
    let (c, _s) = connect_to(&l);
    match session_id_at(&missing, &c) {
        Err(SessionIdError::Control(e)) => assert!(e.is_unreachable()),
        other => panic!("{other:?}"),
    }
}

/// Writes raw bytes to the server and reads its reply lines.
fn raw_exchange(path: &Path, bytes: &[u8]) -> Vec<Response> {
    let mut stream = UnixStream::connect(path).unwrap();
    stream.write_all(bytes).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut replies = Vec::new();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        replies.push(decode_line(line.as_bytes()).unwrap());
        line.clear();
    }
    replies
}

#[test]
fn malformed_request_gets_bad_request_and_the_connection_goes_on() {
    let fx = start();
    let replies = raw_exchange(
        &fx.path,
        b"{\"cmd\":\"reboot\"}\nnot json\n{\"cmd\":\"status\"}\n",
    );
    assert_eq!(replies.len(), 3);
    for r in &replies[..2] {
        assert!(matches!(
            r,
            Response::Error {
                code: ErrorCode::BadRequest,
                ..
            }
        ));
    }
    assert_eq!(replies[2], Response::Status(Box::new(status())));
}

#[test]
fn overlong_request_line_gets_bad_request_and_close() {
    let fx = start();
    let mut bytes = vec![b' '; MAX_REQUEST_LEN + 10];
    bytes.extend_from_slice(b"{\"cmd\":\"status\"}\n{\"cmd\":\"status\"}\n");
    let replies = raw_exchange(&fx.path, &bytes);
    assert_eq!(replies.len(), 1, "{replies:?}");
    match &replies[0] {
        Response::Error { code, message } => {
            assert_eq!(*code, ErrorCode::BadRequest);
            assert!(message.contains("longer than"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A line of exactly the limit, newline included, is still served.
    let req = encode_line(&Request::Status);
    let mut exact = vec![b' '; MAX_REQUEST_LEN - req.len()];
    exact.extend_from_slice(&req);
    let replies = raw_exchange(&fx.path, &exact);
    assert_eq!(replies, vec![Response::Status(Box::new(status()))]);
}

#[test]
fn bind_sets_mode_0600_and_other_modes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.sock");
    let _l = server::bind(&path, DEFAULT_SOCKET_MODE).unwrap();
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    let path = dir.path().join("b.sock");
    let _l2 = server::bind(&path, 0o660).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o660
    );
    // No temporary name is left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn bind_replaces_a_stale_socket_but_not_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tcpcryptd.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let live = server::bind(&path, DEFAULT_SOCKET_MODE).unwrap();
    // The new socket answers.
    let handler: Arc<dyn Handler> = Arc::new(|_req: Request| Response::Sessions(vec![]));
    thread::spawn(move || server::serve(live, handler));
    let mut c = Client::connect(&path).unwrap();
    assert_eq!(
        c.request(&Request::Sessions).unwrap(),
        Response::Sessions(vec![])
    );
    // A second daemon must not steal it.
    assert!(matches!(
        server::bind(&path, DEFAULT_SOCKET_MODE),
        Err(BindError::InUse { .. })
    ));
    assert!(Client::connect(&path).is_ok());
}

#[test]
fn bind_refuses_to_replace_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("important");
    fs::write(&path, b"keep me").unwrap();
    let err = server::bind(&path, DEFAULT_SOCKET_MODE).unwrap_err();
    assert!(matches!(err, BindError::NotASocket { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"keep me");
    let sub = dir.path().join("subdir");
    fs::create_dir(&sub).unwrap();
    assert!(matches!(
        server::bind(&sub, DEFAULT_SOCKET_MODE),
        Err(BindError::NotASocket { .. })
    ));
}

#[test]
fn daemon_closing_without_answer_and_garbage_replies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.sock");
    let l = UnixListener::bind(&path).unwrap();
    thread::spawn(move || {
        let replies: [&[u8]; 3] = [b"", b"this is not json\n", b"[1,2]\n"];
        for reply in replies {
            let (mut s, _) = l.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            s.write_all(reply).unwrap();
        }
    });
    let err = Client::connect(&path)
        .unwrap()
        .request(&Request::Status)
        .unwrap_err();
    assert!(matches!(err, ControlError::Closed), "{err}");
    for _ in 0..2 {
        let err = Client::connect(&path)
            .unwrap()
            .request(&Request::Status)
            .unwrap_err();
        assert!(matches!(err, ControlError::MalformedReply(_)), "{err}");
    }
}

#[test]
fn client_times_out_on_a_silent_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let l = UnixListener::bind(&path).unwrap();
    let mut c = Client::connect_with_timeout(&path, std::time::Duration::from_millis(100)).unwrap();
    let err = c.request(&Request::Status).unwrap_err();
    assert!(matches!(err, ControlError::Timeout { .. }), "{err}");
    drop(l);
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_server_answers_like_the_blocking_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("async.sock");
    let std_listener = server::bind(&path, DEFAULT_SOCKET_MODE).unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handler: Arc<dyn Handler> = Arc::new(FakeDaemon {
        encrypted_port: 1,
        plain_port: 2,
        pending_port: 3,
    });
    thread::spawn(move || {
        rt.block_on(async move {
            let l = tokio::net::UnixListener::from_std(std_listener).unwrap();
            server::serve_async(l, handler).await
        })
    });
    let mut c = Client::connect(&path).unwrap();
    assert_eq!(
        c.request(&Request::Status).unwrap(),
        Response::Status(Box::new(status()))
    );
    let replies = raw_exchange(&path, b"nonsense\n{\"cmd\":\"sessions\"}\n");
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1], Response::Sessions(vec![session_row()]));
    let mut long = vec![b'x'; MAX_REQUEST_LEN + 1];
    long.extend_from_slice(b"\n{\"cmd\":\"status\"}\n");
    let replies = raw_exchange(&path, &long);
    assert_eq!(replies.len(), 1);
}
