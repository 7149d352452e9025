//! The byte-stream side of one intercepted connection: a [`Session`] pumped between the
//! application's socket (plaintext) and the network socket (ciphertext), or a plain relay after
//! an ENO fallback (spliced in the kernel: [`relay_plain`]). One task per connection, no thread
//! per connection.
//!
//! The data path copies no byte in user space (RFC 8548 §3.6 frames, sealed and opened in
//! place) and makes few system calls:
//! * application → network: each read() goes straight into the session's send window
//!   ([`Session::send_buffer_up_to`]: one frame; 4 KiB at first, doubling while reads fill it,
//!   up to 65518 bytes), is sealed there in
//!   place, and every sealed byte waiting (up to four frames) leaves in one write() from the
//!   session's buffer ([`Session::peek_ciphertext`]). A small write becomes a frame at once
//!   (no waiting to fill a frame; both sockets have `TCP_NODELAY`, so no Nagle delay either).
//! * network → application: reads of up to `NET_IN` bytes into the pump's buffer; only whole
//!   frames are opened there in place ([`Session::at_frame_boundary`] + the frame header),
//!   a frame cut by the buffer's end is moved to the front and completed by the next read;
//!   the plaintext of all frames opened goes to the application in one writev().
//! * memory: the pump's buffer and the session's are allocated when data comes (small at
//!   first, growing while reads fill them) and given back after [`IDLE_RELEASE`] without
//!   traffic, so an idle connection holds none; once idle connections have freed 8 MiB, the
//!   heap is trimmed ([`tcpcrypt_sys::heap::trim`]).
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

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tcpcrypt_proto::consts::{
    FRAME_HEADER_LEN, FRAME_OVERHEAD, MAX_FRAME_DATA, MAX_FRAME_LEN, MAX_SEND_BUFFER,
};
use tcpcrypt_proto::session::{Event, Peek, Session};
use tcpcrypt_proto::wire::frame::FrameHeader;
use tcpcrypt_proto::wire::init::InitKind;
use tokio::net::TcpStream;

/// Buffer of the plain relay, per direction, when it cannot splice.
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
    /// The client's first bytes on a connection that fell back to plain after an ENO SYN were
    /// tcpcrypt's Init1 (see [`relay_plain_refusing_init1`]).
    #[error("tcpcrypt Init1 on a connection that fell back to plain (ENO stripped after the SYN)")]
    Init1OnPlain,
}

