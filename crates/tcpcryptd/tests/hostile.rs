//! End to end (namespaces A, M, B, as root): the impairment matrix of issue 5 through a hostile
//! network. Both hosts run `tcpcryptd`; the `tcpcrypt-netsim` middlebox in M bridges their
//! links and impairs what crosses (RFC 8547 §4.6, §8-10; RFC 8548 §3.6-3.8, §8-9). Each trial
//! connects an application on A to an echo service on B (IPv4 and IPv6 alternately), sends a
//! pseudo-random stream with a plaintext canary every 4 KiB, and reads the echo back:
//!
//! - loss, reordering, duplication, resegmentation, delay, all at once, a short path cut: the
//!   echo completes, byte for byte (SHA-256 of both directions), both applications see a clean
//!   end of file, both daemons report the connection encrypted with the same session ID;
//! - ENO stripped from SYNs, SYN-ACKs or both, or the SYN's options echoed in the SYN-ACK: a
//!   working plain connection, neither daemon reports it encrypted;
//! - ENO stripped from every non-SYN segment (RFC 8547 §9's "type 2" failure: A believes ENO
//!   succeeded, B does not): a working plain connection all the same (B's daemon refuses
//!   Init1, A's retries without ENO and caches the path), see
//!   [`eno_stripped_after_the_syn_retries_plain_then_goes_direct`]; under a mandatory policy
//!   it still fails closed, see [`eno_stripped_after_the_syn_to_a_mandatory_port_fails_closed`];
//! - a flipped payload bit, a forged FIN or a forged RST, toward either host: both applications
//!   see the connection end with an error (never a clean end of file), and every byte either
//!   of them received is an unaltered prefix of what the other sent.
//!
//! Every trial captures both sides of the box with tcpdump (whole packets) and the box counts
//! the canary in every payload it sees: for a connection that negotiated tcpcrypt the canary
//! must appear nowhere; for a plain-by-design one it must appear (the capture works). Each
//! scenario is recorded as a row of the robustness report (`tcpcrypt_netsim::report`, written
//! when `TCPCRYPT_ROBUSTNESS_OUT` is set). `TCPCRYPT_MATRIX=long` runs the long mode (24 MiB
//! each way per transfer, more trials) that `scripts/robustness.sh --long` uses.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::hosts::{addr, sessions, Proc, PORT, TIMEOUT};
use common::routed::{capture_on, file_contains, Routed};
use sha2::{Digest, Sha256};
use tcpcrypt_control::{SessionInfo, SessionState};
use tcpcrypt_netsim::config::{Config, Impairment, PathCut};
use tcpcrypt_netsim::report::{PlaintextCheck, Row};

/// Quick (CI) or long (soak) sizes.
struct Mode {
    name: &'static str,
    /// Bytes each way of a bulk transfer.
    bulk: usize,
    /// Bytes each way of a negotiation or tampering trial.
    short: usize,
    trials: u32,
}

/// The mode from `TCPCRYPT_MATRIX` (`long`, else quick); `TCPCRYPT_MATRIX_TRIALS=N` overrides
/// the number of trials per scenario (for soak runs and for chasing a rare failure).
fn mode() -> Mode {
    let mut m = base_mode();
    if let Some(n) = std::env::var("TCPCRYPT_MATRIX_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &u32| n > 0)
    {
        m.trials = n;
    }
    m
}

fn base_mode() -> Mode {
    match std::env::var("TCPCRYPT_MATRIX").as_deref() {
        Ok("long") => Mode {
            name: "long",
            bulk: 24 << 20,
            short: 4 << 20,
            trials: 4,
        },
        _ => Mode {
            name: "quick",
            bulk: 2 << 20,
            short: 512 << 10,
            trials: 2,
        },
    }
}

/// How a side's stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// A clean end of file.
    Eof,
    /// An error (reset, ...), by kind.
    Error(ErrorKind),
    /// No end within the read timeout: a hang.
    Hang,
}

impl End {
    fn of(e: &std::io::Error) -> Self {
        match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Self::Hang,
            k => Self::Error(k),
        }
    }
}

/// What the echo service saw of one connection.
#[derive(Debug, Clone)]
struct ServiceConn {
    /// The first [`KEEP`] bytes received.
    head: Vec<u8>,
    received: u64,
    end: End,
}

/// Bytes of each service connection kept for the prefix check.
const KEEP: usize = 8 << 20;
/// Bound of every read (a cut path recovers well within it).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The hosts, the daemons, and the echo service's record of its connections.
struct Bench {
    r: Routed,
    ca: PathBuf,
    cb: PathBuf,
    served: Arc<Mutex<Vec<ServiceConn>>>,
    _daemons: (Proc, Proc),
}

