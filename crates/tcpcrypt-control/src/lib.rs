//! The control protocol of `tcpcryptd`, shared by the daemon, the `tcpcrypt` CLI and
//! applications that want their connections' session IDs (RFC 8547 §5.1).
//!
//! ```text
//!   tcpcrypt CLI ----\                                   /---- tcpcryptd: impl Handler,
//!   applications -----+-- Unix socket, one JSON line  --+      server::bind + serve
//!   (session_id,     /    per request and per reply      \     (or serve_async, feature tokio)
//!    libtcpcrypt)  Client
//! ```
//!
//! The socket is at [`DEFAULT_CONTROL_PATH`] unless the daemon is told otherwise; clients honour
//! [`CONTROL_PATH_ENV`] ([`default_path`]). The socket is root-only by default
//! ([`server::DEFAULT_SOCKET_MODE`]). The messages are in [`message`], with the wire form of each
//! in that module's docs.
//!
//! - Daemon: [`server::bind`] the socket, implement [`Handler`], run [`server::serve`] on a
//!   thread (or `server::serve_async` with the `tokio` feature).
//! - CLI: [`Client::connect`], then [`Client::request`].
//! - Applications: [`session_id`] on a connected socket.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::PathBuf;

pub mod app;
pub mod client;
pub mod message;
pub mod server;

pub use app::{session_id, session_id_at, SessionIdError};
pub use client::{Client, ControlError};
pub use message::{
    Counters, Direction, ErrorCode, Failures, Load, Policy, Request, Response, SessionIdReply,
    SessionInfo, SessionState, Status,
};
pub use server::Handler;

/// Where `tcpcryptd` serves its control socket unless started with `--control PATH`.
pub const DEFAULT_CONTROL_PATH: &str = "/run/tcpcryptd.sock";

/// Environment variable that overrides [`DEFAULT_CONTROL_PATH`] for clients.
pub const CONTROL_PATH_ENV: &str = "TCPCRYPT_CONTROL";

/// The control socket path clients use: `$TCPCRYPT_CONTROL` if set and not empty, else
/// [`DEFAULT_CONTROL_PATH`].
pub fn default_path() -> PathBuf {
    match std::env::var_os(CONTROL_PATH_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_CONTROL_PATH),
    }
}