impl PumpError {
    /// True if the failure came from the network side (a reset, EOF or bad reply from the
    /// peer, the handshake deadline), not from the application's socket. Every I/O operation
    /// on the network socket is named "... the network" (see the call sites).
    pub fn from_network(&self) -> bool {
        match self {
            Self::Session(_) | Self::Init1OnPlain => true,
            Self::Io { op, .. } => op.ends_with("network"),
        }
    }
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

/// Relays plain bytes both ways with half-close, each way socket → pipe → socket in the kernel
/// (splice(2), no user-space copy); on any error both sockets are reset.
///
/// # Errors
/// The first failing socket operation (both sockets were aborted).
pub async fn relay_plain(
    app: TcpStream,
    net: TcpStream,
    traffic: &Traffic,
) -> Result<(), PumpError> {
    relay(app, net, traffic, false).await
}

/// [`relay_plain`] for the server side of a connection whose SYN carried ENO but which fell
/// back to plain after it (RFC 8547 §4.6: the first ACK had no ENO; RFC 8547 §9's "type 2"
/// middlebox strips ENO from non-SYN segments): the client's daemon may believe tcpcrypt was
/// enabled and send Init1. If the client's first bytes are Init1's magic (RFC 8548 §3.3,
/// §4.3), both sockets are reset and nothing reaches the service, so the client's daemon
/// sees a failed handshake and retries without ENO. Bytes that could still be the start of
/// the magic are held until they no longer can. A plain client never starts with these four
/// bytes in practice (0x15 0x10 0x1a 0x0e: control characters no text protocol begins with,
/// chosen by RFC 8548 to be unlikely as a first message); the service's own bytes flow
/// meanwhile, so server-speaks-first protocols are not delayed.
///
/// # Errors
/// [`PumpError::Init1OnPlain`], or the first failing socket operation (both sockets were
/// aborted).
pub async fn relay_plain_refusing_init1(
    app: TcpStream,
    net: TcpStream,
    traffic: &Traffic,
) -> Result<(), PumpError> {
    relay(app, net, traffic, true).await
}

/// Reads the network side's first bytes while they may be Init1's magic; returns them once
/// they no longer can be (or at EOF).
async fn first_bytes_not_init1(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<([u8; 4], usize), PumpError> {
    use tokio::io::AsyncReadExt;
    let magic = InitKind::Init1.magic().to_be_bytes();
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() && head[..got] == magic[..got] {
        let n = r.read(&mut head[got..]).await.map_err(io_err(NET_TO_APP))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    if head[..got] == magic[..] {
        return Err(PumpError::Init1OnPlain);
    }
    Ok((head, got))
}

async fn relay(
    app: TcpStream,
    net: TcpStream,
    traffic: &Traffic,
    refuse_init1: bool,
) -> Result<(), PumpError> {
    let result = {
        let up = async {
            forward(&app, &net, &traffic.bytes_out, APP_TO_NET).await?;
            shutdown_write(&net, "shutdown network")
        };
        let down = async {
            if refuse_init1 {
                let (head, n) = first_bytes_not_init1(&mut SharedRead(&net)).await?;
                write_all(&app, &head[..n])
                    .await
                    .map_err(io_err(NET_TO_APP))?;
                traffic.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            }
            forward(&net, &app, &traffic.bytes_in, NET_TO_APP).await?;
            shutdown_write(&app, "shutdown application")
        };
        tokio::try_join!(up, down).map(drop)
    };
    match result {
        Ok(()) => graceful_close(app, net),
        Err(_) => abort(app, net),
    }
    result
}

/// The size asked of each direction's pipe in the plain relay (the default `pipe-max-size`).
/// Against 64 KiB it moved about 15% more in a bulk run here; against 256 KiB the difference
/// was within the noise.
const RELAY_PIPE: usize = 1024 * 1024;

/// The plain relay's two directions, as named in its errors: "... network" for the one whose
/// failures count as the network side's ([`PumpError::from_network`]).
const APP_TO_NET: &str = "relay application → network";
/// See [`APP_TO_NET`].
const NET_TO_APP: &str = "relay network → application";

/// Moves `from`'s bytes to `to` until `from`'s end of file, counting them in `counter` (`op`,
/// [`APP_TO_NET`] or [`NET_TO_APP`], names the direction in errors): in
/// the kernel, socket → pipe → socket ([`tcpcrypt_sys::splice::Pipe`]), no byte copied into
/// user space. The pipe is made when bytes come and closed after [`IDLE_RELEASE`] without
/// any, so an idle plain connection holds no pipe (and no descriptors beyond its sockets).
/// If no pipe can be made (out of descriptors), the bytes are copied through a buffer
/// instead.
async fn forward(
    from: &TcpStream,
    to: &TcpStream,
    counter: &AtomicU64,
    op: &'static str,
) -> Result<(), PumpError> {
    use std::os::fd::AsFd;
    use tcpcrypt_sys::splice::Pipe;
    use tokio::io::Interest;

    let err = move |source| PumpError::Io { op, source };
    let mut pipe: Option<Pipe> = None;
    loop {
        if pipe.is_some() {
            if tokio::time::timeout(IDLE_RELEASE, from.readable())
                .await
                .is_err()
            {
                pipe = None;
                continue;
            }
        } else {
            from.readable().await.map_err(err)?;
        }
        let p = match pipe {
            Some(ref p) => p,
            None => match Pipe::new(RELAY_PIPE) {
                Ok(p) => pipe.insert(p),
                Err(e) => {
                    tracing::debug!("no pipe for the plain relay ({e}): copying instead");
                    return forward_copying(from, to, counter, op).await;
                }
            },
        };
        // The pipe is empty here, so a WouldBlock is the socket's (see the splice module).
        let n = match from.try_io(Interest::READABLE, || {
            p.fill_from(from.as_fd(), p.capacity())
        }) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(err(e)),
        };
        let mut left = n;
        while left > 0 {
            to.writable().await.map_err(err)?;
            match to.try_io(Interest::WRITABLE, || p.drain_to(to.as_fd(), left)) {
                Ok(k) => left -= k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(err(e)),
            }
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// [`forward`] through a user-space buffer, for when no pipe can be made.
async fn forward_copying(
    from: &TcpStream,
    to: &TcpStream,
    counter: &AtomicU64,
    op: &'static str,
) -> Result<(), PumpError> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = SharedRead(from).read(&mut buf).await.map_err(io_err(op))?;
        if n == 0 {
            return Ok(());
        }
        write_all(to, &buf[..n]).await.map_err(io_err(op))?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Reads from a socket shared with its other direction (`&TcpStream`, which tokio gives no
/// `AsyncRead`).
struct SharedRead<'a>(&'a TcpStream);

impl tokio::io::AsyncRead for SharedRead<'_> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return std::task::Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return std::task::Poll::Ready(Err(e)),
            }
        }
    }
}

/// Writes all of `buf`, waiting for the socket to be writable.
async fn write_all(s: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        s.writable().await?;
        match s.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Bytes read from the network at most at once (four largest frames).
const NET_IN: usize = 4 * MAX_FRAME_LEN;
/// The network buffer's first size (small messages need no more).
const MIN_NET_IN: usize = 16 * 1024;
/// Plaintext ranges of opened frames waiting for one writev() to the application.
const OUT_RANGES: usize = 16;
/// Without traffic for this long, a connection gives its buffers back.
pub const IDLE_RELEASE: Duration = Duration::from_millis(500);
/// The first read from the application after a start or an idle period.
const MIN_WINDOW: usize = 4096;
/// Steps without waiting before the task yields to others on its worker thread.
const STEPS_BEFORE_YIELD: usize = 32;

/// Ciphertext read from the network, opened in place: `buf[..start]` holds opened frames
/// (whose plaintext ranges in `out` still wait for the application), `buf[start..end]` bytes
/// not yet given to the session; `end` is `buf.len()`. `buf` has no capacity until data
/// comes, and after a release.
struct NetIn {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: [Range<usize>; OUT_RANGES],
    out_head: usize,
    out_len: usize,
    /// Capacity of the next allocation: [`MIN_NET_IN`] at first and after a release,
    /// doubling while reads fill the buffer, up to [`NET_IN`].
    cap: usize,
}

impl NetIn {
    fn new() -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            end: 0,
            out: Default::default(),
            out_head: 0,
            out_len: 0,
            cap: MIN_NET_IN,
        }
    }

