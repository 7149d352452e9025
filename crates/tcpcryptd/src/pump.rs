//! The byte-stream side of one intercepted connection: a [`Session`] pumped between the
//! application's socket (plaintext) and the network socket (ciphertext), or a plain relay after
//! an ENO fallback. One task per connection, no thread per connection; buffers are bounded
//! (64 KiB each way plus the session's own bound) and reads and writes are 64 KiB at most.
//!
//! PSH on the last Init byte (RFC 8548 §3.3): Linux sets PSH on the last segment of each
//! write() call, so the pump writes the Init message with a write() of its own: application
//! data is fed to the session only once it is established *and* its Init is fully written.
//!
//! Closing (RFC 8548 §3.7): the peer's FINp and TCP FIN end in `shutdown(SHUT_WR)` towards the
//! application (half-close); the application's EOF becomes `Session::close()` → FINp + FIN.
//! Any failure (authentication, truncation, a reset on either side, the handshake deadline)
//! ends in an abortive close of both sockets (SO_LINGER 0): the application sees ECONNRESET,
//! never a clean end of file. The daemon sets SO_LINGER 0 on every proxied socket when it is
//! created ([`abortive_by_default`]); only [`graceful_close`] after both clean ends clears it.

use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tcpcrypt_proto::session::{Event, Read, Session};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Read and write size and per-direction buffer.
const CHUNK: usize = 64 * 1024;

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    /// The session failed (authentication, truncation, handshake timeout, ...).
    #[error("session: {0}")]
    Session(#[from] tcpcrypt_proto::Error),
    /// A socket operation failed (a reset, most often).
    #[error("{op}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> PumpError {
    move |source| PumpError::Io { op, source }
}

/// Bytes of application data moved, for the control socket.
#[derive(Debug, Default)]
pub struct Traffic {
    /// From the network to the application.
    pub bytes_in: AtomicU64,
    /// From the application to the network.
    pub bytes_out: AtomicU64,
}

/// Makes a proxied socket close abortively (SO_LINGER 0) unless [`graceful_close`] is used:
/// set right after accept/connect so that any other way the socket ends, including the
/// kernel closing it when the daemon is killed, sends a reset and never a FIN.
pub fn abortive_by_default(s: &TcpStream) {
    if let Err(e) = tcpcrypt_sys::sockopt::set_linger_zero(s) {
        tracing::debug!("set_linger_zero: {e}");
    }
}

/// Aborts both sockets: SO_LINGER 0 then close, so each side sees a reset.
pub fn abort(app: TcpStream, net: TcpStream) {
    for s in [&app, &net] {
        abortive_by_default(s);
    }
}

/// Closes both sockets of a connection whose directions both ended cleanly (each FIN already
/// sent by `shutdown(SHUT_WR)`): SO_LINGER off, so unacknowledged data is still delivered.
pub fn graceful_close(app: TcpStream, net: TcpStream) {
    for s in [&app, &net] {
        if let Err(e) = socket2::SockRef::from(s).set_linger(None) {
            tracing::debug!("clear SO_LINGER: {e}");
        }
    }
}

fn shutdown_write(s: &TcpStream, op: &'static str) -> Result<(), PumpError> {
    match socket2::SockRef::from(s).shutdown(Shutdown::Write) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        Err(e) => Err(io_err(op)(e)),
    }
}

/// Relays plain bytes both ways with half-close; on any error both sockets are reset.
///
/// # Errors
/// The first failing socket operation (both sockets were aborted).
pub async fn relay_plain(
    mut app: TcpStream,
    mut net: TcpStream,
    traffic: &Traffic,
) -> Result<(), PumpError> {
    let result = {
        let (ar, mut aw) = app.split();
        let (nr, mut nw) = net.split();
        let up = async {
            let mut r = BufReader::with_capacity(CHUNK, ar);
            let n = tokio::io::copy_buf(&mut r, &mut nw)
                .await
                .map_err(io_err("relay application → network"))?;
            traffic.bytes_out.fetch_add(n, Ordering::Relaxed);
            nw.shutdown().await.map_err(io_err("shutdown network"))
        };
        let down = async {
            let mut r = BufReader::with_capacity(CHUNK, nr);
            let n = tokio::io::copy_buf(&mut r, &mut aw)
                .await
                .map_err(io_err("relay network → application"))?;
            traffic.bytes_in.fetch_add(n, Ordering::Relaxed);
            aw.shutdown().await.map_err(io_err("shutdown application"))
        };
        tokio::try_join!(up, down).map(drop)
    };
    match result {
        Ok(()) => graceful_close(app, net),
        Err(_) => abort(app, net),
    }
    result
}

