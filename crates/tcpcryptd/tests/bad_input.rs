//! End to end (namespaces A and B, as root): bad input from the network, sent to B's daemon
//! by a raw peer over real sockets, each scenario a row of the robustness report (section
//! "bad input"). A healthy encrypted transfer through both daemons runs the whole time and
//! must complete intact; B's daemon must stay alive with its control socket answering.
//!
//! The raw peer is the test itself in namespace A, with no daemon on its connections (A's
//! daemon excludes ports 8096-8098):
//! - malformed ENO options: a test NFQUEUE hook in A's mangle POSTROUTING replaces the options
//!   of an ordinary socket's SYN (wrong lengths, garbage suboptions, a suboption length past
//!   the end, many suboptions, two ENO options, the legacy kind 253 alone, an empty ENO).
//!   Expected: fallback (RFC 8547 §4.6): plain TCP works with data intact; B either does not
//!   divert the connection or relays it plain;
//! - raw SYNs with seeded random ENO options from a raw IP socket (3000, random source ports):
//!   B answers each as the kernel would (A's kernel resets what B accepts) and keeps serving;
//! - over a connection where ENO was negotiated (the hook runs the daemon's own pure SYN path,
//!   `tcpcryptd::syn::SynPath`, as the active opener, so B's daemon diverts it and waits for
//!   Init1): truncated Init1 (then FIN, or silence until B's handshake timeout), an absurd
//!   Init1 length (2^32 - 1), an oversized Init1 (5000 > 4096 bytes), bad magic, garbage
//!   instead of Init1; and after a real handshake (an in-process `Session` of the core as host
//!   A, checked by one echoed frame): a frame of random ciphertext, a frame with a forged tag,
//!   a frame with clen 0 (below the 17 of an empty frame), reserved control bits (part of the
//!   associated data), a frame of clen 65535 cut by a FIN. Expected for each: a reset from B (RFC 8548
//!   §3.3, §3.6, §4.2: the session fails, and the daemon never ends it with a FIN), and not one
//!   byte of it reaches B's service.

mod common;
mod robust;

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::hosts::{addr, exchange, finish, sessions, wait_encrypted, Net, PORT, TIMEOUT};
use common::queue_hook::QueueHook;
use robust::{payload, record_and_check, row, RawSender};
use tcpcrypt_control::SessionState;
use tcpcrypt_crypto::OsRng;
use tcpcrypt_netsim::report::PlaintextCheck;
use tcpcrypt_proto::consts::INIT1_MAGIC;
use tcpcrypt_proto::session::{Read as SessionRead, Session, SessionConfig};
use tcpcrypt_proto::wire::packet::{rewrite_tcp_options, TcpIpPacket};
use tcpcryptd::syn::{ConnKey, Decision, Limits, Outcome, PortPolicy, SynPath};

const SECTION: &str = "bad input";
/// Malformed-SYN service (echo), the raw SYN target, and the negotiated raw peer's service.
const SYN_PORT: u16 = 8096;
const RAW_PORT: u16 = 8097;
const PEER_PORT: u16 = 8098;

/// A healthy encrypted stream A → B:8080 through both daemons, echo-checked until `stop`.
fn healthy(net: &Net, control_a: &std::path::Path, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    let mut s = net
        .connect(addr('b', false, PORT))
        .expect("healthy connect");
    exchange(&mut s, b"healthy");
    wait_encrypted(control_a, s.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut moved = 0u64;
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let data = payload(i, 16 * 1024);
            exchange(&mut s, &data);
            moved += 2 * data.len() as u64;
            i += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        finish(s);
        moved
    })
}

