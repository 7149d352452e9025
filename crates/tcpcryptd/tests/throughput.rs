//! Data-path measurements (printed, never asserted: speed belongs in benchmarks), in the same
//! namespaces and run: bulk throughput of one and of four streams from A to a sink on B,
//! without daemons and then through both daemons (encrypted); bytes on A's veth per
//! application byte (wire overhead); and daemon memory per idle encrypted connection (growth
//! of each daemon's VmRSS with 500 connections open, idle after a 32 KiB echo each). Run by hand (as root):
//!
//! ```text
//! cargo test -p tcpcryptd --release --test throughput -- --ignored --nocapture
//! ```
//!
//! With `TCPCRYPTD_PERF=<file>` set, `perf record -g` profiles both daemons during the
//! encrypted bulk runs and writes `<file>` (read it with `perf report -i <file>`); with a
//! file name ending in `.stat`, `perf stat` counts their system calls and context switches
//! instead.
//!
//! What it does assert is correctness: every stream's byte count arrives intact, and the
//! measured daemon runs are encrypted.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::hosts::{addr, sessions, wait_encrypted, Net, TIMEOUT};

const SINK: u16 = 8091;
const IDLE: u16 = 8092;
/// The system calls of the data path, for `perf stat` (see the module doc).
const SYSCALLS: &str = "syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,\
syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,\
context-switches,task-clock";
/// Bytes per stream.
const PER_STREAM: usize = 512 * 1024 * 1024;
const WRITE: usize = 256 * 1024;
const IDLE_CONNS: usize = 500;
/// What each idle connection exchanges (both ways) before it goes idle.
const BURST: usize = 32 * 1024;

/// Counts bytes to EOF, answers the count (8 bytes, big-endian).
fn sink(mut conn: TcpStream) {
    let mut buf = vec![0u8; WRITE];
    let mut n = 0u64;
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(_) => return,
        }
    }
    let _ = conn.write_all(&n.to_be_bytes());
}

