//! Two hosts for end-to-end tests: namespaces A (10.77.0.1, fd77::1) and B (10.77.0.2,
//! fd77::2) joined by a veth pair, `tcpcryptd` processes (each with its own control socket and
//! log), services in B, clients in A, packet captures. Everything is removed on drop.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tcpcrypt_control::{Client, Request, Response, SessionInfo};
use tcpcrypt_sys::netns::NetNs;

/// The echo service's port.
pub const PORT: u16 = 8080;
/// Bound of every wait.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of a daemon's start: it runs some 120 `iptables`/`ip` commands one after the other,
/// which took 3 s for one daemon at load 8 and over 10 s for four starting at once (the
/// lifecycle tests) at load 30+; only a daemon that fails to start waits this long.
pub const START_TIMEOUT: Duration = Duration::from_secs(40);

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// Sends `signal` ("TERM", "KILL") and waits (bounded) for the exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        super::sh(&["kill", &format!("-{signal}"), &self.0.id().to_string()]);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "process ignored SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two namespaces on a veth pair.
pub struct Net {
    /// Host A (clients).
    pub a: NetNs,
    /// Host B (services).
    pub b: NetNs,
    /// A's veth.
    pub dev_a: String,
    /// Control sockets, logs, captures.
    pub dir: PathBuf,
}

/// A's and B's addresses.
pub fn addr(host: char, v6: bool, port: u16) -> SocketAddr {
    let n = if host == 'a' { 1 } else { 2 };
    let text = if v6 {
        format!("[fd77::{n}]:{port}")
    } else {
        format!("10.77.0.{n}:{port}")
    };
    text.parse().unwrap()
}

impl Net {
    /// Creates the namespaces and the link.
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let a = super::netns("tcd-a");
        let b = super::netns("tcd-b");
        let n = N.fetch_add(1, Ordering::Relaxed);
        let (va, vb) = (
            format!("tca{n}p{}", std::process::id() % 10000),
            format!("tcb{n}p{}", std::process::id() % 10000),
        );
        let ip = |args: &[&str]| super::sh(&[&["ip"][..], args].concat());
        ip(&[
            "link",
            "add",
            &va,
            "netns",
            a.name(),
            "type",
            "veth",
            "peer",
            "name",
            &vb,
            "netns",
            b.name(),
        ]);
        for (ns, dev, v4, v6) in [
            (&a, &va, "10.77.0.1/24", "fd77::1/64"),
            (&b, &vb, "10.77.0.2/24", "fd77::2/64"),
        ] {
            ip(&["-n", ns.name(), "addr", "add", v4, "dev", dev]);
            ip(&["-n", ns.name(), "addr", "add", v6, "dev", dev, "nodad"]);
            ip(&["-n", ns.name(), "link", "set", dev, "up"]);
            ip(&["-n", ns.name(), "link", "set", "lo", "up"]);
        }
        for (ns, dev) in [(&a, &va), (&b, &vb)] {
            wait_link_up(ns, dev);
        }
        let dir = std::env::temp_dir().join(format!(
            "tcpcryptd-{}-{}-{n}",
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_default(),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            a,
            b,
            dev_a: va,
            dir,
        }
    }

    /// Starts `tcpcryptd` in `ns` with default settings; returns it and its control socket.
    pub fn daemon(&self, ns: &NetNs, name: &str) -> (Proc, PathBuf) {
        self.daemon_with(ns, name, &[])
    }

    /// Starts `tcpcryptd` with extra flags and waits until its control socket answers. Unless
    /// `args` name another, the daemon writes its key log to [`Net::keys`] (so every capture
    /// can be decrypted by the inspector).
    pub fn daemon_with(&self, ns: &NetNs, name: &str, args: &[&str]) -> (Proc, PathBuf) {
        self.daemon_with_env(ns, name, args, &[])
    }