    fn has_out(&self) -> bool {
        self.out_head < self.out_len
    }

    /// Nothing read is waiting anywhere in the buffer.
    fn is_idle(&self) -> bool {
        !self.has_out() && self.start == self.end
    }

    fn push_out(&mut self, r: Range<usize>) {
        self.out[self.out_len] = r;
        self.out_len += 1;
    }

    /// Marks `n` bytes of the waiting plaintext as written.
    fn advance_out(&mut self, mut n: usize) {
        while n > 0 && self.has_out() {
            let r = &mut self.out[self.out_head];
            let k = n.min(r.len());
            r.start += k;
            n -= k;
            if r.start == r.end {
                self.out_head += 1;
            }
        }
        if !self.has_out() {
            self.out_head = 0;
            self.out_len = 0;
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
                self.buf.clear();
            }
        }
    }

    /// Room to read into at `end` (the buffer's spare capacity: reads fill it without it ever
    /// being cleared), allocating the buffer if needed, and moving a frame cut by the buffer's
    /// end to the front once no plaintext waits in front of it.
    fn room(&mut self) -> usize {
        if self.buf.capacity() == 0 {
            self.buf = Vec::with_capacity(self.cap);
        } else if self.cap > self.buf.capacity() && self.start == self.end && !self.has_out() {
            // Bulk: a larger buffer (nothing in it to move).
            self.buf = Vec::with_capacity(self.cap);
            self.start = 0;
            self.end = 0;
        }
        if !self.has_out() && self.start > 0 && self.buf.capacity() - self.end < MAX_FRAME_LEN {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.buf.truncate(self.end);
        }
        self.buf.capacity() - self.end
    }

    fn could_read(&self) -> bool {
        self.buf.capacity() == 0
            || self.end < self.buf.capacity()
            || (!self.has_out() && self.start > 0)
    }

    /// A read filled all the room: the next buffer may be larger.
    fn filled(&mut self) {
        self.cap = (self.cap * 2).min(NET_IN);
    }

    fn release(&mut self) {
        if self.is_idle() {
            *self = Self::new();
        }
    }
}

