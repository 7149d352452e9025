//! The negative cache of "type 2" paths (RFC 8547 §9): destination addresses where a middlebox
//! passed ENO in the SYN and SYN-ACK but stripped it from later segments, so the client side
//! enabled tcpcrypt while the server side fell back (RFC 8547 §4.6), and the daemon had to
//! retry the connection without ENO.
//!
//! While an address is cached (`type2_cache_secs`, default 10 minutes), the client side lets
//! new connections to it go direct: their SYN is neither held nor marked, so no ENO option is
//! ever added, and no attempt fails first. The key is the address, not the port: the middlebox
//! sits on the path to the host.
//!
//! Security: an attacker who can strip ENO from non-SYN segments can just as well strip it
//! from the SYN (a "type 1" downgrade, RFC 8547 §9), which already makes the connection plain;
//! remembering the path therefore gives an on-path attacker no power it did not have. An
//! off-path attacker cannot make an entry: one is made only after this host's own session
//! failed during the handshake of a connection whose SYN-ACK carried ENO. Mandatory policies
//! are unaffected: the daemon never retries nor skips ENO to a mandatory destination (checked
//! at use, per port and address), so such connections still fail closed. The cache is bounded
//! ([`crate::expiring::ExpiringSet::max`]): when full, the entry closest to expiry makes room.

use std::net::IpAddr;

/// Entries held at most by default.
pub const DEFAULT_MAX: usize = 4096;

/// Destination addresses known to strip ENO after the SYN, each until its expiry.
pub type Type2Cache = crate::expiring::ExpiringSet<IpAddr>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::{Duration, Instant};

    fn v4(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
    }

    #[test]
    fn entry_lives_for_the_ttl_only() {
        let t0 = Instant::now();
        let mut c = Type2Cache::new(Duration::from_secs(600), 8);
        assert!(!c.contains(v4(1), t0));
        c.insert(v4(1), t0);
        assert!(c.contains(v4(1), t0 + Duration::from_secs(599)));
        assert!(!c.contains(v4(2), t0), "another address is not cached");
        assert!(!c.contains(v4(1), t0 + Duration::from_secs(600)));
        assert!(c.is_empty(), "the expired entry was removed");
    }

    #[test]
    fn insert_refreshes_the_expiry() {
        let t0 = Instant::now();
        let mut c = Type2Cache::new(Duration::from_secs(10), 8);
        c.insert(v4(1), t0);
        c.insert(v4(1), t0 + Duration::from_secs(8));
        assert!(c.contains(v4(1), t0 + Duration::from_secs(15)));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn mapped_v4_and_v4_are_the_same_destination() {
        let t0 = Instant::now();
        let mut c = Type2Cache::new(Duration::from_secs(10), 8);
        c.insert(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()), t0);
        assert!(c.contains(v4(1), t0));
        assert!(!c.contains(IpAddr::V6(Ipv6Addr::LOCALHOST), t0));
    }

    #[test]
    fn bounded_evicts_the_entry_closest_to_expiry() {
        let t0 = Instant::now();
        let mut c = Type2Cache::new(Duration::from_secs(100), 3);
        for n in 1..=3 {
            c.insert(v4(n), t0 + Duration::from_secs(u64::from(n)));
        }
        c.insert(v4(4), t0 + Duration::from_secs(4));
        assert_eq!(c.len(), 3);
        let now = t0 + Duration::from_secs(5);
        assert!(!c.contains(v4(1), now), "the oldest entry made room");
        for n in 2..=4 {
            assert!(c.contains(v4(n), now), "entry {n} kept");
        }
    }

    #[test]
    fn full_cache_drops_expired_entries_first() {
        let t0 = Instant::now();
        let mut c = Type2Cache::new(Duration::from_secs(10), 2);
        c.insert(v4(1), t0);
        c.insert(v4(2), t0 + Duration::from_secs(5));
        c.insert(v4(3), t0 + Duration::from_secs(12));
        let now = t0 + Duration::from_secs(12);
        assert!(!c.contains(v4(1), now));
        assert!(c.contains(v4(2), now));
        assert!(c.contains(v4(3), now));
    }

    #[test]
    fn zero_ttl_turns_the_cache_off() {
        let t0 = Instant::now();
        let mut c = Type2Cache::new(Duration::ZERO, 8);
        c.insert(v4(1), t0);
        assert!(!c.contains(v4(1), t0));
        assert!(c.is_empty());
    }
}
