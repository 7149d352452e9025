//! Bounded sets and maps of keys that expire: the type-2 path cache ([`crate::type2_cache`]),
//! the cache of peers without tcpcrypt ([`crate::plain_peers`], with each entry's next probe)
//! and the daemon's memory of destinations that accepted a connection recently (its fast SYN
//! path).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A bounded map of keys to values, each entry until its expiry.
#[derive(Debug)]
pub struct ExpiringMap<K, V> {
    ttl: Duration,
    max: usize,
    entries: HashMap<K, (Instant, V)>,
}

/// A bounded set of keys, each until its expiry.
pub type ExpiringSet<K> = ExpiringMap<K, ()>;

impl<K: Key, V> ExpiringMap<K, V> {
    /// An empty map keeping entries for `ttl` (zero: the map is off), at most `max`.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            entries: HashMap::new(),
        }
    }

    /// The bound on entries.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Entries held (expired ones included until the next [`Self::expire`]).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Holds `key` with `value` until `now + ttl` (replacing an existing entry); when full,
    /// expired entries go first, then the one closest to expiry.
    pub fn insert_value(&mut self, key: K, value: V, now: Instant) {
        if self.ttl.is_zero() || self.max == 0 {
            return;
        }
        let key = key.canonical();
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max {
            self.expire(now);
            if self.entries.len() >= self.max {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (t, _))| *t)
                    .map(|(k, _)| *k);
                if let Some(k) = soonest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (now + self.ttl, value));
    }

    /// The value of `key` if it is held at `now`; an expired entry is removed.
    pub fn get_mut(&mut self, key: K, now: Instant) -> Option<&mut V> {
        let key = key.canonical();
        if self.entries.get(&key).is_some_and(|(t, _)| now >= *t) {
            self.entries.remove(&key);
        }
        self.entries.get_mut(&key).map(|(_, v)| v)
    }

    /// Drops every expired entry.
    pub fn expire(&mut self, now: Instant) {
        self.entries.retain(|_, (t, _)| now < *t);
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: K) {
        self.entries.remove(&key.canonical());
    }
}

impl<K: Key> ExpiringSet<K> {
    /// Holds `key` until `now + ttl` (refreshing an existing entry), as
    /// [`ExpiringMap::insert_value`].
    pub fn insert(&mut self, key: K, now: Instant) {
        self.insert_value(key, (), now);
    }

    /// True if `key` is held at `now`; an expired entry is removed.
    pub fn contains(&mut self, key: K, now: Instant) -> bool {
        self.get_mut(key, now).is_some()
    }
}

/// A key of an [`ExpiringMap`]: IPv4-mapped IPv6 addresses and IPv4 ones are the same key.
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
