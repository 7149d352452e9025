//! `tcpcryptd`: transparent tcpcrypt (RFC 8547 TCP-ENO, RFC 8548 tcpcrypt) for unmodified
//! applications on Linux.
//!
//! The daemon is a thin pump around the sans-IO core (`tcpcrypt-proto`):
//!
//! ```text
//!   kernel NFQUEUE ──▶ syn (pure: ENO options in/out, flow table) ──▶ verdicts
//!         │                         │ Negotiated
//!         ▼                         ▼
//!   rules (own chains) ──▶ proxy (tokio): pre-connect, accept, Session pump ◀──▶ sockets
//!                                   │
//!                               control socket (status, sessions, session_id)
//! ```
//!
//! * [`config`]: flags and TOML, validated.
//! * [`syn`]: the SYN path as a pure function of packet bytes, with the flow table.
//! * [`rules`]: the iptables/ip rule sets of the client and server sides.
//! * [`type2_cache`]: destinations where ENO is stripped after the SYN (RFC 8547 §9).
//! * [`plain_peers`]: destinations that answered without ENO, whose connections go direct.
//! * [`expiring`]: a bounded set of keys that expire.

#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod daemon;
pub mod expiring;
pub mod keylog;
pub mod plain_peers;
pub mod pump;
pub mod rules;
pub mod syn;
pub mod type2_cache;
