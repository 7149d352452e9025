//! The README's main command, end to end, as root: `scripts/demo.sh` builds the daemon and the
//! CLI, runs curl against python3's http.server through two `tcpcryptd`s in network namespaces,
//! and must end with its verdict line, exit 0, and leave the host as it found it (no firewall
//! rule, route or namespace left behind).
//!
//! It runs beside the other root tests: its namespaces, veths and temporary directory carry the
//! script's PID, and NFQUEUE numbers, listener ports and routing tables are per namespace.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The script builds in release mode first, which can take minutes on a cold target directory.
const TIMEOUT: Duration = Duration::from_secs(20 * 60);

const VERDICT: &str = "ok: curl <-> http.server encrypted with tcpcrypt";

#[test]
fn demo_script_runs_end_to_end() {
    common::require_root();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts/demo.sh");
    assert!(script.is_file(), "{} is missing", script.display());
    let before = common::snapshot();

    let mut child = Command::new("bash")
        .arg(&script)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bash scripts/demo.sh");
    let pid = child.id();
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));

    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // SIGTERM lets the script's trap remove what it created; then make sure it is gone.
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let grace = Instant::now() + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (stdout.join().unwrap(), stderr.join().unwrap());
    let report = format!("--- stdout ---\n{out}\n--- stderr ---\n{err}");
    let Some(status) = status else {
        panic!("scripts/demo.sh did not finish within {TIMEOUT:?}\n{report}");
    };
    assert!(
        status.success(),
        "scripts/demo.sh failed: {status}\n{report}"
    );

    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.starts_with(VERDICT)
            && last.contains("session IDs equal")
            && last.ends_with("no plaintext on the wire"),
        "the last line is not the verdict: {last:?}\n{report}"
    );
    assert!(out.contains("equal: yes"), "{report}");
    assert!(
        out.contains("unknown-69"),
        "the SYN's ENO option is shown\n{report}"
    );
    assert!(out.contains("canary in the capture"), "{report}");
    assert!(
        out.contains("canary.txt recovered exactly: yes"),
        "the inspector decrypts the capture with the key log\n{report}"
    );

    // Nothing left behind: the script's namespaces, and any change to the host's rules.
    let netns = common::sh(&["ip", "netns", "list"]);
    let suffix = format!("-{pid}");
    assert!(
        !netns.lines().any(|l| l.starts_with("tcdemo-")
            && l.split_whitespace().next().unwrap_or("").ends_with(&suffix)),
        "the demo left a namespace behind:\n{netns}"
    );
    assert_eq!(
        common::snapshot(),
        before,
        "the demo changed the host namespace's firewall rules or routes"
    );
}
