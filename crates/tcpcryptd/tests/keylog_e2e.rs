//! The key log end to end, as root (RFC 8547 §5 debug mode): `tcpcryptd --keylog FILE` and
//! `TCPCRYPT_KEYLOGFILE` write one line per encrypted connection to a 0600 file, both daemons
//! log the same session ID and it is the ID their control sockets report; plain connections
//! log nothing; the status says the key log is on; a bad path refuses the start and changes
//! nothing.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::hosts::{
    addr, exchange, finish, sessions, wait_encrypted, wait_session, Net, Proc, PORT, TIMEOUT,
};
use tcpcrypt_control::{Client, SessionState};
use tcpcrypt_proto::keylog::{KeyLogFile, LoggedSecret};
use tcpcrypt_proto::SessionId;

/// The key log lines (comments and blank lines left out).
fn key_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("the key log exists")
        .permissions()
        .mode()
        & 0o777
}

/// Waits (bounded) until `path` has `n` key lines: the server side logs when Init1 arrives,
/// which can be a moment after the client's first echo came back.
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let lines = key_lines(path);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One encrypted connection from A to `dst`: the session ID A's daemon reports for it.
fn connect_once(net: &Net, ca: &Path, cb: &Path, dst: SocketAddr, seed: u8) -> SessionId {
    let mut s = net.connect(dst).expect("connect through both daemons");
    exchange(&mut s, &vec![seed; 5000]);
    let local = s.local_addr().unwrap();
    let row_a = wait_encrypted(ca, local);
    let id = row_a.session_id.expect("established rows carry the ID");
    wait_session(cb, id);
    finish(s);
    id
}

#[test]
fn both_daemons_log_each_encrypted_connection_once_with_the_reported_session_id() {
    let net = Net::new();
    net.echo_service();
    let (_da, ca) = net.daemon(&net.a, "a");
    let (_db, cb) = net.daemon(&net.b, "b");
    let (ka, kb) = (net.keys("a"), net.keys("b"));
    for (name, keys) in [("a", &ka), ("b", &kb)] {
        assert_eq!(mode(keys), 0o600, "{name}'s key log");
        assert!(key_lines(keys).is_empty(), "no connection yet");
        let log = net.log(name);
        assert!(
            log.contains("key log on") && log.contains("anyone who reads it can decrypt"),
            "the start warns: {log}"
        );
    }
    // The status says so.
    let status = common::hosts::status(&ca);
    assert_eq!(status.policy.keylog, Some(ka.display().to_string()));

    // Fresh (v4), resumed (v4 again, same peer), then v6.
    let dsts = [
        addr('b', false, PORT),
        addr('b', false, PORT),
        addr('b', true, PORT),
    ];
    let mut ids = Vec::new();
    for (i, dst) in dsts.into_iter().enumerate() {
        ids.push(connect_once(&net, &ca, &cb, dst, i as u8));
        let (la, lb) = (wait_lines(&ka, i + 1), wait_lines(&kb, i + 1));
        assert_eq!(la.len(), i + 1, "one line per connection on A: {la:?}");
        assert_eq!(lb.len(), i + 1, "one line per connection on B: {lb:?}");
    }
    assert!(!ids[0].is_resumed() && ids[1].is_resumed(), "{ids:?}");
    for keys in [&ka, &kb] {
        let text = std::fs::read_to_string(keys).unwrap();
        let log = KeyLogFile::parse(&text).expect("the daemon writes valid lines");
        assert_eq!(log.len(), 3);
        for id in &ids {
            match log.get(id) {
                Some(LoggedSecret::Es(_)) => assert!(!id.is_resumed(), "{id}"),
                Some(LoggedSecret::Ss(_)) => assert!(id.is_resumed(), "{id}"),
                None => panic!("{id} not in {}", keys.display()),
            }
        }
        assert_eq!(mode(keys), 0o600);
    }
    // Both hosts wrote the same secrets.
    let mut la = key_lines(&ka);
    let mut lb = key_lines(&kb);
    la.sort();
    lb.sort();
    assert_eq!(la, lb);
}

