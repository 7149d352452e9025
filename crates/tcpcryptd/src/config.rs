//! The daemon's settings: command-line flags over an optional TOML file (`--config PATH`) over
//! defaults, validated into one [`Config`] before anything touches the kernel.
//!
//! Every kernel-visible name is settable (control socket path, NFQUEUE numbers, marks, listener
//! ports, chain prefix, routing table and rule preferences) so several daemons can run side by
//! side, one per network namespace.
//!
//! ```toml
//! control = "/run/tcpcryptd.sock"
//! chain_prefix = "TCPCRYPT_"
//! client = true                 # encrypt connections local applications make
//! server = true                 # encrypt connections made to local services
//! ipv6 = true
//! queue_base = 4750             # four queues: app SYN, ENO out, ENO in, server SYN
//! client_port = 4760            # client listener (TPROXY, 127.0.0.1 and ::1)
//! server_port = 4761            # TPROXY listener (127.0.0.1 and ::1)
//! route_table = 100
//! rule_pref = 100               # uses rule_pref to rule_pref + 2
//! exclude_ports = "22,443,465"  # default: the already-encrypted list
//! mandatory_ports = "8080"      # refuse plain TCP on these
//! mandatory_addrs = "10.0.0.0/8,fd00::/8,192.0.2.7"  # and to/at these addresses
//! teps = ["curve25519", "p256"] # most preferred first
//! aeads = ["aes128gcm", "chacha20poly1305"]
//! resumption = true
//! handshake_timeout_secs = 10
//! connect_timeout_ms = 3000
//! max_connections = 16384       # beyond it, new connections are left plain (fail-open)
//! threads = 0                   # worker threads; 0: half the CPUs (at least one)
//! option_path = "auto"          # who writes ENO options: "bpf", "nfqueue" or "auto" (bpf if it loads)
//! type2_cache_secs = 600        # remember a type-2 path (ENO stripped after the SYN); 0: off
//! plain_peer_cache_secs = 300   # remember a destination that answered without ENO; 0: off
//! keylog = "/root/tcpcrypt-keys.log"  # DEBUG ONLY: session secrets (see below)
//! rekey_after_bytes = 1048576   # DEBUG/TEST ONLY: rekey far earlier than the RFC limits
//! [marks]
//! upstream = 0x1
//! service = 0x2
//! redirect = 0x4
//! reject = 0x8
//! divert = 0x10
//! tproxy = 0x20
//! plain = 0x40
//! settled = 0x80
//! ```
//!
//! `keylog` (flag `--keylog FILE`, else the environment variable `TCPCRYPT_KEYLOGFILE`, else
//! the TOML key) turns on the key log of RFC 8547 §5's debug mode: see [`crate::keylog`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;
use tcpcrypt_proto::{AeadId, TepId};

/// Ports whose protocols already encrypt (TLS, SSH, ...): not intercepted by default.
pub const ALREADY_ENCRYPTED_PORTS: &[(&str, u16, u16)] = &[
    ("ssh", 22, 22),
    ("https", 443, 443),
    ("smtps/submissions", 465, 465),
    ("ldaps", 636, 636),
    ("dns-over-tls", 853, 853),
    ("ftps-data, ftps, telnets, imaps, ircs, pop3s", 989, 995),
    ("xmpp-client tls", 5223, 5223),
    ("sips", 5061, 5061),
    ("ircs", 6697, 6697),
    ("https-alt", 8443, 8443),
];

/// Why the settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML file is malformed or has unknown keys.
    #[error("parse config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid setting `{key}`: {reason}")]
    Invalid {
        /// The setting's name (TOML key or flag).
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// A set of TCP ports: single ports and inclusive ranges ("22,443,989-995").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSet {
    ranges: Vec<(u16, u16)>,
}

impl PortSet {
    /// Parses "22,443,989-995" (spaces allowed; empty string = no port).
    ///
    /// # Errors
    /// A message naming the bad item.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (parse_port(a)?, parse_port(b)?),
                None => {
                    let p = parse_port(item)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(format!("range {item:?} is empty (start > end)"));
            }
            ranges.push((lo, hi));
        }
        Ok(Self { ranges })
    }

    /// The default exclusion list: [`ALREADY_ENCRYPTED_PORTS`].
    pub fn already_encrypted() -> Self {
        Self {
            ranges: ALREADY_ENCRYPTED_PORTS
                .iter()
                .map(|&(_, lo, hi)| (lo, hi))
                .collect(),
        }
    }

    /// True if `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&port))
    }

    /// The ranges, in the order given.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }

    /// True if the set holds no port.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Each range in iptables `--dport` syntax ("22", "989:995").
    pub fn iptables_args(&self) -> Vec<String> {
        self.ranges
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}:{hi}")
                }
            })
            .collect()
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// A set of IP networks: single addresses and CIDR prefixes ("10.0.0.0/8,fd00::1").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrSet {
    nets: Vec<(IpAddr, u8)>,
}

