//! Resumption through the negotiation (RFC 8548 §3.2, §3.5; TC-16..TC-30).

use std::time::Instant;

use super::*;
use crate::consts::K_LEN;
use crate::keys::SessionSecret;
use crate::resume::{CacheConfig, ResumeCache};

/// ss\[i\] as the original A and the original B hold it.
fn shared(byte: u8, tep: TepId) -> (ResumableSecret, ResumableSecret) {
    let ss = SessionSecret::from_bytes([byte; K_LEN]);
    let a = ResumableSecret {
        tep,
        original_role: Role::A,
        aead: crate::consts::AeadId::AES_128_GCM,
        secret: ss.clone(),
    };
    let b = ResumableSecret {
        tep,
        original_role: Role::B,
        aead: crate::consts::AeadId::AES_128_GCM,
        secret: ss,
    };
    (a, b)
}

fn caches(byte: u8, tep: TepId) -> (ResumeCache<&'static str>, ResumeCache<&'static str>) {
    let now = Instant::now();
    let (sa, sb) = shared(byte, tep);
    let mut ca = ResumeCache::new(CacheConfig::default());
    let mut cb = ResumeCache::new(CacheConfig::default());
    ca.insert("host-b", sa, now);
    cb.insert("host-a", sb, now);
    (ca, cb)
}

#[test]
fn resumption_success() {
    let now = Instant::now();
    let (mut ca, mut cb) = caches(1, C25519);
    let offer = ca.take_offer(&"host-b", now).unwrap();
    let (half_a, half_b) = (offer.own_half(), offer.peer_half());
    let mut h = handshake_with(cfg(&[P256, C25519]), cfg(&[C25519]), Some(offer), &mut cb);
    // TC-18: A's suboption a3 || resume[i][0..9] || nonce_a (8 bytes, TC-17), last, no length
    // byte; the fresh offers for other TEPs stay (TC-25 allows them).
    assert_eq!(h.syn.len(), 2 + 1 + 1 + 9 + 8);
    assert_eq!(&h.syn[..4], &[0x45, 21, 0x21, 0xa3]);
    assert_eq!(&h.syn[4..13], &half_a);
    // B answers with its own half, b = 1.
    assert_eq!(&h.syn_ack[..4], &[0x45, 21, 0x01, 0xa3]);
    assert_eq!(&h.syn_ack[4..13], &half_b);
    let na = h.a.take_negotiated().unwrap();
    let nb = h.b.take_negotiated().unwrap();
    assert_eq!(
        (na.tep_byte, nb.tep_byte),
        (0xa3, 0xa3),
        "TC-23: session ID byte 0 has v=1"
    );
    let (ra, rb) = (na.resumption.unwrap(), nb.resumption.unwrap());
    // TC-23: sn = nonce_a || nonce_b, the same on both sides.
    let sn = [&h.syn[13..21], &h.syn_ack[13..21]].concat();
    assert_eq!(ra.sn.as_bytes(), sn);
    assert_eq!(rb.sn.as_bytes(), sn);
    assert_eq!(ra.secret.resume_id(), rb.secret.resume_id());
    // TC-29: each keeps its original role.
    assert_eq!(
        (ra.secret.original_role, rb.secret.original_role),
        (Role::A, Role::B)
    );
    let sid_a = ra.secret.secret.session_id(na.tep_byte, ra.sn.as_bytes());
    let sid_b = rb.secret.secret.session_id(nb.tep_byte, rb.sn.as_bytes());
    assert!(sid_a.ct_eq(&sid_b) && sid_a.is_resumed());
    // TC-28: B's secret is gone, its chain moved on to i+1 (TC-26); A moved to i+1 (TC-27).
    assert_eq!(cb.len(), 1);
    let mut next = rb.secret.clone();
    next.secret = next.secret.next();
    assert!(cb
        .take_for_resumption(rb.secret.tep, &rb.secret.peer_half(), now)
        .is_none());
    assert!(cb
        .take_for_resumption(next.tep, &next.peer_half(), now)
        .is_some());
    assert_ne!(
        ca.take_offer(&"host-b", now).unwrap().resume_id(),
        ra.secret.resume_id()
    );
}

#[test]
fn declined_resumption_is_fresh_with_same_tep() {
    // B holds nothing: answers v=0 with the same TEP (TC-20), fresh key exchange follows.
    let now = Instant::now();
    let (mut ca, _) = caches(2, C25519);
    let offer = ca.take_offer(&"host-b", now);
    let mut h = handshake_with(cfg(&[C25519]), cfg(&[C25519]), offer, &mut NoResumption);
    assert_eq!(h.syn_ack, [0x45, 0x04, 0x01, 0x23]);
    let na = h.a.take_negotiated().unwrap();
    assert_eq!((na.tep_byte, na.resumption.is_none()), (0x23, true));
    assert!(h.b.take_negotiated().unwrap().resumption.is_none());
}