/// B's daemon alive and its control socket answering.
fn b_serving(pid: u32, control_b: &std::path::Path) -> bool {
    robust::alive(pid) && tcpcrypt_control::Client::connect(control_b).is_ok() && {
        let _ = sessions(control_b);
        true
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed ENO options in an ordinary socket's SYN

/// MSS 1460, then `bad`, padded with EOL to a multiple of four.
fn syn_options(bad: &[u8]) -> Vec<u8> {
    let mut o = vec![2, 4, 0x05, 0xb4];
    o.extend_from_slice(bad);
    while o.len() % 4 != 0 {
        o.push(0);
    }
    assert!(o.len() <= 40);
    o
}

/// The malformed options: (scenario, bytes after the MSS option).
fn malformed_enos() -> Vec<(&'static str, Vec<u8>)> {
    let many: Vec<u8> = [69u8, 36]
        .into_iter()
        .chain((0..34).map(|i| 0x20 + (i % 0x60) as u8))
        .collect();
    vec![
        ("ENO length 1 (below the minimum of 2)", vec![69, 1, 0x21]),
        ("ENO length past the options area", vec![69, 30, 0x21, 0x22]),
        (
            "ENO with garbage suboptions (unknown TEPs, reserved general bits)",
            vec![69, 8, 0x1f, 0x7f, 0x7e, 0x13, 0x00, 0x5a],
        ),
        (
            "ENO length suboption (nlen 5) past the option's end",
            vec![69, 4, 0x85, 0x21],
        ),
        (
            "ENO TEP suboption with v = 1 and 2 bytes of data (too short for a resumption)",
            vec![69, 5, 0xa1, 0x40, 0x00],
        ),
        ("ENO with 34 suboptions (option area full)", many),
        ("two ENO options", vec![69, 3, 0x21, 1, 69, 3, 0x22]),
        (
            "legacy kind 253 (ExID 0x454E) alone",
            vec![253, 5, 0x45, 0x4e, 0x21],
        ),
        ("empty ENO (length 2) in a SYN", vec![69, 2]),
    ]
}

#[test]
fn malformed_eno_options_in_a_syn_fall_back_to_plain() {
    let net = Net::new();
    net.echo_service();
    net.service(SYN_PORT, |mut conn| {
        let mut buf = [0u8; 65536];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = conn.shutdown(Shutdown::Write);
    });
    let (_da, ca) = net.daemon_with(&net.a, "a", &["--exclude-ports", "22,443,8096,8097,8098"]);
    let (db, cb) = net.daemon(&net.b, "b");
    let stop = Arc::new(AtomicBool::new(false));
    let healthy_t = healthy(&net, &ca, stop.clone());
    let variant: Arc<Mutex<Vec<u8>>> = Arc::default();
    let v2 = variant.clone();
    let dport = SYN_PORT.to_string();
    let rule = vec![
        "-t",
        "mangle",
        "-A",
        "POSTROUTING",
        "-p",
        "tcp",
        "--dport",
        &dport,
        "--tcp-flags",
        "SYN,ACK",
        "SYN",
        "-j",
        "NFQUEUE",
        "--queue-num",
        "4801",
        "--queue-bypass",
    ];
    let hook = QueueHook::start(
        &net.a,
        4801,
        &[rule],
        Box::new(move |bytes| {
            let options = syn_options(&v2.lock().unwrap());
            TcpIpPacket::new_checked(bytes).ok()?;
            Some(rewrite_tcp_options(bytes, &options).expect("rewrite the SYN"))
        }),
    );
    for (scenario, bad) in malformed_enos() {
        *variant.lock().unwrap() = bad.clone();
        let mut ok = 0;
        let mut rows_b = Vec::new();
        for v6 in [false, true] {
            let before = hook.rewritten();
            let Ok(mut s) = net.connect(addr('b', v6, SYN_PORT)) else {
                continue;
            };
            let data = payload(u64::from(v6), 8192);
            s.write_all(&data).unwrap();
            let mut got = vec![0u8; data.len()];
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            let intact = s.read_exact(&mut got).is_ok() && got == data;
            let local = s.local_addr().unwrap();
            // B either left it alone (no row) or relays it plain: never encrypted.
            let row_b = sessions(&cb).into_iter().find(|r| r.remote == local);
            let plain_at_b = row_b
                .as_ref()
                .is_none_or(|r| r.state == SessionState::Plain);
            rows_b.push(row_b.map(|r| (r.state, r.fallback_reason)));
            finish(s);
            let seen = hook.rewritten() > before;
            ok += usize::from(intact && plain_at_b && seen);
        }
        let serving = b_serving(db.0.id(), &cb);
        record_and_check(row(
            SECTION,
            &format!("SYN with {scenario}"),
            "fallback: plain TCP works, data intact, B never encrypts it; B keeps serving",
            (2, if serving { ok as u32 } else { 0 }),
            2 * 2 * 8192,
            PlaintextCheck::NotApplicable,
            &format!("options after MSS {bad:02x?}; B's view (none = not diverted): {rows_b:?}"),
        ));
    }
    stop.store(true, Ordering::Relaxed);
    let moved = healthy_t
        .join()
        .expect("the healthy transfer completed intact");
    assert!(moved > 0);
    drop(hook);
}

// ---------------------------------------------------------------------------------------------
// Raw SYNs with random ENO options

/// xorshift64*
struct Prng(u64);
impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Random ENO-ish options: kind 69 (sometimes 253) with a random, often wrong, length and
/// random suboption bytes biased towards TEP identifiers; at most 36 bytes.
fn random_eno(r: &mut Prng) -> Vec<u8> {
    let body = (r.next() % 34) as usize;
    let kind = if r.next() % 8 == 0 { 253 } else { 69 };
    let len = match r.next() % 4 {
        0 => (r.next() % 64) as u8,
        _ => (body + 2) as u8,
    };
    let mut o = vec![kind, len];
    for _ in 0..body {
        let b = r.next() as u8;
        o.push(if r.next() % 2 == 0 {
            0x20 | (b & 0x0f)
        } else {
            b
        });
    }
    o
}

#[test]
fn raw_syns_with_random_eno_options_leave_the_daemon_serving() {
    const SYNS: usize = 3000;
    let net = Net::new();
    net.echo_service();
    // The raw SYNs' target: accepts and closes.
    let listener = net
        .b
        .run(|| std::net::TcpListener::bind(("::", RAW_PORT)).unwrap())
        .unwrap();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            drop(c);
        }
    });
    let (_da, ca) = net.daemon_with(&net.a, "a", &["--exclude-ports", "22,443,8096,8097,8098"]);
    let (db, cb) = net.daemon(&net.b, "b");
    let stop = Arc::new(AtomicBool::new(false));
    let healthy_t = healthy(&net, &ca, stop.clone());
    let raw = RawSender::new(&net.a);
    let mut r = Prng(0x5eed_0bad_1dea_u64);
    for i in 0..SYNS {
        let v6 = i % 2 == 1;
        let sport = 1024 + (r.next() % 30000) as u16;
        let mut eno = random_eno(&mut r);
        eno.truncate(36);
        raw.syn(addr('a', v6, sport), addr('b', v6, RAW_PORT), &eno, &[]);
    }
    // Everything B answered has been answered: a new encrypted connection afterwards.
    let mut after = 0;
    for v6 in [false, true] {
        let mut s = net
            .connect(addr('b', v6, PORT))
            .expect("connect after the SYNs");
        exchange(&mut s, &payload(1, 4096));
        wait_encrypted(&ca, s.local_addr().unwrap());
        finish(s);
        after += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let moved = healthy_t.join().is_ok();
    let serving = b_serving(db.0.id(), &cb);
    record_and_check(row(
        SECTION,
        &format!("{SYNS} raw SYNs with seeded random ENO options (v4+v6)"),
        "B's daemon stays up and keeps serving: a concurrent encrypted transfer and new encrypted connections complete intact",
        (1 + 2, u32::from(serving && moved) + if serving { after } else { 0 }),
        2 * 2 * 4096,
        PlaintextCheck::NotApplicable,
        "kind 69 (1 in 8: 253), lengths random or consistent, suboptions random or TEP-like; \
         from random source ports of A's address (A's kernel resets B's answers)",
    ));
}

