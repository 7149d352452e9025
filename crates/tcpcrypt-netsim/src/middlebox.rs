//! The middlebox's I/O: a user-space Ethernet bridge between two interfaces of a middle network
//! namespace, every frame passed through the [`Engine`].
//!
//! ```text
//!   host A ns               middle ns M                       host B ns
//!   a-veth  <==veth==>  m-a  [AF_PACKET]--Engine--[AF_PACKET]  m-b  <==veth==>  b-veth
//!   10.77.0.1                 (no addresses, no forwarding)                  10.77.0.2
//! ```
//!
//! Why a bridge on `AF_PACKET` sockets rather than NFQUEUE with routing in M: NFQUEUE can only
//! accept, drop or replace the packet it is handed, one verdict per packet, so delaying,
//! reordering, duplicating, splitting one segment into several and joining several into one,
//! and forging packets would each need a side channel (raw sockets for the extra packets,
//! verdict juggling for the delays). A bridge owns every frame outright: it sends what the
//! engine returns, when the engine says, so every impairment is the same code path. A and B
//! stay on one subnet (ARP and neighbour discovery cross the bridge untouched), so the hosts
//! need no routes, and M needs no addresses, no forwarding sysctl and no firewall rules: the
//! only state is the namespace, which its guard deletes.
//!
//! The veths' offloads must be off on both hosts' ends (`ethtool -K DEV tso off gso off gro
//! off tx off`), or the kernel hands the bridge 64 KiB super-frames that cannot be sent out
//! again; [`disable_offloads`] does that. The engine recomputes TCP checksums anyway.
//!
//! The bridge runs on its own thread (the sockets belong to M from creation, so the thread
//! itself need not stay in M), until [`Middlebox`] is dropped.

use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tcpcrypt_sys::netns::NetNs;
use tcpcrypt_sys::packet_socket::{poll_readable, PacketSocket};

use crate::config::Config;
use crate::engine::{Dir, Engine, Stats};

/// Largest frame read: a 1500-byte MTU plus the Ethernet header, with room to spare for a
/// frame that slipped past the offload settings (it is passed on, and sending it fails).
const FRAME_BUF: usize = 65_536 + 64;
/// How long the loop sleeps at most between checks of the stop flag.
const MAX_WAIT: Duration = Duration::from_millis(20);
/// Frames read from one socket per turn, so one busy side cannot starve the other.
const BATCH: usize = 64;

/// A failure setting up the middlebox.
#[derive(Debug, thiserror::Error)]
pub enum MiddleboxError {
    /// The namespace could not be entered.
    #[error(transparent)]
    NetNs(#[from] tcpcrypt_sys::netns::NetNsError),
    /// A packet socket could not be opened on an interface.
    #[error("AF_PACKET socket on {interface}: {source}")]
    Socket {
        /// The interface.
        interface: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `ethtool` failed.
    #[error("`{command}` failed: {detail} (install ethtool: apt-get install ethtool)")]
    Ethtool {
        /// The command line.
        command: String,
        /// What went wrong.
        detail: String,
    },
}

/// Turns off segmentation/receive offloads and checksum offload on interface `dev` of the
/// calling thread's namespace, so every frame on the wire is one MTU-sized segment with its
/// own checksum.
///
/// # Errors
/// [`MiddleboxError::Ethtool`].
pub fn disable_offloads(dev: &str) -> Result<(), MiddleboxError> {
    let args = [
        "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off",
    ];
    let command = format!("ethtool {}", args.join(" "));
    let out = Command::new("ethtool")
        .args(args)
        .output()
        .map_err(|e| MiddleboxError::Ethtool {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(MiddleboxError::Ethtool {
            command,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

struct Shared {
    engine: Mutex<Engine>,
    stop: AtomicBool,
    send_errors: AtomicU64,
}

/// A running middlebox; stops (and closes its sockets) when dropped.
pub struct Middlebox {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for Middlebox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Middlebox").finish_non_exhaustive()
    }
}

impl Middlebox {
    /// Starts bridging `if_a` (A's side) and `if_b` (B's side) of namespace `ns` (or the
    /// caller's namespace with `None`) through an engine with `config`. Turns off the offloads
    /// of both interfaces.
    ///
    /// # Errors
    /// [`MiddleboxError`] if the namespace, the sockets or ethtool fail.
    pub fn start(
        ns: Option<&NetNs>,
        if_a: &str,
        if_b: &str,
        config: Config,
    ) -> Result<Self, MiddleboxError> {
        let open = || -> Result<(PacketSocket, PacketSocket), MiddleboxError> {
            disable_offloads(if_a)?;
            disable_offloads(if_b)?;
            let bind = |name: &str| {
                PacketSocket::bind(name).map_err(|source| MiddleboxError::Socket {
                    interface: name.to_owned(),
                    source,
                })
            };
            Ok((bind(if_a)?, bind(if_b)?))
        };
        let (sa, sb) = match ns {
            Some(ns) => ns.run(open)??,
            None => open()?,
        };
        let shared = Arc::new(Shared {
            engine: Mutex::new(Engine::new(config)),
            stop: AtomicBool::new(false),
            send_errors: AtomicU64::new(0),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("netsim-middlebox".into())
            .spawn(move || run(&thread_shared, &sa, &sb))
            .map_err(|source| MiddleboxError::Socket {
                interface: if_a.to_owned(),
                source,
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Replaces the configuration; frames still queued are dropped and the counters start
    /// again from zero (one trial per configuration).
    pub fn set_config(&self, config: Config) {
        *self
            .shared
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Engine::new(config);
    }

    /// What the engine did since the last [`set_config`](Self::set_config).
    pub fn stats(&self) -> Stats {
        self.shared
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats()
            .clone()
    }

    /// Frames the bridge could not send (a full socket buffer or an oversized frame).
    pub fn send_errors(&self) -> u64 {
        self.shared.send_errors.load(Ordering::Relaxed)
    }

    /// Whether the bridge thread is still running (it ends only on a socket error or stop).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the bridge and returns its result.
    ///
    /// # Errors
    /// The socket error that ended the bridge early, if any.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("middlebox thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Middlebox {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// The bridge loop: read what is waiting on both sides, feed the engine, send what is due,
/// sleep until the next frame arrives or the engine's next deadline.
fn run(shared: &Shared, sa: &PacketSocket, sb: &PacketSocket) -> io::Result<()> {
    let mut buf = vec![0u8; FRAME_BUF];
    let fds = [sa.as_raw_fd(), sb.as_raw_fd()];
    while !shared.stop.load(Ordering::Relaxed) {
        let wait = {
            let engine = shared.engine.lock().unwrap_or_else(PoisonError::into_inner);
            engine
                .next_timeout()
                .map_or(MAX_WAIT, |t| t.saturating_duration_since(Instant::now()))
                .min(MAX_WAIT)
        };
        let ready = poll_readable(&fds, Some(wait))?;
        let mut engine = shared.engine.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, (sock, dir)) in [(sa, Dir::AtoB), (sb, Dir::BtoA)].into_iter().enumerate() {
            if !ready[i] {
                continue;
            }
            for _ in 0..BATCH {
                match sock.recv(&mut buf)? {
                    Some(n) => engine.push(dir, Instant::now(), buf[..n].to_vec()),
                    None => break,
                }
            }
        }
        while let Some((dir, frame)) = engine.poll(Instant::now()) {
            let out = match dir {
                Dir::AtoB => sb,
                Dir::BtoA => sa,
            };
            if out.send(&frame).is_err() {
                shared.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}
