//! End to end (namespaces A and B, as root): 100 MB through both daemons, encrypted, with a
//! matching SHA-256 at the service, and no plaintext canary in a capture of the wire (tcpdump
//! `--immediate-mode`, 200-byte snaplen: headers and the first bytes of each segment, where the
//! canary at the start of the stream would be). And the plain relay (a server without
//! tcpcrypt: A's daemon splices the bytes through), both ways at once, across idle gaps.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use common::hosts::{addr, capture, sessions, wait_encrypted, wait_row, Net, PORT, TIMEOUT};
use sha2::{Digest, Sha256};
use tcpcrypt_control::SessionState;

const TOTAL: usize = 100 * 1024 * 1024;
const CANARY: &[u8] = b"CANARY-tcpcrypt-plaintext-must-never-be-on-the-wire-0123456789";

#[test]
fn a_100_mb_transfer_is_encrypted_and_arrives_intact() {
    let net = Net::new();
    // Hashes everything up to EOF, answers "<hex sha256> <length>".
    net.service(8089, |mut conn| {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0usize;
        loop {
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => {
                    hasher.update(&buf[..k]);
                    n += k;
                }
                Err(_) => return,
            }
        }
        let digest: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let _ = conn.write_all(format!("{digest} {n}").as_bytes());
    });
    let (_da, ca) = net.daemon(&net.a, "a");
    let (_db, _cb) = net.daemon(&net.b, "b");
    let pcap = net.dir.join("bulk.pcap");
    let dump = capture(&net, &pcap, 200);
    let mut s = net.connect(addr('b', false, 8089)).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    let row = wait_encrypted(&ca, s.local_addr().unwrap());
    assert!(row.session_id.is_some());
    let t0 = Instant::now();
    let mut hasher = Sha256::new();
    hasher.update(CANARY);
    s.write_all(CANARY).unwrap();
    // Pseudo-random chunks (xorshift), so no window repeats like a pattern would.
    let mut chunk = vec![0u8; 1024 * 1024];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut sent = CANARY.len();
    while sent < TOTAL {
        fill(&mut chunk, &mut x);
        let len = chunk.len().min(TOTAL - sent);
        hasher.update(&chunk[..len]);
        s.write_all(&chunk[..len]).unwrap();
        sent += len;
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("the service's digest");
    let took = t0.elapsed();
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        reply,
        format!("{digest} {TOTAL}"),
        "SHA-256 and length match"
    );
    eprintln!(
        "100 MiB in {took:?} ({:.0} MB/s)",
        TOTAL as f64 / took.as_secs_f64() / 1e6
    );
    std::thread::sleep(Duration::from_millis(300));
    drop(dump);
    let wire = std::fs::read(&pcap).expect("read the capture");
    assert!(
        wire.len() > 100_000,
        "the capture saw the transfer: {}",
        wire.len()
    );
    assert!(
        !wire.windows(24).any(|w| w == &CANARY[..24]),
        "plaintext canary on the wire"
    );
    // The whole transfer was one encrypted session on A.
    assert!(sessions(&ca).is_empty(), "the connection ended");
}

/// Fills `chunk` with xorshift output, so no window repeats like a pattern would.
fn fill(chunk: &mut [u8], x: &mut u64) {
    for word in chunk.chunks_exact_mut(8) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        word.copy_from_slice(&x.to_le_bytes());
    }
}

/// A relayed plain connection (B runs no daemon; A's cache of such servers is off, so the
/// connection goes through A's relay, which splices it): 48 MiB out while the echo comes
/// back, with pauses longer than the relay's idle release (its pipes are closed and made
/// again), then a half-close: every byte comes back, in order.
#[test]
fn the_plain_relay_carries_both_directions_intact_across_idle_gaps() {
    const PLAIN_TOTAL: usize = 48 * 1024 * 1024;
    let net = Net::new();
    net.echo_service();
    let (_da, ca) = net.daemon_with(&net.a, "a", &["--plain-peer-cache-secs", "0"]);
    for v6 in [false, true] {
        let s = net.connect(addr('b', v6, PORT)).expect("connect");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
        // A relays it in plain.
        wait_row(&ca, s.local_addr().unwrap(), SessionState::Plain);
        let mut reader = s.try_clone().unwrap();
        let echo = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut n = 0usize;
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => return (hasher.finalize(), n),
                    Ok(k) => {
                        hasher.update(&buf[..k]);
                        n += k;
                    }
                    Err(e) => panic!("reading the echo after {n} bytes: {e}"),
                }
            }
        });
        let mut s = s;
        let mut hasher = Sha256::new();
        let mut chunk = vec![0u8; 1024 * 1024];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut sent = 0;
        while sent < PLAIN_TOTAL {
            fill(&mut chunk, &mut x);
            hasher.update(&chunk);
            s.write_all(&chunk).unwrap();
            sent += chunk.len();
            if sent % (16 * 1024 * 1024) == 0 {
                // Longer than the relay's idle release (500 ms).
                std::thread::sleep(Duration::from_millis(800));
            }
        }
        s.shutdown(Shutdown::Write).unwrap();
        let (digest, n) = echo.join().expect("the echo reader");
        assert_eq!(n, PLAIN_TOTAL, "every byte came back (v6: {v6})");
        assert!(digest == hasher.finalize(), "the echo differs (v6: {v6})");
    }
}
