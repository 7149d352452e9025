//! Cache policy tests (RFC 8548 §3.5, digest §5.3 A10, TC-26..TC-30).

use super::*;
use crate::consts::K_LEN;

const C25519: TepId = TepId::TCPCRYPT_ECDHE_CURVE25519;

fn secret(byte: u8, original_role: Role) -> ResumableSecret {
    ResumableSecret {
        tep: C25519,
        original_role,
        aead: crate::consts::AeadId::AES_128_GCM,
        secret: SessionSecret::from_bytes([byte; K_LEN]),
    }
}

fn nth(s: &ResumableSecret, n: usize) -> ResumableSecret {
    let mut s = s.clone();
    for _ in 0..n {
        s.secret = s.secret.next();
    }
    s
}

fn cache() -> ResumeCache<&'static str> {
    ResumeCache::new(CacheConfig::default())
}

#[test]
fn active_offers_are_single_use_and_monotonic() {
    let now = Instant::now();
    let mut c = cache();
    let ss1 = secret(1, Role::A);
    assert!(c.insert("peer", ss1.clone(), now));
    let first = c.take_offer(&"peer", now).unwrap();
    assert_eq!(first.resume_id(), ss1.resume_id());
    // TC-27: the next attempt uses i+1, whether or not the first succeeded.
    let second = c.take_offer(&"peer", now).unwrap();
    assert_eq!(second.resume_id(), nth(&ss1, 1).resume_id());
    assert!(c.take_offer(&"other", now).is_none());
}

#[test]
fn burned_secret_is_never_reinserted() {
    // Two parallel connections to one peer: conn 2 offered ss[i+1] while conn 1 (resumed with
    // ss[i]) was running; conn 1 then hands back ss[i+1]. It must not be offered a second time.
    let now = Instant::now();
    let mut c = cache();
    let ss = secret(2, Role::A);
    c.insert("peer", ss.clone(), now);
    let _conn1 = c.take_offer(&"peer", now).unwrap(); // ss[i]
    let conn2 = c.take_offer(&"peer", now).unwrap(); // ss[i+1]
    assert!(c.insert("peer", nth(&ss, 1), now)); // conn 1 hands back ss[i+1]
    let next = c.take_offer(&"peer", now).unwrap();
    assert_ne!(next.resume_id(), conn2.resume_id());
    assert_eq!(next.resume_id(), nth(&ss, 2).resume_id());
}

#[test]
fn routing_by_original_role_prevents_crossing_proposals() {
    let now = Instant::now();
    let mut c = cache();
    // Made as B: usable only for passive opens, never offered.
    let b = secret(3, Role::B);
    c.insert("peer", b.clone(), now);
    assert!(c.take_offer(&"peer", now).is_none());
    let got = c.take_for_resumption(C25519, &b.peer_half(), now).unwrap();
    assert_eq!(got.resume_id(), b.resume_id());
    assert_eq!(got.original_role, Role::B);
    // Made as A: only offered, never accepted on a passive open.
    let a = secret(4, Role::A);
    c.insert("peer", a.clone(), now);
    assert!(c.take_for_resumption(C25519, &a.peer_half(), now).is_none());
    assert!(c.take_offer(&"peer", now).is_some());
}

#[test]
fn passive_window_matches_ahead_and_drops_earlier() {
    let now = Instant::now();
    let mut c = cache();
    let base = secret(5, Role::B);
    c.insert("peer", base.clone(), now);
    // The peer's attempts with i and i+1 never arrived; it now offers i+2.
    let ahead = nth(&base, 2);
    let got = c
        .take_for_resumption(C25519, &ahead.peer_half(), now)
        .unwrap();
    assert_eq!(got.resume_id(), ahead.resume_id());
    // Neither the earlier secrets nor the same one can be used again (TC-28); the chain goes on
    // from i+3 (TC-26).
    assert!(c
        .take_for_resumption(C25519, &base.peer_half(), now)
        .is_none());
    assert!(c
        .take_for_resumption(C25519, &ahead.peer_half(), now)
        .is_none());
    assert_eq!(c.len(), 1);
    let next = nth(&base, 3);
    let got = c
        .take_for_resumption(C25519, &next.peer_half(), now)
        .unwrap();
    assert_eq!(got.resume_id(), next.resume_id());
    c.flush(&nth(&base, 4).secret);
    assert!(c.is_empty());
    // Beyond the window: no match.
    c.insert("peer", secret(6, Role::B), now);
    let far = nth(&secret(6, Role::B), DEFAULT_WINDOW);
    assert!(c
        .take_for_resumption(C25519, &far.peer_half(), now)
        .is_none());
}