/// One stream: `PER_STREAM` bytes, then the sink's count.
fn send_one(dst: SocketAddr) {
    let mut s = TcpStream::connect_timeout(&dst, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let buf = vec![0x5au8; WRITE];
    let mut sent = 0;
    while sent < PER_STREAM {
        s.write_all(&buf).unwrap();
        sent += buf.len();
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut count = [0u8; 8];
    s.read_exact(&mut count).expect("the sink's count");
    assert_eq!(
        u64::from_be_bytes(count),
        PER_STREAM as u64,
        "bytes arrived"
    );
}

/// Gb/s of `streams` parallel streams (threads created in A's namespace inherit it).
fn bulk(net: &Net, streams: usize) -> f64 {
    let dst = addr('b', false, SINK);
    let took = net
        .a
        .run(move || {
            let t0 = Instant::now();
            let threads: Vec<_> = (0..streams)
                .map(|_| std::thread::spawn(move || send_one(dst)))
                .collect();
            for t in threads {
                t.join().expect("stream");
            }
            t0.elapsed()
        })
        .unwrap();
    (streams * PER_STREAM) as f64 * 8.0 / took.as_secs_f64() / 1e9
}

/// Bytes A's veth has sent.
fn tx_bytes(net: &Net) -> u64 {
    let dev = net.sh_a(&["cat", "/proc/net/dev"]);
    let line = dev
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{}:", net.dev_a)))
        .expect("A's veth in /proc/net/dev");
    let fields: Vec<&str> = line.split(':').nth(1).unwrap().split_whitespace().collect();
    fields[8].parse().unwrap()
}

/// CPU time (user + system) a process has used, in clock ticks (1/100 s here).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name in parentheses: fields 3.. ; utime and stime are fields 14, 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn established(control: &Path) -> usize {
    sessions(control)
        .iter()
        .filter(|r| r.state == tcpcrypt_control::SessionState::Established)
        .count()
}

#[test]
#[ignore = "a measurement run by hand (see the module doc)"]
fn data_path_numbers() {
    let net = Net::new();
    net.service(SINK, sink);
    // Echoes until the client closes.
    net.service(IDLE, |mut conn| {
        let mut buf = vec![0u8; BURST];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            if conn.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
    let before = tx_bytes(&net);
    let plain1 = bulk(&net, 1);
    let plain_wire = tx_bytes(&net) - before;
    let plain4 = bulk(&net, 4);

    let (da, ca) = net.daemon_with(&net.a, "a", &[]);
    let (db, cb) = net.daemon_with(&net.b, "b", &[]);
    let mut probe = net.connect(addr('b', false, IDLE)).expect("connect");
    wait_encrypted(&ca, probe.local_addr().unwrap());
    probe.write_all(b"x").unwrap();
    let mut echo = [0u8; 1];
    probe.read_exact(&mut echo).expect("the echo");
    drop(probe);
    let perf = std::env::var("TCPCRYPTD_PERF").ok().map(|file| {
        let pids = format!("{},{}", da.0.id(), db.0.id());
        // `<file>.stat`: system calls counted instead of a profile.
        let args: Vec<&str> = if file.ends_with(".stat") {
            vec!["stat", "-e", SYSCALLS]
        } else {
            vec!["record", "-g"]
        };
        let child = std::process::Command::new("perf")
            .args(&args)
            .args(["-o", &file, "-p", &pids])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start perf");
        std::thread::sleep(Duration::from_millis(500));
        child
    });
    let before = tx_bytes(&net);
    let cpu = || cpu_ticks(da.0.id()) + cpu_ticks(db.0.id());
    let cpu0 = cpu();
    let enc1 = bulk(&net, 1);
    let cpu1 = cpu();
    let enc_wire = tx_bytes(&net) - before;
    let enc4 = bulk(&net, 4);
    let cpu4 = cpu();
    if let Some(mut child) = perf {
        // SIGINT makes perf write its file and exit.
        common::sh(&["kill", "-INT", &child.id().to_string()]);
        let _ = child.wait();
    }
    eprintln!(
        "bulk, 1 stream:  plain {plain1:.2} Gb/s, tcpcrypt {enc1:.2} Gb/s ({:.0}%)",
        enc1 / plain1 * 100.0
    );
    eprintln!(
        "bulk, 4 streams: plain {plain4:.2} Gb/s, tcpcrypt {enc4:.2} Gb/s ({:.0}%)",
        enc4 / plain4 * 100.0
    );
    // Ticks are 10 ms: CPU seconds of both daemons per GiB moved.
    let per_gib = |ticks: u64, streams: usize| {
        ticks as f64 / 100.0 / (streams * PER_STREAM) as f64 * (1u64 << 30) as f64
    };
    eprintln!(
        "CPU of both daemons per GiB: 1 stream {:.2} s, 4 streams {:.2} s",
        per_gib(cpu1 - cpu0, 1),
        per_gib(cpu4 - cpu1, 4)
    );
    eprintln!(
        "bytes on A's veth for {PER_STREAM} application bytes: plain {plain_wire}, tcpcrypt {enc_wire} (+{:.3}%)",
        (enc_wire as f64 / plain_wire as f64 - 1.0) * 100.0
    );

    // Idle connections: each daemon's memory growth per established, idle connection.
    let deadline = Instant::now() + TIMEOUT;
    while established(&ca) > 0 || established(&cb) > 0 {
        assert!(Instant::now() < deadline, "earlier connections ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (rss_a, rss_b) = (rss_kib(da.0.id()), rss_kib(db.0.id()));
    let dst = addr('b', false, IDLE);
    let conns = net
        .a
        .run(move || {
            (0..IDLE_CONNS)
                .map(|_| {
                    let mut s = TcpStream::connect_timeout(&dst, TIMEOUT).expect("connect");
                    s.set_read_timeout(Some(TIMEOUT)).unwrap();
                    let data = vec![0xa5u8; BURST];
                    s.write_all(&data).unwrap();
                    let mut back = vec![0u8; BURST];
                    s.read_exact(&mut back).expect("the echo");
                    assert_eq!(back, data);
                    s
                })
                .collect::<Vec<_>>()
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while established(&ca) < IDLE_CONNS || established(&cb) < IDLE_CONNS {
        assert!(
            Instant::now() < deadline,
            "idle connections never all encrypted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Longer than the daemon's idle release (`tcpcryptd::pump::IDLE_RELEASE`).
    std::thread::sleep(tcpcryptd::pump::IDLE_RELEASE * 4);
    let grow = |now: u64, then: u64| (now.saturating_sub(then)) as f64 / IDLE_CONNS as f64;
    eprintln!(
        "memory per idle encrypted connection: A {:.1} KiB, B {:.1} KiB (VmRSS {rss_a} → {} KiB, {rss_b} → {} KiB)",
        grow(rss_kib(da.0.id()), rss_a),
        grow(rss_kib(db.0.id()), rss_b),
        rss_kib(da.0.id()),
        rss_kib(db.0.id()),
    );
    drop(conns);
}

/// Connections per second of `threads` clients, each making `per_thread` sequential
/// connections (connect, 32-byte request, echoed reply, close) to B's echo service.
fn rate(net: &Net, threads: usize, per_thread: usize) -> f64 {
    let dst = addr('b', false, common::hosts::PORT);
    let took = net
        .a
        .run(move || {
            let t0 = Instant::now();
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    std::thread::spawn(move || {
                        for _ in 0..per_thread {
                            let mut s = TcpStream::connect_timeout(&dst, TIMEOUT).expect("connect");
                            s.set_read_timeout(Some(TIMEOUT)).unwrap();
                            s.set_nodelay(true).unwrap();
                            s.write_all(&[0x5a; 32]).unwrap();
                            let mut reply = [0u8; 32];
                            s.read_exact(&mut reply).expect("the echo");
                            assert_eq!(reply, [0x5a; 32]);
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().expect("client");
            }
            t0.elapsed()
        })
        .unwrap();
    (threads * per_thread) as f64 / took.as_secs_f64()
}

#[test]
#[ignore = "a measurement run by hand (see the module doc)"]
fn connection_rate_numbers() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 400;
    let net = Net::new();
    net.echo_service();
    let plain = rate(&net, THREADS, PER_THREAD);
    eprintln!("connections/s: plain {plain:.0}");
    for (label, args) in [
        ("fresh", &["--resumption", "false"][..]),
        ("resumed", &[][..]),
    ] {
        let (mut da, ca) = net.daemon_with(&net.a, "a", args);
        let (mut db, _) = net.daemon_with(&net.b, "b", args);
        let s = net
            .connect(addr('b', false, common::hosts::PORT))
            .expect("connect");
        wait_encrypted(&ca, s.local_addr().unwrap());
        drop(s);
        let perf = std::env::var("TCPCRYPTD_PERF").ok().map(|file| {
            let pids = format!("{},{}", da.0.id(), db.0.id());
            let child = std::process::Command::new("perf")
                .args([
                    "record",
                    "-g",
                    "-o",
                    &format!("{file}.{label}"),
                    "-p",
                    &pids,
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start perf");
            std::thread::sleep(Duration::from_millis(500));
            child
        });
        let cpu0 = cpu_ticks(da.0.id()) + cpu_ticks(db.0.id());
        let r = rate(&net, THREADS, PER_THREAD);
        let cpu = cpu_ticks(da.0.id()) + cpu_ticks(db.0.id()) - cpu0;
        if let Some(mut child) = perf {
            common::sh(&["kill", "-INT", &child.id().to_string()]);
            let _ = child.wait();
        }
        let rows = sessions(&ca);
        eprintln!(
            "connections/s: tcpcrypt {label} {r:.0} ({:.0}% of plain); CPU of both daemons {:.2} ms per connection; rows left on A {}",
            r / plain * 100.0,
            cpu as f64 * 10.0 / (THREADS * PER_THREAD) as f64,
            rows.len()
        );
        assert!(da.signal_and_wait("TERM").success());
        assert!(db.signal_and_wait("TERM").success());
    }
}