#[test]
fn passive_policy_ignore_resumption_requests() {
    let now = Instant::now();
    let (mut ca, mut cb) = caches(3, C25519);
    let offer = ca.take_offer(&"host-b", now);
    let b_cfg = cfg(&[C25519]).with_resumption(true, false);
    let mut h = handshake_with(cfg(&[C25519]), b_cfg, offer, &mut cb);
    assert!(h.b.take_negotiated().unwrap().resumption.is_none());
    assert_eq!(cb.len(), 1, "not consulted, not consumed");
}

#[test]
fn active_policy_no_offer() {
    let now = Instant::now();
    let (mut ca, mut cb) = caches(4, C25519);
    let offer = ca.take_offer(&"host-b", now);
    let h = handshake_with(
        cfg(&[C25519]).with_resumption(false, true),
        cfg(&[C25519]),
        offer,
        &mut cb,
    );
    assert_eq!(h.syn, [0x45, 0x03, 0x23]);
    // b = 1 (simultaneous-open side) never offers either (A11).
    let offer = ca.take_offer(&"host-b", now);
    let mut a = Negotiation::active(
        cfg(&[C25519]).with_passive_role(true),
        offer,
        &mut CountingRng(0),
    );
    assert_eq!(
        bytes(a.on_send(SegmentFlags::SYN, &[])),
        [0x45, 0x04, 0x01, 0x23]
    );
    // An offer for an unconfigured TEP is dropped.
    let (sa, _) = shared(5, C448);
    let mut a = Negotiation::active(cfg(&[C25519]), Some(sa), &mut CountingRng(0));
    assert_eq!(bytes(a.on_send(SegmentFlags::SYN, &[])), [0x45, 0x03, 0x23]);
}

#[test]
fn passive_requires_matching_tep() {
    // B's cached secret is for P-256; A offers the same identifier under Curve25519.
    let now = Instant::now();
    let (sa, _) = shared(6, C25519);
    let (_, sb) = shared(6, P256);
    let mut cb: ResumeCache<&str> = ResumeCache::new(CacheConfig::default());
    cb.insert("host-a", sb, now);
    let mut h = handshake_with(cfg(&[C25519]), cfg(&[P256, C25519]), Some(sa), &mut cb);
    assert_eq!(h.syn_ack, [0x45, 0x04, 0x01, 0x23]);
    assert!(h.a.take_negotiated().unwrap().resumption.is_none());
}

/// TC-22: a reply with a wrong half is ignored; if it was all, ENO is disabled.
#[test]
fn active_ignores_mismatched_half() {
    let (sa, _) = shared(7, C25519);
    let mut a = Negotiation::active(cfg(&[P256, C25519]), Some(sa), &mut CountingRng(0));
    let _ = a.on_send(SegmentFlags::SYN, &[]);
    let mut reply = vec![0x45, 13, 0x01, 0xa3];
    reply.extend([0xee; 9]);
    let _ = a.on_receive(SegmentFlags::SYN_ACK, &reply);
    assert_eq!(
        a.state(),
        State::Disabled(FallbackReason::ResumptionMismatch)
    );
    assert!(
        a.on_send(SegmentFlags::ACK, &[]).is_none(),
        "MUST NOT send any more ENO options"
    );
    // With another valid suboption after it in B's list, the mismatched one is ignored and
    // the last valid one (P-256) wins.
    let (sa, _) = shared(7, C25519);
    let mut a = Negotiation::active(cfg(&[P256, C25519]), Some(sa), &mut CountingRng(0));
    let _ = a.on_send(SegmentFlags::SYN, &[]);
    let mut reply = vec![0x45, 15, 0x01, 0x88, 0xa3];
    reply.extend([0xee; 9]);
    reply.push(0x21);
    let _ = a.on_receive(SegmentFlags::SYN_ACK, &reply);
    let _ = a.on_send(SegmentFlags::ACK, &[]);
    assert_eq!(a.take_negotiated().unwrap().tep, P256);
}

