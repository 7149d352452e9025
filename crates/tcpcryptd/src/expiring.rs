//! A bounded set of keys that expire: the type-2 path cache ([`crate::type2_cache`]), the
//! cache of peers without tcpcrypt ([`crate::plain_peers`]) and the daemon's memory of
//! destinations that accepted a connection recently (its fast SYN path).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A bounded set of keys, each until its expiry.
#[derive(Debug)]
pub struct ExpiringSet<K> {
    ttl: Duration,
    max: usize,
    until: HashMap<K, Instant>,
}

impl<K: Key> ExpiringSet<K> {
    /// An empty set keeping entries for `ttl` (zero: the set is off), at most `max`.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            until: HashMap::new(),
        }
    }

    /// The bound on entries.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Entries held (expired ones included until the next [`Self::expire`]).
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    /// Holds `key` until `now + ttl` (refreshing an existing entry); when full, expired entries
    /// go first, then the one closest to expiry.
    pub fn insert(&mut self, key: K, now: Instant) {
        if self.ttl.is_zero() || self.max == 0 {
            return;
        }
        let key = key.canonical();
        if !self.until.contains_key(&key) && self.until.len() >= self.max {
            self.expire(now);
            if self.until.len() >= self.max {
                let soonest = self.until.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k);
                if let Some(k) = soonest {
                    self.until.remove(&k);
                }
            }
        }
        self.until.insert(key, now + self.ttl);
    }

    /// True if `key` is held at `now`; an expired entry is removed.
    pub fn contains(&mut self, key: K, now: Instant) -> bool {
        let key = key.canonical();
        match self.until.get(&key) {
            Some(&t) if now < t => true,
            Some(_) => {
                self.until.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Drops every expired entry.
    pub fn expire(&mut self, now: Instant) {
        self.until.retain(|_, t| now < *t);
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: K) {
        self.until.remove(&key.canonical());
    }
}

/// A key of an [`ExpiringSet`]: IPv4-mapped IPv6 addresses and IPv4 ones are the same key.
pub trait Key: Copy + Eq + Hash {
    /// The one form of equal keys.
    fn canonical(self) -> Self;
}

impl Key for IpAddr {
    fn canonical(self) -> Self {
        self.to_canonical()
    }
}

impl Key for SocketAddr {
    fn canonical(self) -> Self {
        Self::new(self.ip().to_canonical(), self.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_are_keys_by_address_and_port() {
        let t0 = Instant::now();
        let mut set = ExpiringSet::new(Duration::from_secs(5), 8);
        let v4: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:80".parse().unwrap();
        set.insert(mapped, t0);
        assert!(set.contains(v4, t0), "mapped and plain IPv4 are one key");
        assert!(!set.contains("192.0.2.1:81".parse().unwrap(), t0));
        set.remove(v4);
        assert!(!set.contains(mapped, t0));
        assert!(set.is_empty());
    }
}