// ---------------------------------------------------------------------------------------------
// The negotiated raw peer

/// Every port is ours to negotiate.
struct AllPorts;
impl PortPolicy for AllPorts {
    fn excluded(&self, _: u16) -> bool {
        false
    }
    fn mandatory(&self, _: SocketAddr) -> bool {
        false
    }
}

/// The raw peer's ENO: the daemon's own SYN path, run by the test on A's segments of
/// connections to B:[`PEER_PORT`] (POSTROUTING out, PREROUTING in).
fn negotiating_hook(net: &Net) -> (QueueHook, Arc<Mutex<SynPath>>) {
    let path = Arc::new(Mutex::new(SynPath::new(
        tcpcrypt_proto::eno::Config::default(),
        Box::new(AllPorts),
        Limits::default(),
        Box::new(OsRng),
    )));
    let p2 = path.clone();
    let port = PEER_PORT.to_string();
    let out = vec![
        "-t",
        "mangle",
        "-A",
        "POSTROUTING",
        "-p",
        "tcp",
        "--dport",
        &port,
        "-m",
        "connbytes",
        "--connbytes",
        "1:6",
        "--connbytes-dir",
        "original",
        "--connbytes-mode",
        "packets",
        "-j",
        "NFQUEUE",
        "--queue-num",
        "4802",
        "--queue-bypass",
    ];
    let inb = vec![
        "-t",
        "mangle",
        "-A",
        "PREROUTING",
        "-p",
        "tcp",
        "--sport",
        &port,
        "-m",
        "connbytes",
        "--connbytes",
        "1:4",
        "--connbytes-dir",
        "reply",
        "--connbytes-mode",
        "packets",
        "-j",
        "NFQUEUE",
        "--queue-num",
        "4802",
        "--queue-bypass",
    ];
    let hook = QueueHook::start(
        &net.a,
        4802,
        &[out, inb],
        Box::new(move |bytes| {
            let pkt = TcpIpPacket::new_checked(bytes).ok()?;
            let outbound = pkt.tcp().dst_port() == PEER_PORT;
            let mut path = p2.lock().unwrap();
            let now = Instant::now();
            let handled = if outbound {
                path.on_outbound(bytes, now)
            } else {
                path.on_inbound(bytes, now)
            };
            match handled.decision {
                Decision::Replace(new) => Some(new),
                Decision::Accept | Decision::Drop => None,
            }
        }),
    );
    (hook, path)
}

