//! The BPF option path: a sock_ops program (`bpf/eno_options.bpf.c`, built by `build.rs`)
//! that writes the TCP-ENO options the daemon decided into its upstream connections' segments
//! (the SYN's, then `45 02` until a non-SYN segment arrives) and into its listeners' SYN-ACKs,
//! and reads the option of a passive connection's completing ACK (RFC 8547 §4.1, §4.6), so
//! that those segments need no NFQUEUE round trip. The program decides nothing: every byte it
//! writes comes from [`EnoOptions`]' maps, filled by the daemon from the sans-IO core.
//!
//! A SYN-ACK option longer than [`SYN_ROOM`] is not written here: the room Linux leaves after
//! its own SYN-ACK options is 20 bytes, padding included, and a resumption answer needs 21
//! (digest §3.7), which only a rewrite of the whole option area (NFQUEUE) makes room for. A
//! fresh answer fits.
//!
//! The kernel facilities (Linux ≥ 5.10): `BPF_SOCK_OPS_HDR_OPT_LEN_CB` /
//! `BPF_SOCK_OPS_WRITE_HDR_OPT_CB` with `bpf_reserve_hdr_opt` / `bpf_store_hdr_opt`,
//! `bpf_load_hdr_opt` in `BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB`, and `bpf_get_netns_cookie`
//! (≥ 5.15) so that a program touches only its daemon's network namespace. The program is
//! attached to the daemon's own cgroup (v2) by a BPF link: it is detached when the daemon's
//! process ends, however it ends.

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use aya::maps::{HashMap, MapData, MapError};
use aya::programs::{CgroupAttachMode, SockOps};
use aya::{Ebpf, EbpfLoader, Pod};

/// Longest TCP option (the whole option space).
pub const MAX_OPTION: usize = 40;

/// The room Linux leaves in a SYN after its own options (MSS, SACK permitted with timestamps,
/// NOP and window scale: 20 bytes, padding included), into which the program writes.
pub const SYN_ROOM: usize = 20;

/// The room it leaves in a non-SYN segment (NOP, NOP, timestamps), SACK blocks aside.
pub const ACK_ROOM: usize = 28;

/// `conn.state` bits set by the program (`ST_*` in the C source).
pub mod state {
    /// Passive side: the handshake completed; `peer_option` is the completing segment's ENO.
    pub const ESTABLISHED: u8 = 0x10;
}

/// The program's map key (`struct conn_key`): one connection as this host sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ConnKey {
    family: u32,
    local_ip: [u8; 16],
    remote_ip: [u8; 16],
    local_port: u16,
    remote_port: u16,
}

/// The program's map value (`struct conn`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Conn {
    cookie: u64,
    syn_opt: [u8; MAX_OPTION],
    syn_len: u8,
    ack_eno: u8,
    state: u8,
    peer_len: u8,
    peer_flags: u8,
    peer_payload: u8,
    pad: [u8; 2],
    peer_opt: [u8; MAX_OPTION],
}

impl Default for Conn {
    fn default() -> Self {
        Self {
            cookie: 0,
            syn_opt: [0; MAX_OPTION],
            syn_len: 0,
            ack_eno: 0,
            state: 0,
            peer_len: 0,
            peer_flags: 0,
            peer_payload: 0,
            pad: [0; 2],
            peer_opt: [0; MAX_OPTION],
        }
    }
}

// SAFETY: plain `repr(C)` integers and byte arrays with no padding holes the kernel could leak
// into (both layouts are explicitly padded to match the C structs), valid for any bit pattern.
unsafe impl Pod for ConnKey {}
// SAFETY: as above.
unsafe impl Pod for Conn {}

pub(crate) const AF_INET: u32 = libc::AF_INET as u32;
pub(crate) const AF_INET6: u32 = libc::AF_INET6 as u32;

impl ConnKey {
    fn new(local: SocketAddr, remote: SocketAddr) -> Self {
        let (family, local_ip, remote_ip) = match (local.ip(), remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => (AF_INET, v4(l.octets()), v4(r.octets())),
            (l, r) => (AF_INET6, v6(l), v6(r)),
        };
        Self {
            family,
            local_ip,
            remote_ip,
            local_port: local.port(),
            remote_port: remote.port(),
        }
    }
}

