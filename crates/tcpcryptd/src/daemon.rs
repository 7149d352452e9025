//! The daemon: start-up checks, the NFQUEUE tasks (SYN path), the listeners and connection
//! tasks (stream path), the control socket, and clean shutdown on SIGINT/SIGTERM.
//!
//! ```text
//!  tokio runtime (a few worker threads, no thread per connection)
//!   ├─ queue task × 4 (app_syn, eno_out, eno_in, server_syn): AsyncFd readiness → recv_batch →
//!   │     SynPath (pure, behind a mutex) → verdict; held SYNs spawn a pre-connect task that
//!   │     sends the verdict (redirect / reject / divert / plain) when the connect is decided
//!   │     (client side, to a destination that accepted an upstream in the last few seconds:
//!   │     redirect at once, the upstream connecting meanwhile); a settled negotiation's
//!   │     segment gets the settled mark (the kernel stops queueing that connection)
//!   ├─ upstream start per client connection: connect (fast path), ENO outcome, Session, Init1
//!   │     written, overlapping the application's own handshake with the listener
//!   ├─ client listener(s) 127.0.0.1 / ::1 (TPROXY, transparent): accept → match the upstream
//!   │     start by (app address, original destination = getsockname) → connection task
//!   ├─ server listener(s) 127.0.0.1 / ::1 (TPROXY, transparent): accept → match the pre-connected
//!   │     service socket by (getsockname, peer) → connection task
//!   ├─ connection task per connection: wait for the ENO outcome → Session pump or plain relay
//!   ├─ control socket task
//!   └─ main: waits for SIGINT/SIGTERM, then removes the rules (the guard also does on panic)
//! ```
//!
//! Every proxied socket (accepted, pre-connected) gets SO_LINGER 0 as soon as it exists, and
//! only the clean end of both directions switches it back to a graceful close: whatever else
//! closes it (an error, a dropped task, the daemon's death by SIGKILL, where the kernel
//! closes the descriptors) sends a reset, so neither application ever mistakes a dead proxy
//! for a clean end of file.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tcpcrypt_control::{Direction, SessionState};
use tcpcrypt_crypto::OsRng;
use tcpcrypt_proto::crypto::CryptoProvider;
use tcpcrypt_proto::eno::FallbackReason;
use tcpcrypt_proto::eno::SegmentFlags;
use tcpcrypt_proto::session::{Event, Session, SessionConfig};
use tcpcrypt_sys::bpf::{self, BpfError, EnoOptions};
use tcpcrypt_sys::nfqueue::{NfqError, Packet, Queue, QueueConfig, Verdict};
use tcpcrypt_sys::sockopt;
use tcpcrypt_sys::syn_filters::{self, SynFilters};
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::config::{Config, OptionPath};
use crate::control::{ControlHandler, Registry, Row};
use crate::expiring::ExpiringSet;
use crate::plain_peers::{self, PlainPeers, Route};
use crate::pump::{self, SharedTraffic};
use crate::rules::{Plan, SynFilterPaths};
use crate::syn::{AppSyn, ConnKey, Decision, Handled, Limits, Outcome, ServerSyn, SynPath};
use crate::type2_cache::{self, Type2Cache};