#[test]
fn passive_requires_same_tep() {
    let now = Instant::now();
    let mut c = cache();
    let b = secret(7, Role::B);
    c.insert("peer", b.clone(), now);
    let p256 = TepId::TCPCRYPT_ECDHE_P256;
    assert!(c.take_for_resumption(p256, &b.peer_half(), now).is_none());
    // A mismatched TEP does not consume the secret.
    assert!(c.take_for_resumption(C25519, &b.peer_half(), now).is_some());
    // Our own half never matches (the peer sends the other one).
    c.insert("peer", secret(8, Role::B), now);
    assert!(c
        .take_for_resumption(C25519, &secret(8, Role::B).own_half(), now)
        .is_none());
}

#[test]
fn expiry() {
    let t0 = Instant::now();
    let mut c: ResumeCache<&str> = ResumeCache::new(CacheConfig {
        ttl: Duration::from_secs(60),
        ..CacheConfig::default()
    });
    c.insert("a", secret(9, Role::A), t0);
    c.insert("b", secret(10, Role::B), t0);
    let later = t0 + Duration::from_secs(59);
    assert_eq!(c.purge_expired(later), 0);
    let late = t0 + Duration::from_secs(60);
    assert!(c.take_offer(&"a", late).is_none());
    assert!(c
        .take_for_resumption(C25519, &secret(10, Role::B).peer_half(), late)
        .is_none());
    assert!(c.is_empty());
    c.insert("a", secret(11, Role::A), t0);
    assert_eq!(c.purge_expired(late), 1);
}

#[test]
fn capacity_evicts_oldest() {
    let t0 = Instant::now();
    let mut c: ResumeCache<u8> = ResumeCache::new(CacheConfig {
        capacity: 2,
        ..CacheConfig::default()
    });
    for (i, k) in [1u8, 2, 3].into_iter().enumerate() {
        c.insert(
            k,
            secret(20 + k, Role::A),
            t0 + Duration::from_secs(i as u64),
        );
        c.insert(
            k,
            secret(30 + k, Role::B),
            t0 + Duration::from_secs(i as u64),
        );
    }
    assert_eq!(c.len(), 4);
    assert!(c.take_offer(&1, t0).is_none());
    assert!(c
        .take_for_resumption(C25519, &secret(31, Role::B).peer_half(), t0)
        .is_none());
    assert!(c.take_offer(&3, t0).is_some());
    let mut none: ResumeCache<u8> = ResumeCache::new(CacheConfig {
        capacity: 0,
        ..CacheConfig::default()
    });
    assert!(!none.insert(1, secret(1, Role::A), t0));
    let clamped: ResumeCache<u8> = ResumeCache::new(CacheConfig {
        capacity: usize::MAX,
        window: 1000,
        ttl: DEFAULT_TTL,
    });
    assert_eq!(clamped.config().capacity, MAX_CACHE_ENTRIES);
    assert_eq!(clamped.config().window, MAX_WINDOW);
}

#[test]
fn flush_removes_used_and_produced_state() {
    let now = Instant::now();
    let mut c = cache();
    // Active: resumed with ss[i]; the cache holds ss[i+1]. Flushing with ss[i] removes it.
    let a = secret(40, Role::A);
    c.insert("p", a.clone(), now);
    let used = c.take_offer(&"p", now).unwrap();
    assert_eq!(c.flush(&used.secret), 1);
    assert!(c.take_offer(&"p", now).is_none());
    // ...and a later hand-back of ss[i+1] is refused as burned, moving past the window.
    assert!(!c.insert("p", nth(&a, 1), now));
    // Passive: the produced ss[1] of a fresh session, flushed right after insertion.
    let b = secret(41, Role::B);
    c.insert("q", b.clone(), now);
    assert_eq!(c.flush(&b.secret), 1);
    assert!(c.take_for_resumption(C25519, &b.peer_half(), now).is_none());
    // forget_peer
    c.insert("r", secret(42, Role::A), now);
    c.insert("r", secret(43, Role::B), now);
    assert_eq!(c.forget_peer(&"r"), 2);
    assert!(c.is_empty());
}

#[test]
fn no_resumption_store_is_empty() {
    assert!(NoResumption
        .take_for_resumption(C25519, &[0; 9], Instant::now())
        .is_none());
}
