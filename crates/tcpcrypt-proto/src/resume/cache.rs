//! The session-secret cache (RFC 8548 §3.5; digest §5.3 A10).
//!
//! Decisions, each enforced here and covered by the tests below:
//!
//! * **Who proposes which chain.** To rule out two hosts proposing the same secret to each other
//!   in crossing (non-simultaneous-open) SYNs, "implementations MAY choose to implement session
//!   resumption such that all session secrets derived from a given ss\[0\] are used for either
//!   passive or active opens at the same host, not both" (§3.5). We do exactly that, by the
//!   secret's *original role*: a chain whose ss\[0\] this host made as A is used only for
//!   *active* opens (offers, [`ResumeCache::take_offer`]); a chain made as B only for *passive*
//!   opens ([`ResumeStore::take_for_resumption`]). [`ResumeCache::insert`] routes by
//!   [`ResumableSecret::original_role`]. The cost: a host that was B never starts resumption
//!   (the RFC's "either host MAY" is a MAY).
//! * **Single use** (§3.5, "MUST NOT be used to secure more than one TCP connection"). A secret
//!   leaves the cache when it is offered (active) or agreed to (passive), and its identifier is
//!   *burned*: [`ResumeCache::insert`] never stores a burned secret again, it steps forward to
//!   the first unburned successor. This also covers two parallel connections to one peer, where
//!   the first one's ss\[i+1\] was already offered by the second. The last [`MAX_BURNED_IDS`]
//!   burned identifiers are remembered by a 64-bit fingerprint, their first 8 bytes (identifiers
//!   are KDF output, so uniformly random): 8 bytes each instead of 18, about 3.4 MB at most
//!   instead of 7.3 (a 10-minute soak of resumed connections grew the daemons' memory in steps
//!   at this set's resizes). Two identifiers sharing a fingerprint (odds about n²/2^65) only
//!   make a secret look burned: a fresh key exchange instead of a resumption, never a reuse.
//! * **Monotonic i** (§3.5, "the lowest value of i that has not already been used
//!   (successfully or not)"). Offering ss\[i\] replaces it with ss\[i+1\] at once, whatever the
//!   attempt's fate.
//! * **Look-ahead window** (A10). The passive side cannot know about attempts that never reached
//!   it, so it indexes the peer halves of ss\[i\]..ss\[i+w-1\]. A match at i+k uses ss\[i+k\],
//!   drops the earlier secrets, and the chain continues from ss\[i+k+1\].
//! * **Lookup keys.** The active side looks up by a peer identity chosen by the driver (`K`,
//!   e.g. the peer's address); the passive side by identifier half alone, so resumption
//!   survives address changes (A10). "Same host" in §3.5 is therefore the driver's `K`.
//! * **Expiry and bounds** (RFC 8547 §5, forward secrecy "soon after close"). Every chain
//!   carries its insertion [`Instant`]; after [`CacheConfig::ttl`] it is ignored and purged.
//!   At most [`CacheConfig::capacity`] chains per side (never more than [`MAX_CACHE_ENTRIES`]);
//!   the oldest is evicted first. Secrets never leave memory (§3.5 "SHOULD NOT write").

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::consts::{Role, TepId, RESUME_HALF_LEN};
use crate::keys::{ResumableSecret, ResumeId, SessionSecret};

/// Hard upper bound on chains per side, whatever the configuration.
pub const MAX_CACHE_ENTRIES: usize = 65_536;
/// Default chains per side.
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;
/// Hard upper bound on the passive look-ahead window.
pub const MAX_WINDOW: usize = 16;
/// Default passive look-ahead window w (digest §5.3 A10).
pub const DEFAULT_WINDOW: usize = 4;
/// Default lifetime of a cached chain: bounds how long a secret can outlive its connection
/// (RFC 8547 §5 forward secrecy).
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);
/// Identifiers of used secrets remembered to refuse re-insertion (FIFO beyond this).
pub const MAX_BURNED_IDS: usize = 2 * MAX_CACHE_ENTRIES;

/// Cache limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a chain stays usable after insertion.
    pub ttl: Duration,
    /// Passive look-ahead window w, clamped to 1..=[`MAX_WINDOW`].
    pub window: usize,
    /// Chains per side, clamped to [`MAX_CACHE_ENTRIES`].
    pub capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            window: DEFAULT_WINDOW,
            capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// What a passive opener consults when a SYN offers resumption (RFC 8548 §3.5).
pub trait ResumeStore {
    /// Removes and returns the cached secret whose *peer* half is `peer_half`, if its TEP is
    /// `tep` ("the suboption's TEP matches the TEP used in the previous session"). A secret
    /// returned here is never returned again.
    fn take_for_resumption(
        &mut self,
        tep: TepId,
        peer_half: &[u8; RESUME_HALF_LEN],
        now: Instant,
    ) -> Option<ResumableSecret>;
}

/// A store that holds nothing: for hosts or connections that never resume.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoResumption;