/// How long a connection task waits for its ENO outcome after accept.
const OUTCOME_TIMEOUT: Duration = Duration::from_secs(3);
/// Packets taken from a queue per wakeup.
const BATCH: usize = 64;
/// How long a destination counts as reachable after an upstream connected to it
/// ([`start_upstream`]).
const REACHABLE_FOR: Duration = Duration::from_secs(5);

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Not root / no CAP_NET_ADMIN.
    #[error("{}", privileges_message(.0))]
    Privileges(#[from] tcpcrypt_sys::caps::CapsError),
    /// A listener port is taken or cannot be bound.
    #[error("bind listener {addr}: {source} ({})", listen_hint(source))]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An NFQUEUE queue could not be opened.
    #[error(
        "open NFQUEUE queue {queue}: {source} (is another daemon using it? choose --queue-base; \
         kernel module nfnetlink_queue loaded?)"
    )]
    Queue {
        /// The queue number.
        queue: u16,
        /// The netlink error.
        #[source]
        source: NfqError,
    },
    /// The rules could not be installed (iptables missing, NFQUEUE unavailable, ...).
    #[error("install firewall rules: {0}")]
    Rules(#[from] tcpcrypt_sys::rules::RulesError),
    /// The control socket could not be bound.
    #[error("control socket: {0}")]
    Control(#[from] tcpcrypt_control::server::BindError),
    /// The key log (`--keylog`, `TCPCRYPT_KEYLOGFILE`) could not be opened safely.
    #[error("{0}")]
    KeyLog(#[from] crate::keylog::KeyLogOpenError),
    /// `--option-path bpf` and the BPF program could not be loaded.
    #[error("BPF option path: {0}")]
    Bpf(#[from] BpfError),
    /// Another start-up step failed.
    #[error("{op}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// What to do when a listener cannot be bound.
fn listen_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::AddrNotAvailable => {
            "the loopback address is missing: bring loopback up with `ip link set lo up`, \
             or run without IPv6 (--ipv6 false) if ::1 is disabled"
        }
        _ => "choose another with --client-port/--server-port",
    }
}

/// The privilege failure and what to do. File capabilities (`setcap`) are not enough: the
/// daemon runs iptables and ip, which need CAP_NET_ADMIN themselves.
fn privileges_message(e: &tcpcrypt_sys::caps::CapsError) -> String {
    use tcpcrypt_sys::caps::CapsError;
    match e {
        CapsError::MissingNetAdmin { euid, cap_eff } => format!(
            "tcpcryptd needs root: CAP_NET_ADMIN is missing (effective uid {euid}, CapEff \
             {cap_eff:016x}); it changes the firewall (iptables), opens NFQUEUE queues and \
             transparent sockets: run it as root (`sudo tcpcryptd`)"
        ),
        other => format!("tcpcryptd needs root (CAP_NET_ADMIN): {other}"),
    }
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> DaemonError {
    move |source| DaemonError::Io { op, source }
}

/// The SYN path plus the connection tasks waiting for outcomes.
struct SynState {
    path: SynPath,
    waiters: HashMap<ConnKey, oneshot::Sender<Outcome>>,
}

/// One connection's share of `max_connections`, from its held SYN to the end of its pair
/// (through the pre-connected socket's map entry); released when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot if fewer than `max` are taken.
    fn take(live: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Self(live.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Pre-connected sockets (or their starts) waiting for their accepted halves.
type Preconnected<T> = Mutex<HashMap<ConnKey, (T, Instant, Slot)>>;

/// Client side: an upstream being started (connected, unless it was before the application's
/// SYN went on; its ENO outcome awaited; host A's Init1 written) while the application's SYN
/// is let go and accepted, so that the key exchange overlaps the application's own handshake.
struct Upstream {
    /// The start ([`start_upstream`]).
    start: tokio::task::JoinHandle<io::Result<Started>>,
}

/// A started upstream.
struct Started {
    /// Its socket.
    net: TcpStream,
    /// Its key in the SYN path.
    key: ConnKey,
    /// What its negotiation gave ([`prepare`]).
    ready: Ready,
}

/// A connection's negotiation, ready for its connection task.
enum Ready {
    /// ENO enabled a TEP: the session, started (RFC 8548 §3.3: host A's Init1 written).
    Session {
        /// The session.
        session: Box<Session>,
        /// Our role.
        role: tcpcrypt_proto::consts::Role,
        /// The negotiated TEP.
        tep: tcpcrypt_proto::consts::TepId,
    },
    /// ENO enabled a TEP but the session could not start.
    Failed(tcpcrypt_proto::Error),
    /// Plain TCP: why, and whether the fallback came after the SYN (a missing ENO in the
    /// first ACK, RFC 8547 §4.6).
    Plain {
        /// The fallback reason or why no outcome came.
        reason: String,
        /// The SYN carried ENO and the first ACK did not.
        after_syn: bool,
    },
}

/// What every task shares.
struct Shared {
    config: Config,
    syn: Mutex<SynState>,
    /// Slots taken (see [`Slot`]).
    live: Arc<AtomicUsize>,
    /// Client side: pre-connected upstreams by (app address, original destination).
    upstreams: Preconnected<Upstream>,
    /// Server side: pre-connected service sockets by (original destination, client address).
    services: Preconnected<TcpStream>,
    registry: Arc<Registry>,
    provider: Arc<dyn CryptoProvider>,
    session_config: Arc<SessionConfig>,
    /// Client side: destinations where ENO is stripped after the SYN (RFC 8547 §9 type 2).
    type2: Mutex<Type2Cache>,
    /// Client side: destinations that answered without ENO ([`crate::plain_peers`]).
    plain_peers: Mutex<PlainPeers>,
    /// Client side: destinations an upstream connected to lately ([`start_upstream`]).
    reachable: Mutex<ExpiringSet<SocketAddr>>,
    /// The BPF option path's program and maps, if it is the path in use (lock order: `syn`
    /// before `bpf`).
    bpf: Option<Mutex<EnoOptions>>,
    /// The SYN filters, if their rules are installed: then the kernel holds the cache of
    /// servers without tcpcrypt, and `plain_peers` stays empty.
    syn_filters: Option<Arc<Mutex<SynFilters>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which queue a task serves.
#[derive(Clone, Copy, Debug)]
enum QueueKind {
    AppSyn,
    EnoOut,
    EnoIn,
    ServerSyn,
}

/// Runs the daemon until SIGINT or SIGTERM.
///
/// # Errors
/// [`DaemonError`] naming the start-up step that failed.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    tcpcrypt_sys::caps::require_net_admin()?;
    // Two sockets per proxied connection: the soft default (often 1024) would cap the daemon
    // near 500 connections.
    match tcpcrypt_sys::rlimit::raise_nofile_limit() {
        Ok((soft, hard)) => info!("open-file limit {soft} (hard {hard})"),
        Err(e) => warn!("raise the open-file limit: {e}"),
    }
    // Opened before anything touches the kernel: a bad path refuses the start cleanly.
    let mut session_config = config.session_config();
    if let Some(path) = &config.keylog {
        let key_log = crate::keylog::FileKeyLog::open(path)?;
        warn!(
            "key log on: session secrets are written to {}; anyone who reads it can decrypt the \
             traffic (debug mode, RFC 8547 §5)",
            path.display()
        );
        session_config = session_config.with_key_log(Arc::new(key_log));
    }
    if let Some(bytes) = config.rekey_after_bytes {
        warn!("rekey_after_bytes = {bytes}: a debugging setting, not for production");
    }
    // Before the listeners: the program must see the server listeners' listen().
    let (config, mut bpf) = option_path(config)?;
    let filters = bpf.as_ref().and_then(|_| load_syn_filters());
    let families = if config.ipv6 {
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
    } else {
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
    };
    let mut client_listeners = Vec::new();
    let mut server_listeners = Vec::new();
    for &ip in &families {
        if config.client {
            client_listeners.push(listen(SocketAddr::new(ip, config.client_port), true, None)?);
        }
        if config.server {
            let addr = SocketAddr::new(ip, config.server_port);
            server_listeners.push(listen(addr, true, bpf.as_mut())?);
        }
    }
    let mut queues = Vec::new();
    let q = config.queues;
    if config.client {
        queues.push((QueueKind::AppSyn, open_queue(q.app_syn)?));
    }
    // On the BPF path only the server's SYN-ACKs use it.
    if bpf.is_none() || config.server {
        queues.push((QueueKind::EnoOut, open_queue(q.eno_out)?));
    }
    queues.push((QueueKind::EnoIn, open_queue(q.eno_in)?));
    if config.server {
        queues.push((QueueKind::ServerSyn, open_queue(q.server_syn)?));
    }
    let (plan, rules, filters) = install_rules(&config, filters)?;
    info!(
        "rules installed:\n{}",
        plan.render(&config.chain_prefix).trim_end()
    );
    let filters = filters.map(|f| Arc::new(Mutex::new(f)));

    // Bound last: a client that can connect to it finds the daemon ready.
    let control = tcpcrypt_control::server::bind(
        &config.control,
        tcpcrypt_control::server::DEFAULT_SOCKET_MODE,
    )?;
    control
        .set_nonblocking(true)
        .map_err(io_err("set the control socket non-blocking"))?;
    let control = tokio::net::UnixListener::from_std(control)
        .map_err(io_err("register the control socket"))?;
    let registry = Arc::new(Registry::new(config.clone()));
    if let Some(f) = &filters {
        let (direct, no_eno) = (f.clone(), f.clone());
        registry.set_syn_filters(vec![
            (
                DIRECT_PLAIN_PEER_REASON.to_owned(),
                Box::new(move || lock(&direct).direct_count()),
            ),
            (
                incoming_fallback(FallbackReason::MissingEno),
                Box::new(move || lock(&no_eno).no_eno_count()),
            ),
        ]);
    }
    let shared = Arc::new(Shared {
        syn: Mutex::new(SynState {
            path: SynPath::new(
                config.eno_config(),
                Box::new(config.clone()),
                Limits::default(),
                Box::new(OsRng),
            ),
            waiters: HashMap::new(),
        }),
        live: registry.live_counter(),
        upstreams: Mutex::new(HashMap::new()),
        services: Mutex::new(HashMap::new()),
        registry: registry.clone(),
        provider: Arc::new(*tcpcrypt_crypto::default_provider()),
        session_config: Arc::new(session_config),
        type2: Mutex::new(Type2Cache::new(
            config.type2_cache_ttl,
            type2_cache::DEFAULT_MAX,
        )),
        plain_peers: Mutex::new(PlainPeers::new(
            config.plain_peer_cache_ttl,
            plain_peers::DEFAULT_MAX,
        )),
        reachable: Mutex::new(ExpiringSet::new(REACHABLE_FOR, type2_cache::DEFAULT_MAX)),
        bpf: bpf.map(Mutex::new),
        syn_filters: filters,
        config: config.clone(),
    });
    for (kind, queue) in queues {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_queue(shared, kind, queue).await {
                warn!("queue {kind:?} stopped: {e}");
            }
        });
    }
    for l in client_listeners {
        tokio::spawn(accept_loop(shared.clone(), l, Direction::Outgoing));
    }
    for l in server_listeners {
        tokio::spawn(accept_loop(shared.clone(), l, Direction::Incoming));
    }
    tokio::spawn(tcpcrypt_control::server::serve_async(
        control,
        Arc::new(ControlHandler(registry)),
    ));
    tokio::spawn(housekeeping(shared.clone()));
    info!(
        "tcpcryptd running (client: {}, server: {}, option path: {}, control: {})",
        config.client,
        config.server,
        config.option_path,
        config.control.display()
    );
    wait_for_signal().await?;
    info!("stopping: removing rules");
    let removed = rules.remove();
    let _ = std::fs::remove_file(&config.control);
    removed?;
    Ok(())
}

/// The SYN filters of the BPF path, if they load; without them every SYN is queued, as on
/// the NFQUEUE path.
fn load_syn_filters() -> Option<SynFilters> {
    match SynFilters::load(plain_peers::PROBE_EVERY) {
        Ok(f) => Some(f),
        Err(e) => {
            info!("SYN filters: {e}; every SYN goes through NFQUEUE");
            None
        }
    }
}

/// Installs the rule set, with the SYN filters' matches if `filters` can be pinned for the
/// time the rules are added (the rules then hold the programs; the pins go at once). Returns
/// the filters if the rules use them.
fn install_rules(
    config: &Config,
    mut filters: Option<SynFilters>,
) -> Result<
    (
        Plan,
        tcpcrypt_sys::rules::InstalledRules,
        Option<SynFilters>,
    ),
    DaemonError,
> {
    let with_filters = filters.as_mut().and_then(|f| {
        let pinned = f
            .pin()
            .inspect_err(|e| info!("SYN filters: {e}; every SYN goes through NFQUEUE"))
            .ok()?;
        let paths = SynFilterPaths {
            cached_plain_peer: pinned
                .path(syn_filters::CACHED_PLAIN_PEER)
                .display()
                .to_string(),
            syn_without_eno: pinned
                .path(syn_filters::SYN_WITHOUT_ENO)
                .display()
                .to_string(),
        };
        let plan = Plan::with_syn_filters(config, Some(&paths));
        match plan.rule_set(&config.chain_prefix).install() {
            Ok(rules) => Some((plan, rules)),
            // The kernel or iptables may lack xt_bpf (the install removed what it added).
            Err(e) => {
                info!(
                    "SYN filters: the rules with them failed ({e}); every SYN goes through NFQUEUE"
                );
                None
            }
        }
    });
    if let Some((plan, rules)) = with_filters {
        return Ok((plan, rules, filters));
    }
    let plan = Plan::new(config);
    let rules = plan.rule_set(&config.chain_prefix).install()?;
    Ok((plan, rules, None))
}

/// Resolves `--option-path`: loads the BPF program for `bpf` (a failure refuses the start)
/// and `auto` (a failure falls back to NFQUEUE, saying why). The returned config names the
/// path in use, which the rules follow.
fn option_path(mut config: Config) -> Result<(Config, Option<EnoOptions>), DaemonError> {
    let loaded = match config.option_path {
        OptionPath::Nfqueue => None,
        OptionPath::Bpf => Some(EnoOptions::load()?),
        OptionPath::Auto => match EnoOptions::load() {
            Ok(o) => Some(o),
            Err(e) => {
                info!("{e}; every handshake segment goes through NFQUEUE instead");
                None
            }
        },
    };
    config.option_path = if loaded.is_some() {
        OptionPath::Bpf
    } else {
        OptionPath::Nfqueue
    };
    Ok((config, loaded))
}

async fn wait_for_signal() -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(io_err("install SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io_err("install SIGINT handler"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// A listener on `addr`; with `bpf`, the BPF program writes the options of its SYN-ACKs that
/// the daemon gives it ([`expect_passive`]).
fn listen(
    addr: SocketAddr,
    transparent: bool,
    bpf: Option<&mut EnoOptions>,
) -> Result<TcpListener, DaemonError> {
    let err = |source| DaemonError::Listen { addr, source };
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(err)?;
    if transparent {
        // A transparent socket binds even to an address that is not (yet) local, such as
        // 127.0.0.1 with `lo` down; nothing would then reach it. A plain socket says so.
        let probe = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(err)?;
        probe.bind(SocketAddr::new(addr.ip(), 0)).map_err(err)?;
        sockopt::set_transparent(&socket, true)
            .map_err(|e| err(io::Error::other(e.to_string())))?;
    }
    // SO_REUSEADDR: the listeners end proxied connections and so keep TIME_WAIT entries on
    // their port for a minute; without it a restart after a busy run fails with "address in
    // use". It never lets two listening sockets share the port (Linux refuses that), so a
    // second daemon with the same ports is still refused.
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    if let Some(bpf) = bpf {
        bpf.expect_listen(&socket)?;
    }
    socket.listen(LISTEN_BACKLOG).map_err(err)
}

/// Accept queue of the proxy listeners: every diverted connection of the host passes through
/// them, so bursts of new connections must not overflow it (the kernel caps it at
/// net.core.somaxconn, 4096 by default).
const LISTEN_BACKLOG: u32 = 4096;

fn open_queue(queue: u16) -> Result<Queue, DaemonError> {
    // Deep enough for a burst of handshakes (with fail-open, an overflowing packet would pass
    // unseen and leave the two ends' ENO state inconsistent).
    let config = QueueConfig {
        max_len: 16384,
        ..QueueConfig::new(queue)
    };
    Queue::open(&config).map_err(|source| DaemonError::Queue { queue, source })
}

/// Drops pre-connected sockets nobody claimed and expired SYN-path entries.
async fn housekeeping(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let now = Instant::now();
        let fresh = |t: &Instant| now.saturating_duration_since(*t) < Duration::from_secs(30);
        lock(&shared.upstreams).retain(|_, (_, t, _)| fresh(t));
        lock(&shared.services).retain(|_, (_, t, _)| fresh(t));
        lock(&shared.syn).path.expire(now);
        lock(&shared.type2).expire(now);
        lock(&shared.plain_peers).expire(now);
        lock(&shared.reachable).expire(now);
    }
}

// ---------------------------------------------------------------------------------------------
// The SYN path: queue tasks

type SharedQueue = Arc<Mutex<Queue>>;

async fn serve_queue(shared: Arc<Shared>, kind: QueueKind, queue: Queue) -> io::Result<()> {
    // A dup of the queue's socket, owned by the AsyncFd: nothing else can close it while it
    // is registered, which is the I/O-safety condition behind `new`'s deprecation.
    #[allow(deprecated)]
    let fd = AsyncFd::with_interest(
        queue.as_fd().try_clone_to_owned()?,
        tokio::io::Interest::READABLE,
    )?;
    let queue: SharedQueue = Arc::new(Mutex::new(queue));
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut guard = fd.readable().await?;
        batch.clear();
        let got = lock(&queue).recv_batch(&mut batch, BATCH);
        match got {
            Ok(n) if n < BATCH => guard.clear_ready(),
            Ok(_) => {}
            Err(e) => warn!("queue {kind:?}: {e}"),
        }
        for packet in batch.drain(..) {
            handle_packet(&shared, &queue, kind, packet);
        }
    }
}

fn send_verdict(queue: &SharedQueue, id: u32, verdict: Verdict<'_>) {
    if let Err(e) = lock(queue).verdict(id, verdict) {
        warn!("verdict for packet {id}: {e}");
    }
}

/// The verdict on a queued handshake segment. Once its connection is settled the segment
/// goes back through its chain with the settled mark added (`NF_REPEAT`), which saves the mark
/// in the connmark so that no later segment of the connection is queued (see [`crate::rules`]).
fn handled_verdict(queue: &SharedQueue, packet: &Packet, handled: &Handled, settled_mark: u32) {
    let payload = match &handled.decision {
        Decision::Drop => return send_verdict(queue, packet.id, Verdict::Drop),
        Decision::Accept => None,
        Decision::Replace(bytes) => Some(&bytes[..]),
    };
    let verdict = if handled.settled {
        Verdict::Repeat {
            mark: packet.mark | settled_mark,
            payload,
        }
    } else {
        Verdict::Accept {
            mark: None,
            payload,
        }
    };
    send_verdict(queue, packet.id, verdict);
}

fn handle_packet(shared: &Arc<Shared>, queue: &SharedQueue, kind: QueueKind, packet: Packet) {
    let now = Instant::now();
    if let (QueueKind::EnoIn, Some(bpf)) = (kind, &shared.bpf) {
        return upstream_syn_ack(shared, bpf, queue, &packet, now);
    }
    match kind {
        QueueKind::EnoOut | QueueKind::EnoIn => {
            let (handled, outcome) = {
                let mut st = lock(&shared.syn);
                let handled = match kind {
                    QueueKind::EnoOut => st.path.on_outbound(&packet.payload, now),
                    _ => st.path.on_inbound(&packet.payload, now),
                };
                let outcome = handled.ready.map(|key| deliver(&mut st, key));
                (handled, outcome)
            };
            handled_verdict(queue, &packet, &handled, shared.config.marks.settled);
            drop(outcome);
        }
        QueueKind::AppSyn => {
            let d = lock(&shared.syn).path.on_app_syn(&packet.payload, now);
            match d {
                AppSyn::Pass => send_verdict(queue, packet.id, Verdict::ACCEPT),
                AppSyn::Duplicate => send_verdict(queue, packet.id, Verdict::Drop),
                AppSyn::Repeat(mark) => send_verdict(queue, packet.id, mark_verdict(mark)),
                AppSyn::Hold(key) => {
                    if let Some(why) = direct(shared, key, now) {
                        shared.registry.count(false, false, Some(why));
                        lock(&shared.syn).path.decide(key, None, false, now);
                        return send_verdict(queue, packet.id, Verdict::ACCEPT);
                    }
                    match Slot::take(&shared.live, shared.config.max_connections) {
                        Some(slot) if lock(&shared.reachable).contains(key.remote, now) => {
                            let start = tokio::spawn(start_upstream(shared.clone(), None, key));
                            let upstream = Upstream { start };
                            lock(&shared.upstreams).insert(key, (upstream, now, slot));
                            let mark = Some(shared.config.marks.redirect);
                            lock(&shared.syn).path.decide(key, mark, false, now);
                            send_verdict(queue, packet.id, mark_verdict(mark));
                        }
                        Some(slot) => {
                            let (shared, queue) = (shared.clone(), queue.clone());
                            tokio::spawn(async move {
                                hold_app_syn(shared, queue, packet.id, key, slot).await;
                            });
                        }
                        None => over_limit(shared, queue, packet.id, key, now),
                    }
                }
            }
        }
        QueueKind::ServerSyn => {
            let d = lock(&shared.syn).path.on_server_syn(&packet.payload, now);
            match d {
                ServerSyn::Pass => send_verdict(queue, packet.id, Verdict::ACCEPT),
                ServerSyn::Plain(reason) => {
                    let reason = incoming_fallback(reason);
                    shared.registry.count(false, false, Some(&reason));
                    send_verdict(queue, packet.id, Verdict::ACCEPT);
                }
                ServerSyn::Refuse => {
                    let mark = shared.config.marks.reject;
                    send_verdict(queue, packet.id, Verdict::accept_with_mark(mark));
                }
                ServerSyn::Duplicate => send_verdict(queue, packet.id, Verdict::Drop),
                ServerSyn::Repeat(mark) => send_verdict(queue, packet.id, mark_verdict(mark)),
                ServerSyn::Divert { key, replace } => {
                    match Slot::take(&shared.live, shared.config.max_connections) {
                        Some(slot) => {
                            let syn_ack_by_kernel = shared
                                .bpf
                                .as_ref()
                                .is_some_and(|bpf| expect_passive(shared, bpf, key));
                            let (shared, queue) = (shared.clone(), queue.clone());
                            tokio::spawn(async move {
                                let held = HeldSyn {
                                    id: packet.id,
                                    key,
                                    replace,
                                    syn_ack_by_kernel,
                                };
                                hold_server_syn(shared, queue, held, slot).await;
                            });
                        }
                        None => over_limit(shared, queue, packet.id, key, now),
                    }
                }
            }
        }
    }
}

/// BPF option path, server side: the program is told about the diverted connection `key`
/// before its SYN goes on, so that it records the segment completing the handshake and, when
/// the core's answer fits the room the kernel leaves ([`SynPath::syn_ack_option`]), writes
/// the SYN-ACK's option itself. True if it writes it: the SYN-ACK then skips the queue (the
/// SYN's verdict adds the settled mark, see [`crate::rules`]). False: the SYN-ACK is queued
/// and gets its option from [`SynPath::on_outbound`] (a resumption answer, or a failed map
/// update; without a record the connection's outcome is an error and an Init1 from the client
/// is refused).
fn expect_passive(shared: &Shared, bpf: &Mutex<EnoOptions>, key: ConnKey) -> bool {
    let option = lock(&shared.syn).path.syn_ack_option(key, bpf::SYN_ROOM);
    let written = option.as_deref().unwrap_or_default();
    match lock(bpf).expect_passive(key.local, key.remote, written) {
        Ok(()) => option.is_some(),
        Err(e) => {
            warn!("{key:?}: {e}");
            false
        }
    }
}

/// BPF option path, client side: the SYN-ACK of an upstream, checked by the core; before it
/// goes on, the program is told whether the kernel's ACK (and the segments up to the peer's
/// first non-SYN one) carries `45 02`.
fn upstream_syn_ack(
    shared: &Shared,
    bpf: &Mutex<EnoOptions>,
    queue: &SharedQueue,
    packet: &Packet,
    now: Instant,
) {
    let (handled, outcome) = {
        let mut st = lock(&shared.syn);
        let mut opts = lock(bpf);
        let mut upstream = None;
        let cookie = |key: ConnKey| match opts.upstream(key.local, key.remote) {
            Ok(u) => {
                upstream = u;
                upstream.as_ref().map(bpf::Upstream::cookie)
            }
            Err(e) => {
                warn!("{key:?}: {e}");
                None
            }
        };
        let (handled, ack) = st.path.on_upstream_syn_ack(&packet.payload, cookie, now);
        if let (Some((key, on)), Some(upstream)) = (ack, upstream) {
            if let Err(e) = opts.set_ack_eno(upstream, on) {
                // The ACK then leaves without ENO and the peer falls back (§4.6), while this
                // side enabled: its Init1 is refused there (a reset, never plaintext).
                warn!("{key:?}: {e}");
            }
        }
        let outcome = handled.ready.map(|key| deliver(&mut st, key));
        (handled, outcome)
    };
    handled_verdict(queue, packet, &handled, shared.config.marks.settled);
    drop(outcome);
}

/// Why the application's SYN `key` goes direct, if it does: its destination is cached as a
/// type-2 path ([`crate::type2_cache`]) or, without the SYN filters, as a peer without
/// tcpcrypt ([`crate::plain_peers`]; with them the kernel let those SYNs go before they were
/// queued, and a cached destination's SYN that is queued is a probe), and plain TCP to it is
/// allowed. The SYN then goes on unmarked and undiverted, so no ENO is
/// added, the connection is plain on both ends with no failed attempt first, and the daemon
/// is not in its path. A mandatory destination (port or address) never skips ENO.
fn direct(shared: &Shared, key: ConnKey, now: Instant) -> Option<&'static str> {
    if shared.config.mandatory(key.remote) {
        return None;
    }
    if lock(&shared.type2).contains(key.remote.ip(), now) {
        info!(
            "{key:?}: {} is a cached type-2 path (ENO stripped after the SYN); \
             going direct without ENO",
            key.remote.ip()
        );
        return Some(DIRECT_TYPE2_REASON);
    }
    if shared.syn_filters.is_some() {
        // The kernel let every cached destination's SYN go, but for the probes: this is one,
        // or not cached.
        return None;
    }
    match lock(&shared.plain_peers).check(key.remote, now) {
        Route::Negotiate => None,
        Route::Probe => {
            debug!(
                "{key:?}: {} answered without ENO lately; this connection probes it",
                key.remote
            );
            None
        }
        Route::Direct => {
            debug!(
                "{key:?}: {} answered without ENO lately; going direct",
                key.remote
            );
            Some(DIRECT_PLAIN_PEER_REASON)
        }
    }
}

/// The counted reason (`tcpcrypt status`, fallbacks) of a connection that went direct, not
/// through the daemon, because its destination is a cached type-2 path.
pub const DIRECT_TYPE2_REASON: &str = "direct: cached type-2 path (ENO stripped after the SYN)";
/// The counted reason of a connection that went direct because its destination answered
/// without ENO lately ([`crate::plain_peers`]).
pub const DIRECT_PLAIN_PEER_REASON: &str = "direct: cached peer without tcpcrypt";

/// The fallback reason counted for an incoming connection whose SYN disabled ENO (from a
/// client without tcpcrypt, most often): it runs plain and never meets the proxy. On the BPF
/// path the SYNs without any ENO option are counted by the `syn_without_eno` filter under
/// `MissingEno`'s text, the others here; every SYN counts, a retransmitted one again.
pub fn incoming_fallback(reason: FallbackReason) -> String {
    format!("incoming: {reason}")
}

/// `max_connections` reached: the SYN goes on unmarked and undiverted, so the connection is
/// plain TCP on both ends (fail-open; retransmissions get the same verdict).
fn over_limit(shared: &Shared, queue: &SharedQueue, id: u32, key: ConnKey, now: Instant) {
    debug!(
        "{key:?}: {} connections proxied already; left plain",
        shared.config.max_connections
    );
    lock(&shared.syn).path.decide(key, None, false, now);
    send_verdict(queue, id, Verdict::ACCEPT);
}

fn mark_verdict(mark: Option<u32>) -> Verdict<'static> {
    match mark {
        Some(m) => Verdict::accept_with_mark(m),
        None => Verdict::ACCEPT,
    }
}

/// Hands a fresh outcome to the connection task waiting for it (or leaves it for later).
/// Returns what could not be delivered so it is dropped outside the lock.
fn deliver(st: &mut SynState, key: ConnKey) -> Option<Outcome> {
    let tx = st.waiters.remove(&key)?;
    let outcome = st.path.take_outcome(&key)?;
    tx.send(outcome).err()
}

/// Client side: pre-connect upstream, then release the application's SYN (recipe 1b).
async fn hold_app_syn(shared: Arc<Shared>, queue: SharedQueue, id: u32, key: ConnKey, slot: Slot) {
    let marks = shared.config.marks;
    let result = preconnect_upstream(&shared, key.remote).await;
    let mark = match result {
        Ok(stream) => {
            let start = tokio::spawn(start_upstream(shared.clone(), Some(stream), key));
            let upstream = Upstream { start };
            lock(&shared.upstreams).insert(key, (upstream, Instant::now(), slot));
            Some(marks.redirect)
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            debug!("{} refused: rejecting the application's SYN", key.remote);
            Some(marks.reject)
        }
        Err(e) => {
            // A policy choice: the application goes direct (plain) on other failures.
            info!(
                "pre-connect to {} failed ({e}); letting it go direct",
                key.remote
            );
            None
        }
    };
    lock(&shared.syn)
        .path
        .decide(key, mark, false, Instant::now());
    send_verdict(&queue, id, mark_verdict(mark));
}

/// Client side: starts the upstream of the application's connection `app`: connects it unless
/// `net` is given (already connected while the application's SYN was held), then waits for
/// the ENO outcome and starts the session ([`prepare`]). A destination that accepts is
/// remembered for a while ([`REACHABLE_FOR`]): its next applications' SYNs are let go at once
/// while their upstreams connect (the fast path in `handle_packet`), instead of waiting for
/// the connect; should that connect then fail, the application sees a reset rather than a
/// refusal, as when a service fails just after accepting.
async fn start_upstream(
    shared: Arc<Shared>,
    net: Option<TcpStream>,
    app: ConnKey,
) -> io::Result<Started> {
    let dst = app.remote;
    let net = match net {
        Some(net) => net,
        None => preconnect_upstream(&shared, dst).await.inspect_err(|e| {
            lock(&shared.reachable).remove(dst);
            info!(
                "{:?}: upstream to {dst} failed after the application's SYN went on: {e}",
                app.local
            );
        })?,
    };
    lock(&shared.reachable).insert(dst, Instant::now());
    let key = stream_key(&net);
    let ready = prepare(&shared, key, &net, Direction::Outgoing).await;
    Ok(Started { net, key, ready })
}

async fn preconnect_upstream(shared: &Shared, dst: SocketAddr) -> io::Result<TcpStream> {
    let socket = match dst {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    sockopt::set_mark(&socket, shared.config.marks.upstream).map_err(io::Error::other)?;
    if let Some(bpf) = &shared.bpf {
        expect_connect(shared, bpf, &socket, dst);
    }
    let stream = connect_within(socket, dst, shared.config.connect_timeout).await?;
    pump::abortive_by_default(&stream);
    Ok(stream)
}

/// BPF option path, client side: starts the negotiation of the upstream `socket` and gives
/// the program its SYN option. Should either fail, the SYN leaves without ENO and the outcome,
/// untracked, is plain after [`OUTCOME_TIMEOUT`], as on the NFQUEUE path with a full table.
fn expect_connect(shared: &Shared, bpf: &Mutex<EnoOptions>, socket: &TcpSocket, dst: SocketAddr) {
    let cookie = match bpf::cookie_of(socket) {
        Ok(c) => c,
        Err(e) => return warn!("upstream to {dst}: {e}"),
    };
    let option = lock(&shared.syn)
        .path
        .start_active(cookie, dst, Instant::now());
    if let Some(option) = option {
        if let Err(e) = lock(bpf).expect_connect(socket, &option, false) {
            warn!("upstream to {dst}: {e}");
        }
    }
}

async fn connect_within(
    socket: TcpSocket,
    dst: SocketAddr,
    limit: Duration,
) -> io::Result<TcpStream> {
    match tokio::time::timeout(limit, socket.connect(dst)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// A diverted SYN held while the daemon pre-connects to the service.
struct HeldSyn {
    /// The queued packet.
    id: u32,
    key: ConnKey,
    /// Replacement bytes (SYN data stripped).
    replace: Option<Vec<u8>>,
    /// The BPF program writes its SYN-ACK's option ([`expect_passive`]).
    syn_ack_by_kernel: bool,
}

/// Server side: pre-connect to the local service as the client (recipe 2b, variant S6), then
/// divert the SYN to the TPROXY listener (2a); refused or failed: pass it undiverted, and the
/// kernel answers (its RST if nothing listens, 2c).
async fn hold_server_syn(shared: Arc<Shared>, queue: SharedQueue, held: HeldSyn, slot: Slot) {
    let HeldSyn {
        id,
        key,
        replace,
        syn_ack_by_kernel,
    } = held;
    let marks = shared.config.marks;
    match preconnect_service(&shared, key).await {
        Ok(stream) => {
            lock(&shared.services).insert(key, (stream, Instant::now(), slot));
            let mark = if syn_ack_by_kernel {
                marks.divert | marks.settled
            } else {
                marks.divert
            };
            lock(&shared.syn)
                .path
                .decide(key, Some(mark), true, Instant::now());
            let verdict = Verdict::Accept {
                mark: Some(mark),
                payload: replace.as_deref(),
            };
            send_verdict(&queue, id, verdict);
        }
        Err(e) => {
            debug!(
                "pre-connect to the service on port {}: {e}; not diverting",
                key.local.port()
            );
            lock(&shared.syn)
                .path
                .decide(key, None, false, Instant::now());
            if let Some(bpf) = &shared.bpf {
                lock(bpf).remove(key.local, key.remote);
            }
            send_verdict(&queue, id, Verdict::ACCEPT);
        }
    }
}

async fn preconnect_service(shared: &Shared, key: ConnKey) -> io::Result<TcpStream> {
    let service = match key.local {
        SocketAddr::V4(_) => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), key.local.port()),
        SocketAddr::V6(_) => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), key.local.port()),
    };
    let make = || -> io::Result<TcpSocket> {
        let socket = match key.remote {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        sockopt::set_transparent(&socket, true).map_err(io::Error::other)?;
        sockopt::set_mark(&socket, shared.config.marks.service).map_err(io::Error::other)?;
        socket.set_reuseaddr(true)?;
        Ok(socket)
    };
    let socket = make()?;
    let socket = match socket.bind(key.remote) {
        Ok(()) => socket,
        Err(e) => {
            // TIME_WAIT or a live tuple on the client's port: any port of the client's address.
            debug!("bind {}: {e}; using another port", key.remote);
            let socket = make()?;
            socket.bind(SocketAddr::new(key.remote.ip(), 0))?;
            socket
        }
    };
    let stream = connect_within(socket, service, shared.config.connect_timeout).await?;
    pump::abortive_by_default(&stream);
    Ok(stream)
}

// ---------------------------------------------------------------------------------------------
// The stream path: listeners and connection tasks

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, direction: Direction) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                pump::abortive_by_default(&stream);
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = take_connection(shared, stream, peer, direction).await {
                        info!("connection from {peer}: {e}");
                    }
                });
            }
            Err(e) => {
                warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The two sockets of one proxied connection, and how the application sees it.
struct Pair {
    /// Plaintext side: the application (client side) or the service socket (server side).
    app: TcpStream,
    /// Ciphertext side: the upstream (client side) or the diverted connection (server side).
    net: TcpStream,
    /// The network connection's key in the SYN path.
    key: ConnKey,
    /// The application's (local, remote) view.
    view: (SocketAddr, SocketAddr),
    /// The negotiation's result if it is known already (the client's upstream start).
    ready: Option<Ready>,
    /// Held until the pair ends.
    _slot: Slot,
}

async fn take_connection(
    shared: Arc<Shared>,
    accepted: TcpStream,
    peer: SocketAddr,
    direction: Direction,
) -> Result<(), String> {
    let found = match direction {
        Direction::Outgoing => {
            // TPROXY: the accepted socket is the application's connection itself, its local
            // address the original destination (no NAT).
            let orig = accepted.local_addr().map_err(|e| e.to_string())?;
            let key = ConnKey {
                local: canonical(peer),
                remote: canonical(orig),
            };
            let found = lock(&shared.upstreams).remove_entry(&key);
            let Some((app_key, (upstream, _, slot))) = found else {
                return Err("no pre-connected socket for it; reset".to_owned());
            };
            lock(&shared.syn).path.accepted(&app_key);
            let Started { net, key, ready } = upstream
                .start
                .await
                .map_err(|e| format!("upstream start: {e}; reset"))?
                .map_err(|e| format!("upstream to {orig}: {e}; reset"))?;
            Some(Pair {
                app: accepted,
                net,
                key,
                view: (peer, orig),
                ready: Some(ready),
                _slot: slot,
            })
        }
        _ => {
            let local = accepted.local_addr().map_err(|e| e.to_string())?;
            let key = ConnKey {
                local: canonical(local),
                remote: canonical(peer),
            };
            lock(&shared.services).remove(&key).map(|(app, _, slot)| {
                let view = (
                    app.peer_addr().unwrap_or(local),
                    app.local_addr().unwrap_or(peer),
                );
                Pair {
                    app,
                    net: accepted,
                    key,
                    view,
                    ready: None,
                    _slot: slot,
                }
            })
        }
    };
    let Some(pair) = found else {
        return Err("no pre-connected socket for it; reset".to_owned());
    };
    serve_pair(shared, pair, direction).await;
    Ok(())
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

fn stream_key(s: &TcpStream) -> ConnKey {
    let unspecified = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0);
    ConnKey {
        local: canonical(s.local_addr().unwrap_or(unspecified)),
        remote: canonical(s.peer_addr().unwrap_or(unspecified)),
    }
}

/// Waits for the negotiation of `key` to end.
async fn outcome(shared: &Shared, key: ConnKey, direction: Direction) -> Result<Outcome, String> {
    if let (Some(bpf), Direction::Incoming) = (&shared.bpf, direction) {
        return passive_outcome(shared, bpf, key);
    }
    let rx = {
        let mut st = lock(&shared.syn);
        if let Some(o) = st.path.take_outcome(&key) {
            return Ok(o);
        }
        let (tx, rx) = oneshot::channel();
        st.waiters.insert(key, tx);
        rx
    };
    match tokio::time::timeout(OUTCOME_TIMEOUT, rx).await {
        Ok(Ok(o)) => Ok(o),
        _ => {
            let mut st = lock(&shared.syn);
            st.waiters.remove(&key);
            st.path.forget(&key);
            Err("no ENO outcome (handshake segments not seen)".to_owned())
        }
    }
}

/// BPF option path, server side: the outcome of the accepted connection `key`, from the
/// program's record of the segment that completed its handshake. The record is complete: the
/// program writes it while the kernel holds the new socket's lock, which the accept loop's
/// first socket option call (SO_LINGER) takes.
fn passive_outcome(
    shared: &Shared,
    bpf: &Mutex<EnoOptions>,
    key: ConnKey,
) -> Result<Outcome, String> {
    let record = {
        let mut opts = lock(bpf);
        let record = opts.record(key.local, key.remote);
        opts.remove(key.local, key.remote);
        record
    };
    debug!("{key:?}: the BPF program's record {record:?}");
    let record = match record {
        Ok(Some(r)) if r.state & bpf::state::ESTABLISHED != 0 => r,
        Ok(_) => return Err("no record of the handshake from the BPF program".to_owned()),
        Err(e) => return Err(e.to_string()),
    };
    let flags = SegmentFlags {
        syn: record.peer_flags & TCP_SYN != 0,
        ack: record.peer_flags & TCP_ACK != 0,
        payload: record.peer_payload,
    };
    lock(&shared.syn)
        .path
        .on_passive_established(key, flags, &record.peer_option, Instant::now())
        .ok_or_else(|| "no negotiation for the connection".to_owned())
}

/// TCP header flag bits.
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// `dst` answered without ENO: cached ([`crate::plain_peers`]) in the kernel's SYN filter if
/// there is one, else here. A mandatory destination never is (it never goes direct).
fn remember_plain_peer(shared: &Shared, dst: SocketAddr) {
    let ttl = shared.config.plain_peer_cache_ttl;
    if ttl.is_zero() || shared.config.mandatory(dst) {
        return;
    }
    match &shared.syn_filters {
        Some(f) => {
            if let Err(e) = lock(f).insert_plain_peer(dst, ttl, plain_peers::PROBE_EVERY) {
                warn!("cache {dst} as a server without tcpcrypt: {e}");
            }
        }
        None => lock(&shared.plain_peers).insert(dst, Instant::now()),
    }
}

/// `dst` negotiated ENO: no longer cached as a server without tcpcrypt.
fn forget_plain_peer(shared: &Shared, dst: SocketAddr) {
    match &shared.syn_filters {
        Some(f) => lock(f).remove_plain_peer(dst),
        None => lock(&shared.plain_peers).remove(dst),
    }
}

/// Waits for the negotiation of `key` (the connection of `net`) to end and, if it enabled a
/// TEP, starts the session: host A's Init1 is written to `net` at once (RFC 8548 §3.3), in a
/// write of its own (PSH), so the key exchange does not wait for anything else.
async fn prepare(shared: &Shared, key: ConnKey, net: &TcpStream, direction: Direction) -> Ready {
    let negotiated = match outcome(shared, key, direction).await {
        Ok(Outcome::Enabled(n)) => n,
        Ok(Outcome::Plain(reason)) => {
            if direction == Direction::Outgoing && plain_peers::worth_caching(&reason) {
                remember_plain_peer(shared, key.remote);
            }
            return Ready::Plain {
                after_syn: reason == FallbackReason::MissingEno,
                reason: reason.to_string(),
            };
        }
        Err(reason) => {
            // A diverted connection's SYN carried ENO: with no outcome, an Init1 from the
            // client must not reach the service as data.
            let after_syn = direction == Direction::Incoming && shared.bpf.is_some();
            return Ready::Plain { reason, after_syn };
        }
    };
    if direction == Direction::Outgoing {
        forget_plain_peer(shared, key.remote);
    }
    let (role, tep) = (negotiated.role, negotiated.tep);
    match Session::new(
        negotiated,
        shared.session_config.clone(),
        shared.provider.clone(),
        &mut OsRng,
        Instant::now(),
    ) {
        Ok(mut session) => {
            pump::send_init(&mut session, net);
            Ready::Session {
                session: Box::new(session),
                role,
                tep,
            }
        }
        Err(e) => Ready::Failed(e),
    }
}

async fn serve_pair(shared: Arc<Shared>, mut pair: Pair, direction: Direction) {
    let traffic = SharedTraffic::default();
    let row = shared.registry.add(Row {
        local: pair.view.0,
        remote: pair.view.1,
        direction,
        state: SessionState::Handshake,
        role: None,
        tep: None,
        aead: None,
        session_id: None,
        resumed: false,
        fallback_reason: None,
        traffic: traffic.clone(),
        started: Instant::now(),
    });
    let dst = match direction {
        Direction::Outgoing => pair.key.remote,
        _ => pair.key.local,
    };
    let mandatory = shared.config.mandatory(dst);
    let ready = match pair.ready.take() {
        Some(ready) => ready,
        None => prepare(&shared, pair.key, &pair.net, direction).await,
    };
    let error = match ready {
        Ready::Plain { reason, after_syn } => {
            shared.registry.count(false, false, Some(&reason));
            shared.registry.update(row, |r| {
                r.state = SessionState::Plain;
                r.fallback_reason = Some(reason.clone());
            });
            if mandatory {
                info!(
                    "{:?}: ENO failed to mandatory destination {dst} ({reason}); reset",
                    pair.view
                );
                pump::abort(pair.app, pair.net);
            } else if direction == Direction::Incoming && after_syn {
                // Only diverted connections reach here: their SYN carried ENO, and the first
                // ACK did not (a type-2 middlebox, or a client that fell back itself).
                debug!("{:?}: plain ({reason}); refusing Init1", pair.view);
                let r = pump::relay_plain_refusing_init1(pair.app, pair.net, &traffic).await;
                if let Err(e @ pump::PumpError::Init1OnPlain) = r {
                    info!(
                        "{:?}: {e}: reset, nothing relayed to the service",
                        pair.view
                    );
                }
            } else {
                debug!("{:?}: plain ({reason})", pair.view);
                let _ = pump::relay_plain(pair.app, pair.net, &traffic).await;
            }
            None
        }
        Ready::Failed(e) => {
            warn!("start session: {e}");
            pump::abort(pair.app, pair.net);
            Some(e)
        }
        Ready::Session { session, role, tep } => {
            shared.registry.update(row, |r| {
                r.role = Some(role);
                r.tep = Some(tep);
            });
            let may_retry = direction == Direction::Outgoing && !mandatory;
            run_session(&shared, pair, *session, row, &traffic, may_retry).await
        }
    };
    shared.registry.finish(row, error.as_ref());
}

async fn run_session(
    shared: &Shared,
    pair: Pair,
    mut session: Session,
    row: u64,
    traffic: &SharedTraffic,
    may_retry: bool,
) -> Option<tcpcrypt_proto::Error> {
    let peer = pair.key.remote.ip();
    let mut established = false;
    let mut on_event = |event: Event| match event {
        Event::Established {
            session_id,
            aead,
            resumed,
        } => {
            established = true;
            shared.registry.count(true, resumed, None);
            shared.registry.update(row, |r| {
                r.state = SessionState::Established;
                r.session_id = Some(session_id);
                r.aead = Some(aead);
                r.resumed = resumed;
            });
        }
        Event::ResumableSecret(secret) => {
            lock(&shared.syn)
                .path
                .cache_secret(peer, secret, Instant::now());
        }
        _ => {}
    };
    let result =
        pump::pump_session(&mut session, &pair.app, &pair.net, traffic, &mut on_event).await;
    match result {
        Ok(()) => {
            // Both directions ended with FINp/FIN and EOF: close gracefully.
            pump::graceful_close(pair.app, pair.net);
            None
        }
        Err(e) => {
            let error = session.error().unwrap_or(tcpcrypt_proto::Error::Reset);
            let untouched = traffic.bytes_in.load(Ordering::Relaxed) == 0
                && traffic.bytes_out.load(Ordering::Relaxed) == 0;
            if may_retry && !established && untouched && e.from_network() {
                pump::abortive_by_default(&pair.net);
                drop(pair.net);
                return retry_plain(
                    shared,
                    pair.app,
                    pair.view,
                    pair.key.remote,
                    row,
                    traffic,
                    &e,
                )
                .await
                .err()
                .map(|()| error);
            }
            debug!("{:?}: {e}; reset", pair.view);
            pump::abort(pair.app, pair.net);
            Some(error)
        }
    }
}

/// The control socket's fallback reason of a connection retried without ENO.
pub const TYPE2_RETRY_REASON: &str =
    "ENO stripped after the SYN (type-2 middlebox): retried without ENO";

/// Client side: the session to `dst` failed during its handshake (the peer reset, ended, or
/// answered something that is not Init2) after ENO had succeeded in the SYN and SYN-ACK, and
/// no application byte was read or written yet (the pump reads none before the session is
/// established). That is RFC 8547 §9's "type 2" failure: a middlebox stripped ENO from the
/// non-SYN segments, so the server side fell back to plain (RFC 8547 §4.6) and refused our
/// Init1 ([`pump::relay_plain_refusing_init1`]). The policy allows plain TCP to `dst` (the
/// caller checked), so: remember `dst`'s address ([`crate::type2_cache`]), connect a new
/// upstream socket with the plain mark (no ENO, not redirected, see [`crate::rules`]) and
/// relay the application's connection over it, plain on both ends.
///
/// Returns `Err(())` if the retry could not connect (the application is then reset).
async fn retry_plain(
    shared: &Shared,
    app: TcpStream,
    view: (SocketAddr, SocketAddr),
    dst: SocketAddr,
    row: u64,
    traffic: &SharedTraffic,
    why: &pump::PumpError,
) -> Result<(), ()> {
    lock(&shared.type2).insert(dst.ip(), Instant::now());
    info!("{view:?}: handshake failed before any application byte ({why}); {TYPE2_RETRY_REASON}");
    let connect = async {
        let socket = match dst {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        sockopt::set_mark(&socket, shared.config.marks.plain).map_err(io::Error::other)?;
        connect_within(socket, dst, shared.config.connect_timeout).await
    };
    let net = match connect.await {
        Ok(net) => net,
        Err(e) => {
            info!("{view:?}: plain retry to {dst} failed ({e}); reset");
            pump::abortive_by_default(&app);
            return Err(());
        }
    };
    pump::abortive_by_default(&net);
    shared
        .registry
        .count(false, false, Some(TYPE2_RETRY_REASON));
    shared.registry.update(row, |r| {
        r.state = SessionState::Plain;
        r.role = None;
        r.tep = None;
        r.fallback_reason = Some(TYPE2_RETRY_REASON.to_owned());
    });
    let _ = pump::relay_plain(app, net, traffic).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener restarted while its port still holds TIME_WAIT entries of connections it
    /// ended binds again; a second live listener on the same port is still refused.
    #[tokio::test]
    async fn listeners_rebind_over_time_wait_but_never_twice() {
        use tokio::io::AsyncReadExt;
        let first = listen("127.0.0.1:0".parse().unwrap(), false, None).unwrap();
        let addr = first.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server_side, _) = first.accept().await.unwrap();
        // The listener's side closes first, so the TIME_WAIT entry is on its port.
        drop(server_side);
        let mut buf = [0u8; 1];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
        drop(client);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            matches!(listen(addr, false, None), Err(DaemonError::Listen { .. })),
            "a second live listener on the same port must be refused"
        );
        drop(first);
        listen(addr, false, None).expect("rebinding over TIME_WAIT must work");
    }
}
