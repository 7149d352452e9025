//! The load server: one tokio task per connection, so 10,000 idle connections cost little.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::protocol::{IDLE_ACK, MESSAGE_LEN, MODE_BULK, MODE_ECHO, MODE_IDLE, MODE_REQUEST};

/// Binds `ports` consecutive ports from `addr` and serves every mode on all of them until the
/// process ends.
///
/// # Errors
/// A listener could not be bound.
pub async fn serve(addr: SocketAddr, ports: u16) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for i in 0..ports.max(1) {
        let port = addr
            .port()
            .checked_add(i)
            .ok_or_else(|| anyhow::anyhow!("port {} + {i} is beyond 65535", addr.port()))?;
        let listener = bind(SocketAddr::new(addr.ip(), port))?;
        tasks.push(tokio::spawn(serve_on(listener)));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// A listener with a deep backlog (connection-rate runs open thousands per second).
///
/// # Errors
/// The socket could not be created or bound.
pub fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(4096)?)
}

/// Serves connections accepted on `listener` forever; a failed connection only ends its task.
///
/// # Errors
/// Never in practice: accept errors (e.g. out of file descriptors) are retried.
pub async fn serve_on(listener: TcpListener) -> anyhow::Result<()> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    let _ = handle(stream).await;
                });
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

async fn handle(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut mode = [0u8; 1];
    s.read_exact(&mut mode).await?;
    match mode[0] {
        MODE_BULK => {
            let mut buf = vec![0u8; 256 * 1024];
            let mut total: u64 = 0;
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            s.write_all(&total.to_be_bytes()).await?;
            s.shutdown().await?;
        }
        MODE_REQUEST => {
            let mut req = [0u8; MESSAGE_LEN - 1];
            s.read_exact(&mut req).await?;
            s.write_all(&[b'r'; MESSAGE_LEN]).await?;
            s.shutdown().await?;
        }
        MODE_ECHO => {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await?;
            }
            s.shutdown().await?;
        }
        MODE_IDLE => {
            s.write_all(&[IDLE_ACK]).await?;
            let mut buf = [0u8; 64];
            while s.read(&mut buf).await? != 0 {}
        }
        _ => {}
    }
    Ok(())
}
