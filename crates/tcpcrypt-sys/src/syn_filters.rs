//! The SYN filters (`bpf/syn_filters.bpf.c`, built by `build.rs`): two socket-filter programs
//! that the daemon's iptables rules run as matches (`-m bpf --object-pinned PATH`, xt_bpf) in
//! front of their NFQUEUE rules, so that SYNs the daemon has nothing to decide about stay in
//! the kernel:
//!
//! * `cached_plain_peer` (client side) matches an application's SYN to a destination in the
//!   `plain_peers` map, a server that answered without ENO lately: the SYN goes direct, and the
//!   connection never meets the daemon. One SYN per destination every probe interval does not
//!   match, so the daemon offers ENO to it again. The daemon fills the map
//!   ([`SynFilters::insert_plain_peer`]); entries carry their own expiry.
//! * `syn_without_eno` (server side) matches a SYN that carries no ENO option (neither kind 69
//!   nor the legacy kind 253, RFC 8547 §4.1, §11), which the daemon would only let pass.
//!
//! xt_bpf takes a pinned program by path, resolved when the rule is added: [`SynFilters::pin`]
//! pins both in a BPF file system (a fresh private mount when none is mounted, as under `ip
//! netns exec`) for as long as the returned [`Pinned`] lives, which is while the rules are
//! installed; the rules then hold the programs, and nothing stays in the file system. (A
//! daemon killed in those few milliseconds leaves its directory, and its programs pinned
//! there: the next daemon to pin removes it.)

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aya::maps::{HashMap, MapData, PerCpuArray};
use aya::programs::SocketFilter;
use aya::{Ebpf, EbpfLoader, Pod};

use crate::bpf::{
    chain, mount_fs, mount_points_of, remove_stale_dirs, unmount_detached, v4, BpfError, AF_INET,
    AF_INET6,
};

/// Where systems mount the BPF file system.
const SYSTEM_BPFFS: &str = "/sys/fs/bpf";

/// The name of a pin directory in the system's BPF file system, before the process ID.
const PIN_DIR_PREFIX: &str = "tcpcryptd-";
/// The name of a private BPF file system's mount point in the temporary directory, before
/// the process ID.
const PRIVATE_MOUNT_PREFIX: &str = "tcpcryptd-bpffs-";

/// The programs, by the name their rules use.
pub const CACHED_PLAIN_PEER: &str = "cached_plain_peer";
/// See [`CACHED_PLAIN_PEER`].
pub const SYN_WITHOUT_ENO: &str = "syn_without_eno";

/// The program's map key (`struct peer_key`): a destination.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PeerKey {
    family: u32,
    addr: [u8; 16],
    port: u16,
    pad: u16,
}

/// The program's map value (`struct peer`), in `CLOCK_MONOTONIC` nanoseconds
/// (`bpf_ktime_get_ns`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Peer {
    until_ns: u64,
    next_probe_ns: u64,
}

// SAFETY: plain `repr(C)` integers and byte arrays, explicitly padded to match the C structs
// (no implicit padding the kernel could leak into), valid for any bit pattern.
unsafe impl Pod for PeerKey {}
// SAFETY: as above.
unsafe impl Pod for Peer {}

impl PeerKey {
    fn new(dst: SocketAddr) -> Self {
        let (family, addr) = match dst.ip().to_canonical() {
            IpAddr::V4(v) => (AF_INET, v4(v.octets())),
            IpAddr::V6(v) => (AF_INET6, v.octets()),
        };
        Self {
            family,
            addr,
            port: dst.port(),
            pad: 0,
        }
    }
}

#[cfg(bpf_object)]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/syn_filters.bpf.o"));
#[cfg(not(bpf_object))]
static OBJECT: &[u8] = &[];

/// The loaded programs and their maps.
pub struct SynFilters {
    plain_peers: HashMap<MapData, PeerKey, Peer>,
    direct: PerCpuArray<MapData, u64>,
    no_eno: PerCpuArray<MapData, u64>,
    ebpf: Ebpf,
}