/// An IPv4 address as the programs' 16-byte address fields hold it: in the first 4 bytes.
pub(crate) fn v4(o: [u8; 4]) -> [u8; 16] {
    let mut a = [0; 16];
    a[..4].copy_from_slice(&o);
    a
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

/// What the program recorded about a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// [`state`] bits.
    pub state: u8,
    /// Passive side, once [`state::ESTABLISHED`]: the ENO option of the segment that completed
    /// the handshake, whole (kind and length included), empty if it had none.
    pub peer_option: Vec<u8>,
    /// That segment's TCP flags.
    pub peer_flags: u8,
    /// Whether it carried payload.
    pub peer_payload: bool,
}

/// An active open's entry, read once ([`EnoOptions::upstream`]) for its socket's cookie and
/// written back by [`EnoOptions::set_ack_eno`].
#[derive(Debug)]
pub struct Upstream {
    key: ConnKey,
    conn: Conn,
}

impl Upstream {
    /// The cookie of the connection's socket ([`cookie_of`]).
    pub fn cookie(&self) -> u64 {
        self.conn.cookie
    }
}

/// Why the BPF option path could not start.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// This build has no BPF object (clang was missing at build time).
    #[error("this tcpcryptd was built without the BPF program (clang was missing at build time): install clang and libbpf-dev, rebuild, or use --option-path nfqueue")]
    NotBuilt,
    /// No cgroup v2 hierarchy to attach to.
    #[error("this kernel has no cgroup v2 hierarchy for this process (needed to attach the sock_ops program): use --option-path nfqueue")]
    NoCgroup2,
    /// Reading /proc or opening the cgroup.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// Loading or attaching the program (old kernel, no CAP_BPF, locked down, ...).
    #[error("load the sock_ops program: {0} (the BPF option path needs Linux 5.15 or later and CAP_BPF + CAP_NET_ADMIN; or use --option-path nfqueue)")]
    Load(String),
    /// A map operation failed.
    #[error("BPF map {map}: {source}")]
    Map {
        /// Which map.
        map: &'static str,
        /// The error.
        source: MapError,
    },
    /// An option longer than the option space.
    #[error("option of {0} bytes does not fit the TCP option space")]
    TooLong(usize),
    /// A SYN-ACK option longer than the room the kernel leaves ([`SYN_ROOM`]).
    #[error("option of {0} bytes does not fit the {SYN_ROOM} bytes Linux leaves in a SYN-ACK")]
    NoRoom(usize),
}

#[cfg(bpf_object)]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/eno_options.bpf.o"));
#[cfg(not(bpf_object))]
static OBJECT: &[u8] = &[];

/// The loaded and attached program with its two maps. Dropping it detaches the program.
pub struct EnoOptions {
    /// Active opens by socket cookie, until their `connect()` moves them to `conns`.
    connecting: HashMap<MapData, u64, Conn>,
    /// Connections by (local, remote).
    conns: HashMap<MapData, ConnKey, Conn>,
    /// Owns the program and its link.
    _ebpf: Ebpf,
}

impl std::fmt::Debug for EnoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnoOptions").finish_non_exhaustive()
    }
}