    /// [`Net::daemon_with`], with extra environment variables for the daemon.
    pub fn daemon_with_env(
        &self,
        ns: &NetNs,
        name: &str,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> (Proc, PathBuf) {
        let control = self.dir.join(format!("{name}.sock"));
        let keylog = if args.contains(&"--keylog") {
            Vec::new()
        } else {
            vec!["--keylog".into(), self.keys(name).into_os_string()]
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), env!("CARGO_BIN_EXE_tcpcryptd")])
            .arg("--control")
            .arg(&control)
            .args(keylog)
            .args(args)
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tcpcryptd");
        let proc = Proc(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Client::connect(&control).is_err() {
            assert!(
                Instant::now() < deadline,
                "tcpcryptd {name} did not start: {}",
                self.log(name)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        (proc, control)
    }

    /// The key log file of daemon `name` (see [`Net::daemon_with`]).
    pub fn keys(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.keys"))
    }

    /// The log of daemon `name`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// A service on B's `port` (v4 and v6): `handle` runs on a thread per connection.
    pub fn service<F>(&self, port: u16, handle: F)
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = self
            .b
            .run(move || TcpListener::bind(("::", port)).expect("bind the service"))
            .unwrap();
        let handle = std::sync::Arc::new(handle);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let handle = handle.clone();
                std::thread::spawn(move || handle(conn));
            }
        });
    }

    /// An echo service on B's [`PORT`]: echoes every read, shuts down its write side at EOF.
    pub fn echo_service(&self) {
        self.service(PORT, |mut conn| {
            let mut buf = [0u8; 65536];
            loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = conn.shutdown(Shutdown::Write);
        });
    }

    /// Connects from A.
    pub fn connect(&self, dst: SocketAddr) -> std::io::Result<TcpStream> {
        self.a
            .run(move || TcpStream::connect_timeout(&dst, TIMEOUT))
            .unwrap()
    }

    /// Runs `cmd` in A's namespace.
    pub fn sh_a(&self, cmd: &[&str]) -> String {
        self.a.run(|| super::sh(cmd)).unwrap()
    }
}