/// What B's raw-peer service received, all connections together.
type Received = Arc<Mutex<Vec<u8>>>;

fn recording_service(net: &Net) -> Received {
    let got: Received = Arc::default();
    let g2 = got.clone();
    net.service(PEER_PORT, move |mut conn| {
        let mut buf = [0u8; 65536];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            g2.lock().unwrap().extend_from_slice(&buf[..n]);
            if conn.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    got
}

/// A connection to B:[`PEER_PORT`] whose ENO negotiation enabled tcpcrypt, and its outcome.
fn negotiated(
    net: &Net,
    path: &Mutex<SynPath>,
    v6: bool,
) -> (TcpStream, tcpcrypt_proto::Negotiated) {
    let s = net.connect(addr('b', v6, PEER_PORT)).expect("connect");
    let key = ConnKey {
        local: s.local_addr().unwrap(),
        remote: addr('b', v6, PEER_PORT),
    };
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(o) = path.lock().unwrap().take_outcome(&key) {
            match o {
                Outcome::Enabled(n) => {
                    s.set_read_timeout(Some(TIMEOUT)).unwrap();
                    return (s, n);
                }
                Outcome::Plain(reason) => panic!("the raw peer's ENO fell back: {reason}"),
            }
        }
        // The hook may not have seen the third ACK yet.
        assert!(Instant::now() < deadline, "no ENO outcome for {key:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs host A's side of the handshake with the core's `Session` over `s`, then one echoed
/// frame ("hello") through B's daemon and service.
fn handshake_and_hello(s: &mut TcpStream, n: tcpcrypt_proto::Negotiated) -> Session {
    let mut session = Session::new(
        n,
        Arc::new(SessionConfig::default()),
        Arc::new(*tcpcrypt_crypto::default_provider()),
        &mut OsRng,
        Instant::now(),
    )
    .expect("start the raw peer's session");
    let mut hello_sent = false;
    let mut out = Vec::new();
    let mut inbox: VecDeque<u8> = VecDeque::new();
    let mut echoed = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + TIMEOUT;
    while echoed.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "the raw peer's handshake timed out"
        );
        if session.is_established() && !hello_sent {
            // The session takes application data once the keys exist.
            assert_eq!(session.write_plaintext(b"hello").unwrap(), 5);
            hello_sent = true;
        }
        out.clear();
        let _ = session.poll_ciphertext(&mut out);
        if !out.is_empty() {
            s.write_all(&out).unwrap();
            continue;
        }
        let n = s.read(&mut buf).expect("read from B");
        assert!(n > 0, "B closed during the handshake");
        inbox.extend(&buf[..n]);
        loop {
            let (a, _) = inbox.as_slices();
            if a.is_empty() {
                break;
            }
            let used = session
                .handle_ciphertext(a)
                .expect("B's handshake and frames");
            inbox.drain(..used);
            let mut plain = [0u8; 64];
            while let Ok(SessionRead::Data(k)) = session.read_plaintext(&mut plain) {
                echoed.extend_from_slice(&plain[..k]);
            }
            if used == 0 {
                break;
            }
        }
    }
    assert!(session.is_established());
    assert_eq!(echoed, b"hello", "the echo through B decrypts");
    session
}

/// How B ended a bad connection, as the raw peer sees it.
fn ending(s: &mut TcpStream) -> &'static str {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return "clean EOF",
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return "reset",
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return "nothing within the timeout"
            }
            Err(e) => {
                eprintln!("raw peer: unexpected error {e:?}");
                return "another error";
            }
        }
    }
}

