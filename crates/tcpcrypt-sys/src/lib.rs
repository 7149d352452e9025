//! Linux glue for `tcpcryptd`: everything that talks to the kernel, and the only crate of the
//! workspace allowed `unsafe` (style guide §1, §7). Each module is one kernel facility:
//!
//! ```text
//!   nfqueue   NETLINK_NETFILTER client: receive queued SYN/SYN-ACK/ACK packets, send verdicts
//!   bpf       the BPF option path: a sock_ops program writing the ENO options the daemon decided
//!             into its own connections' segments (no NFQUEUE round trip for them)
//!   syn_filters  socket-filter programs the rules run as xt_bpf matches, so that SYNs the
//!             daemon has nothing to decide about (to a cached server without tcpcrypt, or
//!             carrying no ENO) never cross NFQUEUE
//!   rules     the daemon's own iptables/ip6tables chains and ip rules/routes, installed and
//!             removed as one guarded unit (coexists with foreign rules)
//!   splice    splice(2) through a pipe: the plain relay's socket-to-socket copy in the kernel
//!   sockopt   SO_MARK, IP(V6)_TRANSPARENT, SO_LINGER 0, TCP_NODELAY
//!   caps      root / CAP_NET_ADMIN check with an actionable message
//!   rlimit    raise the open-file limit (RLIMIT_NOFILE) to the hard limit
//!   heap      give freed heap memory back to the kernel (malloc_trim)
//!   netns     network namespaces (create, enter, delete) for tests and tools
//!   packet_socket  AF_PACKET raw sockets on one interface (the test middlebox's bridge)
//! ```
//!
//! The packet bytes themselves are read and rewritten by the sans-IO
//! `tcpcrypt_proto::wire::packet`; nothing here interprets TCP. Kernel facts this crate relies
//! on (marks, hooks, fail-open) are in `shared/guides/linux-kernel-recipes.md` of the project.
//!
//! Every `unsafe` block is a single system call on memory this crate owns, with a `SAFETY`
//! comment; parsing of kernel replies is done in safe code on byte slices. The other `unsafe`
//! items are the `unsafe impl aya::Pod` of `bpf` and `syn_filters`, declaring the BPF maps' key
//! and value structs plain data (their layouts are checked against the C structs by unit tests).

#![cfg(target_os = "linux")]
#![warn(missing_docs)]

pub mod bpf;
pub mod caps;
pub mod heap;
pub mod netns;
pub mod nfqueue;
pub mod packet_socket;
pub mod rlimit;
pub mod rules;
pub mod sockopt;
pub mod splice;
pub mod syn_filters;
