//! End to end (namespaces A and B, as root): 1000 connections open at the same time through
//! both daemons, each encrypted with its own data verified, all held open together until the
//! last one is through; and the daemons run with their soft open-file limit at the hard limit.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::hosts::{addr, Net};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONNECTIONS: usize = 1000;
const PER_CONNECTION: usize = 4096;

/// "Max open files" soft and hard limits of process `pid`.
fn nofile(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].to_owned(), f[4].to_owned())
}

#[test]
fn a_thousand_concurrent_connections() {
    let (soft, hard) = tcpcrypt_sys::rlimit::raise_nofile_limit().unwrap();
    assert!(
        soft >= 3 * CONNECTIONS as u64,
        "test process limit {soft}/{hard}"
    );
    let net = Net::new();
    // The daemons' pre-connect bound (default 3 s) raised: at load 15+ on this 2-core box some
    // of the 1000 pre-connects took longer and went plain by policy (fail-open, "pre-connect
    // ... timed out; letting it go direct", 916 and 959 of 1000 encrypted). The connections'
    // own 20 s connect bound below still ends a hang.
    let timeout = ["--connect-timeout-ms", "15000"];
    let (da, ca) = net.daemon_with(&net.a, "a", &timeout);
    let (db, cb) = net.daemon_with(&net.b, "b", &timeout);
    for d in [&da, &db] {
        let (soft, hard) = nofile(d.0.id());
        assert_eq!(soft, hard, "the daemon raised its soft limit");
    }
    // Echo service on B, backlog large enough for the burst.
    let listener = net
        .b
        .run(|| {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            s.bind(&SocketAddr::from(([0, 0, 0, 0], 8090)).into())?;
            s.listen(4096)?;
            s.set_nonblocking(true)?;
            std::io::Result::Ok(std::net::TcpListener::from(s))
        })
        .unwrap()
        .unwrap();
    // Client sockets, created in A.
    let sockets: Vec<std::net::TcpStream> = net
        .a
        .run(|| {
            (0..CONNECTIONS)
                .map(|_| {
                    let s =
                        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
                    s.set_nonblocking(true)?;
                    std::io::Result::Ok(std::net::TcpStream::from(s))
                })
                .collect::<std::io::Result<Vec<_>>>()
        })
        .unwrap()
        .expect("client sockets");
    let dst = addr('b', false, 8090);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let (mut r, mut w) = conn.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        let open = Arc::new(tokio::sync::Barrier::new(CONNECTIONS));
        let mut tasks = Vec::new();
        for (i, std_sock) in sockets.into_iter().enumerate() {
            let open = open.clone();
            tasks.push(tokio::spawn(async move {
                let sock = tokio::net::TcpSocket::from_std_stream(std_sock);
                let mut s = tokio::time::timeout(Duration::from_secs(20), sock.connect(dst))
                    .await
                    .map_err(|_| format!("{i}: connect timed out"))?
                    .map_err(|e| format!("{i}: connect {e}"))?;
                let data: Vec<u8> = (0..PER_CONNECTION)
                    .map(|k| (k as u32).wrapping_mul(31).wrapping_add(i as u32) as u8)
                    .collect();
                s.write_all(&data).await.map_err(|e| format!("{i}: {e}"))?;
                let mut got = vec![0u8; PER_CONNECTION];
                tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut got))
                    .await
                    .map_err(|_| format!("{i}: echo timed out"))?
                    .map_err(|e| format!("{i}: echo {e}"))?;
                if got != data {
                    return Err(format!("{i}: wrong echo"));
                }
                // Every connection is open at this point: wait for all of them.
                tokio::time::timeout(Duration::from_secs(40), open.wait())
                    .await
                    .map_err(|_| format!("{i}: the others never all got through"))?;
                s.shutdown().await.map_err(|e| format!("{i}: {e}"))?;
                let mut rest = Vec::new();
                s.read_to_end(&mut rest)
                    .await
                    .map_err(|e| format!("{i}: end {e}"))?;
                if !rest.is_empty() {
                    return Err(format!("{i}: bytes after the echo"));
                }
                Ok::<_, String>(())
            }));
        }
        let mut errors = Vec::new();
        for t in tasks {
            if let Err(e) = t.await.unwrap() {
                errors.push(e);
            }
        }
        assert!(
            errors.is_empty(),
            "{} failed: {:?}",
            errors.len(),
            &errors[..errors.len().min(10)]
        );
    });
    eprintln!("{CONNECTIONS} concurrent connections in {:?}", t0.elapsed());
    // All of them were encrypted (B's counters shown too: its fallback reasons say which
    // handshake segment it missed if one was not).
    let status = |control| format!("{:?}", common::hosts::status(control).counters);
    let (a, b) = (status(&ca), status(&cb));
    for text in [&a, &b] {
        assert!(
            text.contains(&format!("connections_encrypted: {CONNECTIONS},")),
            "A: {a}\nB: {b}"
        );
    }
}
