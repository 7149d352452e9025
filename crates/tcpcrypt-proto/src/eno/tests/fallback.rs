//! Every fallback rule of RFC 8547 §4.1, §4.4, §4.6 and §11.

use super::*;
use crate::error::DecodeError;

fn passive_on(syn_options: &[u8], config: Config) -> (Negotiation, Vec<u8>) {
    let (mut b, _) = Negotiation::passive(
        config,
        SegmentFlags::SYN,
        syn_options,
        &mut NoResumption,
        Instant::now(),
        &mut CountingRng(0),
    );
    let sa = bytes(b.on_send(SegmentFlags::SYN_ACK, &[]));
    (b, sa)
}

fn active_after(syn_ack_options: &[u8]) -> Negotiation {
    let mut a = Negotiation::active(cfg(&[P256, C25519]), None, &mut CountingRng(0));
    let _ = a.on_send(SegmentFlags::SYN, &[]);
    let _ = a.on_receive(SegmentFlags::SYN_ACK, syn_ack_options);
    a
}

fn disabled(reason: FallbackReason) -> State {
    State::Disabled(reason)
}

#[test]
fn missing_eno_in_syn() {
    let (b, sa) = passive_on(&[0x02, 0x04, 0x05, 0xb4], cfg(&[C25519]));
    assert_eq!(b.state(), disabled(FallbackReason::MissingEno));
    assert!(
        sa.is_empty(),
        "no ENO, not even vacuous, without ENO in the SYN (§4.6)"
    );
}

#[test]
fn missing_eno_in_syn_ack() {
    let mut a = active_after(&[]);
    assert_eq!(a.state(), disabled(FallbackReason::MissingEno));
    assert!(a.on_send(SegmentFlags::ACK, &[]).is_none());
}

/// Option stripped on the reverse path (§6): the ACK lacks ENO, so B falls back.
#[test]
fn missing_eno_in_first_ack() {
    let mut rng = CountingRng(0);
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut rng);
    let syn = bytes(a.on_send(SegmentFlags::SYN, &[]));
    let (mut b, _) = Negotiation::passive(
        cfg(&[C25519]),
        SegmentFlags::SYN,
        &syn,
        &mut NoResumption,
        Instant::now(),
        &mut rng,
    );
    let _ = b.on_send(SegmentFlags::SYN_ACK, &[]);
    let _ = b.on_receive(
        SegmentFlags::ACK,
        &[0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2],
    );
    assert_eq!(b.state(), disabled(FallbackReason::MissingEno));
    assert!(b.on_send(SegmentFlags::ACK, &[]).is_none());
    assert!(b.take_negotiated().is_none());
}

#[test]
fn ill_formed_syn_options() {
    let cases: &[(&[u8], DecodeError)] = &[
        (
            &[0x45, 0x04, 0x80, 0x23],
            DecodeError::invalid("suboption after ENO length byte"),
        ),
        (
            &[0x45, 0x05, 0x81, 0xa3, 0x00],
            DecodeError::truncated("ENO suboption data"),
        ),
        (
            &[0x45, 0x03, 0x80],
            DecodeError::truncated("ENO suboption data"),
        ),
    ];
    for (syn, err) in cases {
        let (b, sa) = passive_on(syn, cfg(&[C25519]));
        assert_eq!(
            b.state(),
            disabled(FallbackReason::IllFormedEno(*err)),
            "{syn:02x?}"
        );
        assert!(sa.is_empty());
        let ack = syn.to_vec();
        let a = active_after(&ack);
        assert_eq!(a.state(), disabled(FallbackReason::IllFormedEno(*err)));
    }
}

#[test]
fn malformed_tcp_options() {
    let (b, _) = passive_on(&[0x45, 0x03, 0x23, 0x02, 0x09], cfg(&[C25519]));
    assert_eq!(
        b.state(),
        disabled(FallbackReason::MalformedOptions(DecodeError::truncated(
            "TCP option length"
        )))
    );
}

#[test]
fn two_eno_options_in_a_syn() {
    let (b, sa) = passive_on(&[0x45, 0x03, 0x23, 0x45, 0x03, 0x23], cfg(&[C25519]));
    assert_eq!(b.state(), disabled(FallbackReason::DuplicateEno));
    assert!(sa.is_empty());
    // Kind 69 plus the legacy kind 253/0x454E count as two (§11).
    let (b, _) = passive_on(
        &[0x45, 0x03, 0x23, 0xfd, 0x05, 0x45, 0x4e, 0x23],
        cfg(&[C25519]),
    );
    assert_eq!(b.state(), disabled(FallbackReason::DuplicateEno));
    let a = active_after(&[0x45, 0x04, 0x01, 0x23, 0x45, 0x04, 0x01, 0x23]);
    assert_eq!(a.state(), disabled(FallbackReason::DuplicateEno));
}

#[test]
fn legacy_encoding_recognised_not_negotiated() {
    let (b, sa) = passive_on(&[0xfd, 0x05, 0x45, 0x4e, 0x23], cfg(&[C25519]));
    assert_eq!(b.state(), disabled(FallbackReason::LegacyEnoOnly));
    assert!(sa.is_empty());
    let a = active_after(&[0xfd, 0x06, 0x45, 0x4e, 0x01, 0x23]);
    assert_eq!(a.state(), disabled(FallbackReason::LegacyEnoOnly));
    // In a non-SYN segment the legacy option is not ENO either.
    let mut rng = CountingRng(0);
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut rng);
    let syn = bytes(a.on_send(SegmentFlags::SYN, &[]));
    let (mut b, _) = Negotiation::passive(
        cfg(&[C25519]),
        SegmentFlags::SYN,
        &syn,
        &mut NoResumption,
        Instant::now(),
        &mut rng,
    );
    let _ = b.on_send(SegmentFlags::SYN_ACK, &[]);
    let _ = b.on_receive(SegmentFlags::ACK, &[0xfd, 0x04, 0x45, 0x4e]);
    assert_eq!(b.state(), disabled(FallbackReason::MissingEno));
}