impl EnoOptions {
    /// Loads the program for this process's network namespace and attaches it to this
    /// process's cgroup (v2), next to any other program there.
    pub fn load() -> Result<Self, BpfError> {
        if OBJECT.is_empty() {
            return Err(BpfError::NotBuilt);
        }
        let probe = socket_of_this_netns()?;
        let netns =
            getsockopt_u64(&probe, libc::SO_NETNS_COOKIE).map_err(|source| BpfError::Io {
                what: "read this network namespace's cookie (SO_NETNS_COOKIE, Linux 5.14)",
                source,
            })?;
        let cgroup = open_own_cgroup2()?;
        let mut ebpf = EbpfLoader::new()
            .override_global("netns_cookie", &netns, true)
            .load(OBJECT)
            .map_err(|e| BpfError::Load(chain(&e)))?;
        let program: &mut SockOps = ebpf
            .program_mut("eno_options")
            .ok_or_else(|| BpfError::Load("program eno_options missing".to_owned()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| BpfError::Load(e.to_string()))?;
        program.load().map_err(|e| BpfError::Load(chain(&e)))?;
        program
            // A BPF link takes no flags (EINVAL) and always sits next to the cgroup's other
            // programs, as BPF_F_ALLOW_MULTI would.
            .attach(&cgroup, CgroupAttachMode::Single)
            .map_err(|e| BpfError::Load(chain(&e)))?;
        let connecting = take_map(&mut ebpf, "connecting")?;
        let conns = take_map(&mut ebpf, "conns")?;
        Ok(Self {
            connecting,
            conns,
            _ebpf: ebpf,
        })
    }

    /// Active open: `socket` (not yet connected) sends `syn_option` in its SYN, and in every
    /// retransmission of it; `ack_eno` says whether its non-SYN segments start with `45 02`
    /// (normally decided later, when the SYN-ACK is checked: [`set_ack_eno`](Self::set_ack_eno)).
    /// Returns the socket's cookie, by which [`Upstream::cookie`] names it.
    pub fn expect_connect(
        &mut self,
        socket: &impl AsFd,
        syn_option: &[u8],
        ack_eno: bool,
    ) -> Result<u64, BpfError> {
        let cookie = cookie_of(socket)?;
        let mut conn = Conn::default();
        set_option(&mut conn.syn_opt, &mut conn.syn_len, syn_option)?;
        conn.cookie = cookie;
        conn.ack_eno = u8::from(ack_eno);
        self.connecting
            .insert(cookie, conn, 0)
            .map_err(|source| BpfError::Map {
                map: "connecting",
                source,
            })?;
        Ok(cookie)
    }

    /// Forgets an active open that never called `connect()`.
    pub fn cancel_connect(&mut self, cookie: u64) {
        let _ = self.connecting.remove(&cookie);
    }

    /// Passive opens: `listener` (bound, not yet listening) gets the header callbacks for its
    /// SYN-ACKs, which carry the options given to [`expect_passive`](Self::expect_passive).
    pub fn expect_listen(&mut self, listener: &impl AsFd) -> Result<(), BpfError> {
        let cookie = cookie_of(listener)?;
        self.connecting
            .insert(cookie, Conn::default(), 0)
            .map_err(|source| BpfError::Map {
                map: "connecting",
                source,
            })
    }

    /// Passive open of (local, remote), its SYN held: its SYN-ACK (and every retransmission
    /// of it), if it comes from a listener announced by [`expect_listen`](Self::expect_listen),
    /// carries `syn_ack_option` (none if empty: the SYN-ACK's option is then written
    /// elsewhere, or the connection has none); and the program records the ENO option of the
    /// segment that completes its handshake ([`record`](Self::record), once
    /// [`state::ESTABLISHED`]).
    ///
    /// # Errors
    /// An option longer than [`SYN_ROOM`]; a failed map update.
    pub fn expect_passive(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        syn_ack_option: &[u8],
    ) -> Result<(), BpfError> {
        if syn_ack_option.len() > SYN_ROOM {
            return Err(BpfError::NoRoom(syn_ack_option.len()));
        }
        let mut conn = Conn::default();
        set_option(&mut conn.syn_opt, &mut conn.syn_len, syn_ack_option)?;
        self.conns
            .insert(ConnKey::new(local, remote), conn, 0)
            .map_err(|source| BpfError::Map {
                map: "conns",
                source,
            })
    }

    /// Active open of (local, remote), as the program holds it once `connect()` ran; `None`
    /// if it does not know the connection.
    pub fn upstream(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<Upstream>, BpfError> {
        let key = ConnKey::new(local, remote);
        Ok(self.get(&key)?.map(|conn| Upstream { key, conn }))
    }

    /// `upstream`'s SYN-ACK held: whether its non-SYN segments carry `45 02` until a non-SYN
    /// segment arrives.
    pub fn set_ack_eno(&mut self, upstream: Upstream, on: bool) -> Result<(), BpfError> {
        let Upstream { key, mut conn } = upstream;
        conn.ack_eno = u8::from(on);
        // Once the duty is over (no ENO on the ACK) the entry has no use.
        let r = if on {
            self.conns.insert(key, conn, 0)
        } else {
            self.conns.remove(&key)
        };
        r.map_err(|source| BpfError::Map {
            map: "conns",
            source,
        })
    }

    /// The record of (local, remote), if the program has one.
    pub fn record(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<Record>, BpfError> {
        Ok(self.get(&ConnKey::new(local, remote))?.as_ref().map(record))
    }

    /// Forgets (local, remote).
    pub fn remove(&mut self, local: SocketAddr, remote: SocketAddr) {
        let _ = self.conns.remove(&ConnKey::new(local, remote));
    }

    fn get(&self, key: &ConnKey) -> Result<Option<Conn>, BpfError> {
        match self.conns.get(key, 0) {
            Ok(c) => Ok(Some(c)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(BpfError::Map {
                map: "conns",
                source,
            }),
        }
    }
}

/// An error with its sources (aya's messages name the call, their sources the errno).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn record(c: &Conn) -> Record {
    let len = usize::from(c.peer_len).min(MAX_OPTION);
    Record {
        state: c.state,
        peer_option: c.peer_opt[..len].to_vec(),
        peer_flags: c.peer_flags,
        peer_payload: c.peer_payload != 0,
    }
}

fn set_option(buf: &mut [u8; MAX_OPTION], len: &mut u8, option: &[u8]) -> Result<(), BpfError> {
    if option.len() > MAX_OPTION {
        return Err(BpfError::TooLong(option.len()));
    }
    buf[..option.len()].copy_from_slice(option);
    *len = option.len() as u8;
    Ok(())
}

fn take_map<K: Pod, V: Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<HashMap<MapData, K, V>, BpfError> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| BpfError::Load(format!("map {name} missing")))?;
    HashMap::try_from(map).map_err(|source| BpfError::Map { map: name, source })
}

/// The cookie the kernel gives a socket (`SO_COOKIE`), as `bpf_get_socket_cookie` sees it.
pub fn cookie_of(socket: &impl AsFd) -> Result<u64, BpfError> {
    getsockopt_u64(socket, libc::SO_COOKIE).map_err(|source| BpfError::Io {
        what: "read a socket's cookie (SO_COOKIE)",
        source,
    })
}

pub(crate) fn getsockopt_u64(socket: &impl AsFd, opt: libc::c_int) -> io::Result<u64> {
    let mut value: u64 = 0;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given; the fd is borrowed.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

fn socket_of_this_netns() -> Result<std::os::fd::OwnedFd, BpfError> {
    // SAFETY: socket(2) with constant arguments; the result is checked and owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(BpfError::Io {
            what: "open a probe socket",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// This process's cgroup in the v2 hierarchy, opened: the mount point from
/// /proc/self/mountinfo joined with the `0::` line of /proc/self/cgroup. A process in a mount
/// namespace without that mount (`ip netns exec` remounts /sys, and init's /proc/1/root may be
/// closed to it) mounts the hierarchy on a fresh directory, opens the cgroup and detaches the
/// mount at once: the open directory stays valid and nothing is left behind.
fn open_own_cgroup2() -> Result<File, BpfError> {
    let read = |path: &'static str| {
        std::fs::read_to_string(path).map_err(|source| BpfError::Io { what: path, source })
    };
    let cgroups = read("/proc/self/cgroup")?;
    let rel = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or(BpfError::NoCgroup2)?
        .trim_start_matches('/')
        .to_owned();
    let open = |dir: &std::path::Path| {
        File::open(dir.join(&rel)).map_err(|source| BpfError::Io {
            what: "open this process's cgroup",
            source,
        })
    };
    if let Some(mount) = mount_point_of(&read("/proc/self/mountinfo")?, "cgroup2") {
        return open(&mount);
    }
    let temp = std::env::temp_dir();
    remove_stale_dirs(&temp, CGROUP2_DIR_PREFIX);
    let dir = temp.join(format!("{CGROUP2_DIR_PREFIX}{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|source| BpfError::Io {
        what: "create a directory to mount cgroup2 on",
        source,
    })?;
    let mounted = mount_fs(&dir, c"cgroup2").map_err(|e| {
        if e.raw_os_error() == Some(libc::ENODEV) {
            BpfError::NoCgroup2
        } else {
            BpfError::Io {
                what: "mount cgroup2 (none is mounted in this mount namespace)",
                source: e,
            }
        }
    });
    let file = mounted.and_then(|()| {
        let f = open(&dir);
        unmount_detached(&dir);
        f
    });
    let _ = std::fs::remove_dir(&dir);
    file
}

/// The name of the directory [`open_own_cgroup2`] mounts on, before the process ID.
const CGROUP2_DIR_PREFIX: &str = "tcpcryptd-cgroup2-";

/// Removes what daemons that no longer run left in `parent`: directories named `prefix`, a
/// process ID, then nothing or `-...`, whose process is gone (a daemon killed in the few
/// milliseconds such a directory exists, with SIGKILL). Each is unmounted if it is a mount
/// point, emptied of its files (BPF pins) and removed. A directory of a running process, or
/// one named otherwise, is left alone; so is anything that cannot be removed. Without this, a
/// later daemon given the same process ID could not create its own directory.
pub(crate) fn remove_stale_dirs(parent: &std::path::Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (pid, tail) = rest.split_at(digits);
        if pid.is_empty() || !(tail.is_empty() || tail.starts_with('-')) {
            continue;
        }
        if pid == std::process::id().to_string()
            || std::path::Path::new("/proc").join(pid).exists()
            || !entry.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let dir = entry.path();
        unmount_detached(&dir);
        if let Ok(files) = std::fs::read_dir(&dir) {
            for f in files.flatten() {
                let _ = std::fs::remove_file(f.path());
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Mounts a fresh instance of the file system `fstype` on `dir`.
pub(crate) fn mount_fs(dir: &std::path::Path, fstype: &std::ffi::CStr) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let target = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call and no data.
    let rc = unsafe {
        libc::mount(
            c"none".as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Detaches the mount on `dir` (lazily: it goes once nothing uses it).
pub(crate) fn unmount_detached(dir: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(target) = std::ffi::CString::new(dir.as_os_str().as_bytes()) {
        // SAFETY: umount2(2) with a NUL-terminated path that outlives the call.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// The mount point of the first file system of type `fstype` in a mountinfo text.
pub(crate) fn mount_point_of(mountinfo: &str, fstype: &str) -> Option<PathBuf> {
    mount_points_of(mountinfo, fstype).next()
}

/// The mount points of the file systems of type `fstype` in a mountinfo text.
pub(crate) fn mount_points_of<'a>(
    mountinfo: &'a str,
    fstype: &'a str,
) -> impl Iterator<Item = PathBuf> + 'a {
    mountinfo.lines().filter_map(move |line| {
        let (pre, post) = line.split_once(" - ")?;
        let fs = post.split_whitespace().next()?;
        let mount_point = pre.split_whitespace().nth(4)?;
        (fs == fstype).then(|| PathBuf::from(mount_point))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_directories_of_dead_processes_go_and_the_others_stay() {
        let parent = std::env::temp_dir().join(format!("stale-dirs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        std::fs::create_dir(&parent).unwrap();
        // A process ID that was in use and is no longer.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let own = std::process::id();
        let dirs = [
            (format!("tcpcryptd-{dead}-0"), false),
            (format!("tcpcryptd-{dead}"), false),
            (format!("tcpcryptd-{dead}-3-bpffs"), false),
            (format!("tcpcryptd-{own}-0"), true),
            ("tcpcryptd-1-0".to_owned(), true),   // init runs
            (format!("tcpcryptd-{dead}x"), true), // not a process ID
            (format!("tcpcryptd-cgroup2-{dead}"), true), // another prefix
            (format!("other-{dead}-0"), true),
        ];
        for (d, _) in &dirs {
            std::fs::create_dir(parent.join(d)).unwrap();
            std::fs::write(parent.join(d).join("cached_plain_peer"), b"").unwrap();
        }
        // A file with a stale name is not a directory: left alone.
        std::fs::write(parent.join(format!("tcpcryptd-{dead}-9")), b"").unwrap();
        remove_stale_dirs(&parent, "tcpcryptd-");
        for (d, stays) in &dirs {
            assert_eq!(parent.join(d).exists(), *stays, "{d}");
        }
        assert!(parent.join(format!("tcpcryptd-{dead}-9")).exists());
        remove_stale_dirs(&parent, CGROUP2_DIR_PREFIX);
        assert!(!parent.join(format!("tcpcryptd-cgroup2-{dead}")).exists());
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn finds_the_cgroup2_mount_among_v1_ones() {
        let info = "35 25 0:30 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            mount_point_of(info, "cgroup2"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            mount_point_of("35 25 0:30 / /x rw - cgroup cgroup rw\n", "cgroup2"),
            None
        );
    }

    #[test]
    fn key_layout_matches_the_c_struct() {
        // struct conn_key: u32 family, 2 × 16 address bytes, 2 × u16 ports = 40 bytes.
        assert_eq!(size_of::<ConnKey>(), 40);
        // struct conn: u64 cookie, 40 + 8 + 40 bytes.
        assert_eq!(size_of::<Conn>(), 96);
        let k = ConnKey::new(
            "10.0.0.1:4000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        );
        assert_eq!(
            (k.family, &k.local_ip[..5], k.remote_port),
            (2, &[10, 0, 0, 1, 0][..], 80)
        );
    }

    #[test]
    fn an_option_longer_than_the_space_is_refused() {
        let (mut buf, mut len) = ([0; MAX_OPTION], 0);
        assert!(matches!(
            set_option(&mut buf, &mut len, &[0; 41]),
            Err(BpfError::TooLong(41))
        ));
        set_option(&mut buf, &mut len, &[69, 3, 0x21]).unwrap();
        assert_eq!((len, &buf[..3]), (3, &[69, 3, 0x21][..]));
    }
}