impl Bench {
    fn new() -> Self {
        Self::with_a_args(&[])
    }

    /// A bench whose daemon on A gets extra flags.
    fn with_a_args(a_args: &[&str]) -> Self {
        let r = Routed::new();
        let served: Arc<Mutex<Vec<ServiceConn>>> = Arc::default();
        let record = served.clone();
        r.net.service(PORT, move |mut conn| {
            conn.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            let mut buf = vec![0u8; 65536];
            let mut rec = ServiceConn {
                head: Vec::new(),
                received: 0,
                end: End::Hang,
            };
            rec.end = loop {
                match conn.read(&mut buf) {
                    Ok(0) => break End::Eof,
                    Ok(n) => {
                        let keep = n.min(KEEP.saturating_sub(rec.head.len()));
                        rec.head.extend_from_slice(&buf[..keep]);
                        rec.received += n as u64;
                        if let Err(e) = conn.write_all(&buf[..n]) {
                            break End::of(&e);
                        }
                    }
                    // EINTR (a signal reached this thread): retry, as read_to_end does.
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => break End::of(&e),
                }
            };
            if rec.end == End::Eof {
                let _ = conn.shutdown(Shutdown::Write);
            }
            record.lock().unwrap().push(rec);
        });
        let (da, ca) = r.net.daemon_with(&r.net.a, "a", a_args);
        let (db, cb) = r.net.daemon(&r.net.b, "b");
        Self {
            r,
            ca,
            cb,
            served,
            _daemons: (da, db),
        }
    }

    /// Copies both daemons' logs out of the harness directory (which is removed at the end)
    /// for a failed trial; returns where they went.
    fn keep_logs(&self, tag: &str) -> String {
        let mut kept = Vec::new();
        for name in ["a", "b"] {
            let to = std::env::temp_dir().join(format!(
                "tcpcryptd-hostile-{}-{tag}-{name}.log",
                std::process::id()
            ));
            if std::fs::write(&to, self.r.net.log(name)).is_ok() {
                kept.push(to.display().to_string());
            }
        }
        kept.join(", ")
    }