#[test]
fn no_valid_tep() {
    let (b, sa) = passive_on(&[0x45, 0x03, 0x21], cfg(&[C25519]));
    assert_eq!(b.state(), disabled(FallbackReason::NoValidTep));
    assert!(sa.is_empty());
    // Unknown and non-tcpcrypt TEPs are skipped, not errors.
    let (b, _) = passive_on(&[0x45, 0x04, 0x20, 0x55], cfg(&[C25519]));
    assert_eq!(b.state(), disabled(FallbackReason::NoValidTep));
    // B answers a TEP A never offered.
    assert_eq!(
        active_after(&[0x45, 0x04, 0x01, 0x24]).state(),
        disabled(FallbackReason::NoValidTep)
    );
    // A repeated TEP is not valid: tcpcrypt defines no repetition (§4.5 rule 3).
    let (b, _) = passive_on(&[0x45, 0x04, 0x23, 0x23], cfg(&[C25519]));
    assert_eq!(b.state(), disabled(FallbackReason::NoValidTep));
    let (mut b, sa) = passive_on(&[0x45, 0x05, 0x23, 0x23, 0x21], cfg(&[P256, C25519]));
    assert_eq!(sa, [0x45, 0x04, 0x01, 0x21]);
    assert_eq!(b.state(), State::Pending);
    let _ = b.on_receive(SegmentFlags::ACK, &[0x45, 0x02]);
    assert_eq!(b.take_negotiated().unwrap().tep, P256);
    // v=1 with more than 17 bytes is invalid tcpcrypt data (nonce at most 8 bytes).
    let mut long = vec![0x45, 21, 0xa3];
    long.extend([0u8; 18]);
    let (b, _) = passive_on(&long, cfg(&[C25519]));
    assert_eq!(b.state(), disabled(FallbackReason::NoValidTep));
}

#[test]
fn vacuous_options() {
    // A sends a vacuous SYN option (no TEPs): it is sent, and both fall back.
    let h = handshake(cfg(&[]), cfg(&[C25519]));
    assert_eq!(h.syn, [0x45, 0x02]);
    assert_eq!(h.a.state(), disabled(FallbackReason::OwnVacuous));
    assert_eq!(h.b.state(), disabled(FallbackReason::PeerVacuous));
    assert!(h.syn_ack.is_empty());
    // B vacuous: answers a SYN that had ENO with `45 03 01` (b = 1 still required).
    let h = handshake(cfg(&[C25519]), cfg(&[]));
    assert_eq!(h.syn_ack, [0x45, 0x03, 0x01]);
    assert_eq!(h.b.state(), disabled(FallbackReason::OwnVacuous));
    assert_eq!(h.a.state(), disabled(FallbackReason::PeerVacuous));
    assert!(h.ack.is_empty());
    // B vacuous and the SYN had no ENO: no vacuous answer (§4.6 MUST NOT).
    let (b, sa) = passive_on(&[], cfg(&[]));
    assert_eq!(b.state(), disabled(FallbackReason::MissingEno));
    assert!(sa.is_empty());
    // The vacuous SYN option survives retransmission unchanged.
    let mut a = Negotiation::active(cfg(&[]).with_passive_role(true), None, &mut CountingRng(0));
    assert_eq!(bytes(a.on_send(SegmentFlags::SYN, &[])), [0x45, 0x03, 0x01]);
    assert_eq!(bytes(a.on_send(SegmentFlags::SYN, &[])), [0x45, 0x03, 0x01]);
    assert!(a.on_send(SegmentFlags::ACK, &[]).is_none());
}

#[test]
fn peer_syn_option_changed() {
    let (mut b, _) = passive_on(&[0x45, 0x03, 0x23], cfg(&[C25519]));
    let _ = b.on_receive(SegmentFlags::SYN, &[0x45, 0x04, 0x21, 0x23]);
    assert_eq!(b.state(), disabled(FallbackReason::SynOptionChanged));
    // Retransmitted SYN without ENO (the peer dropped it, §4.6 MAY): fallback.
    let (mut b, _) = passive_on(&[0x45, 0x03, 0x23], cfg(&[C25519]));
    let _ = b.on_receive(SegmentFlags::SYN, &[]);
    assert_eq!(b.state(), disabled(FallbackReason::MissingEno));
}

#[test]
fn no_option_space() {
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut CountingRng(0));
    let full = [0x01u8; 39]; // 39 NOPs are padding: reclaimed, so 40 bytes free.
    assert!(a.on_send(SegmentFlags::SYN, &full).is_some());
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut CountingRng(0));
    let mut area = vec![0x08, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0]; // timestamps, 10 bytes
    area.extend([0x05, 28]); // a 28-byte SACK-like option: 38 used, 2 free
    area.extend([0u8; 26]);
    assert!(a.on_send(SegmentFlags::SYN, &area).is_none());
    assert_eq!(a.state(), disabled(FallbackReason::NoOptionSpace));
    // Reason names are stable for counters.
    assert_eq!(FallbackReason::NoOptionSpace.name(), "no_option_space");
    assert_eq!(
        FallbackReason::RoleConflict { b: true }.to_string(),
        "role conflict: both hosts sent b = 1"
    );
}