impl AddrSet {
    /// Parses "10.0.0.0/8, 192.0.2.7, fd00::/8" (empty string = no address).
    ///
    /// # Errors
    /// A message naming the bad item.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, len) = item.split_once('/').unwrap_or((item, ""));
            let addr: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or network"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len = if len.is_empty() {
                max
            } else {
                match len.trim().parse::<u8>() {
                    Ok(l) if l <= max => l,
                    _ => return Err(format!("{item:?}: prefix length must be 0-{max}")),
                }
            };
            nets.push((addr.to_canonical(), len));
        }
        Ok(Self { nets })
    }

    /// True if `ip` (IPv4-mapped IPv6 counts as IPv4) is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|&(net, len)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }

    /// True if the set holds no network.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The networks (address, prefix length), IPv4 ones as IPv4.
    pub fn nets(&self) -> &[(IpAddr, u8)] {
        &self.nets
    }
}

impl fmt::Display for AddrSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (net, len)) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}/{len}")?;
        }
        Ok(())
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{s:?} is not a TCP port (1-65535)")),
        Ok(p) => Ok(p),
    }
}

/// The packet marks the daemon uses; each is matched as `value/value`, so they must be
/// non-zero and share no bit (one host can run both roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Marks {
    /// SO_MARK of the client proxy's upstream sockets (and their connmark).
    pub upstream: u32,
    /// SO_MARK of the server proxy's sockets to local services (connmark, fwmark route).
    pub service: u32,
    /// Verdict mark (and connmark): the application's connection goes to the client listener
    /// (TPROXY over a loopback policy route).
    pub redirect: u32,
    /// Verdict mark: REJECT with a TCP reset.
    pub reject: u32,
    /// Verdict mark: divert an incoming SYN to the TPROXY listener (also its connmark).
    pub divert: u32,
    /// The mark TPROXY sets.
    pub tproxy: u32,
    /// SO_MARK of the client proxy's plain retry sockets (ENO stripped after the SYN):
    /// neither queued nor redirected, so they go direct without ENO.
    pub plain: u32,
    /// Verdict mark (and connmark): the connection's ENO negotiation is settled, so the
    /// kernel queues none of its later segments (RFC 8547 §4.6; see [`crate::rules`]). On the
    /// BPF option path: a diverted SYN whose SYN-ACK option the program writes, so that its
    /// SYN-ACK is not queued.
    pub settled: u32,
}

impl Default for Marks {
    fn default() -> Self {
        Self {
            upstream: 0x1,
            service: 0x2,
            redirect: 0x4,
            reject: 0x8,
            divert: 0x10,
            tproxy: 0x20,
            plain: 0x40,
            settled: 0x80,
        }
    }
}

impl Marks {
    fn validate(&self) -> Result<(), ConfigError> {
        let all = [
            ("upstream", self.upstream),
            ("service", self.service),
            ("redirect", self.redirect),
            ("reject", self.reject),
            ("divert", self.divert),
            ("tproxy", self.tproxy),
            ("plain", self.plain),
            ("settled", self.settled),
        ];
        for (i, (name, m)) in all.iter().enumerate() {
            if *m == 0 {
                return Err(invalid(
                    "marks",
                    format!("{name} is 0; every mark needs a bit"),
                ));
            }
            for (other, o) in &all[..i] {
                if m & o != 0 {
                    return Err(invalid(
                        "marks",
                        format!("{name} ({m:#x}) shares bits with {other} ({o:#x})"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The NFQUEUE queue numbers, `queue_base` and the three after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queues {
    /// Client side: applications' SYNs held until the upstream connect is decided.
    pub app_syn: u16,
    /// Outgoing handshake segments that get an ENO option.
    pub eno_out: u16,
    /// Incoming handshake segments whose ENO option is read.
    pub eno_in: u16,
    /// Server side: incoming SYNs (divert or pass).
    pub server_syn: u16,
}

impl Queues {
    fn from_base(base: u16) -> Option<Self> {
        Some(Self {
            app_syn: base,
            eno_out: base.checked_add(1)?,
            eno_in: base.checked_add(2)?,
            server_syn: base.checked_add(3)?,
        })
    }
}

/// Who writes and reads the ENO options (RFC 8547 §4.1, §4.6) of the daemon's own
/// connections: its upstreams (client side) and the connections its TPROXY listener accepts
/// (server side). The decisions are the sans-IO core's either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionPath {
    /// The sock_ops program of `tcpcrypt_sys::bpf` writes them as the kernel builds each
    /// segment; NFQUEUE carries only the SYNs that need a decision (application and server
    /// SYNs), the SYN-ACK the client side must check before its ACK, and the server's SYN-ACKs
    /// that answer a resumption (longer than the room the kernel leaves).
    Bpf,
    /// Every handshake segment goes through NFQUEUE and is rewritten there.
    Nfqueue,
    /// `Bpf` if the program loads on this kernel, else `Nfqueue` (with a log line saying why).
    Auto,
}

impl std::str::FromStr for OptionPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bpf" => Ok(Self::Bpf),
            "nfqueue" => Ok(Self::Nfqueue),
            "auto" => Ok(Self::Auto),
            other => Err(format!("`{other}`: expected bpf, nfqueue or auto")),
        }
    }
}

impl fmt::Display for OptionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bpf => "bpf",
            Self::Nfqueue => "nfqueue",
            Self::Auto => "auto",
        })
    }
}