impl std::fmt::Debug for SynFilters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynFilters").finish_non_exhaustive()
    }
}

impl SynFilters {
    /// Loads both programs; `probe_every` is how often a cached destination's SYN still goes
    /// to the daemon.
    pub fn load(probe_every: Duration) -> Result<Self, BpfError> {
        if OBJECT.is_empty() {
            return Err(BpfError::NotBuilt);
        }
        let probe_ns = u64::try_from(probe_every.as_nanos()).unwrap_or(u64::MAX);
        let mut ebpf = EbpfLoader::new()
            .override_global("probe_ns", &probe_ns, true)
            .load(OBJECT)
            .map_err(|e| BpfError::Load(chain(&e)))?;
        for name in [CACHED_PLAIN_PEER, SYN_WITHOUT_ENO] {
            program(&mut ebpf, name)?
                .load()
                .map_err(|e| BpfError::Load(format!("{name}: {}", chain(&e))))?;
        }
        let map = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name)
                .ok_or_else(|| BpfError::Load(format!("map {name} missing")))
        };
        let plain_peers =
            HashMap::try_from(map(&mut ebpf, "plain_peers")?).map_err(|source| BpfError::Map {
                map: "plain_peers",
                source,
            })?;
        let mut count = |name: &'static str| {
            PerCpuArray::try_from(map(&mut ebpf, name)?)
                .map_err(|source| BpfError::Map { map: name, source })
        };
        let direct = count("direct_count")?;
        let no_eno = count("no_eno_count")?;
        Ok(Self {
            plain_peers,
            direct,
            no_eno,
            ebpf,
        })
    }

    /// Pins both programs for the rules that name them ([`Pinned::path`]); dropping the
    /// result removes the pins (and the file system it mounted, if any).
    pub fn pin(&mut self) -> Result<Pinned<'_>, BpfError> {
        let io = |what: &'static str| move |source| BpfError::Io { what, source };
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(io("read /proc/self/mountinfo"))?;
        // Unique per pin within the process too (tests load several).
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // The system's BPF file system if it has one; never another process's mount (such as
        // another daemon's private one below, which can go at any moment).
        let system = mount_points_of(&mountinfo, "bpf").find(|p| p == Path::new(SYSTEM_BPFFS));
        // What a daemon killed between pinning and unpinning left (its programs stay loaded
        // while pinned).
        remove_stale_dirs(&std::env::temp_dir(), PRIVATE_MOUNT_PREFIX);
        let (dir, mounted) = match system {
            Some(bpffs) => {
                remove_stale_dirs(&bpffs, PIN_DIR_PREFIX);
                let dir = bpffs.join(format!("{PIN_DIR_PREFIX}{}-{n}", std::process::id()));
                std::fs::create_dir(&dir)
                    .map_err(io("create a directory in the BPF file system"))?;
                (dir, None)
            }
            None => {
                let mount = std::env::temp_dir()
                    .join(format!("{PRIVATE_MOUNT_PREFIX}{}-{n}", std::process::id()));
                std::fs::create_dir(&mount)
                    .map_err(io("create a directory to mount a BPF file system on"))?;
                if let Err(e) = mount_fs(&mount, c"bpf") {
                    let _ = std::fs::remove_dir(&mount);
                    return Err(BpfError::Io {
                        what: "mount a BPF file system (none is mounted in this mount namespace)",
                        source: e,
                    });
                }
                (mount.clone(), Some(mount))
            }
        };
        // Dropped on an error below too: what was pinned and mounted goes.
        let pinned = Pinned {
            filters: self,
            dir,
            mounted,
        };
        for name in [CACHED_PLAIN_PEER, SYN_WITHOUT_ENO] {
            let path = pinned.path(name);
            program(&mut pinned.filters.ebpf, name)?
                .pin(&path)
                .map_err(|e| BpfError::Load(format!("pin {name}: {}", chain(&e))))?;
        }
        Ok(pinned)
    }

    /// `dst` answered without ENO: its SYNs go direct for `ttl`, but for one every probe
    /// interval (the first one after `probe_after`).
    pub fn insert_plain_peer(
        &mut self,
        dst: SocketAddr,
        ttl: Duration,
        probe_after: Duration,
    ) -> Result<(), BpfError> {
        let now = monotonic_ns()?;
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let peer = Peer {
            until_ns: now.saturating_add(ns(ttl)),
            next_probe_ns: now.saturating_add(ns(probe_after)),
        };
        self.plain_peers
            .insert(PeerKey::new(dst), peer, 0)
            .map_err(|source| BpfError::Map {
                map: "plain_peers",
                source,
            })
    }

    /// `dst` negotiated ENO: its SYNs go to the daemon again.
    pub fn remove_plain_peer(&mut self, dst: SocketAddr) {
        // Not there (never cached, or evicted): nothing to do.
        let _ = self.plain_peers.remove(&PeerKey::new(dst));
    }

    /// True if `dst` is in the map (expired or not).
    pub fn has_plain_peer(&self, dst: SocketAddr) -> bool {
        self.plain_peers.get(&PeerKey::new(dst), 0).is_ok()
    }

    /// SYNs `cached_plain_peer` let go direct so far.
    pub fn direct_count(&self) -> u64 {
        sum(&self.direct)
    }

    /// SYNs without ENO `syn_without_eno` let pass so far (a retransmitted SYN counts again).
    pub fn no_eno_count(&self) -> u64 {
        sum(&self.no_eno)
    }
}

