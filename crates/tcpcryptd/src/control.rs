//! The connection table behind the control socket (`status`, `sessions`, `session_id`), served
//! with `tcpcrypt-control`'s protocol and tokio server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use tcpcrypt_control::{
    Counters, Direction, ErrorCode, Handler, Load, Policy, Request, Response, SessionIdReply,
    SessionInfo, SessionState, Status,
};
use tcpcrypt_proto::{AeadId, Error, Role, SessionId, TepId};

use crate::config::{aead_setting_name, tep_setting_name, Config};
use crate::pump::SharedTraffic;

/// One proxied connection as the control socket shows it.
#[derive(Debug)]
pub struct Row {
    /// The application's addresses (its getsockname, its getpeername).
    pub local: SocketAddr,
    /// See `local`.
    pub remote: SocketAddr,
    /// Outgoing (client side) or incoming (server side).
    pub direction: Direction,
    /// Where it stands.
    pub state: SessionState,
    /// ENO role, once negotiated.
    pub role: Option<Role>,
    /// TEP, once negotiated.
    pub tep: Option<TepId>,
    /// AEAD, once established.
    pub aead: Option<AeadId>,
    /// Session ID, once established.
    pub session_id: Option<SessionId>,
    /// Resumed session.
    pub resumed: bool,
    /// Why it is plain, if it is.
    pub fallback_reason: Option<String>,
    /// Byte counters.
    pub traffic: SharedTraffic,
    /// When the proxy took it.
    pub started: Instant,
}

/// The daemon's connections and counters.
pub struct Registry {
    config: Config,
    started: Instant,
    next: AtomicU64,
    rows: Mutex<HashMap<u64, Row>>,
    counters: Mutex<Counters>,
    live: Arc<AtomicUsize>,
    /// Set once if the SYN filters are in the rules: their counts of plain connections that
    /// never met the daemon, each under its fallback reason ([`Registry::set_syn_filters`]).
    syn_filters: OnceLock<Vec<(String, KernelCount)>>,
}

/// Reads a count kept in the kernel ([`Registry::set_syn_filters`]).
pub type KernelCount = Box<dyn Fn() -> u64 + Send + Sync>;