/// Digest §5.3 A11: a B-side v=1 suboption without a matching A-side half is invalid.
#[test]
fn b_side_v1_without_a_side_half_is_invalid() {
    for reply in [
        vec![0x45, 13, 0x01, 0xa3, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        vec![0x45, 5, 0x01, 0xa3, 0xaa], // short: not a fresh offer on B's side
        vec![0x45, 4, 0x01, 0xa3],
    ] {
        let a = {
            let mut a = Negotiation::active(cfg(&[C25519]), None, &mut CountingRng(0));
            let _ = a.on_send(SegmentFlags::SYN, &[]);
            let _ = a.on_receive(SegmentFlags::SYN_ACK, &reply);
            a
        };
        assert_eq!(
            a.state(),
            State::Disabled(FallbackReason::NoValidTep),
            "{reply:02x?}"
        );
    }
}

/// TC-21: v=1 with fewer than 9 data bytes is a fresh offer.
#[test]
fn short_resumption_suboption_is_fresh_offer() {
    let (mut b, _) = Negotiation::passive(
        cfg(&[C25519]),
        SegmentFlags::SYN,
        &[0x45, 0x05, 0xa3, 0xaa, 0xbb],
        &mut NoResumption,
        Instant::now(),
        &mut CountingRng(0),
    );
    assert_eq!(
        bytes(b.on_send(SegmentFlags::SYN_ACK, &[])),
        [0x45, 0x04, 0x01, 0x23]
    );
    let _ = b.on_receive(SegmentFlags::ACK, &[0x45, 0x02]);
    let n = b.take_negotiated().unwrap();
    assert_eq!(
        (n.tep, n.tep_byte),
        (C25519, 0x23),
        "v bit ignored for selection"
    );
}

#[test]
fn nonce_length_setting() {
    let now = Instant::now();
    let (mut ca, mut cb) = caches(8, C25519);
    let offer = ca.take_offer(&"host-b", now);
    let c = cfg(&[C25519]).with_resume_nonce_len(0).unwrap();
    let mut h = handshake_with(c.clone(), c, offer, &mut cb);
    assert_eq!(h.syn.len(), 2 + 1 + 9);
    assert_eq!(h.syn_ack.len(), 2 + 1 + 1 + 9);
    let r = h.a.take_negotiated().unwrap().resumption.unwrap();
    assert!(r.sn.as_bytes().is_empty());
}

/// A10: attempts that never reached B; B's window still finds i+2.
#[test]
fn passive_window_after_failed_attempts() {
    let now = Instant::now();
    let (mut ca, mut cb) = caches(9, C25519);
    let _lost1 = ca.take_offer(&"host-b", now);
    let _lost2 = ca.take_offer(&"host-b", now);
    let offer = ca.take_offer(&"host-b", now);
    let mut h = handshake_with(cfg(&[C25519]), cfg(&[C25519]), offer, &mut cb);
    assert!(h.b.take_negotiated().unwrap().resumption.is_some());
    assert!(h.a.take_negotiated().unwrap().resumption.is_some());
}

#[test]
fn resumption_dropped_when_option_space_is_short() {
    let now = Instant::now();
    let (mut ca, _) = caches(10, C25519);
    let offer = ca.take_offer(&"host-b", now);
    let mut a = Negotiation::active(cfg(&[C25519]), offer, &mut CountingRng(0));
    // 36 bytes used: 4 free, the fresh option (3) fits, the resumption one (20) does not.
    let mut area = vec![0x05, 36];
    area.extend([0u8; 34]);
    assert_eq!(
        bytes(a.on_send(SegmentFlags::SYN, &area)),
        [0x45, 0x03, 0x23]
    );
    let _ = a.on_receive(SegmentFlags::SYN_ACK, &[0x45, 0x04, 0x01, 0x23]);
    let _ = a.on_send(SegmentFlags::ACK, &[]);
    assert!(a.take_negotiated().unwrap().resumption.is_none());
}

/// TC-24 (MAY) is not taken: in a simultaneous open the b = 1 side never offers, so an offer
/// from the b = 0 side meets a fresh suboption and the session is fresh.
#[test]
fn simultaneous_open_with_offer_is_fresh() {
    let (sa, _) = shared(11, C25519);
    let mut rng = CountingRng(0);
    let mut x = Negotiation::active(cfg(&[C25519]), Some(sa), &mut rng);
    let mut y = Negotiation::active(cfg(&[C25519]).with_passive_role(true), None, &mut rng);
    let sx = bytes(x.on_send(SegmentFlags::SYN, &[]));
    let sy = bytes(y.on_send(SegmentFlags::SYN, &[]));
    let _ = x.on_receive(SegmentFlags::SYN, &sy);
    let _ = y.on_receive(SegmentFlags::SYN, &sx);
    let sax = bytes(x.on_send(SegmentFlags::SYN_ACK, &[]));
    let say = bytes(y.on_send(SegmentFlags::SYN_ACK, &[]));
    let _ = x.on_receive(SegmentFlags::SYN_ACK, &say);
    let _ = y.on_receive(SegmentFlags::SYN_ACK, &sax);
    let (nx, ny) = (x.take_negotiated().unwrap(), y.take_negotiated().unwrap());
    assert!(nx.resumption.is_none() && ny.resumption.is_none());
    assert_eq!((nx.tep_byte, ny.tep_byte), (0x23, 0x23));
    assert_eq!(nx.transcript, ny.transcript);
}

#[test]
fn cache_policy_is_exposed() {
    let n = Negotiation::active(
        cfg(&[C25519]).with_cache_secrets(false),
        None,
        &mut CountingRng(0),
    );
    assert!(!n.config().cache_secrets());
}

/// A driver that knows only the room the kernel leaves (BPF header options: the kernel's 20
/// bytes of a Linux SYN, padding included, leave exactly 20): the 20-byte resumption offer fits
/// as it is, and with 19 bytes of room the fresh option is sent instead. The same option area
/// would count its NOP as free and allow 21 bytes.
#[test]
fn resumption_offer_sized_by_the_space_a_kernel_driver_reports() {
    let now = Instant::now();
    let (mut ca, _) = caches(12, C25519);
    let offer = ca.take_offer(&"host-b", now);
    let mut a = Negotiation::active(cfg(&[C25519]), offer, &mut CountingRng(0));
    let syn = bytes(a.on_send_with_space(SegmentFlags::SYN, 20));
    assert_eq!(
        (syn.len(), syn[2]),
        (20, 0xa3),
        "the resumption offer, whole: {syn:02x?}"
    );
    let offer = ca.take_offer(&"host-b", now);
    let mut short = Negotiation::active(cfg(&[C25519]), offer, &mut CountingRng(0));
    assert_eq!(
        bytes(short.on_send_with_space(SegmentFlags::SYN, 19)),
        [0x45, 0x03, 0x23]
    );
    // No room at all: ENO falls back, as on_send does with a full options area.
    let mut none = Negotiation::active(cfg(&[C25519]), None, &mut CountingRng(0));
    assert!(none.on_send_with_space(SegmentFlags::SYN, 2).is_none());
    assert_eq!(none.state(), State::Disabled(FallbackReason::NoOptionSpace));
}

/// A kernel driver that can write only the room Linux leaves in a SYN-ACK (20 bytes) asks
/// first: B's resumption answer is 21 bytes and must go another way (a rewrite of the whole
/// option area), its fresh answer fits. Asking changes nothing; once sent, the length is the
/// sent option's.
#[test]
fn own_option_len_tells_a_driver_whether_the_answer_fits_before_it_is_fixed() {
    let now = Instant::now();
    let (mut ca, mut cb) = caches(13, C25519);
    let offer = ca.take_offer(&"host-b", now);
    let mut a = Negotiation::active(cfg(&[C25519]), offer, &mut CountingRng(0));
    let syn = bytes(a.on_send(SegmentFlags::SYN, &[]));
    let passive = |store: &mut dyn ResumeStore| {
        Negotiation::passive(
            cfg(&[C25519]),
            SegmentFlags::SYN,
            &syn,
            store,
            now,
            &mut CountingRng(1),
        )
        .0
    };
    let mut resumed = passive(&mut cb);
    assert_eq!(resumed.own_option_len(), Some(21));
    assert_eq!(resumed.own_option_len(), Some(21), "asking fixes nothing");
    let answer = bytes(resumed.on_send(SegmentFlags::SYN_ACK, &[]));
    assert_eq!((answer.len(), answer[3]), (21, 0xa3), "{answer:02x?}");
    assert_eq!(resumed.own_option_len(), Some(21));

    let mut fresh = passive(&mut NoResumption);
    assert_eq!(fresh.own_option_len(), Some(4));
    assert_eq!(
        bytes(fresh.on_send_with_space(SegmentFlags::SYN_ACK, 20)),
        [0x45, 0x04, 0x01, 0x23]
    );
    assert_eq!(fresh.own_option_len(), Some(4));
    let _ = fresh.on_receive(SegmentFlags::ACK, &[0x45, 0x02]);
    assert!(fresh.take_negotiated().is_some());

    // A SYN without ENO: the passive opener sends none.
    let (plain, _) = Negotiation::passive(
        cfg(&[C25519]),
        SegmentFlags::SYN,
        &[],
        &mut NoResumption,
        now,
        &mut CountingRng(1),
    );
    assert_eq!(plain.own_option_len(), None);
}