    /// Waits (bounded) until both daemons list no connection, so the next trial's rows are
    /// its own.
    fn drain(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !(sessions(&self.ca).is_empty() && sessions(&self.cb).is_empty()) {
            if Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The stream of one trial: xorshift bytes with `canary` every 4 KiB.
fn stream(len: usize, seed: u64, canary: &[u8]) -> Vec<u8> {
    let mut x = seed | 1;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    for at in (0..len.saturating_sub(canary.len())).step_by(4096) {
        data[at..at + canary.len()].copy_from_slice(canary);
    }
    data
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything one trial observed.
#[derive(Debug)]
struct Trial {
    /// A's application: how its read side ended, bytes read, whether they were all an
    /// unaltered prefix of what it sent, SHA-256 of what it read.
    a_end: End,
    a_received: usize,
    a_prefix_ok: bool,
    a_sha: String,
    sent_sha: String,
    sent: usize,
    /// B's service: its first connection of the trial.
    b: Option<ServiceConn>,
    b_prefix_ok: bool,
    /// Every service connection of the trial (more than one after a retry), and whether each
    /// one's bytes are an unaltered prefix of what A sent.
    b_all: Vec<ServiceConn>,
    b_all_prefix_ok: bool,
    /// The daemons' rows for this connection, read while it was open.
    a_row: Option<SessionInfo>,
    b_rows: Vec<SessionInfo>,
    /// The canary was found in a capture (A's side, B's side) or by the box.
    canary_in_capture: bool,
    canary_by_box: u64,
    stats: tcpcrypt_netsim::engine::Stats,
}

impl Trial {
    fn bytes(&self) -> u64 {
        (self.sent + self.a_received) as u64
    }

    /// Both daemons' view: (A encrypted, B encrypted with A's session ID, B has any row).
    fn encrypted(&self) -> (bool, bool) {
        let a = self.a_row.as_ref().is_some_and(|r| r.session_id.is_some());
        let b = match self.a_row.as_ref().and_then(|r| r.session_id) {
            Some(id) => self
                .b_rows
                .iter()
                .any(|r| r.session_id.as_ref() == Some(&id)),
            None => self.b_rows.iter().any(|r| r.session_id.is_some()),
        };
        (a, b)
    }

    fn leaked(&self) -> bool {
        self.canary_in_capture || self.canary_by_box > 0
    }
}

/// Runs one connection through the box configured with `config`.
fn trial(bench: &Bench, config: Config, v6: bool, len: usize, seed: u64) -> Trial {
    let canary = format!("CANARY-h3-{seed:016x}-PLAINTEXT");
    let data = Arc::new(stream(len, seed, canary.as_bytes()));
    bench.r.middlebox.set_config(Config {
        canary: Some(canary.clone().into_bytes()),
        seed,
        ..config
    });
    let before = bench.served.lock().unwrap().len();
    let dir = &bench.r.net.dir;
    let (pa, pb) = (
        dir.join(format!("a-{seed}.pcap")),
        dir.join(format!("b-{seed}.pcap")),
    );
    let caps = (
        capture_on(&bench.r.net.a, &bench.r.net.dev_a, &pa),
        capture_on(&bench.r.net.b, &bench.r.dev_b, &pb),
    );
    let mut t = Trial {
        a_end: End::Hang,
        a_received: 0,
        a_prefix_ok: true,
        a_sha: String::new(),
        sent_sha: hex(Sha256::digest(&data[..])),
        sent: 0,
        b: None,
        b_prefix_ok: true,
        b_all: Vec::new(),
        b_all_prefix_ok: true,
        a_row: None,
        b_rows: Vec::new(),
        canary_in_capture: false,
        canary_by_box: 0,
        stats: Default::default(),
    };
    let dst: SocketAddr = addr('b', v6, PORT);
    match bench.r.net.connect(dst) {
        Err(e) => t.a_end = End::of(&e),
        Ok(mut s) => {
            s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
            let local = s.local_addr().unwrap();
            look_up_rows(bench, local, v6, &mut t);
            let mut w = s.try_clone().unwrap();
            let wdata = data.clone();
            let writer = std::thread::spawn(move || {
                let mut sent = 0;
                for chunk in wdata.chunks(64 * 1024) {
                    if let Err(e) = w.write_all(chunk) {
                        return (sent, Some(End::of(&e)));
                    }
                    sent += chunk.len();
                }
                let _ = w.shutdown(Shutdown::Write);
                (sent, None)
            });
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            t.a_end = loop {
                match s.read(&mut buf) {
                    Ok(0) => break End::Eof,
                    Ok(n) => {
                        let at = t.a_received;
                        if at + n > data.len() || buf[..n] != data[at..at + n] {
                            t.a_prefix_ok = false;
                        }
                        hasher.update(&buf[..n]);
                        t.a_received += n;
                    }
                    // EINTR (a signal reached this thread): retry, as read_to_end does.
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => break End::of(&e),
                }
            };
            t.a_sha = hex(hasher.finalize());
            if t.a_end == End::Hang {
                // Unblock the writer: the trial failed anyway.
                let _ = s.shutdown(Shutdown::Both);
            }
            let (sent, write_end) = writer.join().unwrap();
            t.sent = sent;
            // The kernel reports a received reset once, to whichever call comes first: when
            // the writer got it, the read after it sees an end of file.
            if let (End::Eof, Some(e @ End::Error(_))) = (&t.a_end, write_end) {
                t.a_end = e;
            }
        }
    }
    // The service's record of this connection.
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.b.is_none() && Instant::now() < deadline {
        t.b = bench.served.lock().unwrap().get(before).cloned();
        if t.b.is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if let Some(b) = &t.b {
        let n = b.head.len();
        t.b_prefix_ok = n <= data.len() && b.head[..] == data[..n];
    }
    std::thread::sleep(Duration::from_millis(300));
    t.b_all = bench.served.lock().unwrap()[before..].to_vec();
    t.b_all_prefix_ok = t
        .b_all
        .iter()
        .all(|c| c.head.len() <= data.len() && c.head[..] == data[..c.head.len()]);
    drop(caps);
    t.canary_in_capture =
        file_contains(&pa, canary.as_bytes()) || file_contains(&pb, canary.as_bytes());
    let _ = std::fs::remove_file(&pa);
    let _ = std::fs::remove_file(&pb);
    t.stats = bench.r.middlebox.stats();
    t.canary_by_box = t.stats.canary_hits.iter().sum();
    bench.r.middlebox.set_config(Config::default());
    bench.drain();
    t
}

/// Reads A's row for the client socket `local` once its handshake is over (or the row is
/// gone), then B's rows for connections from A: both before any application data is sent.
fn look_up_rows(bench: &Bench, local: SocketAddr, v6: bool, t: &mut Trial) {
    let a_ip = addr('a', v6, 0).ip();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match sessions(&bench.ca).into_iter().find(|r| r.local == local) {
            Some(row) if row.state != SessionState::Handshake => {
                t.a_row = Some(row);
                break;
            }
            Some(row) => t.a_row = Some(row),
            None if t.a_row.is_some() => break,
            None => {}
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // B's row: when A is encrypted, wait (bounded) for B's row with the same session ID (B's
    // daemon records it once its pump has handled the event, which may lag A's).
    let want = t.a_row.as_ref().and_then(|r| r.session_id);
    loop {
        t.b_rows = sessions(&bench.cb)
            .into_iter()
            .filter(|r| r.remote.ip() == a_ip)
            .collect();
        let found = want.is_none_or(|id| t.b_rows.iter().any(|r| r.session_id == Some(id)));
        if found || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scenario's own check of a trial.
type Check = fn(&Trial) -> Result<(), String>;

/// One scenario: its report row's texts and its configuration.
struct Scenario {
    name: &'static str,
    expected: &'static str,
    notes: &'static str,
    config: Config,
    /// A check of this scenario's own, after the matrix's judge.
    extra: Option<Check>,
}

fn both(spec: &str) -> Config {
    Config::both(Impairment::parse(spec).unwrap())
}

fn dirs(a_to_b: &str, b_to_a: &str) -> Config {
    Config {
        a_to_b: Impairment::parse(a_to_b).unwrap(),
        b_to_a: Impairment::parse(b_to_a).unwrap(),
        ..Config::default()
    }
}

/// The verdict on one trial: `Ok` or what was wrong.
type Judge = fn(&Trial, &Scenario) -> Result<(), String>;

/// Runs every scenario's trials, records the rows, and returns the failures.
fn run_matrix(
    section: &str,
    scenarios: Vec<Scenario>,
    len: usize,
    judge: Judge,
    plain_by_design: bool,
) -> Vec<String> {
    let m = mode();
    let bench = Bench::new();
    let mut failures = Vec::new();
    for (si, sc) in scenarios.iter().enumerate() {
        let mut ok = 0;
        let mut bytes = 0;
        let mut leak = false;
        for i in 0..m.trials {
            let seed = 0x5eed_0000 + (si as u64) * 100 + u64::from(i);
            let v6 = i % 2 == 1;
            let t = trial(&bench, sc.config.clone(), v6, len, seed);
            bytes += t.bytes();
            leak |= !plain_by_design && t.leaked();
            let verdict = judge(&t, sc)
                .and_then(|()| sc.extra.map_or(Ok(()), |f| f(&t)))
                .and_then(|()| {
                    if !plain_by_design && t.leaked() {
                        Err(format!(
                            "plaintext canary on the wire (capture {}, box {})",
                            t.canary_in_capture, t.canary_by_box
                        ))
                    } else {
                        Ok(())
                    }
                });
            eprintln!(
                "[{}] {} trial {i} (v6={v6}): {} ({} bytes; A {:?}, B {:?}; box {:?})",
                m.name,
                sc.name,
                match &verdict {
                    Ok(()) => "as expected".to_owned(),
                    Err(e) => format!("NOT AS EXPECTED: {e}"),
                },
                t.bytes(),
                t.a_end,
                t.b.as_ref().map(|b| &b.end),
                t.stats
            );
            match verdict {
                Ok(()) => ok += 1,
                Err(e) => {
                    let logs = bench.keep_logs(&format!("{si}-{i}"));
                    failures.push(format!(
                        "{} trial {i} (v6={v6}): {e}: {t:?} (daemon logs: {logs})",
                        sc.name
                    ));
                }
            }
        }
        let check = if plain_by_design {
            PlaintextCheck::NotApplicable
        } else if leak {
            PlaintextCheck::Leak
        } else {
            PlaintextCheck::Clean
        };
        let mut notes = sc.notes.to_owned();
        if notes.is_empty() {
            notes = format!("{} mode, IPv4 and IPv6", m.name);
        } else {
            notes = format!("{notes} ({} mode, IPv4 and IPv6)", m.name);
        }
        Row::new(sc.name, sc.expected, m.trials, ok, bytes, check)
            .section(section)
            .notes(notes)
            .record()
            .expect("record the report row");
    }
    failures
}

/// A complete, intact, encrypted echo with agreeing daemons.
fn completes_encrypted(t: &Trial, _: &Scenario) -> Result<(), String> {
    if t.a_end != End::Eof {
        return Err(format!(
            "A's application saw {:?}, not a clean end",
            t.a_end
        ));
    }
    if t.sent != t.a_received || t.a_sha != t.sent_sha || !t.a_prefix_ok {
        return Err(format!(
            "echo differs: sent {} bytes sha {}, got {} bytes sha {}",
            t.sent, t.sent_sha, t.a_received, t.a_sha
        ));
    }
    match &t.b {
        Some(b) if b.end == End::Eof && b.received == t.sent as u64 && t.b_prefix_ok => {}
        other => return Err(format!("B's service: {other:?}")),
    }
    match t.encrypted() {
        (true, true) => Ok(()),
        other => Err(format!("not encrypted on both ends (A, B) = {other:?}")),
    }
}

/// A complete, intact, plain echo, neither daemon claiming encryption, the canary visible.
fn completes_plain(t: &Trial, _: &Scenario) -> Result<(), String> {
    if t.a_end != End::Eof || t.sent != t.a_received || t.a_sha != t.sent_sha {
        return Err(format!(
            "plain echo incomplete: A {:?}, sent {}, got {}",
            t.a_end, t.sent, t.a_received
        ));
    }
    match &t.b {
        Some(b) if b.end == End::Eof && t.b_prefix_ok => {}
        other => return Err(format!("B's service: {other:?}")),
    }
    if let Some(row) = &t.a_row {
        if row.state != SessionState::Plain || row.session_id.is_some() {
            return Err(format!("A's daemon does not report plain: {row:?}"));
        }
    }
    if t.encrypted() != (false, false) {
        return Err(format!("a daemon claims encryption: {t:?}"));
    }
    if !t.canary_in_capture {
        return Err("plain by design, yet the capture shows no canary (capture broken?)".into());
    }
    Ok(())
}

/// B's daemon never saw ENO in the SYN, so it did not divert the connection: no row at all.
fn b_not_in_path(t: &Trial) -> Result<(), String> {
    if t.b_rows.is_empty() {
        Ok(())
    } else {
        Err(format!("B's daemon is in the path: {:?}", t.b_rows))
    }
}

/// Both applications see an error, never a clean end of a cut stream; no altered byte; it
/// was encrypted. B's service may see a clean end of file only if it had received A's whole
/// stream intact (A's authenticated end arrived before the damage hit the other direction):
/// that end is true, not a truncation.
fn ends_in_errors(t: &Trial, _: &Scenario) -> Result<(), String> {
    if !matches!(t.a_end, End::Error(_)) {
        return Err(format!("A's application saw {:?}, not an error", t.a_end));
    }
    match &t.b {
        Some(b) if matches!(b.end, End::Error(_)) => {}
        Some(b) if b.end == End::Eof && b.received == t.sent as u64 && t.b_prefix_ok => {}
        other => return Err(format!("B's service did not see an error: {other:?}")),
    }
    if !t.a_prefix_ok || !t.b_prefix_ok {
        return Err(format!(
            "an application received an altered byte (A ok {}, B ok {})",
            t.a_prefix_ok, t.b_prefix_ok
        ));
    }
    if t.a_row.as_ref().is_none_or(|r| r.session_id.is_none()) {
        return Err(format!("the connection was not encrypted: {:?}", t.a_row));
    }
    Ok(())
}

fn assert_none(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} trial(s) not as expected:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn impairments_keep_transfers_complete_and_encrypted() {
    let m = mode();
    let expected =
        "transfer completes, SHA-256 matches both ways, clean EOF at both applications, \
                    both daemons report it encrypted with the same session ID";
    let cut_after = (m.bulk / 2) as u64;
    let scenarios = vec![
        Scenario {
            name: "clean path (baseline)",
            expected,
            notes: "",
            config: Config::default(),
            extra: None,
        },
        Scenario {
            name: "loss 1% both ways",
            expected,
            notes: "",
            config: both("loss=0.01"),
            extra: None,
        },
        Scenario {
            name: "loss 5% both ways",
            expected,
            notes: "",
            config: both("loss=0.05"),
            extra: None,
        },
        Scenario {
            name: "reordering 5% both ways (held 3 ms)",
            expected,
            notes: "",
            config: both("reorder=0.05,reorder-gap=3ms"),
            extra: None,
        },
        Scenario {
            name: "duplication 5% both ways",
            expected,
            notes: "",
            config: both("dup=0.05"),
            extra: None,
        },
        Scenario {
            name: "resegmentation both ways (split and coalesced at new boundaries)",
            expected,
            notes: "tcpcrypt frames span segments (RFC 8548 §3.3, §9)",
            config: both("resegment"),
            extra: None,
        },
        Scenario {
            name: "delay 10 ms + jitter 3 ms both ways",
            expected,
            notes: "",
            config: both("delay=10ms,jitter=3ms"),
            extra: None,
        },
        Scenario {
            name: "all at once: loss 1%, reorder 2%, dup 2%, resegment, delay 2 ms",
            expected,
            notes: "",
            config: both("loss=0.01,reorder=0.02,dup=0.02,resegment,delay=2ms"),
            extra: None,
        },
        Scenario {
            name: "path cut for 3 s mid-transfer (shorter than TCP's timeout)",
            expected: "the transfer resumes and completes, SHA-256 matches, encrypted on both ends",
            notes: "the cut starts once a quarter of the trial's bytes (both directions) crossed",
            config: Config {
                cut: Some(PathCut {
                    after_bytes: cut_after,
                    duration: Duration::from_secs(3),
                }),
                ..Config::default()
            },
            extra: None,
        },
    ];
    let failures = run_matrix("impairment", scenarios, m.bulk, completes_encrypted, false);
    assert_none(&failures);
}

/// Stripping ENO, or echoing the SYN's options, never leaves one end encrypting while the
/// other is not (ENO stripped only after the SYN: the two tests after this one).
#[test]
fn eno_stripping_and_echo_leave_both_ends_agreeing() {
    let m = mode();
    let plain = "a working plain TCP connection, echo intact; neither daemon reports it encrypted";
    let scenarios = vec![
        Scenario {
            name: "ENO stripped from SYNs (A→B)",
            expected: plain,
            notes:
                "B's daemon never sees ENO, B answers without it (RFC 8547 §4.6, §6 failure case)",
            config: dirs("strip-eno=syn", ""),
            extra: Some(b_not_in_path),
        },
        Scenario {
            name: "ENO stripped from SYN-ACKs (B→A)",
            expected: plain,
            notes: "A sends no ENO in its ACK, so B falls back too (RFC 8547 §6 reverse-path case)",
            config: dirs("", "strip-eno=syn-ack"),
            extra: None,
        },
        Scenario {
            name: "ENO stripped from SYNs and SYN-ACKs",
            expected: plain,
            notes: "",
            config: dirs("strip-eno=syn", "strip-eno=syn-ack"),
            extra: None,
        },
        Scenario {
            name: "SYN options echoed in the SYN-ACK (load balancer, RFC 8547 §9)",
            expected: plain,
            notes: "the echoed option carries A's own b=0, a role conflict: both fall back",
            config: dirs("", "echo-syn-options"),
            extra: None,
        },
    ];
    let failures = run_matrix("negotiation", scenarios, m.short, completes_plain, true);
    assert_none(&failures);
}

/// The report row of RFC 8547 §9's "type 2" failure.
const TYPE2: &str = "ENO stripped from every non-SYN segment (both ways; RFC 8547 §9 type 2)";
/// Init1's first bytes (RFC 8548 §4.3), which must never reach B's service.
const INIT1_MAGIC: [u8; 4] = tcpcrypt_proto::consts::INIT1_MAGIC.to_be_bytes();
/// What A's daemon logs when it retries, and when it skips ENO for a cached path.
const RETRIED: &str = "retried without ENO";
const CACHE_HIT: &str = "is a cached type-2 path";

/// Occurrences of `what` in daemon `name`'s log.
fn log_count(bench: &Bench, name: &str, what: &str) -> usize {
    bench.r.net.log(name).matches(what).count()
}

/// ENO stripped from every non-SYN segment is RFC 8547 §9's "type 2" failure: A saw ENO in
/// the SYN-ACK and enables encryption, B never sees ENO in an ACK and falls back (RFC 8547
/// §4.6). The RFC calls it a failure and leaves the remedy to the implementation; the project
/// makes it a working plain connection on which both ends agree: B's daemon resets the
/// connection when its first bytes are Init1 (nothing reaches the service), A's daemon, whose
/// session failed before any application byte, retries without ENO (plain on both ends) and
/// caches the destination address, so the next connection to it goes direct with no failed
/// attempt. Each family: a first connection (retried), then a second one (cache hit).
#[test]
fn eno_stripped_after_the_syn_retries_plain_then_goes_direct() {
    let m = mode();
    let bench = Bench::new();
    let config = both("strip-eno=non-syn");
    let mut failures = Vec::new();
    let (mut ok, mut bytes, mut trials) = (0, 0, 0);
    for v6 in [false, true] {
        for (i, first) in [true, false].into_iter().enumerate() {
            let seed = 0x5eed_7200 + u64::from(v6) * 10 + i as u64;
            let (retried, hits) = (
                log_count(&bench, "a", RETRIED),
                log_count(&bench, "a", CACHE_HIT),
            );
            let t = trial(&bench, config.clone(), v6, m.short, seed);
            let logged = (
                log_count(&bench, "a", RETRIED) - retried,
                log_count(&bench, "a", CACHE_HIT) - hits,
            );
            let verdict = if first {
                retried_plain(&t, logged)
            } else {
                went_direct(&t, logged)
            };
            trials += 1;
            bytes += t.bytes();
            eprintln!(
                "[{}] {TYPE2} (v6={v6}, {}): {verdict:?} ({} bytes; A {:?}, B {:?}; box {:?})",
                m.name,
                if first { "first" } else { "cached" },
                t.bytes(),
                t.a_end,
                t.b_all.iter().map(|b| &b.end).collect::<Vec<_>>(),
                t.stats
            );
            match verdict {
                Ok(()) => ok += 1,
                Err(e) => {
                    let logs = bench.keep_logs(&format!("type2-{v6}-{i}"));
                    failures.push(format!(
                        "v6={v6} connection {i}: {e}: {t:?} (daemon logs: {logs})"
                    ));
                }
            }
        }
    }
    Row::new(
        TYPE2,
        "a working plain connection, echo intact both ways; both ends agree it is not \
         encrypted (A's daemon: plain, \"retried without ENO\"; B's: no encrypted row); the \
         next connection to the same address goes plain directly (cached type-2 path)",
        trials,
        ok,
        bytes,
        PlaintextCheck::NotApplicable,
    )
    .section("negotiation")
    .notes(format!(
        "B's daemon resets a fallen-back connection whose first bytes are Init1 (never relayed \
         to the service); A's daemon, its session failed before any application byte, retries \
         once without ENO and caches the address for type2_cache_secs ({} mode, IPv4 and IPv6, \
         a first and a cached connection each)",
        m.name
    ))
    .record()
    .expect("record the report row");
    assert_none(&failures);
}

/// The echo is complete and intact, plain by design (the canary is on the wire), no daemon
/// claims encryption, and B's service never received a byte of Init1.
fn plain_echo(t: &Trial) -> Result<&ServiceConn, String> {
    if t.a_end != End::Eof || t.sent == 0 || t.sent != t.a_received || t.a_sha != t.sent_sha {
        return Err(format!(
            "plain echo incomplete: A {:?}, sent {}, got {}",
            t.a_end, t.sent, t.a_received
        ));
    }
    if t.b_all.iter().any(|c| c.head.starts_with(&INIT1_MAGIC)) || !t.b_all_prefix_ok {
        return Err("B's service received bytes A's application did not send (Init1?)".into());
    }
    let mut carried = t.b_all.iter().filter(|c| c.received > 0);
    let served = match (carried.next(), carried.next()) {
        (Some(c), None) if c.end == End::Eof && c.received == t.sent as u64 => c,
        other => return Err(format!("B's service: {other:?}")),
    };
    if t.encrypted() != (false, false) {
        return Err(format!("a daemon claims encryption: {t:?}"));
    }
    if !t.canary_in_capture {
        return Err("plain by design, yet the capture shows no canary (capture broken?)".into());
    }
    Ok(served)
}

/// A first connection over a type-2 path: retried once without ENO, plain on both ends.
fn retried_plain(t: &Trial, (retried, hits): (usize, usize)) -> Result<(), String> {
    plain_echo(t)?;
    // The failed attempt: B's daemon had pre-connected to the service, then reset it with
    // nothing relayed.
    let attempts: Vec<_> = t.b_all.iter().filter(|c| c.received == 0).collect();
    if attempts.len() > 1 || attempts.iter().any(|c| !matches!(c.end, End::Error(_))) {
        return Err(format!("B's service: failed attempts {attempts:?}"));
    }
    match &t.a_row {
        Some(r)
            if r.state == SessionState::Plain
                && r.fallback_reason.as_deref().is_some_and(|w| {
                    w.contains("ENO stripped after the SYN (type-2") && w.contains(RETRIED)
                }) => {}
        other => return Err(format!("A's row is not plain, retried: {other:?}")),
    }
    if (retried, hits) != (1, 0) {
        return Err(format!(
            "A's log: {retried} retries, {hits} cache hits (want 1, 0)"
        ));
    }
    Ok(())
}

/// The next connection to the same address: plain directly, no failed attempt first.
fn went_direct(t: &Trial, (retried, hits): (usize, usize)) -> Result<(), String> {
    plain_echo(t)?;
    if t.b_all.len() != 1 {
        return Err(format!(
            "B's service saw {} connections, not one",
            t.b_all.len()
        ));
    }
    if t.a_row.is_some() || !t.b_rows.is_empty() {
        return Err(format!(
            "a daemon is in the path: A {:?}, B {:?}",
            t.a_row, t.b_rows
        ));
    }
    if (retried, hits) != (0, 1) {
        return Err(format!(
            "A's log: {retried} retries, {hits} cache hits (want 0, 1)"
        ));
    }
    Ok(())
}

/// Type 2 under a mandatory policy on A (the service's port): no retry, no cache; every
/// connection fails closed (A's application sees an error), B's service receives nothing,
/// no application plaintext on the wire.
#[test]
fn eno_stripped_after_the_syn_to_a_mandatory_port_fails_closed() {
    let m = mode();
    let port = PORT.to_string();
    let bench = Bench::with_a_args(&["--mandatory-ports", &port]);
    let config = both("strip-eno=non-syn");
    let mut failures = Vec::new();
    let (mut ok, mut bytes, mut trials) = (0, 0, 0);
    let mut leak = false;
    for (i, v6) in [false, false, true].into_iter().enumerate() {
        let seed = 0x5eed_7300 + i as u64;
        let t = trial(&bench, config.clone(), v6, m.short, seed);
        let retried = log_count(&bench, "a", RETRIED) + log_count(&bench, "a", CACHE_HIT);
        leak |= t.leaked();
        let verdict = fails_closed(&t, retried);
        trials += 1;
        bytes += t.bytes();
        eprintln!(
            "[{}] {TYPE2}, mandatory (v6={v6}) {i}: {verdict:?} (A {:?}, B {:?})",
            m.name,
            t.a_end,
            t.b_all.iter().map(|b| &b.end).collect::<Vec<_>>(),
        );
        match verdict {
            Ok(()) => ok += 1,
            Err(e) => {
                let logs = bench.keep_logs(&format!("type2-mandatory-{i}"));
                failures.push(format!("{i} (v6={v6}): {e}: {t:?} (daemon logs: {logs})"));
            }
        }
    }
    Row::new(
        "ENO stripped from every non-SYN segment, mandatory port on A (RFC 8547 §9 type 2)",
        "fails closed: A's application sees an error, B's service receives nothing, no retry \
         without ENO, no application plaintext on the wire",
        trials,
        ok,
        bytes,
        if leak {
            PlaintextCheck::Leak
        } else {
            PlaintextCheck::Clean
        },
    )
    .section("negotiation")
    .notes(format!(
        "--mandatory-ports on A's daemon; two connections to the same address, so a cache \
         would show ({} mode, IPv4 and IPv6)",
        m.name
    ))
    .record()
    .expect("record the report row");
    assert_none(&failures);
}

/// Mandatory type 2: an error at A, nothing at B's service, nothing in the clear, no retry.
fn fails_closed(t: &Trial, retried: usize) -> Result<(), String> {
    if !matches!(t.a_end, End::Error(_)) || t.a_received > 0 {
        return Err(format!(
            "A's application saw {:?} after {} bytes, not an error",
            t.a_end, t.a_received
        ));
    }
    if let Some(c) = t.b_all.iter().find(|c| c.received > 0) {
        return Err(format!("B's service received {} bytes", c.received));
    }
    if t.leaked() {
        return Err(format!(
            "plaintext canary on the wire (capture {}, box {})",
            t.canary_in_capture, t.canary_by_box
        ));
    }
    if retried > 0 {
        return Err(format!("A's daemon retried without ENO {retried} times"));
    }
    if t.encrypted().0 {
        return Err(format!("A's daemon claims encryption: {:?}", t.a_row));
    }
    Ok(())
}

#[test]
fn tampering_and_forged_segments_end_in_errors() {
    let m = mode();
    let at = (m.short / 4) as u64;
    let flip = format!("flip-after={at}");
    let fin = format!("fin-after={at}");
    let rst = format!("rst-after={at}");
    let error = "both applications see an error (reset), never a clean end of a cut stream \
                 (B's service may see a clean EOF only once it had A's whole stream, intact); \
                 every byte received is an unaltered prefix of what was sent";
    let scenarios = vec![
        Scenario {
            name: "payload bit flipped A→B",
            expected: error,
            notes: "the frame's tag fails (RFC 8548 §4.2), B's daemon resets both sides",
            config: dirs(&flip, ""),
            extra: None,
        },
        Scenario {
            name: "payload bit flipped B→A",
            expected: error,
            notes: "",
            config: dirs("", &flip),
            extra: None,
        },
        Scenario {
            name: "FIN forged toward B",
            expected: error,
            notes: "a TCP FIN without the authenticated FINp is truncation (RFC 8548 §3.6, §8)",
            config: dirs(&fin, ""),
            extra: None,
        },
        Scenario {
            name: "FIN forged toward A",
            expected: error,
            notes: "",
            config: dirs("", &fin),
            extra: None,
        },
        Scenario {
            name: "RST forged toward B",
            expected: error,
            notes: "RFC 8548 §8: tcpcrypt cannot stop forged resets; both ends must see the end",
            config: dirs(&rst, ""),
            extra: None,
        },
        Scenario {
            name: "RST forged toward A",
            expected: error,
            notes: "",
            config: dirs("", &rst),
            extra: None,
        },
    ];
    let failures = run_matrix("tampering", scenarios, m.short, ends_in_errors, false);
    assert_none(&failures);
}