impl Registry {
    /// An empty registry.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            started: Instant::now(),
            next: AtomicU64::new(1),
            rows: Mutex::new(HashMap::new()),
            counters: Mutex::new(Counters::default()),
            live: Arc::new(AtomicUsize::new(0)),
            syn_filters: OnceLock::new(),
        }
    }

    /// The SYN filters are in the rules (the status's policy says so). The plain connections
    /// they let by the daemon are counted in the kernel, not here: each of `counts` is added
    /// to `connections_plain` and to its fallback reason at each status. Only the first call
    /// counts.
    pub fn set_syn_filters(&self, counts: Vec<(String, KernelCount)>) {
        let _ = self.syn_filters.set(counts);
    }

    /// The count of connections proxied now, which the daemon holds against `max_connections`
    /// (one per connection from its held SYN to the end of its pair) and `status` reports as
    /// `load.live_connections`. Every call returns the same counter.
    pub fn live_counter(&self) -> Arc<AtomicUsize> {
        self.live.clone()
    }

    /// Adds a connection; returns its handle.
    pub fn add(&self, row: Row) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.rows().insert(id, row);
        id
    }

    /// Changes a connection's row.
    pub fn update(&self, id: u64, f: impl FnOnce(&mut Row)) {
        if let Some(row) = self.rows().get_mut(&id) {
            f(row);
        }
    }

    /// Removes a connection and folds it into the counters (`error`: how it failed).
    pub fn finish(&self, id: u64, error: Option<&Error>) {
        let Some(row) = self.rows().remove(&id) else {
            return;
        };
        let mut c = self.counters();
        c.bytes_in += row.traffic.bytes_in.load(Ordering::Relaxed);
        c.bytes_out += row.traffic.bytes_out.load(Ordering::Relaxed);
        match error {
            Some(Error::AuthenticationFailed) => c.failures.auth_failures += 1,
            Some(Error::Truncated) => c.failures.truncations += 1,
            Some(Error::HandshakeTimeout) => c.failures.handshake_timeouts += 1,
            Some(Error::Reset) => c.failures.resets += 1,
            _ => {}
        }
    }

    /// Counts a connection that became encrypted or plain.
    pub fn count(&self, encrypted: bool, resumed: bool, fallback: Option<&str>) {
        let mut c = self.counters();
        if encrypted {
            c.connections_encrypted += 1;
            c.connections_resumed += u64::from(resumed);
        } else {
            c.connections_plain += 1;
        }
        if let Some(reason) = fallback {
            *c.fallbacks.entry(reason.to_owned()).or_default() += 1;
        }
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Row>> {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn status(&self) -> Status {
        let rows = self.rows();
        let mut counters = self.counters().clone();
        counters.active_sessions = rows.len() as u64;
        for (reason, count) in self.syn_filters.get().into_iter().flatten() {
            let n = count();
            counters.connections_plain += n;
            if n > 0 {
                *counters.fallbacks.entry(reason.clone()).or_default() += n;
            }
        }
        for row in rows.values() {
            counters.bytes_in += row.traffic.bytes_in.load(Ordering::Relaxed);
            counters.bytes_out += row.traffic.bytes_out.load(Ordering::Relaxed);
        }
        let c = &self.config;
        let mut encrypt = Vec::new();
        if c.client {
            encrypt.push("outgoing".to_owned());
        }
        if c.server {
            encrypt.push("incoming".to_owned());
        }
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: tcpcrypt_control::message::PROTOCOL_VERSION,
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            policy: Policy {
                encrypt,
                exclude_ports: split(&c.exclude_ports.to_string()),
                mandatory_ports: split(&c.mandatory_ports.to_string()),
                mandatory_addrs: split(&c.mandatory_addrs.to_string()),
                teps: c.teps.iter().map(|&t| tep_setting_name(t)).collect(),
                aeads: c.aeads.iter().map(|&a| aead_setting_name(a)).collect(),
                resumption: c.resumption,
                keylog: c.keylog.as_ref().map(|p| p.display().to_string()),
                option_path: Some(c.option_path.to_string()),
                syn_filters: Some(self.syn_filters.get().is_some()),
            },
            counters,
            load: Some(Load {
                live_connections: self.live.load(Ordering::Acquire) as u64,
                max_connections: c.max_connections as u64,
                worker_threads: c.worker_threads() as u64,
            }),
        }
    }

    fn sessions(&self) -> Vec<SessionInfo> {
        let mut rows: Vec<SessionInfo> = self.rows().values().map(info).collect();
        rows.sort_by_key(|r| (r.local, r.remote));
        rows
    }

    fn session_id(&self, local: SocketAddr, remote: SocketAddr) -> Response {
        let rows = self.rows();
        let Some(row) = rows
            .values()
            .find(|r| same(r.local, local) && same(r.remote, remote))
        else {
            return Response::error(ErrorCode::NotFound, "no such connection through tcpcryptd");
        };
        match (row.session_id, row.role, row.state) {
            (Some(session_id), Some(role), _) => {
                Response::SessionId(SessionIdReply { session_id, role })
            }
            (_, _, SessionState::Plain) => Response::error(
                ErrorCode::NotEncrypted,
                format!(
                    "fell back to plain TCP: {}",
                    row.fallback_reason.as_deref().unwrap_or("unknown")
                ),
            ),
            _ => Response::error(ErrorCode::Pending, "the key exchange has not finished"),
        }
    }
}

