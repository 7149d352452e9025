//! Compiles `tests/c/getsessid.c` with the system C compiler against `include/tcpcrypt.h` and
//! the library cargo built (shared and static), and runs it against a fake tcpcryptd and real
//! loopback TCP connections.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::thread;

use tcpcrypt_control::server::{self, DEFAULT_SOCKET_MODE};
use tcpcrypt_control::{ErrorCode, Handler, Request, Response, SessionIdReply};
use tcpcrypt_proto::{Role, SessionId};

/// The fake daemon: answers `session_id` requests by the remote port, like the C program expects.
struct FakeDaemon {
    encrypted: u16,
    plain: u16,
    pending: u16,
}

/// Must match `want` in getsessid.c.
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

impl Handler for FakeDaemon {
    fn handle(&self, req: Request) -> Response {
        let Request::SessionId { local, remote } = req else {
            return Response::error(ErrorCode::BadRequest, "only session_id here");
        };
        match remote.port() {
            p if p == self.encrypted => Response::SessionId(SessionIdReply {
                session_id: fake_id(local, remote),
                role: Role::A,
            }),
            p if p == self.plain => Response::error(ErrorCode::NotEncrypted, "no ENO from peer"),
            p if p == self.pending => Response::error(ErrorCode::Pending, "handshake"),
            _ => Response::error(ErrorCode::NotFound, "no such connection"),
        }
    }
}

/// The directory holding `libtcpcrypt.so` and `libtcpcrypt.a`, built first if need be.
///
/// Cargo builds a cdylib/staticlib-only package's library for its integration tests only as
/// far as it needs it, which is not at all; so the test asks cargo to build it, in the same
/// target directory and profile as this test binary (`target/<profile>/deps/c_api-*`), once.
fn library_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_owned();
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "--lib", "--manifest-path"]);
        cargo.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some(profile) => {
                cargo.args(["--profile", profile]);
            }
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "cargo build -p libtcpcrypt failed");
        for lib in ["libtcpcrypt.so", "libtcpcrypt.a"] {
            let path = profile_dir.join(lib);
            assert!(path.exists(), "{} was not built", path.display());
        }
        profile_dir
    })
}

fn compile(out: &Path, link: &[OsString]) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let status = Command::new(cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests/c/getsessid.c"))
        .arg("-o")
        .arg(out)
        .args(link)
        .status()
        .expect("a C compiler (cc) is needed for this test");
    assert!(status.success(), "compiling getsessid.c failed");
}

fn run_against_fake_daemon(program: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("tcpcryptd.sock");
    let listeners: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let handler: Arc<dyn Handler> = Arc::new(FakeDaemon {
        encrypted: ports[0],
        plain: ports[1],
        pending: ports[2],
    });
    let sock = server::bind(&control, DEFAULT_SOCKET_MODE).unwrap();
    thread::spawn(move || server::serve(sock, handler));

    let out = Command::new(program)
        .arg(&control)
        .args(ports.iter().map(u16::to_string))
        .env_remove("TCPCRYPT_CONTROL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "C test failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.ends_with(" failed\n") && stdout.contains(", 0 failed"),
        "{stdout}"
    );
    drop(listeners);
}

#[test]
fn c_program_with_the_shared_library() {
    let lib = library_dir();
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("getsessid-shared");
    let link = [
        format!("-L{}", lib.display()),
        "-ltcpcrypt".to_owned(),
        format!("-Wl,-rpath,{}", lib.display()),
    ];
    compile(&program, &link.map(OsString::from));
    run_against_fake_daemon(&program);
}

#[test]
fn c_program_with_the_static_library() {
    let lib = library_dir().join("libtcpcrypt.a");
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("getsessid-static");
    // The system libraries Rust's standard library needs (rustc --print native-static-libs).
    let mut link = vec![lib.into_os_string()];
    link.extend(
        [
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ]
        .map(OsString::from),
    );
    compile(&program, &link);
    run_against_fake_daemon(&program);
}

#[test]
fn header_declares_every_exported_function() {
    let header = include_str!("../include/tcpcrypt.h");
    for decl in [
        "int tcpcrypt_getsessid(int fd, unsigned char *buf, size_t *len);",
        "int tcpcrypt_getrole(int fd);",
        "int tcpcrypt_set_control_path(const char *path);",
        "const char *tcpcrypt_strerror(int err);",
        "#define TCPCRYPT_SESSID_MAX 33",
    ] {
        assert!(header.contains(decl), "missing {decl}");
    }
    let source = include_str!("../src/lib.rs");
    let exported = source.matches("#[no_mangle]").count();
    assert_eq!(
        exported, 4,
        "a function is exported but not declared in the header"
    );
}