/// A bounded byte buffer with a read and a write position.
struct Buf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buf {
    fn new() -> Self {
        Self {
            data: vec![0; CHUNK],
            start: 0,
            end: 0,
        }
    }
    fn is_empty(&self) -> bool {
        self.start == self.end
    }
    fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
    fn has_room(&self) -> bool {
        self.end < self.data.len()
    }
    /// Moves pending bytes to the front so the tail has room.
    fn compact(&mut self) {
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

/// The state of one session pump.
struct Pump<'a> {
    session: &'a mut Session,
    app: &'a TcpStream,
    net: &'a TcpStream,
    traffic: &'a Traffic,
    /// Ciphertext read from the network, not yet consumed by the session.
    net_in: Buf,
    net_eof: bool,
    fin_fed: bool,
    /// Plaintext read from the application, not yet taken by the session.
    app_in: Buf,
    app_eof: bool,
    closed: bool,
    /// Plaintext for the application.
    app_out: Buf,
    peer_eof: bool,
    app_shut: bool,
    net_shut: bool,
    /// Established and the Init message fully written (PSH, see the module doc).
    init_done: bool,
}

/// Runs `session` between `app` (plaintext) and `net` (ciphertext) until both directions have
/// closed cleanly, handing the session's events to `on_event`.
///
/// # Errors
/// The session's terminal error or a failing socket operation; the caller aborts both sockets.
pub async fn pump_session(
    session: &mut Session,
    app: &TcpStream,
    net: &TcpStream,
    traffic: &Traffic,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<(), PumpError> {
    let mut p = Pump {
        session,
        app,
        net,
        traffic,
        net_in: Buf::new(),
        net_eof: false,
        fin_fed: false,
        app_in: Buf::new(),
        app_eof: false,
        closed: false,
        app_out: Buf::new(),
        peer_eof: false,
        app_shut: false,
        net_shut: false,
        init_done: false,
    };
    loop {
        while p.step()? {}
        while let Some(event) = p.session.poll_event() {
            on_event(event);
        }
        if p.app_shut && p.net_shut {
            return Ok(());
        }
        p.wait().await?;
    }
}

impl Pump<'_> {
    /// Does every piece of work possible without waiting; true if anything moved.
    fn step(&mut self) -> Result<bool, PumpError> {
        let mut moved = self.flush_ciphertext()?;
        while !self.net_in.is_empty() {
            let n = self.session.handle_ciphertext(self.net_in.pending())?;
            if n == 0 {
                break;
            }
            self.net_in.consume(n);
            moved = true;
        }
        if self.net_eof && self.net_in.is_empty() && !self.fin_fed {
            self.session.handle_peer_fin()?;
            self.fin_fed = true;
            moved = true;
        }
        if self.app_out.is_empty() && !self.peer_eof {
            match self.session.read_plaintext(&mut self.app_out.data)? {
                Read::Data(n) => {
                    self.app_out.start = 0;
                    self.app_out.end = n;
                    moved = true;
                }
                Read::Eof => {
                    self.peer_eof = true;
                    moved = true;
                }
                Read::Blocked => {}
            }
        }
        moved |= self.write_plaintext_out()?;
        if self.peer_eof && self.app_out.is_empty() && !self.app_shut {
            shutdown_write(self.app, "shutdown(SHUT_WR) towards the application")?;
            self.app_shut = true;
        }
        if !self.init_done
            && self.session.is_established()
            && self.session.peek_ciphertext().is_empty()
        {
            self.init_done = true;
            moved = true;
        }
        if self.init_done {
            while !self.app_in.is_empty() {
                let n = self.session.write_plaintext(self.app_in.pending())?;
                if n == 0 {
                    break;
                }
                self.traffic
                    .bytes_out
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.app_in.consume(n);
                moved = true;
            }
            if self.app_eof && self.app_in.is_empty() && !self.closed {
                self.session.close()?;
                self.closed = true;
                moved = true;
            }
        }
        Ok(moved)
    }

    fn flush_ciphertext(&mut self) -> Result<bool, PumpError> {
        let mut moved = false;
        loop {
            let pending = self.session.peek_ciphertext();
            if pending.is_empty() {
                return Ok(moved);
            }
            let len = pending.len().min(CHUNK);
            match self.net.try_write(&pending[..len]) {
                Ok(n) => {
                    let t = self.session.consume_ciphertext(n);
                    moved = true;
                    if t.fin && self.session.peek_ciphertext().is_empty() {
                        shutdown_write(self.net, "shutdown(SHUT_WR) towards the network")?;
                        self.net_shut = true;
                    }
                    // The Init message ends here: let its write() stand alone (PSH).
                    if t.init_end.is_some() {
                        return Ok(moved);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(moved),
                Err(e) => return Err(io_err("write to the network")(e)),
            }
        }
    }

    fn write_plaintext_out(&mut self) -> Result<bool, PumpError> {
        let mut moved = false;
        while !self.app_out.is_empty() {
            match self.app.try_write(self.app_out.pending()) {
                Ok(n) => {
                    self.traffic.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    self.app_out.consume(n);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(io_err("write to the application")(e)),
            }
        }
        Ok(moved)
    }

    /// Waits for a socket to become ready or the session's deadline, and reads what came.
    async fn wait(&mut self) -> Result<(), PumpError> {
        let want_net_read = !self.net_eof && self.net_in.has_room();
        let want_app_read = !self.app_eof && self.init_done && self.app_in.is_empty();
        let want_net_write = !self.session.peek_ciphertext().is_empty();
        let want_app_write = !self.app_out.is_empty();
        let deadline = self.session.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = self.net.readable(), if want_net_read => {
                r.map_err(io_err("wait for the network"))?;
                self.net_in.compact();
                let end = self.net_in.end;
                match self.net.try_read(&mut self.net_in.data[end..]) {
                    Ok(0) => self.net_eof = true,
                    Ok(n) => self.net_in.end += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        self.session.handle_peer_reset();
                        return Err(io_err("read from the network")(e));
                    }
                }
            }
            r = self.app.readable(), if want_app_read => {
                r.map_err(io_err("wait for the application"))?;
                match self.app.try_read(&mut self.app_in.data) {
                    Ok(0) => self.app_eof = true,
                    Ok(n) => {
                        self.app_in.start = 0;
                        self.app_in.end = n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(io_err("read from the application")(e)),
                }
            }
            r = self.net.writable(), if want_net_write => {
                r.map_err(io_err("wait for the network"))?;
            }
            r = self.app.writable(), if want_app_write => {
                r.map_err(io_err("wait for the application"))?;
            }
            () = sleep => {
                self.session.handle_timeout(Instant::now())?;
            }
        }
        Ok(())
    }
}

/// Shared handle to a connection's counters.
pub type SharedTraffic = Arc<Traffic>;