/// Addresses match, v4-mapped IPv6 counted as IPv4.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn info(r: &Row) -> SessionInfo {
    SessionInfo {
        local: r.local,
        remote: r.remote,
        direction: r.direction,
        state: r.state,
        role: r.role,
        tep: r.tep.map(tcpcrypt_control::message::tep_name),
        aead: r.aead.map(tcpcrypt_control::message::aead_name),
        session_id: r.session_id,
        resumed: r.resumed,
        fallback_reason: r.fallback_reason.clone(),
        bytes_in: r.traffic.bytes_in.load(Ordering::Relaxed),
        bytes_out: r.traffic.bytes_out.load(Ordering::Relaxed),
        age_secs: r.started.elapsed().as_secs(),
    }
}

/// The control-socket handler over a registry.
pub struct ControlHandler(pub Arc<Registry>);

impl Handler for ControlHandler {
    fn handle(&self, req: Request) -> Response {
        match req {
            Request::Status => Response::Status(Box::new(self.0.status())),
            Request::Sessions => Response::Sessions(self.0.sessions()),
            Request::SessionId { local, remote } => self.0.session_id(local, remote),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::Cli;

    #[test]
    fn answers_status_sessions_and_session_id() {
        let config = Cli::try_parse_from(["tcpcryptd"]).unwrap().load().unwrap();
        let reg = Arc::new(Registry::new(config));
        let h = ControlHandler(reg.clone());
        let local: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let remote: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let id = reg.add(Row {
            local,
            remote,
            direction: Direction::Outgoing,
            state: SessionState::Handshake,
            role: None,
            tep: None,
            aead: None,
            session_id: None,
            resumed: false,
            fallback_reason: None,
            traffic: SharedTraffic::default(),
            started: Instant::now(),
        });
        assert!(matches!(
            h.handle(Request::SessionId { local, remote }),
            Response::Error {
                code: ErrorCode::Pending,
                ..
            }
        ));
        reg.update(id, |r| {
            r.state = SessionState::Plain;
            r.fallback_reason = Some("peer sent no ENO".into());
        });
        assert!(matches!(
            h.handle(Request::SessionId { local, remote }),
            Response::Error {
                code: ErrorCode::NotEncrypted,
                ..
            }
        ));
        let Response::Sessions(rows) = h.handle(Request::Sessions) else {
            panic!("sessions")
        };
        assert_eq!(rows.len(), 1);
        reg.count(false, false, Some("peer sent no ENO"));
        reg.finish(id, None);
        let Response::Status(s) = h.handle(Request::Status) else {
            panic!("status")
        };
        assert_eq!(s.counters.connections_plain, 1);
        assert_eq!(s.counters.active_sessions, 0);
        assert!(s.policy.exclude_ports.contains(&"22".to_owned()));
        assert!(matches!(
            h.handle(Request::SessionId { local, remote }),
            Response::Error {
                code: ErrorCode::NotFound,
                ..
            }
        ));
    }

    #[test]
    fn status_reports_the_load_from_the_live_counter() {
        let config = Cli::try_parse_from(["tcpcryptd", "--max-connections", "2", "--threads", "3"])
            .unwrap()
            .load()
            .unwrap();
        let reg = Arc::new(Registry::new(config));
        let h = ControlHandler(reg.clone());
        let load = || {
            let Response::Status(s) = h.handle(Request::Status) else {
                panic!("status")
            };
            s.load.expect("the daemon reports its load")
        };
        assert_eq!(
            load(),
            Load {
                live_connections: 0,
                max_connections: 2,
                worker_threads: 3,
            }
        );
        // What the daemon holds its connections against is what status reports.
        let live = reg.live_counter();
        assert!(Arc::ptr_eq(&live, &reg.live_counter()));
        live.fetch_add(1, Ordering::AcqRel);
        assert_eq!(load().live_connections, 1);
        assert!(!load().at_limit());
        live.fetch_add(1, Ordering::AcqRel);
        assert!(load().at_limit());
        live.fetch_sub(2, Ordering::AcqRel);
        assert_eq!(load().live_connections, 0);
    }
}
