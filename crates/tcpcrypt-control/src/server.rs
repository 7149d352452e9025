//! The daemon's side: binding the control socket and answering requests with a [`Handler`].
//!
//! The protocol loop is the same for the blocking server ([`serve`], one thread per client) and
//! the tokio one (`serve_async`, feature `tokio`): read a line of at most [`MAX_REQUEST_LEN`]
//! bytes, decode a [`Request`], ask the handler, write one [`Response`] line. A line that does not
//! decode gets a `bad_request` reply and the connection stays open; a line that is too long gets
//! a `bad_request` reply and the connection is closed (the rest of it cannot be framed).

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::message::{decode_line, encode_line, ErrorCode, Request, Response};

/// The longest request line the server reads, `\n` included; longer lines close the connection.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

/// Mode of the control socket made by [`bind`] unless told otherwise: root (its owner) only.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// Most client connections served at once; more are answered `bad_request` and closed.
pub const MAX_CONNECTIONS: usize = 64;

/// A client connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Answers control requests; the daemon implements it over its connection table.
///
/// `handle` runs on the server's threads (or tokio tasks) and should return quickly: take a lock,
/// copy what is needed, release it.
pub trait Handler: Send + Sync {
    /// Answers one request. Errors are replies too ([`Response::Error`]).
    fn handle(&self, req: Request) -> Response;
}

impl<F: Fn(Request) -> Response + Send + Sync> Handler for F {
    fn handle(&self, req: Request) -> Response {
        self(req)
    }
}

/// Why [`bind`] could not set up the control socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// A daemon already listens on the socket.
    #[error("another process is listening on {}", path.display())]
    InUse {
        /// The control socket path.
        path: PathBuf,
    },
    /// Something other than a socket is at the path; it is left alone.
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket {
        /// The control socket path.
        path: PathBuf,
    },
    /// Inspecting the existing file at the path failed.
    #[error("cannot inspect {}: {source}", path.display())]
    Inspect {
        /// The control socket path.
        path: PathBuf,
        /// The stat or connect error.
        source: io::Error,
    },
    /// bind(2) failed.
    #[error("cannot bind {}: {source}", path.display())]
    Bind {
        /// The path bound (a temporary name next to the final path).
        path: PathBuf,
        /// The bind error.
        source: io::Error,
    },
    /// Setting the socket's mode failed.
    #[error("cannot set the mode of {}: {source}", path.display())]
    SetMode {
        /// The path whose mode was set.
        path: PathBuf,
        /// The chmod error.
        source: io::Error,
    },
    /// Moving the bound socket to its final path failed.
    #[error("cannot move the control socket to {}: {source}", path.display())]
    Rename {
        /// The control socket path.
        path: PathBuf,
        /// The rename error.
        source: io::Error,
    },
}

/// Binds the control socket at `path` with permission bits `mode` (e.g. [`DEFAULT_SOCKET_MODE`]).
///
/// An existing socket at `path` is replaced only if nothing listens on it (a stale socket of a
/// daemon that died). The socket is bound under a temporary name in the same directory, given its
/// mode, and then renamed into place, so it never appears at `path` with looser permissions.
/// The caller removes `path` when it shuts down.
///
/// # Errors
/// [`BindError::InUse`] when a daemon answers on `path`, [`BindError::NotASocket`] when a file
/// of another kind is there, else the failing step.
pub fn bind(path: impl AsRef<Path>, mode: u32) -> Result<UnixListener, BindError> {
    let path = path.as_ref();
    check_existing(path)?;
    let tmp = temporary_path(path);
    // A leftover of an earlier crash of this very pid number; only ever a socket we made.
    if fs::symlink_metadata(&tmp).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = fs::remove_file(&tmp);
    }
    let listener = UnixListener::bind(&tmp).map_err(|source| BindError::Bind {
        path: tmp.clone(),
        source,
    })?;
    let finish = || {
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(|source| {
            BindError::SetMode {
                path: tmp.clone(),
                source,
            }
        })?;
        fs::rename(&tmp, path).map_err(|source| BindError::Rename {
            path: path.to_owned(),
            source,
        })
    };
    if let Err(e) = finish() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(listener)
}

/// Fails unless `path` is free or holds a socket nobody listens on.
fn check_existing(path: &Path) -> Result<(), BindError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BindError::Inspect {
                path: path.to_owned(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket {
            path: path.to_owned(),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(BindError::InUse {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(source) => Err(BindError::Inspect {
            path: path.to_owned(),
            source,
        }),
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(
        || "tcpcryptd.sock".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Serves clients on `listener` forever, one thread per client (at most [`MAX_CONNECTIONS`]).
///
/// Run it on a thread of its own. Transient accept errors (a client that went away, running out
/// of file descriptors) are waited out.
///
/// # Errors
/// Returns only when accept(2) fails in a way that will not pass (e.g. the listener is invalid).
pub fn serve(listener: UnixListener, handler: Arc<dyn Handler>) -> io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if is_transient_accept_error(&e) => {
                thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(e),
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = (&stream).write_all(&encode_line(&too_many_connections()));
            continue;
        }
        let handler = Arc::clone(&handler);
        let guard = ActiveGuard(Arc::clone(&active));
        let spawned = thread::Builder::new()
            .name("tcpcrypt-control".into())
            .spawn(move || {
                let _guard = guard;
                let _ = serve_stream(stream, &*handler);
            });
        // On spawn failure the closure, and with it the stream and the guard, is dropped.
        drop(spawned);
    }
}

struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn too_many_connections() -> Response {
    Response::error(ErrorCode::BadRequest, "too many control connections")
}

pub(crate) fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted | io::ErrorKind::WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EPROTO)
    )
}

/// Serves one client connection until it closes, idles for [`IDLE_TIMEOUT`], or sends a line
/// longer than [`MAX_REQUEST_LEN`].
///
/// # Errors
/// The socket error that ended the connection (a clean close by the client is `Ok`).
pub fn serve_stream(stream: UnixStream, handler: &dyn Handler) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        (&mut reader)
            .take(MAX_REQUEST_LEN as u64)
            .read_until(b'\n', &mut line)?;
        match next_step(&line, handler) {
            Step::Done => return Ok(()),
            Step::Reply(resp) => writer.write_all(&encode_line(&resp))?,
            Step::ReplyAndClose(resp) => {
                writer.write_all(&encode_line(&resp))?;
                return linger(reader.into_inner());
            }
        }
    }
}

