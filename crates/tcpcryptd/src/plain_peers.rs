//! The cache of peers without tcpcrypt: destinations (address and port) whose answer to an
//! upstream SYN made the connection plain (RFC 8547 §4.6), most often a SYN-ACK with no ENO
//! option because the server does not speak TCP-ENO.
//!
//! While a destination is cached (`plain_peer_cache_secs`, default 5 minutes), the client
//! side lets new connections to it go direct: their SYN is neither held nor marked, so it
//! leaves without ENO and the connection never passes through the daemon. Without the cache,
//! every connection to a server without tcpcrypt (most servers today) would be relayed in
//! plain through the daemon's two extra sockets, for nothing. The key is the address *and*
//! port: one host may run tcpcrypt for one service and not for another.
//!
//! **Where it lives.** On the BPF path the cache is a map of the kernel's SYN filter
//! (`tcpcrypt_sys::syn_filters`, an xt_bpf match in front of the application-SYN queue), which
//! lets the cached destinations' SYNs go without queueing them (the probes are queued, as
//! every other SYN). [`PlainPeers`] is the same cache in the daemon, used when the filters
//! are not loaded (the NFQUEUE path), where every application SYN is queued and checked here.
//!
//! **Probes.** One connection to a cached destination every [`PROBE_EVERY`] still goes the
//! normal way, with ENO: if the peer now answers with ENO (its daemon was restarted, was at
//! its connection limit, or was just installed), the entry goes and every connection is
//! encrypted again; if not, the entry is renewed. So a busy destination is never stale for
//! longer than the probe interval, whatever the TTL.
//!
//! Security: this is a downgrade memory, bounded on purpose. An on-path attacker who strips
//! ENO from one SYN-ACK already makes that connection plain (RFC 8547 §10: no protection
//! against active attackers without session-ID checks); with the cache, that one strip also
//! makes the destination's next connections plain until a probe gets through, even after the
//! attacker has left the path (at most the TTL, 0 turning the cache off). An off-path
//! attacker cannot make an entry: one is made only from this host's own upstream handshake,
//! whose SYN-ACK must match it. Mandatory destinations are unaffected: the daemon never skips
//! ENO to one (checked at use, per port and address). The cache is bounded: when full, the
//! entry closest to expiry makes room.
//!
//! Only outcomes the peer's answer decided are cached ([`worth_caching`]): not a handshake
//! the daemon did not see, and not our own side's failure.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tcpcrypt_proto::eno::FallbackReason;

use crate::expiring::ExpiringMap;

/// Entries held at most by default.
pub const DEFAULT_MAX: usize = 4096;

/// How often a connection to a cached destination goes with ENO anyway, to notice a peer that
/// speaks tcpcrypt now.
pub const PROBE_EVERY: Duration = Duration::from_secs(10);

/// What to do with a new connection to a destination ([`PlainPeers::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Not cached: offer ENO, through the daemon.
    Negotiate,
    /// Cached and no probe due: direct, without ENO.
    Direct,
    /// Cached, and this connection is the probe: offer ENO, through the daemon.
    Probe,
}

/// Destinations that answered without (usable) ENO, each until its expiry, with the time of
/// its next probe.
#[derive(Debug)]
pub struct PlainPeers {
    next_probe: ExpiringMap<SocketAddr, Instant>,
}

impl PlainPeers {
    /// An empty cache keeping entries for `ttl` (zero: off), at most `max`.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            next_probe: ExpiringMap::new(ttl, max),
        }
    }

    /// Entries held (expired ones included until the next [`Self::expire`]).
    pub fn len(&self) -> usize {
        self.next_probe.len()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.next_probe.is_empty()
    }

    /// The route of a new connection to `dst` at `now`. A probe pushes the next one back by
    /// [`PROBE_EVERY`], so concurrent connections do not all probe.
    pub fn check(&mut self, dst: SocketAddr, now: Instant) -> Route {
        let Some(next) = self.next_probe.get_mut(dst, now) else {
            return Route::Negotiate;
        };
        if now >= *next {
            *next = now + PROBE_EVERY;
            return Route::Probe;
        }
        Route::Direct
    }

    /// `dst` answered without ENO at `now`: held for the TTL (renewed if held), next probed
    /// after [`PROBE_EVERY`]. When full, expired entries go first, then the one closest to
    /// expiry.
    pub fn insert(&mut self, dst: SocketAddr, now: Instant) {
        self.next_probe.insert_value(dst, now + PROBE_EVERY, now);
    }

    /// `dst` negotiated tcpcrypt: no longer a peer without it.
    pub fn remove(&mut self, dst: SocketAddr) {
        self.next_probe.remove(dst);
    }

    /// Drops every expired entry.
    pub fn expire(&mut self, now: Instant) {
        self.next_probe.expire(now);
    }
}

