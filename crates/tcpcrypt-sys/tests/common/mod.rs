//! Shared helpers of the integration tests: root check, namespaces, commands, snapshots,
//! packet capture. Every test that touches the network runs inside its own namespace.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tcpcrypt_sys::caps::Privileges;
use tcpcrypt_sys::netns::NetNs;

/// Fails (never skips) when the test cannot do its job without root.
pub fn require_root() {
    let p = Privileges::current().expect("read /proc/self/status");
    assert!(
        p.has_net_admin(),
        "this test needs root (CAP_NET_ADMIN) to create network namespaces and firewall rules; \
         run it as root: `sudo -E cargo test -p tcpcrypt-sys` (CI runs as root)"
    );
}

/// A fresh namespace for one test, deleted when dropped.
pub fn netns() -> NetNs {
    require_root();
    NetNs::create_unique("tcpcrypt-sys-test").expect("create a network namespace (ip netns add)")
}

/// Runs `f` in a fresh namespace with `lo` up.
pub fn in_netns(f: impl FnOnce() + Send) {
    netns()
        .run(|| {
            sh(&["ip", "link", "set", "lo", "up"]);
            f();
        })
        .unwrap();
}

/// Runs a command (in the calling thread's namespace), asserts success, returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e} (see scripts/prereqs.sh)"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The state the rules module must leave as it found: iptables-save and ip6tables-save
/// (without comments and counters), ip rules and all routing tables, v4 and v6.
pub fn snapshot() -> String {
    let mut s = String::new();
    for tool in ["iptables-save", "ip6tables-save"] {
        for line in sh(&[tool]).lines() {
            if line.starts_with('#') {
                continue;
            }
            // ":OUTPUT ACCEPT [12:345]" -> ":OUTPUT ACCEPT"
            let line = match line.rfind(" [") {
                Some(i) if line.starts_with(':') => &line[..i],
                _ => line,
            };
            s.push_str(line);
            s.push('\n');
        }
    }
    for args in [
        &["ip", "-4", "rule"][..],
        &["ip", "-6", "rule"],
        &["ip", "-4", "route", "show", "table", "all"],
        &["ip", "-6", "route", "show", "table", "all"],
    ] {
        s.push_str(&sh(args));
    }
    s
}

/// Packet counters of the rules of `chain` in `table` (iptables -L -v -x), in rule order.
pub fn counters(tool: &str, table: &str, chain: &str) -> Vec<u64> {
    sh(&[tool, "-w", "-t", table, "-L", chain, "-n", "-v", "-x"])
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

/// tcpdump writing a pcap, started in the calling thread's namespace.
pub struct Capture {
    child: Child,
    /// Keeps tcpdump's stderr open (it reports its counts there when stopped).
    _stderr: BufReader<std::process::ChildStderr>,
    pub path: PathBuf,
}

impl Capture {
    /// Starts `tcpdump -i lo --immediate-mode -U -w <file> <filter>` and waits until it is
    /// listening. Without --immediate-mode, packets still in libpcap's TPACKET_V3 ring block
    /// are lost when tcpdump is stopped (seen on this kernel: "0 packets captured").
    pub fn start(name: &str, filter: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{name}-{}-{n}.pcap", std::process::id()));
        let mut child = Command::new("tcpdump")
            .args([
                "-i",
                "lo",
                "-n",
                "--immediate-mode",
                "-U",
                "-Z",
                "root",
                "-w",
            ])
            .arg(&path)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump is needed (scripts/prereqs.sh installs it)");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(line.contains("listening on"), "tcpdump: {line}");
        Self {
            child,
            _stderr: stderr,
            path,
        }
    }

    /// Stops tcpdump (SIGINT, so it flushes) and returns the raw IP packets captured, once
    /// the file has stopped growing for 150 ms (bounded): packets still in libpcap's ring when
    /// SIGINT arrives are dropped (pcap_breakloop).
    pub fn stop(self) -> Vec<Vec<u8>> {
        self.stop_once(|_| false)
    }

    /// [`Capture::stop`], but as soon as the packets written so far satisfy `enough` (or the
    /// file stopped growing, or 3 s passed): on a busy machine tcpdump can lag for longer than
    /// any quiet period (a clean-clone CI run lost a SYN sent just before the stop).
    pub fn stop_once(mut self, enough: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let (mut last, mut since) = (Vec::new(), Instant::now());
        while Instant::now() < deadline {
            let now = read_pcap(&self.path);
            if enough(&now) {
                break;
            }
            if now.len() != last.len() {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= Duration::from_millis(150) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        sh(&["kill", "-INT", &self.child.id().to_string()]);
        self.child.wait().unwrap();
        read_pcap(&self.path)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The IP packets of a pcap file (link type Ethernet, as tcpdump writes for `lo`, or raw IP).
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap();
    if data.len() < 24 {
        return Vec::new(); // tcpdump has not written its header yet
    }
    let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    assert!(
        matches!(u32le(&data[0..4]), 0xa1b2c3d4 | 0xa1b23c4d),
        "pcap magic"
    );
    let linktype = u32le(&data[20..24]);
    let mut packets = Vec::new();
    let mut rest = &data[24..];
    while rest.len() >= 16 {
        let len = u32le(&rest[8..12]) as usize;
        if rest.len() < 16 + len {
            break; // a record tcpdump is still writing
        }
        let frame = &rest[16..16 + len];
        let ip = match linktype {
            1 => &frame[14..], // Ethernet (lo has a zeroed Ethernet header)
            101 => frame,      // raw IP
            other => panic!("unexpected pcap link type {other}"),
        };
        packets.push(ip.to_vec());
        rest = &rest[16 + len..];
    }
    packets
}
