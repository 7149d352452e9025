//! Three hosts for the hostile-network tests: A and B as in [`hosts`](super::hosts) (same
//! addresses, same daemons and services, through a [`Net`] built from their namespaces), but
//! joined through a middle namespace M where the `tcpcrypt-netsim` middlebox bridges the two
//! links and impairs what crosses (see `tcpcrypt_netsim::topology` and `::middlebox`).
//! Captures can be taken on A's and on B's side of the box. Everything is removed on drop: the
//! box first, then the daemons' directory and the namespaces (and with them the veths).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tcpcrypt_netsim::config::Config;
use tcpcrypt_netsim::middlebox::Middlebox;
use tcpcrypt_netsim::topology::Topology;
use tcpcrypt_sys::netns::NetNs;

use super::hosts::{Net, Proc, TIMEOUT};

/// A, M and B with the box running (no impairment until [`Middlebox::set_config`]).
pub struct Routed {
    /// The box (declared first: stopped first).
    pub middlebox: Middlebox,
    /// A and B with their daemons' directory; `dev_a` is A's link to M.
    pub net: Net,
    /// B's link to M.
    pub dev_b: String,
    /// The middle namespace.
    pub m: NetNs,
}

impl Routed {
    /// Builds the topology and starts the box.
    pub fn new() -> Self {
        super::require_root();
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let Topology {
            a,
            m,
            b,
            dev_a,
            dev_b,
            m_a,
            m_b,
        } = Topology::new("tcd-h").expect("build A-M-B (ip, ethtool: see scripts/prereqs.sh)");
        let middlebox = Middlebox::start(Some(&m), &m_a, &m_b, Config::default())
            .expect("start the middlebox in M");
        let dir = std::env::temp_dir().join(format!("tcpcryptd-routed-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            middlebox,
            net: Net { a, b, dev_a, dir },
            dev_b,
            m,
        }
    }
}

/// tcpdump on `dev` of `ns` writing whole packets to `file`, stopped when dropped.
pub fn capture_on(ns: &NetNs, dev: &str, file: &Path) -> Proc {
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "tcpdump",
            "--immediate-mode",
            "-U",
        ])
        .args(["-s", "0", "-i", dev, "-w"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tcpdump (apt-get install tcpdump)");
    let deadline = Instant::now() + TIMEOUT;
    while std::fs::metadata(file).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "tcpdump did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    Proc(child)
}

/// Whether `needle` occurs anywhere in `file` (`grep -F -a`, which is fast on captures of tens
/// of MB). Panics if grep fails for another reason than "not found".
pub fn file_contains(file: &Path, needle: &[u8]) -> bool {
    let text = std::str::from_utf8(needle).expect("an ASCII canary");
    let status = Command::new("grep")
        .args(["-F", "-a", "-q", "-e", text])
        .arg(file)
        .status()
        .expect("run grep");
    match status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!("grep failed on {}", file.display()),
    }
}