/// Init1's magic and length field, then `rest`.
fn init1_prefix(magic: u32, len: u32, rest: usize) -> Vec<u8> {
    let mut m = magic.to_be_bytes().to_vec();
    m.extend_from_slice(&len.to_be_bytes());
    m.extend((0..rest).map(|i| (i * 7 + 3) as u8));
    m
}

/// A stream-level bad input: what to send, whether to FIN after it, and whether a real
/// handshake comes first.
struct Case {
    scenario: &'static str,
    after_handshake: bool,
    bytes: Vec<u8>,
    fin: bool,
}

fn cases() -> Vec<Case> {
    let mut garbage = vec![0u8; 1000];
    let mut r = Prng(0xbad_f00d);
    for b in &mut garbage {
        *b = r.next() as u8;
    }
    // One whole frame of random ciphertext (clen 997 fits in what is sent; a random clen
    // would mostly announce more than follows, and B rightly waits for the rest).
    let mut random_frame = vec![0x00, 0x03, 0xe5];
    random_frame.extend_from_slice(&garbage[..997]);
    let mut tag_only = vec![0x00, 0x00, 17];
    tag_only.extend_from_slice(&[0xaa; 17]);
    let mut reserved = vec![0xff, 0x00, 17];
    reserved.extend_from_slice(&[0x55; 17]);
    let mut cut = vec![0x00, 0xff, 0xff];
    cut.extend_from_slice(&[0x33; 100]);
    vec![
        Case {
            scenario: "truncated Init1 (12 of 100 bytes), then FIN",
            after_handshake: false,
            bytes: init1_prefix(INIT1_MAGIC, 100, 4),
            fin: true,
        },
        Case {
            scenario: "truncated Init1 (12 of 100 bytes), then silence",
            after_handshake: false,
            bytes: init1_prefix(INIT1_MAGIC, 100, 4),
            fin: false,
        },
        Case {
            scenario: "Init1 with an absurd length (2^32 - 1)",
            after_handshake: false,
            bytes: init1_prefix(INIT1_MAGIC, u32::MAX, 64),
            fin: false,
        },
        Case {
            scenario: "oversized Init1 (5000 bytes, cap 4096)",
            after_handshake: false,
            bytes: init1_prefix(INIT1_MAGIC, 5000, 4992),
            fin: false,
        },
        Case {
            scenario: "Init1 with bad magic",
            after_handshake: false,
            bytes: init1_prefix(0xdead_beef, 100, 92),
            fin: false,
        },
        Case {
            scenario: "1000 random bytes instead of Init1",
            after_handshake: false,
            bytes: garbage,
            fin: false,
        },
        Case {
            scenario: "a frame of 997 random bytes after the handshake",
            after_handshake: true,
            bytes: random_frame,
            fin: false,
        },
        Case {
            scenario: "frame with a forged tag (clen 17) after the handshake",
            after_handshake: true,
            bytes: tag_only,
            fin: false,
        },
        Case {
            scenario: "frame with clen 0 after the handshake",
            after_handshake: true,
            bytes: vec![0x00, 0x00, 0x00],
            fin: false,
        },
        Case {
            scenario: "frame with reserved control bits after the handshake",
            after_handshake: true,
            bytes: reserved,
            fin: false,
        },
        Case {
            scenario: "frame of clen 65535 cut by a FIN after 100 bytes",
            after_handshake: true,
            bytes: cut,
            fin: true,
        },
    ]
}