/// The validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The control socket.
    pub control: PathBuf,
    /// Prefix of the iptables chains.
    pub chain_prefix: String,
    /// Intercept local applications' outgoing connections (host A).
    pub client: bool,
    /// Intercept incoming connections to local services (host B).
    pub server: bool,
    /// Also handle IPv6.
    pub ipv6: bool,
    /// NFQUEUE numbers.
    pub queues: Queues,
    /// Packet marks.
    pub marks: Marks,
    /// Port of the client listener (TPROXY).
    pub client_port: u16,
    /// Port of the TPROXY listener (server side).
    pub server_port: u16,
    /// Routing table of the server side's `local ... dev lo` route.
    pub route_table: u32,
    /// Preference of the first ip rule (the others use `rule_pref + 1` and `rule_pref + 2`).
    pub rule_pref: u32,
    /// Ports never intercepted.
    pub exclude_ports: PortSet,
    /// Ports where plain TCP is refused (reset) when ENO fails.
    pub mandatory_ports: PortSet,
    /// Destination addresses (a remote host for the client side, this host's own address for
    /// the server side) where plain TCP is refused when ENO fails, on any intercepted port.
    pub mandatory_addrs: AddrSet,
    /// TEPs, most preferred first.
    pub teps: Vec<TepId>,
    /// AEADs, most preferred first.
    pub aeads: Vec<AeadId>,
    /// Session resumption (RFC 8548 §3.5).
    pub resumption: bool,
    /// How long Init1/Init2 may take.
    pub handshake_timeout: Duration,
    /// How long a pre-connect (upstream or to the local service) may take.
    pub connect_timeout: Duration,
    /// Connections the daemon proxies at once (held SYNs, pre-connected sockets, pairs);
    /// beyond it new connections are not intercepted and stay plain TCP (fail-open).
    pub max_connections: usize,
    /// Worker threads of the daemon's runtime ([`Config::worker_threads`]); 0: automatic.
    pub threads: usize,
    /// Who writes and reads the ENO options of the daemon's own connections.
    pub option_path: OptionPath,
    /// How long a destination address stays cached as a type-2 path (RFC 8547 §9: ENO
    /// stripped after the SYN), its new connections going direct without ENO; zero: off
    /// ([`crate::type2_cache`]).
    pub type2_cache_ttl: Duration,
    /// How long a destination (address and port) that answered without ENO stays cached,
    /// its new connections going direct, not through the daemon; zero: off
    /// ([`crate::plain_peers`]).
    pub plain_peer_cache_ttl: Duration,
    /// Debug mode (RFC 8547 §5): the key log file, if on.
    pub keylog: Option<PathBuf>,
    /// Debugging and tests only: rekey after this many ciphertext bytes per generation instead
    /// of the RFC 8548 §3.8 limits ([`SessionConfig::rekey_after_bytes`]).
    ///
    /// [`SessionConfig::rekey_after_bytes`]: tcpcrypt_proto::session::SessionConfig::rekey_after_bytes
    pub rekey_after_bytes: Option<u64>,
}

impl Config {
    /// The runtime's worker threads: `threads`, or if 0 half the CPUs this process may use
    /// (at least one). The daemon shares the machine with the applications whose traffic it
    /// carries (and with the kernel's TCP work for three connections per proxied one): with a
    /// thread per CPU its threads compete with them and hand work to each other across CPUs,
    /// which on a 2-CPU host cost about 15% of the fresh connect + request latency
    /// (docs/performance.md).
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        (cpus / 2).max(1)
    }

    /// The ENO negotiation settings: TEPs least preferred first (RFC 8547 §4.5).
    pub fn eno_config(&self) -> tcpcrypt_proto::eno::Config {
        let teps: Vec<TepId> = self.teps.iter().rev().copied().collect();
        // Validated in `build`: tcpcrypt TEPs, no duplicates.
        tcpcrypt_proto::eno::Config::new(&teps)
            .unwrap_or_default()
            .with_resumption(self.resumption, self.resumption)
            .with_cache_secrets(self.resumption)
    }

    /// The stream-path settings.
    pub fn session_config(&self) -> tcpcrypt_proto::session::SessionConfig {
        tcpcrypt_proto::session::SessionConfig {
            aead_offer: self.aeads.clone(),
            aead_preference: self.aeads.clone(),
            handshake_timeout: self.handshake_timeout,
            rekey_after_bytes: self
                .rekey_after_bytes
                .unwrap_or(tcpcrypt_proto::consts::REKEY_AFTER_BYTES),
            ..Default::default()
        }
    }

    /// True if connections to `port` are left alone.
    pub fn excluded(&self, port: u16) -> bool {
        self.exclude_ports.contains(port)
    }

    /// True if plain TCP to `dst` is refused: its port is mandatory or its address is.
    pub fn mandatory(&self, dst: SocketAddr) -> bool {
        self.mandatory_ports.contains(dst.port()) || self.mandatory_addrs.contains(dst.ip())
    }
}