/// True if a plain outcome for `reason` was decided by the peer's answer: its SYN-ACK had no
/// ENO option, or one that cannot make a session with ours (legacy encoding, malformed, no
/// common TEP, an echo of our own option, not application-aware where we require it). Not
/// cached: our own side's reasons (no room, SYN data, our option), a resumption mismatch
/// (the peer speaks tcpcrypt; the next, fresh, connection can succeed), and anything new.
pub fn worth_caching(reason: &FallbackReason) -> bool {
    matches!(
        reason,
        FallbackReason::MissingEno
            | FallbackReason::LegacyEnoOnly
            | FallbackReason::DuplicateEno
            | FallbackReason::MalformedOptions(_)
            | FallbackReason::IllFormedEno(_)
            | FallbackReason::RoleConflict { .. }
            | FallbackReason::PeerNotAppAware
            | FallbackReason::PeerVacuous
            | FallbackReason::NoValidTep
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn cached_destinations_go_direct_between_probes() {
        let t0 = Instant::now();
        let mut c = PlainPeers::new(S(300), 8);
        assert_eq!(c.check(a("192.0.2.1:80"), t0), Route::Negotiate);
        c.insert(a("192.0.2.1:80"), t0);
        assert_eq!(c.check(a("192.0.2.1:80"), t0 + S(1)), Route::Direct);
        assert_eq!(
            c.check(a("192.0.2.1:443"), t0),
            Route::Negotiate,
            "other port"
        );
        assert_eq!(
            c.check(a("[::ffff:192.0.2.1]:80"), t0),
            Route::Direct,
            "mapped"
        );
        // One probe per interval, however many connections.
        let due = t0 + PROBE_EVERY;
        assert_eq!(c.check(a("192.0.2.1:80"), due), Route::Probe);
        assert_eq!(c.check(a("192.0.2.1:80"), due), Route::Direct);
        assert_eq!(c.check(a("192.0.2.1:80"), due + PROBE_EVERY), Route::Probe);
    }

    #[test]
    fn a_probe_that_negotiates_ends_the_entry_and_one_that_does_not_renews_it() {
        let t0 = Instant::now();
        let mut c = PlainPeers::new(S(30), 8);
        c.insert(a("192.0.2.1:80"), t0);
        assert_eq!(c.check(a("192.0.2.1:80"), t0 + S(10)), Route::Probe);
        c.insert(a("192.0.2.1:80"), t0 + S(10));
        assert_eq!(
            c.check(a("192.0.2.1:80"), t0 + S(35)),
            Route::Probe,
            "renewed"
        );
        c.remove(a("192.0.2.1:80"));
        assert_eq!(c.check(a("192.0.2.1:80"), t0 + S(36)), Route::Negotiate);
        assert!(c.is_empty());
    }

    #[test]
    fn entries_expire_and_zero_ttl_is_off() {
        let t0 = Instant::now();
        let mut c = PlainPeers::new(S(5), 8);
        c.insert(a("192.0.2.1:80"), t0);
        assert_eq!(c.check(a("192.0.2.1:80"), t0 + S(5)), Route::Negotiate);
        assert!(c.is_empty(), "the expired entry was removed");
        let mut off = PlainPeers::new(Duration::ZERO, 8);
        off.insert(a("192.0.2.1:80"), t0);
        assert_eq!(off.check(a("192.0.2.1:80"), t0), Route::Negotiate);
        assert!(off.is_empty());
    }

    #[test]
    fn bounded_evicts_the_entry_closest_to_expiry() {
        let t0 = Instant::now();
        let mut c = PlainPeers::new(S(100), 2);
        c.insert(a("192.0.2.1:80"), t0);
        c.insert(a("192.0.2.2:80"), t0 + S(1));
        c.insert(a("192.0.2.3:80"), t0 + S(2));
        assert_eq!(c.len(), 2);
        assert_eq!(c.check(a("192.0.2.1:80"), t0 + S(3)), Route::Negotiate);
        assert_eq!(c.check(a("192.0.2.3:80"), t0 + S(3)), Route::Direct);
        c.expire(t0 + S(101));
        assert_eq!(c.len(), 1, "only the last entry is still alive");
    }

    #[test]
    fn only_the_peers_answers_are_cached() {
        assert!(worth_caching(&FallbackReason::MissingEno));
        assert!(worth_caching(&FallbackReason::LegacyEnoOnly));
        assert!(worth_caching(&FallbackReason::RoleConflict { b: false }));
        assert!(!worth_caching(&FallbackReason::OwnVacuous));
        assert!(!worth_caching(&FallbackReason::NoOptionSpace));
        assert!(!worth_caching(&FallbackReason::ResumptionMismatch));
    }
}