/// Bytes freed by idle connections since the heap was last trimmed.
static FREED: AtomicUsize = AtomicUsize::new(0);
/// Trim the heap once idle connections have freed this much.
const TRIM_AFTER: usize = 8 << 20;

/// Counts `freed` bytes; past [`TRIM_AFTER`], gives the allocator's free pages back to the
/// kernel (glibc keeps them otherwise, and the daemon's resident memory would stay at its
/// busiest).
fn trim_after(freed: usize) {
    if FREED.fetch_add(freed, Ordering::Relaxed) + freed >= TRIM_AFTER {
        FREED.store(0, Ordering::Relaxed);
        let _ = tcpcrypt_sys::heap::trim();
    }
}

/// The state of one session pump.
struct Pump<'a> {
    session: &'a mut Session,
    app: &'a TcpStream,
    net: &'a TcpStream,
    traffic: &'a Traffic,
    net_in: NetIn,
    /// The network socket reported readable and was not yet read dry.
    net_readable: bool,
    net_eof: bool,
    fin_fed: bool,
    /// The application socket reported readable and was not yet read dry.
    app_readable: bool,
    app_eof: bool,
    closed: bool,
    peer_eof: bool,
    app_shut: bool,
    net_shut: bool,
    /// Established and the Init message fully written (PSH, see the module doc).
    init_done: bool,
    /// Buffers were given back and nothing moved since.
    released: bool,
    /// Size of the next read from the application: doubles while reads fill it (bulk), back
    /// to [`MIN_WINDOW`] when the buffers are given back, so small messages keep the session's
    /// buffer small.
    app_window: usize,
}

/// Sets `TCP_NODELAY`: a frame written goes out at once, Nagle never holds it for an ACK
/// (the application's own Nagle setting already applied to its writes). Bulk loses nothing:
/// the pump writes up to four frames per write(), so few segments are short.
fn no_delay(s: &TcpStream) {
    if let Err(e) = s.set_nodelay(true) {
        tracing::debug!("set TCP_NODELAY: {e}");
    }
}

