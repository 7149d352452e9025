//! End to end (namespaces A and B, as root): the pump's zero-copy data path under stress.
//! Both directions at once through a slow, irregular echo service (backpressure on every
//! socket, frames cut by buffer ends, partial writes), writes of 1 byte to 300 KiB, and pauses
//! longer than the idle release (`tcpcryptd::pump::IDLE_RELEASE`) so buffers are given back
//! and allocated again mid-connection. Every byte must come back in order, and the clean end
//! of stream must follow. Full-duplex bulk (both applications write and read at once) must
//! complete: a pump whose own data filled the session's send buffer stopped taking ciphertext,
//! and the two daemons then waited for each other forever.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use common::hosts::{addr, exchange, finish, wait_encrypted, Net, TIMEOUT};

const PORT: u16 = 8093;

/// Deterministic pseudo-random bytes (xorshift), so no window repeats like a pattern would.
fn stream(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Echoes with reads of varying size and an occasional short sleep: a slow, irregular reader.
fn irregular_echo(mut conn: std::net::TcpStream) {
    let mut buf = vec![0u8; 200_000];
    let sizes = [1, 7, 1000, 4096, 65_536, 100_000, 200_000, 3];
    let mut i = 0;
    loop {
        let want = sizes[i % sizes.len()];
        i += 1;
        match conn.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
        if i % 97 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = conn.shutdown(Shutdown::Write);
}

#[test]
fn both_directions_at_once_with_backpressure_and_idle_pauses_arrive_intact() {
    let net = Net::new();
    net.service(PORT, irregular_echo);
    let (_da, ca) = net.daemon(&net.a, "a");
    let (_db, _cb) = net.daemon(&net.b, "b");
    let mut s = net.connect(addr('b', false, PORT)).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    // A small exchange first, then an idle pause: the buffers are given back.
    exchange(&mut s, b"hello");
    wait_encrypted(&ca, s.local_addr().unwrap());
    std::thread::sleep(tcpcryptd::pump::IDLE_RELEASE * 2);
    exchange(&mut s, b"after an idle pause");

    let data = stream(24 * 1024 * 1024, 7);
    let mut writer = s.try_clone().unwrap();
    let sent = data.clone();
    let write = std::thread::spawn(move || {
        let sizes = [1, 300 * 1024, 17, 65_518, 65_519, 4096, 150_000, 2];
        let (mut at, mut i) = (0, 0);
        while at < sent.len() {
            let n = sizes[i % sizes.len()].min(sent.len() - at);
            writer.write_all(&sent[at..at + n]).expect("write");
            at += n;
            i += 1;
            if i == 40 || i == 400 {
                // Longer than the idle release, possibly with data still in flight.
                std::thread::sleep(tcpcryptd::pump::IDLE_RELEASE + Duration::from_millis(200));
            }
        }
        writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 100_000];
    loop {
        assert!(Instant::now() < deadline, "the echo took too long");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read after {} bytes: {e}", got.len()),
        }
    }
    write.join().expect("writer");
    assert_eq!(got.len(), data.len(), "every byte came back");
    assert!(got == data, "in order and intact");
}

#[test]
fn a_connection_idle_past_the_release_goes_on_both_ways() {
    let net = Net::new();
    net.echo_service();
    let (_da, ca) = net.daemon(&net.a, "a");
    let (_db, _cb) = net.daemon(&net.b, "b");
    let mut s = net
        .connect(addr('b', true, common::hosts::PORT))
        .expect("connect");
    exchange(&mut s, &stream(200_000, 3));
    wait_encrypted(&ca, s.local_addr().unwrap());
    for round in 0..3u64 {
        std::thread::sleep(tcpcryptd::pump::IDLE_RELEASE * 2);
        exchange(&mut s, &stream(1 + round as usize * 100_000, round));
    }
    finish(s);
}

/// Sends `data` on a clone of `s` while reading `expect` from `s` (full duplex); returns what
/// was read, up to the peer's end of stream.
fn full_duplex(s: &std::net::TcpStream, data: Vec<u8>, expect: usize) -> Vec<u8> {
    let mut writer = s.try_clone().unwrap();
    let write = std::thread::spawn(move || {
        for chunk in data.chunks(256 * 1024) {
            writer.write_all(chunk).expect("write");
        }
        writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let mut reader = s.try_clone().unwrap();
    let mut got = Vec::with_capacity(expect);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read after {} bytes: {e}", got.len()),
        }
    }
    write.join().expect("writer");
    got
}

#[test]
fn full_duplex_bulk_both_ways_at_once_completes() {
    const EACH_WAY: usize = 32 * 1024 * 1024;
    let net = Net::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    net.service(PORT, move |conn| {
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        let got = full_duplex(&conn, stream(EACH_WAY, 11), EACH_WAY);
        let _ = tx.lock().unwrap().send(got);
    });
    let (_da, ca) = net.daemon(&net.a, "a");
    let (_db, _cb) = net.daemon(&net.b, "b");
    let s = net.connect(addr('b', false, PORT)).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    wait_encrypted(&ca, s.local_addr().unwrap());
    let got = full_duplex(&s, stream(EACH_WAY, 12), EACH_WAY);
    assert!(got == stream(EACH_WAY, 11), "B's stream arrived intact");
    let served = rx.recv_timeout(TIMEOUT).expect("the service finished");
    assert!(served == stream(EACH_WAY, 12), "A's stream arrived intact");
}
