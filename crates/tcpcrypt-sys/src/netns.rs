//! Network namespaces (ip-netns(8)): create one, run code inside it, delete it on drop.
//!
//! The tests of this crate and the end-to-end tests of the daemon run every piece of network
//! code in a namespace of their own, never in the host's. A namespace is created with
//! `ip netns add` (so it is visible to `ip netns exec` while it lives) with `lo` brought up,
//! and deleted by the [`NetNs`] guard's `Drop`, also when a test panics.
//!
//! [`NetNs::run`] runs a closure on a new thread that entered the namespace with `setns(2)`.
//! Sockets made there (netlink ones too) belong to the namespace for their whole life, and
//! processes spawned from that thread (`iptables`, `tcpdump`, ...) start inside it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A failed namespace operation, naming it.
#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    /// `ip` could not be run.
    #[error("run `{command}`: {source} (install iproute2: apt-get install iproute2)")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `ip` ran and failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The namespace file could not be opened.
    #[error("open /run/netns/{name}: {source}")]
    Open {
        /// The namespace name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `setns(2)` failed.
    #[error("setns into {name}: {source}")]
    Setns {
        /// The namespace name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A named network namespace, deleted when dropped.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates the namespace `name` (`ip netns add`) and brings its `lo` up.
    ///
    /// # Errors
    /// [`NetNsError`] naming the failed `ip` command (EEXIST if the name is taken).
    pub fn create(name: &str) -> Result<Self, NetNsError> {
        run_ip(&["netns", "add", name])?;
        // From here on the guard deletes it, also if bringing lo up fails.
        let ns = Self {
            name: name.to_owned(),
        };
        run_ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Creates a namespace named `<prefix>-<pid>-<n>`, unique within this host while the
    /// process lives (n counts up per process).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_unique(prefix: &str) -> Result<Self, NetNsError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self::create(&format!("{prefix}-{}-{n}", std::process::id()))
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the calling thread into the namespace (`setns(2)`, CLONE_NEWNET). Prefer
    /// [`run`](Self::run), which does it on a thread of its own.
    ///
    /// # Errors
    /// [`NetNsError::Open`] or [`NetNsError::Setns`].
    pub fn enter_current_thread(&self) -> Result<(), NetNsError> {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).map_err(|source| NetNsError::Open {
            name: self.name.clone(),
            source,
        })?;
        // SAFETY: a plain system call on an fd that `file` keeps open for its duration.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc == 0 {
            Ok(())
        } else {
            Err(NetNsError::Setns {
                name: self.name.clone(),
                source: io::Error::last_os_error(),
            })
        }
    }

    /// Runs `f` on a new thread inside the namespace and returns its result. A panic in `f` is
    /// propagated to the caller.
    ///
    /// # Errors
    /// [`NetNsError`] if the thread could not enter the namespace.
    pub fn run<F, R>(&self, f: F) -> Result<R, NetNsError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| {
                self.enter_current_thread()?;
                Ok(f())
            });
            match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Nothing useful to do with a failure here; a leftover shows in `ip netns list` under
        // a name that carries the creating process's id.
        let _ = run_ip(&["netns", "delete", &self.name]);
    }
}

/// Runs `ip args...` and fails on a non-zero exit.
fn run_ip(args: &[&str]) -> Result<Output, NetNsError> {
    let command = format!("ip {}", args.join(" "));
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetNsError::Spawn {
            command: command.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(NetNsError::Command {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}