/// Writes the session's Init message (host A's Init1, RFC 8548 §3.3), all it has to send before
/// any application byte, to `net` at once, as a write() of its own (PSH); called before the
/// application's socket is there, so that the key exchange overlaps its handshake. What the
/// socket does not take now, or an error, is left to [`pump_session`], which flushes the rest
/// and reports errors.
pub fn send_init(session: &mut Session, net: &TcpStream) {
    let pending = session.peek_ciphertext();
    if pending.is_empty() {
        return;
    }
    if let Ok(n) = net.try_write(pending) {
        // Only the Init is pending (no FIN yet), and it ends this write: PSH is on it.
        let _ = session.consume_ciphertext(n);
    }
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
    no_delay(app);
    no_delay(net);
    let mut p = Pump {
        session,
        app,
        net,
        traffic,
        net_in: NetIn::new(),
        net_readable: false,
        net_eof: false,
        fin_fed: false,
        app_readable: false,
        app_eof: false,
        closed: false,
        peer_eof: false,
        app_shut: false,
        net_shut: false,
        init_done: false,
        released: false,
        app_window: MIN_WINDOW,
    };
    loop {
        let mut steps = 0;
        while p.step()? {
            p.released = false;
            steps += 1;
            if steps == STEPS_BEFORE_YIELD {
                tokio::task::yield_now().await;
                steps = 0;
            }
        }
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
        moved |= self.read_net()?;
        moved |= self.open_frames()?;
        moved |= self.deliver()?;
        if self.net_eof && self.net_in.is_idle() && !self.fin_fed {
            self.session.handle_peer_fin()?;
            self.fin_fed = true;
            moved = true;
        }
        if self.peer_eof && !self.app_shut {
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
            // Read until the send buffer is full or the socket dry: the frames then leave in
            // one write() (fewer, fuller segments; see `flush_ciphertext`).
            while self.read_app()? {
                moved = true;
            }
            if self.app_eof && !self.closed {
                self.session.close()?;
                self.closed = true;
                moved = true;
            }
        }
        Ok(moved)
    }

    /// Writes every sealed byte waiting, in one write() when the socket takes it; the Init
    /// message's last byte ends a write() of its own (PSH, RFC 8548 §3.3).
    fn flush_ciphertext(&mut self) -> Result<bool, PumpError> {
        let mut moved = false;
        loop {
            let pending = self.session.peek_ciphertext();
            if pending.is_empty() {
                return Ok(moved);
            }
            match self.net.try_write(pending) {
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

    /// Bytes of application data the session's send buffer may still take: all of it but the
    /// largest frame and its overhead. That much stays free for frames the session seals on
    /// its own (rekey answers, RFC 8548 §3.8), so our data never fills the buffer: with a full
    /// send buffer the session takes no more ciphertext, and with both directions busy the two
    /// pumps would each wait for the other to read, forever.
    fn app_room(&self) -> usize {
        (MAX_SEND_BUFFER - MAX_FRAME_LEN - FRAME_OVERHEAD)
            .saturating_sub(self.session.peek_ciphertext().len())
    }

    /// Reads application bytes straight into the session's send window and seals them there
    /// as one frame (RFC 8548 §3.6), at once.
    fn read_app(&mut self) -> Result<bool, PumpError> {
        if !self.app_readable || self.app_eof {
            return Ok(false);
        }
        let room = self.app_room();
        if room < MIN_WINDOW {
            // The network must take some first.
            return Ok(false);
        }
        let mut window = self.session.send_buffer_up_to(self.app_window.min(room))?;
        let len = window.len();
        if len == 0 {
            return Ok(false);
        }
        match self.app.try_read(&mut window) {
            Ok(0) => {
                drop(window);
                self.app_eof = true;
            }
            Ok(n) => {
                window.commit(n)?;
                self.traffic
                    .bytes_out
                    .fetch_add(n as u64, Ordering::Relaxed);
                if n == len {
                    // Bulk: larger frames, up to the largest.
                    self.app_window = (self.app_window * 2).min(MAX_FRAME_DATA);
                } else {
                    // Most likely read dry; the next readiness says for sure.
                    self.app_readable = false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.app_readable = false;
                return Ok(false);
            }
            Err(e) => return Err(io_err("read from the application")(e)),
        }
        Ok(true)
    }

    /// Reads ciphertext from the network into the free end of the buffer.
    fn read_net(&mut self) -> Result<bool, PumpError> {
        if !self.net_readable || self.net_eof {
            return Ok(false);
        }
        let room = self.net_in.room();
        if room == 0 {
            return Ok(false);
        }
        debug_assert_eq!(self.net_in.buf.len(), self.net_in.end);
        match self.net.try_read_buf(&mut self.net_in.buf) {
            Ok(0) => self.net_eof = true,
            Ok(n) => {
                self.net_in.end += n;
                if n < room {
                    self.net_readable = false;
                } else {
                    self.net_in.filled();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.net_readable = false;
                return Ok(false);
            }
            Err(e) => {
                self.session.handle_peer_reset();
                return Err(io_err("read from the network")(e));
            }
        }
        Ok(true)
    }

    /// Opens the whole frames in the buffer in place (RFC 8548 §3.6); their plaintext waits
    /// in `out`. Stops at a frame cut by the buffer's end (unless the network has ended:
    /// then the session sees the partial frame and the FIN makes it a truncation error), and
    /// while the session's own plaintext (a frame completed inside it) is unread.
    fn open_frames(&mut self) -> Result<bool, PumpError> {
        let mut moved = false;
        let n = &mut self.net_in;
        while n.start < n.end && n.out_len < OUT_RANGES {
            if matches!(self.session.peek_plaintext()?, Peek::Data(_)) {
                break;
            }
            let capacity = n.buf.capacity();
            let avail = &mut n.buf[n.start..n.end];
            if !self.net_eof && self.session.at_frame_boundary() {
                let Some(header) = avail.get(..FRAME_HEADER_LEN) else {
                    break;
                };
                // A malformed header is the session's to report, in open_in_place; a frame
                // larger than the whole (small) buffer is collected in the session.
                if FrameHeader::parse(header)
                    .is_ok_and(|h| h.frame_len() > avail.len() && h.frame_len() <= capacity)
                {
                    break;
                }
            }
            let (consumed, range) = {
                let opened = self.session.open_in_place(avail)?;
                (opened.consumed, opened.range)
            };
            if consumed == 0 {
                // Blocked: the send buffer is full (a rekey answer waits), or unread plaintext.
                break;
            }
            if range.start < range.end {
                n.push_out(n.start + range.start..n.start + range.end);
            }
            n.start += consumed;
            moved = true;
        }
        if !n.has_out() && n.start == n.end {
            n.start = 0;
            n.end = 0;
            n.buf.clear();
        }
        Ok(moved)
    }

    /// Writes the waiting plaintext to the application in stream order: the frames opened in
    /// place (one writev()), then the session's own; notes the peer's clean end of stream.
    fn deliver(&mut self) -> Result<bool, PumpError> {
        let mut moved = false;
        while self.net_in.has_out() {
            let n = &self.net_in;
            let mut iov = [IoSlice::new(&[]); OUT_RANGES];
            let count = n.out_len - n.out_head;
            for (slot, r) in iov.iter_mut().zip(&n.out[n.out_head..n.out_len]) {
                *slot = IoSlice::new(&n.buf[r.clone()]);
            }
            match self.app.try_write_vectored(&iov[..count]) {
                Ok(k) => {
                    self.traffic.bytes_in.fetch_add(k as u64, Ordering::Relaxed);
                    self.net_in.advance_out(k);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(moved),
                Err(e) => return Err(io_err("write to the application")(e)),
            }
        }
        loop {
            match self.session.peek_plaintext()? {
                Peek::Data(data) => match self.app.try_write(data) {
                    Ok(k) => {
                        self.session.consume_plaintext(k);
                        self.traffic.bytes_in.fetch_add(k as u64, Ordering::Relaxed);
                        moved = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(moved),
                    Err(e) => return Err(io_err("write to the application")(e)),
                },
                Peek::Eof => {
                    if !self.peer_eof {
                        self.peer_eof = true;
                        moved = true;
                    }
                    return Ok(moved);
                }
                Peek::Blocked => return Ok(moved),
            }
        }
    }

    /// Nothing waits in any buffer: they can be given back.
    fn idle(&self) -> bool {
        self.net_in.is_idle()
            && self.session.peek_ciphertext().is_empty()
            && matches!(self.session.peek_plaintext(), Ok(Peek::Blocked | Peek::Eof))
    }

    /// Waits for a socket to become ready, the session's deadline, or the idle release.
    async fn wait(&mut self) -> Result<(), PumpError> {
        let want_net_read = !self.net_eof && !self.net_readable && self.net_in.could_read();
        let send_room = self.app_room() >= MIN_WINDOW;
        let want_app_read = !self.app_eof && self.init_done && !self.app_readable && send_room;
        let want_net_write = !self.session.peek_ciphertext().is_empty();
        let want_app_write =
            self.net_in.has_out() || matches!(self.session.peek_plaintext(), Ok(Peek::Data(_)));
        let releasable = !self.released
            && (self.net_in.buf.capacity() > 0 || self.session.buffer_memory() > 0)
            && self.idle();
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
                self.net_readable = true;
            }
            r = self.app.readable(), if want_app_read => {
                r.map_err(io_err("wait for the application"))?;
                self.app_readable = true;
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
            () = tokio::time::sleep(IDLE_RELEASE), if releasable => {
                let held = self.net_in.buf.capacity() + self.session.buffer_memory();
                self.net_in.release();
                self.session.release_buffers();
                let freed = held - self.net_in.buf.capacity() - self.session.buffer_memory();
                trim_after(freed);
                self.released = true;
                self.app_window = MIN_WINDOW;
            }
        }
        Ok(())
    }
}

/// Shared handle to a connection's counters.
pub type SharedTraffic = Arc<Traffic>;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn first(r: impl tokio::io::AsyncRead + Unpin) -> Result<Vec<u8>, PumpError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut r = r;
        rt.block_on(first_bytes_not_init1(&mut r))
            .map(|(head, n)| head[..n].to_vec())
    }

    const MAGIC: [u8; 4] = [0x15, 0x10, 0x1a, 0x0e];

    #[test]
    fn init1_magic_is_refused_even_split_across_reads() {
        assert_eq!(MAGIC, InitKind::Init1.magic().to_be_bytes());
        let whole = [&MAGIC[..], b"\0\0\0\x30rest"].concat();
        assert!(matches!(first(&whole[..]), Err(PumpError::Init1OnPlain)));
        let split = (&MAGIC[..1]).chain(&MAGIC[1..3]).chain(&MAGIC[3..]);
        assert!(matches!(first(split), Err(PumpError::Init1OnPlain)));
    }

    #[test]
    fn other_first_bytes_pass_as_soon_as_they_cannot_be_init1() {
        assert_eq!(first(&b"GET / HTTP/1.1\r\n"[..]).unwrap(), b"GET ");
        // One byte that is not the magic's first: passed on alone, nothing more awaited.
        assert_eq!(first((&b"G"[..]).chain(&b"ET"[..])).unwrap(), b"G");
        // A prefix of the magic, then a byte that breaks it.
        let r = (&MAGIC[..2]).chain(&b"x"[..]);
        assert_eq!(first(r).unwrap(), [0x15, 0x10, b'x']);
        // Init2's magic (a server's first bytes are never checked, but it is not Init1).
        let init2 = InitKind::Init2.magic().to_be_bytes();
        assert_eq!(first(&init2[..]).unwrap(), init2);
    }

    #[test]
    fn a_prefix_then_eof_is_passed_on() {
        assert_eq!(first(&MAGIC[..3]).unwrap(), &MAGIC[..3]);
        assert!(first(&b""[..]).unwrap().is_empty());
    }

    #[test]
    fn network_side_errors_are_told_apart() {
        let net = PumpError::Io {
            op: "read from the network",
            source: io::ErrorKind::ConnectionReset.into(),
        };
        let app = PumpError::Io {
            op: "read from the application",
            source: io::ErrorKind::ConnectionReset.into(),
        };
        assert!(net.from_network() && !app.from_network());
        assert!(PumpError::Session(tcpcrypt_proto::Error::Reset).from_network());
    }
}
