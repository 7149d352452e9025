//! The load client's modes against the load server on loopback, in-process: what each mode
//! reports is what crossed the connection. No timing is asserted.

use std::net::SocketAddr;
use std::sync::OnceLock;

use tcpcrypt_bench::client::{self, Amount};

/// One server for all tests, on a tokio runtime in its own thread.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let l = tcpcrypt_bench::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                tcpcrypt_bench::server::serve_on(l).await.unwrap();
            });
        });
        rx.recv().unwrap()
    })
}

#[test]
fn bulk_counts_exactly_what_the_server_received() {
    let r = client::bulk(server(), 4, Amount::Bytes(4 * 3_000_001)).unwrap();
    assert_eq!(r.bytes, 4 * 3_000_001);
    let r = client::bulk(server(), 1, Amount::Seconds(0.2)).unwrap();
    assert!(r.bytes > 0);
}

#[test]
fn rate_completes_request_response_connections() {
    let r = client::rate(server(), 2, 0.3);
    assert!(r.conns > 0);
    assert_eq!(r.errors, 0);
}

#[test]
fn latency_and_echo_measure_every_exchange() {
    let (times, errors) = client::latency(server(), 20, 2).unwrap();
    assert_eq!((times.len(), errors), (20, 0));
    assert_eq!(client::echo(server(), 50).unwrap().len(), 50);
}

#[test]
fn idle_connections_are_confirmed_end_to_end() {
    let (open, failed) = client::idle(server(), 50).unwrap();
    assert_eq!((open.len(), failed), (50, 0));
}

#[test]
fn a_dead_target_is_an_error_not_a_hang() {
    // Bind and drop: nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(client::request_once(port).is_err());
    assert!(client::bulk(port, 2, Amount::Bytes(1000)).is_err());
    assert!(client::latency(port, 3, 0).is_err());
    assert!(client::idle(port, 20).is_err());
    let r = client::rate(port, 1, 0.1);
    assert_eq!(r.conns, 0);
    assert!(r.errors > 0);
}

#[test]
fn retry_counts_failed_attempts_and_gives_up() {
    let mut calls = 0;
    let (x, failed) = client::retry(3, || {
        calls += 1;
        if calls < 3 {
            anyhow::bail!("attempt {calls}")
        }
        Ok(calls)
    })
    .unwrap();
    assert_eq!((x, failed), (3, 2));
    let err = client::retry(2, || -> anyhow::Result<()> { anyhow::bail!("always") }).unwrap_err();
    assert!(
        format!("{err:#}").contains("2 attempts failed: always"),
        "{err:#}"
    );
}
