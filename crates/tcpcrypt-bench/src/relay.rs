//! A null relay: accepts connections, connects each to a fixed upstream, and copies bytes both
//! ways without looking at them. Two of them (one per namespace) have the shape of any
//! transparent encrypting proxy, tcpcrypt's included: three TCP connections and two user-space
//! hops for each connection the application makes, but no key exchange, no encryption, no
//! netfilter rules and no queued segments. The benchmark measures it as the "relay floor": what
//! a proxy of that shape costs before it does any work of its own. It copies through user space
//! (no splice) on purpose: an encrypting proxy must read and write every byte.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::copy_bidirectional_with_sizes;
use tokio::net::{TcpListener, TcpStream};

/// Buffer of each direction, as large as the daemon's reads.
const BUF: usize = 64 * 1024;

/// Relays every connection accepted on each pair's first address to its second until the
/// process ends.
///
/// # Errors
/// A listener could not be bound.
pub async fn relay(pairs: Vec<(SocketAddr, SocketAddr)>) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for (listen, upstream) in pairs {
        let listener = crate::server::bind(listen)
            .map_err(|e| e.context(format!("relay listener {listen}")))?;
        tasks.push(tokio::spawn(serve(listener, upstream)));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn serve(listener: TcpListener, upstream: SocketAddr) -> anyhow::Result<()> {
    loop {
        match listener.accept().await {
            Ok((down, _)) => {
                tokio::spawn(async move {
                    let _ = carry(down, upstream).await;
                });
            }
            // Out of descriptors, for instance: the next accept may succeed.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// One connection: connect upstream, copy both ways (each direction's end of stream becomes a
/// shutdown of the other socket's writing side), then close both.
async fn carry(mut down: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
    let mut up = TcpStream::connect(upstream).await?;
    down.set_nodelay(true)?;
    up.set_nodelay(true)?;
    copy_bidirectional_with_sizes(&mut down, &mut up, BUF, BUF).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Bytes arrive intact and in order both ways, and each side's end of stream reaches the
    /// other.
    #[tokio::test]
    async fn relays_both_ways_and_half_closes() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got.reverse();
            s.write_all(&got).await.unwrap();
        });
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_addr = front.local_addr().unwrap();
        tokio::spawn(serve(front, echo_addr));

        let sent: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut c = TcpStream::connect(front_addr).await.unwrap();
        c.write_all(&sent).await.unwrap();
        c.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        let mut want = sent;
        want.reverse();
        assert_eq!(back, want);
    }
}