/// Command-line flags; each overrides the same key of the TOML file.
#[derive(Clone, Debug, Default, Parser)]
#[command(
    name = "tcpcryptd",
    version,
    about = "Transparent tcpcrypt (RFC 8547/8548) for Linux"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Control socket path.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Prefix of the iptables chains.
    #[arg(long)]
    pub chain_prefix: Option<String>,
    /// Intercept local applications' outgoing connections (true/false).
    #[arg(long)]
    pub client: Option<bool>,
    /// Intercept incoming connections to local services (true/false).
    #[arg(long)]
    pub server: Option<bool>,
    /// Handle IPv6 too (true/false).
    #[arg(long)]
    pub ipv6: Option<bool>,
    /// First of four NFQUEUE numbers.
    #[arg(long)]
    pub queue_base: Option<u16>,
    /// Port of the client (TPROXY) listener on 127.0.0.1 and ::1.
    #[arg(long)]
    pub client_port: Option<u16>,
    /// Port of the server (TPROXY) listener on 127.0.0.1 and ::1.
    #[arg(long)]
    pub server_port: Option<u16>,
    /// Routing table for the server side's loopback route.
    #[arg(long)]
    pub route_table: Option<u32>,
    /// Preference of the first ip rule (the second uses +1).
    #[arg(long)]
    pub rule_pref: Option<u32>,
    /// Ports never intercepted, e.g. "22,443,989-995".
    #[arg(long)]
    pub exclude_ports: Option<String>,
    /// Ports where plain TCP is refused when ENO fails.
    #[arg(long)]
    pub mandatory_ports: Option<String>,
    /// Destination addresses/networks where plain TCP is refused when ENO fails,
    /// e.g. "10.0.0.0/8,fd00::/8,192.0.2.7".
    #[arg(long)]
    pub mandatory_addrs: Option<String>,
    /// TEPs, most preferred first, comma-separated (curve25519,curve448,p256,p521).
    #[arg(long, value_delimiter = ',')]
    pub teps: Option<Vec<String>>,
    /// AEADs, most preferred first (aes128gcm,aes256gcm,chacha20poly1305).
    #[arg(long, value_delimiter = ',')]
    pub aeads: Option<Vec<String>>,
    /// Session resumption (true/false).
    #[arg(long)]
    pub resumption: Option<bool>,
    /// Init1/Init2 deadline in seconds.
    #[arg(long)]
    pub handshake_timeout_secs: Option<u64>,
    /// Pre-connect deadline in milliseconds.
    #[arg(long)]
    pub connect_timeout_ms: Option<u64>,
    /// Connections proxied at once; beyond it new ones stay plain (fail-open).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Worker threads; 0 (the default): half the CPUs, at least one.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Who writes the ENO options of the daemon's own connections: "bpf" (a sock_ops
    /// program; only application and server SYNs, the SYN-ACK of the daemon's upstreams and
    /// the server's SYN-ACKs that answer a resumption are queued), "nfqueue" (every handshake
    /// segment is queued and rewritten), or "auto" (the default: bpf if the program loads,
    /// else nfqueue).
    #[arg(long, value_name = "PATH")]
    pub option_path: Option<String>,
    /// Seconds a destination stays cached as a type-2 path (ENO stripped after the SYN): its
    /// new connections go direct without ENO; 0 turns the cache off.
    #[arg(long)]
    pub type2_cache_secs: Option<u64>,
    /// Seconds a destination (address and port) that answered without ENO stays cached: its
    /// new connections go direct, not through the daemon; 0 turns the cache off.
    #[arg(long)]
    pub plain_peer_cache_secs: Option<u64>,
    /// Packet marks as "upstream,service,redirect,reject,divert,tproxy", optionally followed
    /// by ",plain" and ",settled" (hex or decimal).
    #[arg(long)]
    pub marks: Option<String>,
    /// DEBUG ONLY: append each encrypted connection's secret to FILE (created 0600), so that
    /// captures can be decrypted (`tcpcrypt inspect`). Default: $TCPCRYPT_KEYLOGFILE, else off.
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<PathBuf>,
    /// DEBUG/TEST ONLY: rekey after this many ciphertext bytes per key generation.
    #[arg(long, value_name = "BYTES")]
    pub rekey_after_bytes: Option<u64>,
    /// Print the firewall and routing commands the daemon would run, then exit.
    #[arg(long)]
    pub print_rules: bool,
}

/// The TOML file: the same keys as the flags (marks as a table).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    control: Option<PathBuf>,
    chain_prefix: Option<String>,
    client: Option<bool>,
    server: Option<bool>,
    ipv6: Option<bool>,
    queue_base: Option<u16>,
    client_port: Option<u16>,
    server_port: Option<u16>,
    route_table: Option<u32>,
    rule_pref: Option<u32>,
    exclude_ports: Option<String>,
    mandatory_ports: Option<String>,
    mandatory_addrs: Option<String>,
    teps: Option<Vec<String>>,
    aeads: Option<Vec<String>>,
    resumption: Option<bool>,
    handshake_timeout_secs: Option<u64>,
    connect_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    threads: Option<usize>,
    option_path: Option<String>,
    type2_cache_secs: Option<u64>,
    plain_peer_cache_secs: Option<u64>,
    marks: Option<Marks>,
    keylog: Option<PathBuf>,
    rekey_after_bytes: Option<u64>,
}

/// The environment variable naming the key log file when `--keylog` is not given.
pub const KEYLOG_ENV: &str = "TCPCRYPT_KEYLOGFILE";

