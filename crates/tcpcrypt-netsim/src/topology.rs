//! The three-namespace topology the middlebox sits in: host A, the middle M, host B.
//!
//! ```text
//!   A: <dev_a> 10.77.0.1/24 fd77::1/64 ==veth== M: <m_a>   [bridge]   <m_b> ==veth== B: <dev_b> 10.77.0.2/24 fd77::2/64
//! ```
//!
//! A and B share one subnet (the same addresses as the daemon's two-host tests), M has no
//! addresses. Offloads are off on all four veth ends ([`disable_offloads`]). Every namespace is a
//! [`NetNs`] guard: dropping the topology deletes them, and with them the veths.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use tcpcrypt_sys::netns::NetNs;

use crate::middlebox::{disable_offloads, MiddleboxError};

/// A failure building the topology.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A namespace operation failed.
    #[error(transparent)]
    NetNs(#[from] tcpcrypt_sys::netns::NetNsError),
    /// An `ip` command failed.
    #[error("`{command}` failed: {stderr}")]
    Ip {
        /// The command line.
        command: String,
        /// What it printed.
        stderr: String,
    },
    /// Offloads could not be turned off.
    #[error(transparent)]
    Offloads(#[from] MiddleboxError),
}

/// Three namespaces on two veth pairs; see the module docs.
#[derive(Debug)]
pub struct Topology {
    /// Host A.
    pub a: NetNs,
    /// The middle namespace, where the bridge runs.
    pub m: NetNs,
    /// Host B.
    pub b: NetNs,
    /// A's interface.
    pub dev_a: String,
    /// B's interface.
    pub dev_b: String,
    /// M's interface toward A.
    pub m_a: String,
    /// M's interface toward B.
    pub m_b: String,
}

fn ip(args: &[&str]) -> Result<(), TopologyError> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| TopologyError::Ip {
            command: command.clone(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TopologyError::Ip {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

impl Topology {
    /// Creates the namespaces (named `<prefix>-a-<pid>-<n>` and so on), the veths, the
    /// addresses, and turns offloads off.
    ///
    /// # Errors
    /// [`TopologyError`]; whatever was created is deleted again.
    pub fn new(prefix: &str) -> Result<Self, TopologyError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let a = NetNs::create_unique(&format!("{prefix}-a"))?;
        let m = NetNs::create_unique(&format!("{prefix}-m"))?;
        let b = NetNs::create_unique(&format!("{prefix}-b"))?;
        // Interface names: at most 15 bytes, unique per process and topology.
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let t = Self {
            dev_a: format!("nsa{tag}"),
            dev_b: format!("nsb{tag}"),
            m_a: format!("nma{tag}"),
            m_b: format!("nmb{tag}"),
            a,
            m,
            b,
        };
        for (ns, dev, peer) in [(&t.a, &t.dev_a, &t.m_a), (&t.b, &t.dev_b, &t.m_b)] {
            ip(&[
                "link",
                "add",
                dev,
                "netns",
                ns.name(),
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                t.m.name(),
            ])?;
        }
        for (ns, dev, v4, v6) in [
            (&t.a, &t.dev_a, "10.77.0.1/24", "fd77::1/64"),
            (&t.b, &t.dev_b, "10.77.0.2/24", "fd77::2/64"),
        ] {
            ip(&["-n", ns.name(), "addr", "add", v4, "dev", dev])?;
            ip(&["-n", ns.name(), "addr", "add", v6, "dev", dev, "nodad"])?;
            ns.run(|| disable_offloads(dev))??;
            ip(&["-n", ns.name(), "link", "set", dev, "up"])?;
        }
        for dev in [&t.m_a, &t.m_b] {
            t.m.run(|| disable_offloads(dev))??;
            ip(&["-n", t.m.name(), "link", "set", dev, "up"])?;
        }
        Ok(t)
    }
}
