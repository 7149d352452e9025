//! A hostile network in a box, for testing tcpcrypt (RFC 8547 TCP-ENO, RFC 8548) against the
//! impairments both RFCs discuss (RFC 8547 §4.6, §8-10; RFC 8548 §3.6-3.8, §8-9).
//!
//! - [`config`]: what the box does, per direction ([`config::Impairment`]), as data or as a
//!   spec string.
//! - [`engine`]: the sans-IO impairment engine (frames and `now` in, impaired frames out).
//! - [`middlebox`]: the I/O, a user-space Ethernet bridge on `AF_PACKET` sockets in a middle
//!   network namespace (why not NFQUEUE: see there); also the `tcpcrypt-middlebox` binary.
//! - [`topology`]: the three namespaces A, M, B on two veth pairs.
//! - [`report`]: the robustness report format shared by every robustness test: one JSON line
//!   per scenario appended to the file named by [`report::OUT_ENV`], and the renderer that turns
//!   those lines into `docs/robustness.md` (binary `robustness-report`, run by
//!   `scripts/robustness.sh`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod engine;
pub mod middlebox;
pub mod report;
pub mod rng;
pub mod topology;