#[test]
fn bad_init_messages_and_frames_from_a_raw_peer_end_in_a_reset() {
    let net = Net::new();
    net.echo_service();
    let received = recording_service(&net);
    let (_da, ca) = net.daemon_with(&net.a, "a", &["--exclude-ports", "22,443,8096,8097,8098"]);
    // A short handshake deadline, for the silent truncated Init1.
    let (db, cb) = net.daemon_with(&net.b, "b", &["--handshake-timeout-secs", "2"]);
    let (hook, path) = negotiating_hook(&net);
    let stop = Arc::new(AtomicBool::new(false));
    let healthy_t = healthy(&net, &ca, stop.clone());
    let mut hellos = 0;
    for case in cases() {
        let mut ends = Vec::new();
        let mut ok = 0;
        for v6 in [false, true] {
            let (mut s, n) = negotiated(&net, &path, v6);
            // B diverted it: B's daemon, not the service, is the other end.
            let local = s.local_addr().unwrap();
            let deadline = Instant::now() + TIMEOUT;
            while !sessions(&cb).iter().any(|r| r.remote == local) {
                assert!(Instant::now() < deadline, "B never took {local}");
                std::thread::sleep(Duration::from_millis(10));
            }
            let _session = case.after_handshake.then(|| {
                hellos += 1;
                handshake_and_hello(&mut s, n)
            });
            let _ = s.write_all(&case.bytes);
            if case.fin {
                let _ = s.shutdown(Shutdown::Write);
            }
            let end = ending(&mut s);
            ends.push(end);
            ok += usize::from(end == "reset");
        }
        let serving = b_serving(db.0.id(), &cb);
        let only_hellos = received.lock().unwrap().as_slice() == b"hello".repeat(hellos);
        record_and_check(row(
            SECTION,
            &format!("ENO-negotiated raw peer: {}", case.scenario),
            "reset by B (never a FIN), nothing of it reaches B's service, B keeps serving",
            (2, if serving && only_hellos { ok as u32 } else { 0 }),
            if case.after_handshake { 2 * 2 * 5 } else { 0 },
            PlaintextCheck::NotApplicable,
            &format!(
                "raw peer saw: {ends:?}; service received only the checked hellos: {only_hellos}"
            ),
        ));
    }
    stop.store(true, Ordering::Relaxed);
    let moved = healthy_t
        .join()
        .expect("the healthy transfer completed intact");
    assert!(moved > 0);
    assert!(hook.rewritten() > 0, "the raw peer's segments carried ENO");
}