/// How much unread input a closing connection discards so that its last reply is not lost.
///
/// Closing a Unix socket with unread input resets it, and the peer may then lose the reply it
/// has not read yet. So after the reply the write side is shut and some input drained first.
const LINGER_DRAIN: u64 = 1 << 20;

/// How long a closing connection waits for the client to stop sending.
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);

fn linger(mut stream: UnixStream) -> io::Result<()> {
    stream.shutdown(std::net::Shutdown::Write)?;
    stream.set_read_timeout(Some(LINGER_TIMEOUT))?;
    let _ = io::copy(&mut (&mut stream).take(LINGER_DRAIN), &mut io::sink());
    Ok(())
}

/// What to do with a line read with a limit of [`MAX_REQUEST_LEN`] bytes.
pub(crate) enum Step {
    /// The client closed the connection (possibly mid-line).
    Done,
    /// Write the reply, read the next line.
    Reply(Response),
    /// Write the reply and close.
    ReplyAndClose(Response),
}

pub(crate) fn next_step(line: &[u8], handler: &dyn Handler) -> Step {
    match line.last() {
        None => Step::Done,
        Some(b'\n') => Step::Reply(match decode_line::<Request>(line) {
            Ok(req) => handler.handle(req),
            Err(e) => Response::error(ErrorCode::BadRequest, format!("malformed request: {e}")),
        }),
        Some(_) if line.len() >= MAX_REQUEST_LEN => Step::ReplyAndClose(Response::error(
            ErrorCode::BadRequest,
            format!("request longer than {MAX_REQUEST_LEN} bytes"),
        )),
        Some(_) => Step::Done,
    }
}

/// The tokio server (feature `tokio`), for a daemon whose control task runs on its runtime.
#[cfg(feature = "tokio")]
mod async_server {
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{UnixListener, UnixStream};

    use super::{
        is_transient_accept_error, next_step, too_many_connections, ActiveGuard, Handler, Step,
        IDLE_TIMEOUT, LINGER_DRAIN, LINGER_TIMEOUT, MAX_CONNECTIONS, MAX_REQUEST_LEN,
    };
    use crate::message::encode_line;

    /// Serves clients on `listener` forever, one task per client (at most [`MAX_CONNECTIONS`]).
    ///
    /// Make the listener with [`bind`](super::bind), then
    /// `tokio::net::UnixListener::from_std` (after `set_nonblocking(true)`).
    ///
    /// # Errors
    /// Returns only when accept(2) fails in a way that will not pass.
    pub async fn serve_async(listener: UnixListener, handler: Arc<dyn Handler>) -> io::Result<()> {
        let active = Arc::new(AtomicUsize::new(0));
        loop {
            let mut stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) if is_transient_accept_error(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                active.fetch_sub(1, Ordering::SeqCst);
                let _ = stream
                    .write_all(&encode_line(&too_many_connections()))
                    .await;
                continue;
            }
            let handler = Arc::clone(&handler);
            let guard = ActiveGuard(Arc::clone(&active));
            tokio::spawn(async move {
                let _guard = guard;
                let _ = serve_connection(stream, handler).await;
            });
        }
    }

    /// Serves one client connection until it closes, idles for [`IDLE_TIMEOUT`], or sends a
    /// line longer than [`MAX_REQUEST_LEN`].
    ///
    /// # Errors
    /// The socket error that ended the connection (a clean close or idle timeout is `Ok`).
    pub async fn serve_connection(stream: UnixStream, handler: Arc<dyn Handler>) -> io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut line = Vec::new();
        loop {
            line.clear();
            let mut limited = (&mut reader).take(MAX_REQUEST_LEN as u64);
            let read = limited.read_until(b'\n', &mut line);
            match tokio::time::timeout(IDLE_TIMEOUT, read).await {
                Err(_elapsed) => return Ok(()),
                Ok(result) => result?,
            };
            match next_step(&line, &*handler) {
                Step::Done => return Ok(()),
                Step::Reply(resp) => write.write_all(&encode_line(&resp)).await?,
                Step::ReplyAndClose(resp) => {
                    write.write_all(&encode_line(&resp)).await?;
                    write.shutdown().await?;
                    let mut drain = reader.take(LINGER_DRAIN);
                    let mut sink = tokio::io::sink();
                    let discard = tokio::io::copy(&mut drain, &mut sink);
                    let _ = tokio::time::timeout(LINGER_TIMEOUT, discard).await;
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(feature = "tokio")]
pub use async_server::{serve_async, serve_connection};