/// Waits (bounded) until `dev` in `ns` has its carrier and the kernel has acted on it. The
/// carrier of a veth comes up with its peer, but routes lose their `linkdown` flag and IPv6
/// adds `multicast ff00::/8` only when the kernel's link watch gets to the event, which it
/// delays (up to a second, longer on a loaded box, more so while other tests create links):
/// a route snapshot taken before that differs from one taken after for reasons that have
/// nothing to do with the daemon.
fn wait_link_up(ns: &NetNs, dev: &str) {
    let ip = |args: &[&str]| super::sh(&[&["ip", "-n", ns.name()][..], args].concat());
    let multicast = format!("multicast ff00::/8 dev {dev} ");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let link = ip(&["-o", "link", "show", "dev", dev]);
        let routes = ip(&["-4", "route", "show", "table", "all"])
            + &ip(&["-6", "route", "show", "table", "all"]);
        if link.contains("LOWER_UP") && !routes.contains("linkdown") && routes.contains(&multicast)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{dev} in {} never came up: {link}{routes}",
            ns.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in ["a", "b"] {
                eprintln!("--- log of daemon {name} ---\n{}", self.log(name));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// tcpdump on A's veth writing `file`, headers and the first bytes of each payload
/// (`-s snaplen`), stopped when dropped.
pub fn capture(net: &Net, file: &Path, snaplen: u32) -> Proc {
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            net.a.name(),
            "tcpdump",
            "--immediate-mode",
            "-U",
        ])
        // A 64 MiB buffer: with the default 2 MiB the kernel drops packets of bulk transfers
        // and the inspector rightly reports gaps.
        .args(["-B", "65536"])
        .args(["-s", &snaplen.to_string(), "-i", &net.dev_a, "-w"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tcpdump (apt-get install tcpdump)");
    // tcpdump creates the file once it listens.
    let deadline = Instant::now() + TIMEOUT;
    while std::fs::metadata(file).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "tcpdump did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    Proc(child)
}

/// Writes `data` and reads the same bytes back.
pub fn exchange(stream: &mut TcpStream, data: &[u8]) {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(data).unwrap();
    let mut got = vec![0u8; data.len()];
    stream.read_exact(&mut got).expect("read the echo");
    assert_eq!(got, data);
}

/// Half-closes and expects a clean end of stream with nothing more.
pub fn finish(mut stream: TcpStream) {
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("clean end of stream");
    assert!(rest.is_empty());
}

/// The daemon's `sessions` reply.
pub fn sessions(control: &Path) -> Vec<SessionInfo> {
    match Client::connect(control)
        .unwrap()
        .request(&Request::Sessions)
        .unwrap()
    {
        Response::Sessions(rows) => rows,
        other => panic!("sessions: {other:?}"),
    }
}

/// The daemon's status.
pub fn status(control: &Path) -> tcpcrypt_control::Status {
    match Client::connect(control)
        .unwrap()
        .request(&Request::Status)
        .unwrap()
    {
        Response::Status(s) => *s,
        other => panic!("status: {other:?}"),
    }
}

/// Waits (bounded) until the daemon behind `control` shows the connection whose application
/// side is `local` as established, and returns its row.
pub fn wait_encrypted(control: &Path, local: SocketAddr) -> SessionInfo {
    wait_row(control, local, tcpcrypt_control::SessionState::Established)
}

/// Waits (bounded) until the daemon behind `control` shows the connection whose application
/// side is `local` in `state`, and returns its row.
pub fn wait_row(
    control: &Path,
    local: SocketAddr,
    state: tcpcrypt_control::SessionState,
) -> SessionInfo {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let rows = sessions(control);
        if let Some(row) = rows.iter().find(|r| r.local == local && r.state == state) {
            return row.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{local} never {state:?}: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects from A to `dst` and exchanges `data` until a connection is encrypted by A's daemon
/// at `control`, and returns it with its row. While A's daemon has `dst` cached as a server
/// without tcpcrypt (tcpcryptd's `plain_peers`), connections go direct, plain, until the next
/// probe; so this is bounded by the probe interval (plus [`TIMEOUT`]), and says how many went
/// direct first.
pub fn connect_until_encrypted(
    net: &Net,
    control: &Path,
    dst: SocketAddr,
    data: &[u8],
) -> (TcpStream, SessionInfo, usize) {
    let deadline = Instant::now() + tcpcryptd::plain_peers::PROBE_EVERY + TIMEOUT;
    let mut direct = 0;
    loop {
        let mut s = net.connect(dst).expect("connect");
        exchange(&mut s, data);
        let local = s.local_addr().unwrap();
        let row = sessions(control).into_iter().find(|r| r.local == local);
        match row {
            // Through the daemon: it settles (encrypted) within the usual bound.
            Some(_) => {
                let row = wait_encrypted(control, local);
                return (s, row, direct);
            }
            None => {
                direct += 1;
                finish(s);
                assert!(
                    Instant::now() < deadline,
                    "no connection to {dst} went through A's daemon within a probe interval"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The established row with session ID `id` in the daemon at `control`, waited for (bounded):
/// the two daemons record their rows independently, so the peer's may lag the one just read
/// (seen under load: B's row still in the handshake state when A's was established).
pub fn wait_session(control: &Path, id: tcpcrypt_proto::SessionId) -> SessionInfo {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let rows = sessions(control);
        if let Some(row) = rows.iter().find(|r| {
            r.session_id == Some(id) && r.state == tcpcrypt_control::SessionState::Established
        }) {
            return row.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no established row with session ID {id}: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `data` and expects a reset: reported by the write (the kernel reports a received
/// RST once, to whichever call comes first) or else by the next read; never a clean EOF.
pub fn write_expect_reset(s: &mut TcpStream, data: &[u8], what: &str) {
    match s.write_all(data) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{what}: {e}"),
        Ok(()) => expect_reset(s, what),
    }
}

/// The next read must fail with ECONNRESET within [`TIMEOUT`], never be a clean EOF.
pub fn expect_reset(s: &mut TcpStream, what: &str) {
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{what}: {e}"),
        Ok(n) => panic!("{what}: read {n} bytes instead of a reset (never a clean EOF)"),
    }
}