/// The sum over CPUs of a one-element per-CPU count.
fn sum(count: &PerCpuArray<MapData, u64>) -> u64 {
    count
        .get(&0, 0)
        .map(|per_cpu| per_cpu.iter().sum())
        .unwrap_or(0)
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut SocketFilter, BpfError> {
    ebpf.program_mut(name)
        .ok_or_else(|| BpfError::Load(format!("program {name} missing")))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| BpfError::Load(e.to_string()))
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> Result<u64, BpfError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec, which `ts` is.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) } != 0 {
        return Err(BpfError::Io {
            what: "read CLOCK_MONOTONIC",
            source: std::io::Error::last_os_error(),
        });
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The programs pinned in a BPF file system, while this lives.
pub struct Pinned<'a> {
    filters: &'a mut SynFilters,
    dir: PathBuf,
    /// The private mount made for it, if no BPF file system was mounted.
    mounted: Option<PathBuf>,
}

impl Pinned<'_> {
    /// Where program `name` ([`CACHED_PLAIN_PEER`], [`SYN_WITHOUT_ENO`]) is pinned.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        for name in [CACHED_PLAIN_PEER, SYN_WITHOUT_ENO] {
            if let Ok(p) = program(&mut self.filters.ebpf, name) {
                let _ = p.unpin();
            }
        }
        match &self.mounted {
            Some(mount) => {
                unmount_detached(mount);
                let _ = std::fs::remove_dir(mount);
            }
            None => {
                let _ = std::fs::remove_dir(&self.dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout_matches_the_c_struct() {
        // struct peer_key: u32 family, 16 address bytes, u16 port, u16 pad = 24 bytes.
        assert_eq!(size_of::<PeerKey>(), 24);
        assert_eq!(size_of::<Peer>(), 16);
        let k = PeerKey::new("[::ffff:10.0.0.2]:80".parse().unwrap());
        assert_eq!(
            (k.family, &k.addr[..5], k.port),
            (2, &[10, 0, 0, 2, 0][..], 80),
            "a mapped address is the IPv4 destination its packets carry"
        );
        let k = PeerKey::new("[fd00::2]:443".parse().unwrap());
        assert_eq!(
            (k.family, k.addr[0], k.addr[15], k.port),
            (10, 0xfd, 2, 443)
        );
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_ns().unwrap();
        let b = monotonic_ns().unwrap();
        assert!(a > 0 && b >= a);
    }
}
