//! The blocking client: one Unix-socket connection, any number of requests over it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::value::RawValue;

use crate::message::{decode_line, encode_line, Request, Response};

/// How long [`Client`] waits for the daemon to accept a request or to answer it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest reply line a client accepts (a `sessions` reply of a busy daemon is large).
pub const MAX_REPLY_LEN: usize = 64 << 20;

/// Why a control request failed before the daemon could answer it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Nothing at the path, or nothing listening there.
    #[error("is tcpcryptd running? no control socket at {}", path.display())]
    NoSocket {
        /// The control socket path tried.
        path: PathBuf,
    },
    /// The socket exists but this user may not open it.
    #[error(
        "permission denied on the control socket {}: run as root or as the socket's owner",
        path.display()
    )]
    PermissionDenied {
        /// The control socket path tried.
        path: PathBuf,
    },
    /// Connecting failed for another reason.
    #[error("cannot connect to the control socket {}: {source}", path.display())]
    Connect {
        /// The control socket path tried.
        path: PathBuf,
        /// The connect(2) error.
        source: io::Error,
    },
    /// The daemon did not answer within the timeout.
    #[error("tcpcryptd did not answer within {} s", timeout.as_secs_f32())]
    Timeout {
        /// The timeout that expired.
        timeout: Duration,
    },
    /// Reading or writing the socket failed.
    #[error("control socket I/O error: {0}")]
    Io(#[source] io::Error),
    /// The daemon closed the connection without answering.
    #[error("tcpcryptd closed the control connection without answering")]
    Closed,
    /// The reply is not a valid message, or is longer than [`MAX_REPLY_LEN`].
    #[error("malformed reply from tcpcryptd: {0}")]
    MalformedReply(String),
}

impl ControlError {
    fn from_io(err: io::Error, timeout: Duration) -> Self {
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Self::Timeout { timeout },
            io::ErrorKind::UnexpectedEof => Self::Closed,
            _ => Self::Io(err),
        }
    }

    /// True when the daemon could not be reached at all (no socket, refused, no permission),
    /// as opposed to a daemon that answered badly.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::NoSocket { .. } | Self::PermissionDenied { .. } | Self::Connect { .. }
        )
    }
}

/// A connection to the daemon's control socket.
///
/// ```no_run
/// use tcpcrypt_control::{Client, Request, Response};
///
/// let mut client = Client::connect(tcpcrypt_control::default_path())?;
/// if let Response::Status(status) = client.request(&Request::Status)? {
///     println!("tcpcryptd {} up {} s", status.version, status.uptime_secs);
/// }
/// # Ok::<(), tcpcrypt_control::ControlError>(())
/// ```
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    timeout: Duration,
}

impl Client {
    /// Connects to the control socket at `path` with [`DEFAULT_TIMEOUT`].
    ///
    /// # Errors
    /// [`ControlError::NoSocket`] when nothing is there or nothing listens (ENOENT,
    /// ECONNREFUSED), [`ControlError::PermissionDenied`] on EACCES/EPERM, else
    /// [`ControlError::Connect`].
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, ControlError> {
        Self::connect_with_timeout(path, DEFAULT_TIMEOUT)
    }

    /// Connects with a read and write timeout of `timeout` for every request.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn connect_with_timeout(
        path: impl AsRef<Path>,
        timeout: Duration,
    ) -> Result<Self, ControlError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ControlError::NoSocket {
                path: path.to_owned(),
            },
            io::ErrorKind::PermissionDenied => ControlError::PermissionDenied {
                path: path.to_owned(),
            },
            _ => ControlError::Connect {
                path: path.to_owned(),
                source,
            },
        })?;
        let timeout = timeout.max(Duration::from_millis(1));
        let set = |s: &UnixStream| {
            s.set_read_timeout(Some(timeout))?;
            s.set_write_timeout(Some(timeout))
        };
        set(&stream).map_err(ControlError::Io)?;
        Ok(Self {
            reader: BufReader::new(stream),
            timeout,
        })
    }

    /// Sends one request and waits for its reply.
    ///
    /// A daemon error reply is an `Ok(Response::Error { .. })`, not an `Err`.
    ///
    /// # Errors
    /// [`ControlError::Timeout`], [`ControlError::Closed`], [`ControlError::Io`], or
    /// [`ControlError::MalformedReply`] when the line is not a [`Response`].
    pub fn request(&mut self, req: &Request) -> Result<Response, ControlError> {
        let line = self.request_raw(req)?;
        decode_line(line.as_bytes()).map_err(|e| ControlError::MalformedReply(e.to_string()))
    }

    /// Sends one request and returns its reply line exactly as received, without the `\n`.
    ///
    /// The line is checked to be a JSON object, not to be a valid [`Response`], so that a newer
    /// daemon's fields reach scripts unchanged (the CLI's `--json` uses this).
    ///
    /// # Errors
    /// As [`Client::request`].
    pub fn request_raw(&mut self, req: &Request) -> Result<String, ControlError> {
        let timeout = self.timeout;
        let stream = self.reader.get_mut();
        stream
            .write_all(&encode_line(req))
            .and_then(|()| stream.flush())
            .map_err(|e| ControlError::from_io(e, timeout))?;
        let mut line = Vec::new();
        let limit = MAX_REPLY_LEN as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| ControlError::from_io(e, timeout))?;
        if n == 0 {
            return Err(ControlError::Closed);
        }
        if line.pop() != Some(b'\n') {
            return Err(if n as u64 >= limit {
                ControlError::MalformedReply(format!("reply longer than {MAX_REPLY_LEN} bytes"))
            } else {
                ControlError::Closed
            });
        }
        let line =
            String::from_utf8(line).map_err(|e| ControlError::MalformedReply(e.to_string()))?;
        let raw: Box<RawValue> =
            serde_json::from_str(&line).map_err(|e| ControlError::MalformedReply(e.to_string()))?;
        if !raw.get().starts_with('{') {
            return Err(ControlError::MalformedReply(
                "reply is not a JSON object".into(),
            ));
        }
        Ok(line)
    }
}