impl ResumeStore for NoResumption {
    fn take_for_resumption(
        &mut self,
        _: TepId,
        _: &[u8; RESUME_HALF_LEN],
        _: Instant,
    ) -> Option<ResumableSecret> {
        None
    }
}

/// A chain for active opens: the next secret to offer to one peer.
#[derive(Debug)]
struct ActiveEntry {
    secret: ResumableSecret,
    inserted: Instant,
}

/// A chain for passive opens, with the peer halves of its look-ahead window.
#[derive(Debug)]
struct PassiveChain<K> {
    peer: K,
    base: ResumableSecret,
    halves: Vec<[u8; RESUME_HALF_LEN]>,
    inserted: Instant,
}

/// The session-secret cache of one host (RFC 8548 §3.5). See the module documentation for the
/// rules it enforces. `K` is the driver's peer identity for active opens.
#[derive(Debug)]
pub struct ResumeCache<K> {
    config: CacheConfig,
    active: HashMap<K, ActiveEntry>,
    passive: HashMap<u64, PassiveChain<K>>,
    index: HashMap<[u8; RESUME_HALF_LEN], (u64, usize)>,
    next_chain: u64,
    /// Fingerprints ([`fingerprint`]) of the burned identifiers, oldest first, and as a set.
    burned: VecDeque<u64>,
    burned_set: HashSet<u64>,
}

impl<K: Eq + Hash + Clone> ResumeCache<K> {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        let config = CacheConfig {
            ttl: config.ttl,
            window: config.window.clamp(1, MAX_WINDOW),
            capacity: config.capacity.min(MAX_CACHE_ENTRIES),
        };
        Self {
            config,
            active: HashMap::new(),
            passive: HashMap::new(),
            index: HashMap::new(),
            next_chain: 0,
            burned: VecDeque::new(),
            burned_set: HashSet::new(),
        }
    }

    /// The effective limits.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Caches `secret`, the ss\[i+1\] the stream path hands back after a session with `peer`
    /// (RFC 8548 §3.5: "compute and cache ss\[i+1\]"). Routed by original role: A to the
    /// active side (replacing any chain for `peer`), B to the passive side. A burned secret is
    /// replaced by its first unburned successor (at most [`MAX_WINDOW`] steps). Returns false
    /// if nothing was stored (capacity 0, or every candidate burned).
    ///
    /// A connection under the "cache nothing" policy (§3.5;
    /// [`Config::cache_secrets`](crate::eno::Config::cache_secrets)) never hands a secret back
    /// (its [`Negotiated::cache_secrets`](crate::negotiated::Negotiated::cache_secrets) is false).
    pub fn insert(&mut self, peer: K, mut secret: ResumableSecret, now: Instant) -> bool {
        if self.config.capacity == 0 {
            return false;
        }
        let mut steps = 0;
        while self.burned_set.contains(&fingerprint(&secret.resume_id())) {
            if steps == MAX_WINDOW {
                return false;
            }
            secret.secret = secret.secret.next();
            steps += 1;
        }
        match secret.original_role {
            Role::A => {
                if !self.active.contains_key(&peer) && self.active.len() >= self.config.capacity {
                    self.evict_oldest_active();
                }
                self.active.insert(
                    peer,
                    ActiveEntry {
                        secret,
                        inserted: now,
                    },
                );
            }
            Role::B => {
                if self.passive.len() >= self.config.capacity {
                    self.evict_oldest_passive();
                }
                self.insert_passive(peer, secret, now);
            }
        }
        true
    }

    fn insert_passive(&mut self, peer: K, base: ResumableSecret, now: Instant) {
        let id = self.next_chain;
        self.next_chain = self.next_chain.wrapping_add(1);
        let mut halves = Vec::with_capacity(self.config.window);
        let mut s = base.clone();
        for k in 0..self.config.window {
            let half = s.peer_half();
            halves.push(half);
            self.index.insert(half, (id, k));
            s.secret = s.secret.next();
        }
        self.passive.insert(
            id,
            PassiveChain {
                peer,
                base,
                halves,
                inserted: now,
            },
        );
    }

    /// Takes the secret to offer in an active open to `peer` (RFC 8548 §3.5), or `None`. The
    /// cache moves on to the next i at once ("used (successfully or not)"), and the offered
    /// secret is never offered again. Call it only if the connection may offer resumption
    /// ([`Config::offer_resumption`](crate::eno::Config::offer_resumption)).
    pub fn take_offer(&mut self, peer: &K, now: Instant) -> Option<ResumableSecret> {
        let entry = self.active.get_mut(peer)?;
        if expired(entry.inserted, now, self.config.ttl) {
            self.active.remove(peer);
            return None;
        }
        let offered = entry.secret.clone();
        entry.secret.secret = offered.secret.next();
        self.burn(offered.resume_id());
        Some(offered)
    }

    /// Flushes every chain holding `secret` or one of its next successors, and burns them all
    /// (so a later [`insert`](Self::insert) of the connection's ss\[i+1\] is refused): the
    /// per-connection "flush" of RFC 8548 §3.5 ("any cache state that was used in or resulted
    /// from establishing the connection"). Pass the ss\[i\] the connection resumed with
    /// ([`Resumption::secret`](crate::negotiated::Resumption)) or the ss\[i+1\] it produced.
    /// Returns the number of chains removed.
    pub fn flush(&mut self, secret: &SessionSecret) -> usize {
        // Deeper than `insert` ever steps past burned ids, so nothing of this chain returns.
        const FLUSH_DEPTH: usize = 2 * MAX_WINDOW + 2;
        let mut ids = HashSet::with_capacity(FLUSH_DEPTH);
        let mut s = secret.clone();
        for _ in 0..FLUSH_DEPTH {
            ids.insert(s.resume_id());
            s = s.next();
        }
        let before = self.len();
        self.active
            .retain(|_, e| !ids.contains(&e.secret.resume_id()));
        let gone: Vec<u64> = self
            .passive
            .iter()
            .filter(|(_, c)| ids.contains(&c.base.resume_id()))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.remove_passive(id);
        }
        for id in ids {
            self.burn(id);
        }
        before - self.len()
    }

    /// Removes every chain of `peer`, both sides. Returns the number removed.
    pub fn forget_peer(&mut self, peer: &K) -> usize {
        let mut n = usize::from(self.active.remove(peer).is_some());
        let gone: Vec<u64> = self
            .passive
            .iter()
            .filter(|(_, c)| &c.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        n += gone.len();
        for id in gone {
            self.remove_passive(id);
        }
        n
    }

    /// Drops every chain older than the TTL. Returns the number removed. Lookups ignore
    /// expired chains anyway; this bounds how long their secrets stay in memory.
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        let ttl = self.config.ttl;
        let before = self.len();
        self.active.retain(|_, e| !expired(e.inserted, now, ttl));
        let gone: Vec<u64> = self
            .passive
            .iter()
            .filter(|(_, c)| expired(c.inserted, now, ttl))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.remove_passive(id);
        }
        before - self.len()
    }

    /// Chains held, both sides.
    pub fn len(&self) -> usize {
        self.active.len() + self.passive.len()
    }

    /// True if no chain is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove_passive(&mut self, id: u64) -> Option<PassiveChain<K>> {
        let chain = self.passive.remove(&id)?;
        for half in &chain.halves {
            // Another chain may have overwritten this half (a 72-bit collision); keep it.
            if self.index.get(half).is_some_and(|(owner, _)| *owner == id) {
                self.index.remove(half);
            }
        }
        Some(chain)
    }

    fn evict_oldest_active(&mut self) {
        let oldest = self
            .active
            .iter()
            .min_by_key(|(_, e)| e.inserted)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.active.remove(&k);
        }
    }

    fn evict_oldest_passive(&mut self) {
        let oldest = self
            .passive
            .iter()
            .min_by_key(|(_, c)| c.inserted)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.remove_passive(id);
        }
    }

    fn burn(&mut self, id: ResumeId) {
        let id = fingerprint(&id);
        if self.burned_set.insert(id) {
            self.burned.push_back(id);
            if self.burned.len() > MAX_BURNED_IDS {
                if let Some(old) = self.burned.pop_front() {
                    self.burned_set.remove(&old);
                }
            }
        }
    }
}