/// Defaults.
const DEFAULT_CONTROL: &str = tcpcrypt_control::DEFAULT_CONTROL_PATH;
const DEFAULT_PREFIX: &str = "TCPCRYPT_";
const DEFAULT_QUEUE_BASE: u16 = 4750;
const DEFAULT_CLIENT_PORT: u16 = 4760;
const DEFAULT_SERVER_PORT: u16 = 4761;
const DEFAULT_ROUTE_TABLE: u32 = 100;
const DEFAULT_RULE_PREF: u32 = 100;
const DEFAULT_HANDSHAKE_TIMEOUT_SECS: u64 = 10;
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3000;
/// As many as the SYN path's flow table holds ([`crate::syn::Limits`]).
const DEFAULT_MAX_CONNECTIONS: usize = 16384;
/// Ten minutes.
const DEFAULT_TYPE2_CACHE_SECS: u64 = 600;
/// Five minutes: short enough that a peer that starts speaking tcpcrypt, or a downgrade by a
/// passing on-path attacker, is not remembered for long ([`crate::plain_peers`]).
const DEFAULT_PLAIN_PEER_CACHE_SECS: u64 = 300;
/// Longest chain suffix the rule sets use ("S_MPRE"); iptables allows 28 characters.
const MAX_PREFIX_LEN: usize = 28 - 6;

/// TEP names accepted in settings, with their identifiers.
pub const TEP_NAMES: &[(&str, TepId)] = &[
    ("curve25519", TepId::TCPCRYPT_ECDHE_CURVE25519),
    ("curve448", TepId::TCPCRYPT_ECDHE_CURVE448),
    ("p256", TepId::TCPCRYPT_ECDHE_P256),
    ("p521", TepId::TCPCRYPT_ECDHE_P521),
];

/// AEAD names accepted in settings, with their identifiers.
pub const AEAD_NAMES: &[(&str, AeadId)] = &[
    ("aes128gcm", AeadId::AES_128_GCM),
    ("aes256gcm", AeadId::AES_256_GCM),
    ("chacha20poly1305", AeadId::CHACHA20_POLY1305),
];

impl Cli {
    /// Reads the TOML file if `--config` was given, then merges and validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or the setting.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let keylog_env = std::env::var_os(KEYLOG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        self.merge(file, keylog_env)
    }

    fn merge(&self, f: FileConfig, keylog_env: Option<PathBuf>) -> Result<Config, ConfigError> {
        let marks = match &self.marks {
            Some(text) => parse_marks(text)?,
            None => f.marks.unwrap_or_default(),
        };
        marks.validate()?;
        let queue_base = self
            .queue_base
            .or(f.queue_base)
            .unwrap_or(DEFAULT_QUEUE_BASE);
        let queues = Queues::from_base(queue_base)
            .ok_or_else(|| invalid("queue_base", "needs four queue numbers below 65536"))?;
        let chain_prefix = self
            .chain_prefix
            .clone()
            .or(f.chain_prefix)
            .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        validate_prefix(&chain_prefix)?;
        let exclude_ports = match self.exclude_ports.clone().or(f.exclude_ports) {
            Some(text) => PortSet::parse(&text).map_err(|r| invalid("exclude_ports", r))?,
            None => PortSet::already_encrypted(),
        };
        let mandatory_ports = match self.mandatory_ports.clone().or(f.mandatory_ports) {
            Some(text) => PortSet::parse(&text).map_err(|r| invalid("mandatory_ports", r))?,
            None => PortSet::default(),
        };
        let mandatory_addrs = match self.mandatory_addrs.clone().or(f.mandatory_addrs) {
            Some(text) => AddrSet::parse(&text).map_err(|r| invalid("mandatory_addrs", r))?,
            None => AddrSet::default(),
        };
        let teps = match self.teps.clone().or(f.teps) {
            Some(names) => parse_names("teps", &names, TEP_NAMES)?,
            None => TEP_NAMES.iter().map(|&(_, t)| t).collect(),
        };
        let aeads = match self.aeads.clone().or(f.aeads) {
            Some(names) => parse_names("aeads", &names, AEAD_NAMES)?,
            None => AEAD_NAMES.iter().map(|&(_, a)| a).collect(),
        };
        let config = Config {
            control: self
                .control
                .clone()
                .or(f.control)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL)),
            chain_prefix,
            client: self.client.or(f.client).unwrap_or(true),
            server: self.server.or(f.server).unwrap_or(true),
            ipv6: self.ipv6.or(f.ipv6).unwrap_or(true),
            queues,
            marks,
            client_port: self
                .client_port
                .or(f.client_port)
                .unwrap_or(DEFAULT_CLIENT_PORT),
            server_port: self
                .server_port
                .or(f.server_port)
                .unwrap_or(DEFAULT_SERVER_PORT),
            route_table: self
                .route_table
                .or(f.route_table)
                .unwrap_or(DEFAULT_ROUTE_TABLE),
            rule_pref: self.rule_pref.or(f.rule_pref).unwrap_or(DEFAULT_RULE_PREF),
            exclude_ports,
            mandatory_ports,
            mandatory_addrs,
            teps,
            aeads,
            resumption: self.resumption.or(f.resumption).unwrap_or(true),
            handshake_timeout: Duration::from_secs(
                self.handshake_timeout_secs
                    .or(f.handshake_timeout_secs)
                    .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT_SECS),
            ),
            connect_timeout: Duration::from_millis(
                self.connect_timeout_ms
                    .or(f.connect_timeout_ms)
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
            ),
            max_connections: self
                .max_connections
                .or(f.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS),
            threads: self.threads.or(f.threads).unwrap_or(0),
            option_path: match self.option_path.as_deref().or(f.option_path.as_deref()) {
                None => OptionPath::Auto,
                Some(s) => s.parse().map_err(|e| invalid("option_path", e))?,
            },
            type2_cache_ttl: Duration::from_secs(
                self.type2_cache_secs
                    .or(f.type2_cache_secs)
                    .unwrap_or(DEFAULT_TYPE2_CACHE_SECS),
            ),
            plain_peer_cache_ttl: Duration::from_secs(
                self.plain_peer_cache_secs
                    .or(f.plain_peer_cache_secs)
                    .unwrap_or(DEFAULT_PLAIN_PEER_CACHE_SECS),
            ),
            keylog: self.keylog.clone().or(keylog_env).or(f.keylog),
            rekey_after_bytes: self.rekey_after_bytes.or(f.rekey_after_bytes),
        };
        validate(&config)?;
        Ok(config)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_file(path, &text)
}

fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

fn validate(c: &Config) -> Result<(), ConfigError> {
    if !c.client && !c.server {
        return Err(invalid(
            "client/server",
            "both roles are off: nothing to do",
        ));
    }
    if c.client_port == 0 || c.server_port == 0 {
        return Err(invalid("client_port/server_port", "port 0"));
    }
    if c.client_port == c.server_port {
        return Err(invalid(
            "client_port/server_port",
            "the two listeners need two ports",
        ));
    }
    if c.teps.is_empty() {
        return Err(invalid("teps", "empty: ENO would never be enabled"));
    }
    if c.aeads.is_empty() {
        return Err(invalid("aeads", "empty: no frame could be protected"));
    }
    if c.max_connections == 0 {
        return Err(invalid(
            "max_connections",
            "0 would never intercept anything",
        ));
    }
    if c.handshake_timeout.is_zero() || c.connect_timeout.is_zero() {
        return Err(invalid(
            "handshake_timeout_secs/connect_timeout_ms",
            "must be positive",
        ));
    }
    if c.keylog.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
        return Err(invalid("keylog", "empty path"));
    }
    if c.rekey_after_bytes == Some(0) {
        return Err(invalid("rekey_after_bytes", "must be positive"));
    }
    if c.rule_pref == 0 || c.rule_pref >= 32764 {
        return Err(invalid(
            "rule_pref",
            "must be in 1..32764 (it and the next two below the main table's rule)",
        ));
    }
    if c.route_table == 0 || (253..=255).contains(&c.route_table) {
        return Err(invalid("route_table", "0 and 253-255 are reserved tables"));
    }
    if let Some(&(lo, hi)) = c
        .mandatory_ports
        .ranges()
        .iter()
        .find(|&&(lo, hi)| (lo..=hi).any(|p| c.exclude_ports.contains(p)))
    {
        return Err(invalid(
            "mandatory_ports",
            format!("{lo}-{hi} overlaps exclude_ports: a port cannot be both"),
        ));
    }
    Ok(())
}

fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    let ok_chars = prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN || !ok_chars {
        return Err(invalid(
            "chain_prefix",
            format!("{prefix:?}: 1-{MAX_PREFIX_LEN} characters of [A-Za-z0-9_-]"),
        ));
    }
    Ok(())
}

fn parse_names<T: Copy + PartialEq>(
    key: &'static str,
    names: &[String],
    table: &[(&str, T)],
) -> Result<Vec<T>, ConfigError> {
    let mut out = Vec::new();
    for name in names {
        let wanted = name.trim().to_ascii_lowercase().replace(['-', '_'], "");
        let Some(&(_, id)) = table.iter().find(|(n, _)| *n == wanted) else {
            let known: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            return Err(invalid(
                key,
                format!("unknown {name:?}; known: {}", known.join(", ")),
            ));
        };
        if out.contains(&id) {
            return Err(invalid(key, format!("{name:?} listed twice")));
        }
        out.push(id);
    }
    Ok(out)
}

fn parse_marks(text: &str) -> Result<Marks, ConfigError> {
    let values: Result<Vec<u32>, String> = text.split(',').map(parse_u32).collect();
    let values = values.map_err(|r| invalid("marks", r))?;
    let defaults = Marks::default();
    let (upstream, service, redirect, reject, divert, tproxy, plain, settled) = match values[..] {
        [u, s, r, j, d, t] => (u, s, r, j, d, t, defaults.plain, defaults.settled),
        [u, s, r, j, d, t, p] => (u, s, r, j, d, t, p, defaults.settled),
        [u, s, r, j, d, t, p, x] => (u, s, r, j, d, t, p, x),
        _ => return Err(invalid(
            "marks",
            "six to eight values: upstream,service,redirect,reject,divert,tproxy[,plain[,settled]]",
        )),
    };
    Ok(Marks {
        upstream,
        service,
        redirect,
        reject,
        divert,
        tproxy,
        plain,
        settled,
    })
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("{s:?} is not a number"))
}

/// Name of a TEP as the settings spell it.
pub fn tep_setting_name(tep: TepId) -> String {
    TEP_NAMES
        .iter()
        .find(|(_, t)| *t == tep)
        .map_or_else(|| tep.to_string(), |(n, _)| (*n).to_owned())
}

