//! Connection setup latency, measured (not asserted): 200 sequential connect() + 32-byte
//! request + echoed reply + close from A to B's echo service, without daemons, then through
//! both daemons (with resumption, the default, and without: a full key exchange each time), in
//! the same namespaces and run. Prints median and p90 of connect() alone and of the whole
//! exchange. Run by hand (as root):
//!
//! ```text
//! cargo test -p tcpcryptd --release --test latency -- --ignored --nocapture
//! ```

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::hosts::{addr, wait_encrypted, Net, PORT, TIMEOUT};

const ROUNDS: usize = 200;

struct Stats {
    connect: Vec<Duration>,
    total: Vec<Duration>,
}

/// Runs the rounds from one thread inside A's namespace (entering it per connection would
/// add a thread spawn and a setns to each measurement).
fn measure(net: &Net, v6: bool) -> Stats {
    let dst = addr('b', v6, PORT);
    net.a.run(move || measure_here(dst)).unwrap()
}

fn measure_here(dst: std::net::SocketAddr) -> Stats {
    let request = [0x5au8; 32];
    let mut stats = Stats {
        connect: Vec::with_capacity(ROUNDS),
        total: Vec::with_capacity(ROUNDS),
    };
    // A few rounds first: caches, resumption secrets, lazily created state.
    for round in 0..ROUNDS + 5 {
        let start = Instant::now();
        let mut s = TcpStream::connect_timeout(&dst, TIMEOUT).expect("connect");
        let connected = start.elapsed();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        s.write_all(&request).unwrap();
        let mut reply = [0u8; 32];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply, request);
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(s.read(&mut reply).unwrap(), 0, "clean end of stream");
        drop(s);
        let total = start.elapsed();
        if round >= 5 {
            stats.connect.push(connected);
            stats.total.push(total);
        }
    }
    stats
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn report(what: &str, stats: &mut Stats) {
    stats.connect.sort();
    stats.total.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<44} connect() median {:7.3} ms p90 {:7.3} ms | connect+request+reply+close \
         median {:7.3} ms p90 {:7.3} ms max {:7.3} ms",
        ms(percentile(&stats.connect, 50)),
        ms(percentile(&stats.connect, 90)),
        ms(percentile(&stats.total, 50)),
        ms(percentile(&stats.total, 90)),
        ms(*stats.total.last().unwrap()),
    );
}

#[test]
#[ignore = "a measurement, run by hand: --ignored --nocapture"]
fn connection_setup_latency() {
    let net = Net::new();
    net.echo_service();
    for v6 in [false, true] {
        let family = if v6 { "IPv6" } else { "IPv4" };
        report(&format!("{family} without daemons"), &mut measure(&net, v6));
        for (label, args) in [
            ("through both daemons (resumption)", &[][..]),
            (
                "through both daemons (no resumption)",
                &["--resumption", "false"][..],
            ),
        ] {
            let (mut da, ca) = net.daemon_with(&net.a, "a", args);
            let (mut db, _) = net.daemon_with(&net.b, "b", args);
            // What is measured is encrypted.
            let s = net.connect(addr('b', v6, PORT)).expect("connect");
            wait_encrypted(&ca, s.local_addr().unwrap());
            drop(s);
            report(&format!("{family} {label}"), &mut measure(&net, v6));
            assert!(da.signal_and_wait("TERM").success());
            assert!(db.signal_and_wait("TERM").success());
        }
    }
}
