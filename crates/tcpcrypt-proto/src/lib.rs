//! The sans-IO protocol core of TCP-ENO (RFC 8547) and tcpcrypt (RFC 8548).
//!
//! This crate performs no I/O: it opens no sockets, starts no threads, reads no clock and draws
//! no OS randomness. Time and randomness are passed in, and cryptography comes from a
//! [`CryptoProvider`](crypto::CryptoProvider) (the `tcpcrypt-crypto` crate ships the default
//! one). A driver, such as the Linux daemon, feeds it the two things the kernel hands over:
//!
//! ```text
//!   SYN path (NFQUEUE)                       stream path (transparent proxy)
//!   TCP options of SYN, SYN-ACK, ACK         ciphertext bytes <-> plaintext bytes
//!            |                                        |
//!     wire::tcp_option / wire::eno             wire::init / wire::frame
//!            |                                        |
//!          eno  (roles, TEP, transcript) --Negotiated--> session (Init1/Init2, keys, frames,
//!            |                                        |          rekeying, FINp, URGp)
//!         resume (session-secret cache) <--ss[i+1]----+
//! ```
//!
//! Read RFC 8547 §4 and RFC 8548 §3 first; `../shared/spec` in the project has a digest.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod consts;
pub mod crypto;
pub mod eno;
pub mod error;
pub mod keylog;
pub mod keys;
pub mod negotiated;
pub mod resume;
pub mod session;
pub mod wire;

pub use consts::{AeadId, Role, TepId};
pub use error::{DecodeError, Error, PeerMisbehaved};
pub use keys::SessionId;
pub use negotiated::{Negotiated, Resumption};
