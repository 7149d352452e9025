//! The session-ID API for applications (RFC 8547 §5.1).
//!
//! RFC 8547 §5.1: implementations "MUST provide a means for applications to obtain the session
//! ID" and "MUST return an error when no session ID exists". With tcpcrypt in a daemon, the
//! application's socket is plain TCP to the kernel; the daemon knows the session by the
//! socket's 4-tuple. [`session_id`] reads that 4-tuple (getsockname, getpeername) and asks the
//! daemon over the control socket.
//!
//! ```no_run
//! use std::net::TcpStream;
//!
//! let stream = TcpStream::connect("192.0.2.1:80")?;
//! match tcpcrypt_control::session_id(&stream) {
//!     Ok(reply) => println!("session {} as {}", reply.session_id.to_hex(), reply.role),
//!     Err(e) => eprintln!("no tcpcrypt session: {e}"),
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::Path;

use socket2::{SockRef, Type};

use crate::client::{Client, ControlError};
use crate::message::{ErrorCode, Request, Response, SessionIdReply};

/// Why no session ID could be returned. Each case is distinct, as RFC 8547 §5.1 asks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionIdError {
    /// The socket is not connected (getpeername said ENOTCONN).
    #[error("socket is not connected")]
    NotConnected,
    /// The socket is not a TCP socket over IPv4 or IPv6.
    #[error("not a TCP socket")]
    NotTcp,
    /// getsockname or getpeername failed otherwise (e.g. not a socket at all).
    #[error("cannot read the socket's addresses: {0}")]
    Socket(#[source] io::Error),
    /// The daemon could not be reached or did not answer properly.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The connection runs as plain TCP: ENO fell back (RFC 8547 §4.7). `reason` says why.
    #[error("connection is not encrypted: {reason}")]
    NotEncrypted {
        /// The daemon's fallback reason.
        reason: String,
    },
    /// The tcpcrypt handshake has not finished yet; try again shortly.
    #[error("tcpcrypt handshake not finished yet")]
    Pending,
    /// The daemon handles no connection with this 4-tuple.
    #[error("tcpcryptd knows no connection {local} -> {remote}")]
    NotFound {
        /// The application's local address.
        local: SocketAddr,
        /// The application's peer address.
        remote: SocketAddr,
    },
    /// The daemon refused the request or answered something unexpected.
    #[error("tcpcryptd answered {code}: {message}")]
    Daemon {
        /// The error code (`bad_request`, or one this crate does not know).
        code: ErrorCode,
        /// The daemon's message.
        message: String,
    },
}

/// The session ID and role of a connected TCP socket, asked of the daemon at
/// [`default_path`](crate::default_path) (`$TCPCRYPT_CONTROL`, else `/run/tcpcryptd.sock`).
///
/// # Errors
/// See [`SessionIdError`]: every case where no session ID exists is an error.
pub fn session_id<S: AsFd>(socket: &S) -> Result<SessionIdReply, SessionIdError> {
    session_id_at(crate::default_path(), socket)
}

/// As [`session_id`], asking the daemon whose control socket is at `path`.
///
/// # Errors
/// See [`SessionIdError`].
pub fn session_id_at<S: AsFd>(
    path: impl AsRef<Path>,
    socket: &S,
) -> Result<SessionIdReply, SessionIdError> {
    let (local, remote) = socket_addrs(socket)?;
    let mut client = Client::connect(path)?;
    let resp = client.request(&Request::SessionId { local, remote })?;
    interpret(resp, local, remote)
}

/// The application's view of its socket: (getsockname, getpeername).
///
/// # Errors
/// [`SessionIdError::NotConnected`], [`SessionIdError::NotTcp`] or [`SessionIdError::Socket`].
pub fn socket_addrs<S: AsFd>(socket: &S) -> Result<(SocketAddr, SocketAddr), SessionIdError> {
    let sock = SockRef::from(socket);
    let local = sock.local_addr().map_err(SessionIdError::Socket)?;
    if sock.r#type().map_err(SessionIdError::Socket)? != Type::STREAM {
        return Err(SessionIdError::NotTcp);
    }
    let local = local.as_socket().ok_or(SessionIdError::NotTcp)?;
    let remote = match sock.peer_addr() {
        Ok(addr) => addr.as_socket().ok_or(SessionIdError::NotTcp)?,
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(SessionIdError::NotConnected)
        }
        Err(e) => return Err(SessionIdError::Socket(e)),
    };
    Ok((local, remote))
}

/// Turns the daemon's reply to a `session_id` request into the API's result.
fn interpret(
    resp: Response,
    local: SocketAddr,
    remote: SocketAddr,
) -> Result<SessionIdReply, SessionIdError> {
    match resp {
        Response::SessionId(reply) => Ok(reply),
        Response::Error { code, message } => Err(match code {
            ErrorCode::NotEncrypted => SessionIdError::NotEncrypted { reason: message },
            ErrorCode::Pending => SessionIdError::Pending,
            ErrorCode::NotFound => SessionIdError::NotFound { local, remote },
            ErrorCode::BadRequest | ErrorCode::Unknown => SessionIdError::Daemon { code, message },
        }),
        other => Err(ControlError::MalformedReply(format!(
            "expected a session_id reply, got {other:?}"
        ))
        .into()),
    }
}
