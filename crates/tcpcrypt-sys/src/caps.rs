//! Privilege check: is the process root, and does it hold CAP_NET_ADMIN (capabilities(7))?
//!
//! NFQUEUE, iptables, `ip rule`, SO_MARK and IP_TRANSPARENT all need CAP_NET_ADMIN in the
//! network namespace; the daemon checks once at start-up with [`require_net_admin`] and prints
//! the error, which says what to do. The effective set is read from `/proc/self/status`
//! (`CapEff`), so no system call and no `unsafe` is involved.

use std::io;

/// The capability number of CAP_NET_ADMIN (linux/capability.h).
pub const CAP_NET_ADMIN: u32 = 12;

/// Why the privilege check failed.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// `/proc/self/status` could not be read.
    #[error("read /proc/self/status: {0}")]
    ReadStatus(#[source] io::Error),
    /// `/proc/self/status` lacks a field or holds an unparsable one.
    #[error("malformed /proc/self/status: field {0}")]
    MalformedStatus(&'static str),
    /// The process does not hold CAP_NET_ADMIN.
    #[error(
        "CAP_NET_ADMIN is required (effective uid {euid}, CapEff {cap_eff:016x}): run as root \
         (sudo), or grant the capability with `setcap cap_net_admin+ep <binary>`"
    )]
    MissingNetAdmin {
        /// Effective user ID.
        euid: u32,
        /// Effective capability set.
        cap_eff: u64,
    },
}

/// The process's effective user ID and effective capability set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Privileges {
    /// Effective user ID (0 is root).
    pub euid: u32,
    /// Effective capability set, one bit per capability number.
    pub cap_eff: u64,
}

impl Privileges {
    /// Reads the current process's privileges from `/proc/self/status`.
    ///
    /// # Errors
    /// [`CapsError::ReadStatus`] or [`CapsError::MalformedStatus`].
    pub fn current() -> Result<Self, CapsError> {
        let status = std::fs::read_to_string("/proc/self/status").map_err(CapsError::ReadStatus)?;
        Self::parse_status(&status)
    }

    /// Parses the text of a `/proc/<pid>/status` file (`Uid:` and `CapEff:` lines).
    ///
    /// # Errors
    /// [`CapsError::MalformedStatus`] naming the missing or bad field.
    pub fn parse_status(status: &str) -> Result<Self, CapsError> {
        let field = |name: &'static str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .ok_or(CapsError::MalformedStatus(name))
        };
        // "Uid:\treal\teffective\tsaved\tfs"
        let euid = field("Uid:")?
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(CapsError::MalformedStatus("Uid:"))?;
        let cap_eff = u64::from_str_radix(field("CapEff:")?, 16)
            .map_err(|_| CapsError::MalformedStatus("CapEff:"))?;
        Ok(Self { euid, cap_eff })
    }

    /// True if the effective user is root.
    pub fn is_root(&self) -> bool {
        self.euid == 0
    }

    /// True if CAP_NET_ADMIN is in the effective set.
    pub fn has_net_admin(&self) -> bool {
        self.cap_eff & (1 << CAP_NET_ADMIN) != 0
    }
}

/// Fails unless the process holds CAP_NET_ADMIN; the error says how to get it.
///
/// # Errors
/// [`CapsError::MissingNetAdmin`], or a failure to read `/proc/self/status`.
pub fn require_net_admin() -> Result<Privileges, CapsError> {
    let privileges = Privileges::current()?;
    if privileges.has_net_admin() {
        Ok(privileges)
    } else {
        Err(CapsError::MissingNetAdmin {
            euid: privileges.euid,
            cap_eff: privileges.cap_eff,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "Name:\tcat\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n\
                        CapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
    const USER: &str = "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n";
    const NET_ADMIN_ONLY: &str = "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000001000\n";

    #[test]
    fn parses_root_user_and_file_capability() {
        let root = Privileges::parse_status(ROOT).unwrap();
        assert!(root.is_root() && root.has_net_admin());
        let user = Privileges::parse_status(USER).unwrap();
        assert!(!user.is_root() && !user.has_net_admin());
        let cap = Privileges::parse_status(NET_ADMIN_ONLY).unwrap();
        assert!(!cap.is_root() && cap.has_net_admin());
    }

    #[test]
    fn malformed_status_names_the_field() {
        assert!(matches!(
            Privileges::parse_status("CapEff:\t0\n"),
            Err(CapsError::MalformedStatus("Uid:"))
        ));
        assert!(matches!(
            Privileges::parse_status("Uid:\t0\t0\t0\t0\nCapEff:\tzz\n"),
            Err(CapsError::MalformedStatus("CapEff:"))
        ));
    }

    #[test]
    fn missing_capability_message_says_what_to_do() {
        let e = CapsError::MissingNetAdmin {
            euid: 1000,
            cap_eff: 0,
        };
        let msg = e.to_string();
        assert!(
            msg.contains("run as root") && msg.contains("setcap cap_net_admin+ep"),
            "{msg}"
        );
    }

    #[test]
    fn current_process_reads() {
        // Whatever the privileges, /proc/self/status parses.
        Privileges::current().unwrap();
    }
}
