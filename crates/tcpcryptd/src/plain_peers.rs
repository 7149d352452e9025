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
//! Security: this is a downgrade memory, and it is bounded on purpose. An on-path attacker
//! who strips ENO from one SYN-ACK already makes that connection plain (RFC 8547 §10: no
//! protection against active attackers without session-ID checks); with the cache, that one
//! strip also makes the destination's next connections plain for the TTL, even after the
//! attacker has left the path. Hence the short default, and 0 turning the cache off. An
//! off-path attacker cannot make an entry: one is made only from this host's own upstream
//! handshake, which its SYN-ACK must match. Mandatory destinations are unaffected: the
//! daemon never skips ENO to one (checked at use, per port and address). The cache is
//! bounded ([`crate::expiring::ExpiringSet::max`]): when full, the entry closest to expiry
//! makes room.
//!
//! Only outcomes the peer's answer decided are cached ([`worth_caching`]): not a handshake
//! the daemon did not see, and not our own configuration's failure.

use std::net::SocketAddr;

use tcpcrypt_proto::eno::FallbackReason;

/// Entries held at most by default.
pub const DEFAULT_MAX: usize = 4096;

/// Destinations that answered without (usable) ENO, each until its expiry.
pub type PlainPeers = crate::expiring::ExpiringSet<SocketAddr>;

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
    use std::time::{Duration, Instant};

    #[test]
    fn the_port_is_part_of_the_destination() {
        let t0 = Instant::now();
        let mut c = PlainPeers::new(Duration::from_secs(300), 8);
        c.insert("192.0.2.1:80".parse().unwrap(), t0);
        assert!(c.contains("192.0.2.1:80".parse().unwrap(), t0));
        assert!(!c.contains("192.0.2.1:443".parse().unwrap(), t0));
        assert!(c.contains("[::ffff:192.0.2.1]:80".parse().unwrap(), t0));
        assert!(!c.contains(
            "192.0.2.1:80".parse().unwrap(),
            t0 + Duration::from_secs(300)
        ));
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