/// Name of an AEAD as the settings spell it.
pub fn aead_setting_name(aead: AeadId) -> String {
    AEAD_NAMES
        .iter()
        .find(|(_, a)| *a == aead)
        .map_or_else(|| aead.to_string(), |(n, _)| (*n).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut full = vec!["tcpcryptd"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).expect("flags parse")
    }

    #[test]
    fn defaults_are_valid_and_documented() {
        let c = cli(&[]).load().unwrap();
        assert_eq!(c.control, PathBuf::from(DEFAULT_CONTROL));
        assert!(c.client && c.server && c.ipv6 && c.resumption);
        assert_eq!(c.queues.app_syn, 4750);
        assert_eq!(c.queues.server_syn, 4753);
        assert!(c.excluded(22) && c.excluded(993) && c.excluded(443) && !c.excluded(80));
        assert!(c.mandatory_ports.is_empty() && c.mandatory_addrs.is_empty());
        assert_eq!(c.teps[0], TepId::TCPCRYPT_ECDHE_CURVE25519);
        // ENO lists B's TEPs least preferred first: curve25519 last.
        assert_eq!(
            c.eno_config().teps().last(),
            Some(&TepId::TCPCRYPT_ECDHE_CURVE25519)
        );
        assert_eq!(c.marks, Marks::default());
        assert_eq!(c.type2_cache_ttl, Duration::from_secs(600));
        assert_eq!(c.plain_peer_cache_ttl, Duration::from_secs(300));
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("tcpcryptd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.toml");
        std::fs::write(
            &path,
            "control = \"/tmp/x.sock\"\nqueue_base = 100\nteps = [\"p256\"]\n\
             mandatory_ports = \"8080-8081\"\ntype2_cache_secs = 60\n\
             plain_peer_cache_secs = 30\n[marks]\nupstream = 0x100\n\
             plain = 0x200\n",
        )
        .unwrap();
        let c = cli(&["--config", path.to_str().unwrap(), "--queue-base", "200"])
            .load()
            .unwrap();
        assert_eq!(c.control, PathBuf::from("/tmp/x.sock"));
        assert_eq!(c.queues.app_syn, 200);
        assert_eq!(c.teps, vec![TepId::TCPCRYPT_ECDHE_P256]);
        assert!(c.mandatory_ports.contains(8081) && !c.mandatory_ports.contains(8082));
        assert_eq!(c.marks.upstream, 0x100);
        assert_eq!(c.marks.service, 0x2);
        assert_eq!(c.marks.plain, 0x200);
        assert_eq!(c.type2_cache_ttl, Duration::from_secs(60));
        assert_eq!(c.plain_peer_cache_ttl, Duration::from_secs(30));
        let c = cli(&[
            "--config",
            path.to_str().unwrap(),
            "--type2-cache-secs",
            "0",
            "--plain-peer-cache-secs",
            "0",
        ])
        .load()
        .unwrap();
        assert!(c.type2_cache_ttl.is_zero());
        assert!(c.plain_peer_cache_ttl.is_zero());
        let c = cli(&["--option-path", "bpf"]).load().unwrap();
        assert_eq!(c.option_path, OptionPath::Bpf);
        assert_eq!(cli(&[]).load().unwrap().option_path, OptionPath::Auto);
        let c = cli(&["--threads", "3"]).load().unwrap();
        assert_eq!(c.worker_threads(), 3);
        let c = cli(&[]).load().unwrap();
        assert_eq!(c.threads, 0);
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let auto = c.worker_threads();
        assert!(auto >= 1, "at least one thread");
        if cpus >= 2 {
            assert!(
                auto < cpus,
                "leaves CPUs to the applications: {auto} of {cpus}"
            );
        }
        let c = cli(&["--marks", "1,2,4,8,16,32,0x100"]).load().unwrap();
        assert_eq!((c.marks.plain, c.marks.settled), (0x100, 0x80));
        let c = cli(&["--marks", "1,2,4,8,16,32,0x100,0x200"])
            .load()
            .unwrap();
        assert_eq!((c.marks.plain, c.marks.settled), (0x100, 0x200));
        let err = cli(&["--marks", "1,2,4,8,16,32,0x80"]).load().unwrap_err();
        assert!(
            err.to_string()
                .contains("settled (0x80) shares bits with plain"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases: &[(&[&str], &str)] = &[
            (&["--queue-base", "65534"], "queue_base"),
            (&["--chain-prefix", "bad prefix"], "chain_prefix"),
            (
                &["--chain-prefix", "A_VERY_LONG_PREFIX_THAT_IS_TOO_LONG"],
                "chain_prefix",
            ),
            (&["--teps", "p256,rot13"], "teps"),
            (&["--option-path", "ebpf"], "option_path"),
            (&["--teps", "p256,P-256"], "teps"),
            (&["--aeads", "des"], "aeads"),
            (&["--exclude-ports", "0"], "exclude_ports"),
            (&["--exclude-ports", "90-80"], "exclude_ports"),
            (&["--mandatory-ports", "22"], "mandatory_ports"),
            (&["--mandatory-addrs", "10.0.0.300"], "mandatory_addrs"),
            (&["--mandatory-addrs", "10.0.0.0/33"], "mandatory_addrs"),
            (&["--marks", "1,2,4,8,16"], "marks"),
            (&["--marks", "1,3,4,8,16,32"], "marks"),
            (&["--marks", "0,2,4,8,16,32"], "marks"),
            (&["--marks", "1,2,4,8,16,64"], "marks"),
            (&["--marks", "1,2,4,8,16,32,1"], "marks"),
            (&["--marks", "1,2,4,8,16,32,64,128,256"], "marks"),
            (&["--client", "false", "--server", "false"], "client/server"),
            (
                &["--client-port", "5", "--server-port", "5"],
                "client_port/server_port",
            ),
            (&["--route-table", "254"], "route_table"),
            (&["--handshake-timeout-secs", "0"], "handshake_timeout_secs"),
        ];
        for (args, key) in cases {
            let err = cli(args).load().expect_err("must be refused");
            assert!(err.to_string().contains(key), "{args:?}: {err}");
        }
    }

    #[test]
    fn keylog_flag_wins_over_environment_over_file() {
        let file = |k: Option<&str>| FileConfig {
            keylog: k.map(PathBuf::from),
            rekey_after_bytes: Some(4096),
            ..FileConfig::default()
        };
        let env = Some(PathBuf::from("/env.log"));
        let flag = cli(&["--keylog", "/flag.log"]);
        let none = cli(&[]);
        let got = |c: &Cli, f, e: Option<PathBuf>| c.merge(f, e).expect("valid").keylog;
        assert_eq!(
            got(&flag, file(Some("/f.log")), env.clone()),
            Some("/flag.log".into())
        );
        assert_eq!(
            got(&none, file(Some("/f.log")), env.clone()),
            Some("/env.log".into())
        );
        assert_eq!(
            got(&none, file(Some("/f.log")), None),
            Some("/f.log".into())
        );
        assert_eq!(got(&none, file(None), None), None);
        let c = none.merge(file(None), None).expect("valid");
        assert_eq!(c.session_config().rekey_after_bytes, 4096);
        assert!(
            c.session_config().key_log.is_none(),
            "the daemon opens the file"
        );
        let c = none.merge(FileConfig::default(), None).expect("valid");
        assert_eq!(
            c.session_config().rekey_after_bytes,
            tcpcrypt_proto::consts::REKEY_AFTER_BYTES
        );
        let err = cli(&["--rekey-after-bytes", "0"])
            .load()
            .expect_err("refused");
        assert!(err.to_string().contains("rekey_after_bytes"), "{err}");
        // clap refuses an empty --keylog itself; an empty TOML value is refused here.
        let err = none.merge(file(Some("")), None).expect_err("refused");
        assert!(err.to_string().contains("keylog"), "{err}");
        let text = "keylog = \"/k.log\"\nrekey_after_bytes = 1\n";
        let f = parse_file(Path::new("/t.toml"), text).expect("keys known");
        assert_eq!(f.keylog, Some(PathBuf::from("/k.log")));
    }

    #[test]
    fn file_errors_name_the_file_and_key() {
        let err = parse_file(Path::new("/etc/t.toml"), "bogus_key = 1").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/etc/t.toml") && text.contains("bogus_key"),
            "{text}"
        );
        let err = cli(&["--config", "/nonexistent/tcpcryptd.toml"])
            .load()
            .unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }

    #[test]
    fn port_sets_parse_print_and_render_for_iptables() {
        let s = PortSet::parse(" 22, 989-995 ,8080").unwrap();
        assert!(s.contains(22) && s.contains(990) && s.contains(8080) && !s.contains(23));
        assert_eq!(s.to_string(), "22,989-995,8080");
        assert_eq!(s.iptables_args(), vec!["22", "989:995", "8080"]);
        assert!(PortSet::parse("").unwrap().is_empty());
        assert!(PortSet::parse("70000").is_err());
        assert!(PortSet::parse("a-b").is_err());
    }

    #[test]
    fn address_sets_match_networks_and_mapped_addresses() {
        let s = AddrSet::parse(" 10.1.0.0/16, 192.0.2.7 ,fd00::/8").unwrap();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert!(s.contains(ip("10.1.2.3")) && !s.contains(ip("10.2.0.1")));
        assert!(s.contains(ip("192.0.2.7")) && !s.contains(ip("192.0.2.8")));
        assert!(s.contains(ip("::ffff:192.0.2.7")));
        assert!(s.contains(ip("fd12::1")) && !s.contains(ip("fe80::1")));
        assert_eq!(s.to_string(), "10.1.0.0/16,192.0.2.7/32,fd00::/8");
        assert!(AddrSet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(AddrSet::parse("").unwrap().is_empty());
        let c = cli(&[
            "--mandatory-addrs",
            "10.1.0.0/16",
            "--mandatory-ports",
            "99",
        ])
        .load()
        .unwrap();
        let dst = |t: &str| t.parse::<SocketAddr>().unwrap();
        assert!(c.mandatory(dst("10.1.0.5:80")) && c.mandatory(dst("10.9.0.5:99")));
        assert!(!c.mandatory(dst("10.9.0.5:80")));
    }

    #[test]
    fn names_round_trip() {
        for &(n, t) in TEP_NAMES {
            assert_eq!(tep_setting_name(t), n);
        }
        for &(n, a) in AEAD_NAMES {
            assert_eq!(aead_setting_name(a), n);
        }
        assert_eq!(
            cli(&["--aeads", "ChaCha20-Poly1305,AES128GCM"])
                .load()
                .unwrap()
                .aeads,
            vec![AeadId::CHACHA20_POLY1305, AeadId::AES_128_GCM]
        );
    }
}
