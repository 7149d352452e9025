//! The benchmark suite of `scripts/bench.sh`: a load tool (`tcpcrypt-load`) that measures
//! plain TCP, tcpcrypt, stunnel and wireguard-go alike between two network namespaces, and the
//! renderer of docs/performance.{json,md,svg} (issue 6).
//!
//! The client and server speak a tiny protocol of their own ([`protocol`]); the client samples
//! the CPU time and memory of the system's processes and the interface's byte counters around
//! each measurement ([`procfs`]) and prints one [`record::Record`] per measurement as a JSON
//! line; [`report`] turns the records of all rounds into medians, ratios and target verdicts.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod procfs;
pub mod protocol;
pub mod record;
pub mod relay;
pub mod report;
pub mod server;
pub mod wrk;
