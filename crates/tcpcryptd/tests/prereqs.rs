//! Missing prerequisites (in a network namespace, as root): the daemon stops at once, non-zero,
//! with a message that names the problem and the fix, and leaves no rules behind. Not root or
//! no CAP_NET_ADMIN; no iptables binary; loopback down. (A taken listener port: `e2e.rs`.)

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tcpcrypt_sys::netns::NetNs;

/// How long a refused start may take.
const PROMPT: Duration = Duration::from_secs(5);

/// Runs `prefix... tcpcryptd --control <dir>/x.sock` in `ns` with `env`; expects a prompt
/// non-zero exit and returns stderr. The namespace's rules must be unchanged.
fn refused_start(ns: &NetNs, prefix: &[&str], env: &[(&str, &str)], dir: &Path) -> String {
    let before = ns.run(common::snapshot).unwrap();
    let control = dir.join("x.sock");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns.name()])
        .args(prefix)
        .arg(env!("CARGO_BIN_EXE_tcpcryptd"))
        .arg("--control")
        .arg(&control)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = common::hosts::Proc(cmd.spawn().expect("start tcpcryptd"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < PROMPT,
            "the daemon did not stop at once (still running after {PROMPT:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "exit status {status}: {stderr}");
    assert_eq!(
        ns.run(common::snapshot).unwrap(),
        before,
        "no rules left behind: {stderr}"
    );
    assert!(!control.exists(), "no control socket left behind");
    assert!(
        stderr.contains("tcpcryptd: error: ") && !stderr.contains("acktrace"),
        "one error line, no backtrace: {stderr}"
    );
    stderr
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tcpcryptd-prereqs-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn without_cap_net_admin_the_daemon_says_so_and_how_to_fix_it() {
    let ns = common::netns("tcd-p");
    let dir = temp_dir("caps");
    // Not root, no capabilities at all; then root with every capability but CAP_NET_ADMIN.
    for (what, prefix) in [
        (
            "nobody",
            &[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ][..],
        ),
        (
            "root without CAP_NET_ADMIN",
            &[
                "setpriv",
                "--inh-caps=-net_admin",
                "--bounding-set=-net_admin",
            ][..],
        ),
    ] {
        let msg = refused_start(&ns, prefix, &[], &dir);
        assert!(
            msg.contains("CAP_NET_ADMIN is missing") && msg.contains("run it as root"),
            "{what}: the message names the problem and the fix: {msg}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_iptables_the_daemon_says_so_and_how_to_fix_it() {
    let ns = common::netns("tcd-p");
    let dir = temp_dir("path");
    // A PATH with `ip` but no iptables/ip6tables.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let ip = common::sh(&["sh", "-c", "command -v ip"]);
    std::os::unix::fs::symlink(ip.trim(), bin.join("ip")).unwrap();
    let path = bin.to_str().unwrap().to_owned();
    let msg = refused_start(&ns, &[], &[("PATH", &path)], &dir);
    assert!(
        msg.contains("`iptables` not found") && msg.contains("apt-get install iptables"),
        "the message names the problem and the fix: {msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_loopback_down_the_daemon_says_so_and_how_to_fix_it() {
    let ns = common::netns("tcd-p");
    let dir = temp_dir("lo");
    common::sh(&["ip", "-n", ns.name(), "link", "set", "lo", "down"]);
    let msg = refused_start(&ns, &[], &[], &dir);
    assert!(
        msg.contains("bind listener") && msg.contains("ip link set lo up"),
        "the message names the problem and the fix: {msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