#[test]
fn plain_connections_log_nothing() {
    let net = Net::new();
    net.echo_service();
    // Only A runs the daemon: every connection falls back to plain TCP.
    let (_da, ca) = net.daemon(&net.a, "a");
    for v6 in [false, true] {
        let mut s = net.connect(addr('b', v6, PORT)).expect("connect");
        exchange(&mut s, b"plain");
        // Rows exist while the connection does.
        let rows = sessions(&ca);
        assert!(
            rows.len() == 1 && rows[0].state == SessionState::Plain,
            "{rows:?}"
        );
        finish(s);
    }
    assert_eq!(mode(&net.keys("a")), 0o600);
    assert!(key_lines(&net.keys("a")).is_empty());
}

/// Starts tcpcryptd in `ns` without the harness's `--keylog`, with `env` set.
fn raw_daemon(net: &Net, name: &str, args: &[&str], env: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        net.a.name(),
        env!("CARGO_BIN_EXE_tcpcryptd"),
    ])
    .arg("--control")
    .arg(net.dir.join(format!("{name}.sock")))
    .args(args)
    .env_remove(tcpcryptd::config::KEYLOG_ENV)
    .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn the_environment_variable_turns_the_key_log_on_and_the_flag_wins() {
    let net = Net::new();
    net.echo_service();
    let env_keys = net.dir.join("env.keys");
    let flag_keys = net.dir.join("flag.keys");
    let (_db, cb) = net.daemon(&net.b, "b");
    for (args, expect) in [
        (&[][..], &env_keys),
        (&["--keylog", flag_keys.to_str().unwrap()][..], &flag_keys),
    ] {
        let control = net.dir.join("a.sock");
        let log = std::fs::File::create(net.dir.join("a.log")).unwrap();
        let mut daemon = Proc(
            raw_daemon(
                &net,
                "a",
                args,
                &[(tcpcryptd::config::KEYLOG_ENV, &env_keys)],
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tcpcryptd"),
        );
        let deadline = Instant::now() + TIMEOUT;
        while Client::connect(&control).is_err() {
            assert!(Instant::now() < deadline, "did not start: {}", net.log("a"));
            std::thread::sleep(Duration::from_millis(20));
        }
        let before = key_lines(expect).len();
        let id = connect_once(&net, &control, &cb, addr('b', false, PORT), 7);
        let lines = wait_lines(expect, before + 1);
        assert_eq!(lines.len(), before + 1, "{}: {lines:?}", expect.display());
        assert!(lines.last().unwrap().contains(&id.to_hex()));
        assert_eq!(mode(expect), 0o600);
        assert!(daemon.signal_and_wait("TERM").success());
    }
    // The flag won: the env file got only the first daemon's connection.
    assert_eq!(key_lines(&env_keys).len(), 1);
}

#[test]
fn an_unusable_key_log_refuses_the_start_and_changes_nothing() {
    let net = Net::new();
    let before = net.a.run(common::snapshot).unwrap();
    let readable = net.dir.join("readable.keys");
    std::fs::write(&readable, "").unwrap();
    std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing = net.dir.join("no-such-dir/k.keys");
    for (path, expect) in [(&missing, "No such file"), (&readable, "chmod 600")] {
        let mut cmd = raw_daemon(&net, "a", &["--keylog", path.to_str().unwrap()], &[]);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpcryptd");
        let deadline = Instant::now() + TIMEOUT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tcpcryptd started with key log {}", path.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("tcpcryptd: error: ")
                && last.contains(&path.display().to_string())
                && last.contains(expect),
            "{stderr}"
        );
    }
    assert_eq!(mode(&readable), 0o644, "never chmodded");
    assert_eq!(std::fs::read(&readable).unwrap(), b"", "nothing written");
    assert_eq!(
        net.a.run(common::snapshot).unwrap(),
        before,
        "no rule left behind"
    );
}