/// What the cache remembers of a burned identifier: its first 8 bytes (see the module doc).
fn fingerprint(id: &ResumeId) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&id.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

impl<K: Eq + Hash + Clone> ResumeStore for ResumeCache<K> {
    fn take_for_resumption(
        &mut self,
        tep: TepId,
        peer_half: &[u8; RESUME_HALF_LEN],
        now: Instant,
    ) -> Option<ResumableSecret> {
        let &(id, k) = self.index.get(peer_half)?;
        let chain = self.passive.get(&id)?;
        if expired(chain.inserted, now, self.config.ttl) {
            self.remove_passive(id);
            return None;
        }
        if chain.base.tep != tep {
            // "Otherwise, it MUST NOT agree to resumption" (§3.5); the chain stays.
            return None;
        }
        let chain = self.remove_passive(id)?;
        let mut secret = chain.base;
        for _ in 0..k {
            secret.secret = secret.secret.next();
        }
        self.burn(secret.resume_id());
        // The chain continues from ss[i+k+1] ("compute and cache ss[i+1]", §3.5): a resumed
        // session hands nothing back, so the cache advances itself, as `take_offer` does on the
        // active side.
        let next = ResumableSecret {
            secret: secret.secret.next(),
            ..secret.clone()
        };
        self.insert_passive(chain.peer, next, now);
        Some(secret)
    }
}

fn expired(inserted: Instant, now: Instant, ttl: Duration) -> bool {
    now.saturating_duration_since(inserted) >= ttl
}

#[cfg(test)]
mod tests;
