//! Negotiation tests: RFC 8547 §6 examples, roles, simultaneous open, application-aware modes,
//! SYN data, the send rules of §4.6. Fallback rules are in `fallback.rs`, resumption in
//! `resumption.rs`, property tests in `prop.rs`.

mod fallback;
mod prop;
mod resumption;

use std::time::Instant;

use super::*;
use crate::consts::{Role, TepId};
use crate::crypto::Rng;
use crate::keys::ResumableSecret;
use crate::resume::{NoResumption, ResumeStore};

pub(super) const P256: TepId = TepId::TCPCRYPT_ECDHE_P256;
pub(super) const C25519: TepId = TepId::TCPCRYPT_ECDHE_CURVE25519;
pub(super) const C448: TepId = TepId::TCPCRYPT_ECDHE_CURVE448;
pub(super) const P521: TepId = TepId::TCPCRYPT_ECDHE_P521;

/// A deterministic RNG for tests.
pub(super) struct CountingRng(pub(super) u8);

impl Rng for CountingRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

pub(super) fn cfg(teps: &[TepId]) -> Config {
    Config::new(teps).unwrap()
}

pub(super) fn bytes(o: Option<crate::wire::tcp_option::OptionsBuf>) -> Vec<u8> {
    o.map(|o| o.as_bytes().to_vec()).unwrap_or_default()
}

/// A normal three-way handshake between an active and a passive opener, in memory.
pub(super) struct Handshake {
    pub(super) a: Negotiation,
    pub(super) b: Negotiation,
    pub(super) syn: Vec<u8>,
    pub(super) syn_ack: Vec<u8>,
    pub(super) ack: Vec<u8>,
}

pub(super) fn handshake_with(
    cfg_a: Config,
    cfg_b: Config,
    offer: Option<ResumableSecret>,
    store: &mut dyn ResumeStore,
) -> Handshake {
    let mut rng = CountingRng(0);
    let mut a = Negotiation::active(cfg_a, offer, &mut rng);
    let syn = bytes(a.on_send(SegmentFlags::SYN, &[]));
    let (mut b, verdict) = Negotiation::passive(
        cfg_b,
        SegmentFlags::SYN,
        &syn,
        store,
        Instant::now(),
        &mut rng,
    );
    assert!(!verdict.discard_syn_data);
    let syn_ack = bytes(b.on_send(SegmentFlags::SYN_ACK, &[]));
    let _ = a.on_receive(SegmentFlags::SYN_ACK, &syn_ack);
    let ack = bytes(a.on_send(SegmentFlags::ACK, &[]));
    let _ = b.on_receive(SegmentFlags::ACK, &ack);
    Handshake {
        a,
        b,
        syn,
        syn_ack,
        ack,
    }
}

pub(super) fn handshake(cfg_a: Config, cfg_b: Config) -> Handshake {
    handshake_with(cfg_a, cfg_b, None, &mut NoResumption)
}

/// A simultaneous open (RFC 8547 §3): both send SYN, both answer with SYN-ACK.
pub(super) fn simultaneous(cfg_x: Config, cfg_y: Config) -> (Negotiation, Negotiation) {
    let mut rng = CountingRng(0);
    let mut x = Negotiation::active(cfg_x, None, &mut rng);
    let mut y = Negotiation::active(cfg_y, None, &mut rng);
    let sx = bytes(x.on_send(SegmentFlags::SYN, &[]));
    let sy = bytes(y.on_send(SegmentFlags::SYN, &[]));
    let _ = x.on_receive(SegmentFlags::SYN, &sy);
    let _ = y.on_receive(SegmentFlags::SYN, &sx);
    let sax = bytes(x.on_send(SegmentFlags::SYN_ACK, &[]));
    let say = bytes(y.on_send(SegmentFlags::SYN_ACK, &[]));
    // SYN and SYN-ACK options are identical (§4.6), or absent after a fallback (MAY omit).
    assert!(sax == sx || sax.is_empty());
    assert!(say == sy || say.is_empty());
    let _ = x.on_receive(SegmentFlags::SYN_ACK, &say);
    let _ = y.on_receive(SegmentFlags::SYN_ACK, &sax);
    (x, y)
}

fn enabled(n: &mut Negotiation) -> crate::Negotiated {
    assert_eq!(n.state(), State::Enabled);
    n.take_negotiated().unwrap()
}

/// RFC 8547 §6, Figure 8, as tcpcrypt bytes (digest §2.14).
#[test]
fn rfc8547_section6_success_bytes() {
    let mut h = handshake(cfg(&[C25519]), cfg(&[C25519]));
    assert_eq!(h.syn, [0x45, 0x03, 0x23]);
    assert_eq!(h.syn_ack, [0x45, 0x04, 0x01, 0x23]);
    assert_eq!(h.ack, [0x45, 0x02]);
    let (na, nb) = (enabled(&mut h.a), enabled(&mut h.b));
    assert_eq!((na.role, nb.role), (Role::A, Role::B));
    assert_eq!((na.tep, nb.tep), (C25519, C25519));
    assert_eq!((na.tep_byte, nb.tep_byte), (0x23, 0x23));
    let transcript = [0x45, 0x03, 0x23, 0x45, 0x04, 0x01, 0x23];
    assert_eq!(na.transcript, transcript);
    assert_eq!(
        nb.transcript, transcript,
        "ordered by role, not local/remote (§4.8)"
    );
    assert!(na.resumption.is_none() && nb.resumption.is_none());
    assert!(!na.peer_app_aware && !nb.peer_app_aware);
    assert!(h.a.take_negotiated().is_none(), "taken once");
    assert_eq!(h.a.state(), State::Enabled);
}

#[test]
fn default_config_prefers_curve25519() {
    let mut h = handshake(Config::default(), Config::default());
    assert_eq!(h.syn, [0x45, 0x06, 0x22, 0x21, 0x24, 0x23]);
    assert_eq!(
        h.syn_ack,
        [0x45, 0x04, 0x01, 0x23],
        "B sends only one TEP (§4.5 SHOULD)"
    );
    assert_eq!(enabled(&mut h.a).tep, C25519);
}

#[test]
fn passive_picks_its_most_preferred_common_tep() {
    // A offers P-256 and Curve448; B prefers Curve448 over P-256 (last = most preferred).
    let mut h = handshake(cfg(&[C448, P256]), cfg(&[P256, C448, C25519]));
    assert_eq!(h.syn_ack, [0x45, 0x04, 0x01, 0x24]);
    assert_eq!(enabled(&mut h.b).tep, C448);
}

/// Selection is the LAST valid TEP in B's option, even when B lists several (§4.5).
#[test]
fn last_valid_tep_in_b_option_wins() {
    let mut rng = CountingRng(0);
    let mut a = Negotiation::active(cfg(&[P256, C25519]), None, &mut rng);
    let _ = a.on_send(SegmentFlags::SYN, &[]);
    // B lists 0x21, 0x23, 0x24: 0x24 is not in A's list, so 0x23 wins.
    let _ = a.on_receive(SegmentFlags::SYN_ACK, &[0x45, 0x06, 0x01, 0x21, 0x23, 0x24]);
    let _ = a.on_send(SegmentFlags::ACK, &[]);
    assert_eq!(enabled(&mut a).tep, C25519);
}

/// RFC 8547 §6, Figure 12: A sends ENO<Y,X>, B sends ENO<b=1,X,Y,Z>; Y wins.
#[test]
fn rfc8547_figure12_simultaneous_open() {
    let (x_tep, y_tep, z_tep) = (P256, C25519, C448);
    let cfg_a = cfg(&[y_tep, x_tep]);
    let cfg_b = cfg(&[x_tep, y_tep, z_tep]).with_passive_role(true);
    let (mut a, mut b) = simultaneous(cfg_a, cfg_b);
    let (na, nb) = (enabled(&mut a), enabled(&mut b));
    assert_eq!((na.role, nb.role), (Role::A, Role::B));
    assert_eq!((na.tep, nb.tep), (y_tep, y_tep));
    let a_opt = [0x45, 0x04, 0x23, 0x21];
    let b_opt = [0x45, 0x06, 0x01, 0x21, 0x23, 0x24];
    assert_eq!(na.transcript, [&a_opt[..], &b_opt[..]].concat());
    assert_eq!(nb.transcript, na.transcript);
}

#[test]
fn simultaneous_open_b_bit_conflicts() {
    for b in [false, true] {
        let c = cfg(&[C25519]).with_passive_role(b);
        let (x, y) = simultaneous(c.clone(), c);
        assert_eq!(
            x.state(),
            State::Disabled(FallbackReason::RoleConflict { b })
        );
        assert_eq!(
            y.state(),
            State::Disabled(FallbackReason::RoleConflict { b })
        );
        assert!(
            x.own_syn_option().is_none(),
            "SYN-ACK left without ENO (§4.6 MAY)"
        );
    }
}

#[test]
fn active_b1_against_passive_falls_back() {
    let h = handshake(cfg(&[C25519]).with_passive_role(true), cfg(&[C25519]));
    assert_eq!(h.syn, [0x45, 0x04, 0x01, 0x23]);
    assert_eq!(
        h.b.state(),
        State::Disabled(FallbackReason::RoleConflict { b: true })
    );
    assert!(h.syn_ack.is_empty());
    assert_eq!(h.a.state(), State::Disabled(FallbackReason::MissingEno));
    assert!(h.ack.is_empty());
}

/// A load balancer echoing the client's SYN options (digest §2.16): the echoed b = 0 conflicts.
#[test]
fn echoed_syn_option_falls_back() {
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut CountingRng(0));
    let syn = bytes(a.on_send(SegmentFlags::SYN, &[]));
    let _ = a.on_receive(SegmentFlags::SYN_ACK, &syn);
    assert_eq!(
        a.state(),
        State::Disabled(FallbackReason::RoleConflict { b: false })
    );
    assert!(
        a.on_send(SegmentFlags::ACK, &[]).is_none(),
        "stop sending ENO (§4.6)"
    );
}

#[test]
fn application_aware_bit() {
    // a defaults to 0; setting it adds an explicit global suboption; the peer reads it.
    let mut h = handshake(cfg(&[C25519]).with_app_aware(true), cfg(&[C25519]));
    assert_eq!(h.syn, [0x45, 0x04, 0x02, 0x23]);
    assert_eq!(h.b.peer_app_aware(), Some(true));
    assert_eq!(h.a.peer_app_aware(), Some(false));
    assert!(enabled(&mut h.b).peer_app_aware);
    // B sets a: its global suboption is 0x03.
    let h = handshake(cfg(&[C25519]), cfg(&[C25519]).with_app_aware(true));
    assert_eq!(h.syn_ack, [0x45, 0x04, 0x03, 0x23]);
    assert_eq!(h.a.peer_app_aware(), Some(true));
}

#[test]
fn mandatory_application_aware_mode() {
    let mandatory = cfg(&[C25519]).with_mandatory_app_aware(true);
    assert!(mandatory.app_aware(), "mandatory mode sends a = 1");
    // B mandatory, A a = 0: B falls back, no ENO in SYN-ACK, A follows.
    let h = handshake(cfg(&[C25519]), mandatory.clone());
    assert_eq!(
        h.b.state(),
        State::Disabled(FallbackReason::PeerNotAppAware)
    );
    assert_eq!(h.a.state(), State::Disabled(FallbackReason::MissingEno));
    // A mandatory, B a = 0.
    let h = handshake(mandatory.clone(), cfg(&[C25519]));
    assert_eq!(
        h.a.state(),
        State::Disabled(FallbackReason::PeerNotAppAware)
    );
    assert_eq!(h.b.state(), State::Disabled(FallbackReason::MissingEno));
    // Both mandatory.
    let mut h = handshake(mandatory.clone(), mandatory);
    assert!(enabled(&mut h.a).peer_app_aware && enabled(&mut h.b).peer_app_aware);
}

#[test]
fn received_syn_data_is_discarded() {
    let syn = SegmentFlags::SYN.with_payload();
    let mut rng = CountingRng(0);
    let now = Instant::now();
    // SYN+ENO with data: discard, whether negotiation succeeds or fails (§4.7).
    let (_, v) = Negotiation::passive(
        cfg(&[C25519]),
        syn,
        &[0x45, 3, 0x23],
        &mut NoResumption,
        now,
        &mut rng,
    );
    assert!(v.discard_syn_data);
    let (n, v) = Negotiation::passive(
        cfg(&[C25519]),
        syn,
        &[0x45, 4, 0x01, 0x23],
        &mut NoResumption,
        now,
        &mut rng,
    );
    assert!(v.discard_syn_data);
    assert!(matches!(n.state(), State::Disabled(_)));
    // Legacy ENO counts too; a SYN without ENO keeps its data (TFO etc. is not ours).
    assert!(syn_data_must_be_discarded(
        syn,
        &[0xfd, 0x05, 0x45, 0x4e, 0x23]
    ));
    assert!(!syn_data_must_be_discarded(syn, &[0x02, 0x04, 0x05, 0xb4]));
    assert!(!syn_data_must_be_discarded(
        SegmentFlags::SYN,
        &[0x45, 3, 0x23]
    ));
    assert!(!syn_data_must_be_discarded(
        SegmentFlags::ACK.with_payload(),
        &[0x45, 2]
    ));
    // Simultaneous open: a received SYN with data is discarded too.
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut rng);
    let _ = a.on_send(SegmentFlags::SYN, &[]);
    assert!(a.on_receive(syn, &[0x45, 4, 0x01, 0x23]).discard_syn_data);
}

#[test]
fn own_syn_never_carries_data() {
    // ENO-33: a SYN with payload gets no ENO, and ENO is off.
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut CountingRng(0));
    assert!(a.on_send(SegmentFlags::SYN.with_payload(), &[]).is_none());
    assert_eq!(a.state(), State::Disabled(FallbackReason::OwnSynData));
    // ENO-34: nor with a non-empty TCP Fast Open option.
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut CountingRng(0));
    assert!(a
        .on_send(SegmentFlags::SYN, &[0x22, 0x06, 1, 2, 3, 4])
        .is_none());
    assert_eq!(a.state(), State::Disabled(FallbackReason::OwnSynData));
    // An empty TFO option (cookie request) is not a cookie.
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut CountingRng(0));
    assert!(a.on_send(SegmentFlags::SYN, &[0x22, 0x02]).is_some());
}

#[test]
fn syn_options_identical_across_retransmissions() {
    let mut a = Negotiation::active(cfg(&[P256, C25519]), None, &mut CountingRng(0));
    let first = a.on_send(SegmentFlags::SYN, &[]);
    assert_eq!(a.on_send(SegmentFlags::SYN, &[]), first);
    assert_eq!(a.own_syn_option(), first.as_ref().map(|o| o.as_bytes()));
    let (mut b, _) = Negotiation::passive(
        cfg(&[C25519]),
        SegmentFlags::SYN,
        &bytes(first),
        &mut NoResumption,
        Instant::now(),
        &mut CountingRng(9),
    );
    let sa = b.on_send(SegmentFlags::SYN_ACK, &[]);
    assert_eq!(b.on_send(SegmentFlags::SYN_ACK, &[]), sa);
    // A retransmitted identical SYN is fine.
    let _ = b.on_receive(SegmentFlags::SYN, &bytes(first));
    assert_eq!(b.state(), State::Pending);
}

#[test]
fn active_may_drop_eno_on_syn_retransmission() {
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut CountingRng(0));
    assert!(a.on_send(SegmentFlags::SYN, &[]).is_some());
    assert!(a.drop_eno_on_retransmission());
    assert!(a.on_send(SegmentFlags::SYN, &[]).is_none());
    assert_eq!(
        a.state(),
        State::Disabled(FallbackReason::DroppedOnRetransmission)
    );
    // Not allowed for a passive opener, nor once a SYN was received.
    let mut h = handshake(cfg(&[C25519]), cfg(&[C25519]));
    assert!(!h.a.drop_eno_on_retransmission());
    assert!(!h.b.drop_eno_on_retransmission());
}

/// §4.6: ENO in every segment until a non-SYN segment is received.
#[test]
fn eno_sent_until_a_non_syn_segment_is_received() {
    let mut h = handshake(cfg(&[C25519]), cfg(&[C25519]));
    // A already sent the third-segment ACK with 45 02; its data segments keep it.
    let data = SegmentFlags::ACK.with_payload();
    assert_eq!(bytes(h.a.on_send(data, &[])), [0x45, 0x02]);
    assert_eq!(bytes(h.a.on_send(data, &[])), [0x45, 0x02]);
    // B received A's ACK (non-SYN): B sends none.
    assert!(h.b.on_send(data, &[]).is_none());
    let _ = h.a.on_receive(data, &[]);
    assert!(h.a.on_send(data, &[]).is_none());
    assert_eq!(
        h.a.state(),
        State::Enabled,
        "no ENO after the first ACK is fine"
    );
}

/// §4.6: a non-SYN segment from the passive opener before A's third-segment ACK (a duplicate
/// ACK with ENO answering a retransmitted SYN, seen under load) does not cost that ACK its ENO:
/// without it B falls back (its first received ACK lacks ENO) while A, having sent no ACK with
/// ENO, would stay pending.
#[test]
fn third_ack_keeps_eno_after_an_early_non_syn_segment() {
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
    let syn_ack = bytes(b.on_send(SegmentFlags::SYN_ACK, &[]));
    let dup_ack = bytes(b.on_send(SegmentFlags::ACK, &[]));
    assert_eq!(
        dup_ack,
        [0x45, 0x02],
        "B has received no non-SYN segment yet"
    );
    let _ = a.on_receive(SegmentFlags::SYN_ACK, &syn_ack);
    let _ = a.on_receive(SegmentFlags::ACK, &dup_ack);
    assert_eq!(a.state(), State::Pending);
    let ack = bytes(a.on_send(SegmentFlags::ACK, &[]));
    assert_eq!(ack, [0x45, 0x02], "the third-segment ACK carries ENO");
    assert_eq!(a.state(), State::Enabled);
    let _ = b.on_receive(SegmentFlags::ACK, &ack);
    assert_eq!(b.state(), State::Enabled);
    // Now that A sent its ACK with ENO, the earlier non-SYN segment ends the duty.
    assert!(a.on_send(SegmentFlags::ACK.with_payload(), &[]).is_none());
}

#[test]
fn enabled_only_after_ack_with_eno_sent_and_received() {
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
    let sa = bytes(b.on_send(SegmentFlags::SYN_ACK, &[]));
    assert_eq!(
        b.state(),
        State::Pending,
        "B sent an ACK with ENO but received none yet"
    );
    let _ = a.on_receive(SegmentFlags::SYN_ACK, &sa);
    assert_eq!(
        a.state(),
        State::Pending,
        "A received an ACK with ENO but sent none yet"
    );
    assert_eq!(a.role(), Some(Role::A));
    let ack = bytes(a.on_send(SegmentFlags::ACK, &[]));
    assert_eq!(a.state(), State::Enabled);
    // Several ENO options in a non-SYN segment count as one, and contents are ignored (§4.1).
    let _ = b.on_receive(SegmentFlags::ACK, &[&ack[..], &[0x45, 0x03, 0x99]].concat());
    assert_eq!(b.state(), State::Enabled);
}

#[test]
fn legacy_kind_253_is_never_emitted() {
    let h = handshake(Config::default(), Config::default());
    for o in [&h.syn, &h.syn_ack, &h.ack] {
        assert_eq!(o[0], crate::consts::ENO_OPTION_KIND);
    }
}

#[test]
fn config_validation() {
    assert_eq!(
        Config::new(&[TepId::EXPERIMENTAL]),
        Err(ConfigError::NotTcpcrypt(TepId::EXPERIMENTAL))
    );
    assert_eq!(
        Config::new(&[C25519, C25519]),
        Err(ConfigError::DuplicateTep(C25519))
    );
    assert_eq!(Config::default().resume_nonce_len(), 8);
    assert_eq!(
        Config::default().with_resume_nonce_len(9),
        Err(ConfigError::NonceTooLong(9))
    );
    let c = Config::default();
    assert!(!c.passive_role() && !c.app_aware() && !c.mandatory_app_aware());
    assert_eq!(c.teps(), &[P521, P256, C448, C25519]);
}

/// `is_settled` follows the §4.6 duty: A stays unsettled after enabling until it receives a
/// non-SYN segment (its ENO still goes on every segment until then), B settles with the first
/// ACK it receives, and a fallback settles at once.
#[test]
fn settled_once_the_duty_to_send_eno_is_over() {
    let mut rng = CountingRng(0);
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut rng);
    let syn = bytes(a.on_send(SegmentFlags::SYN, &[]));
    assert!(!a.is_settled());
    let (mut b, _) = Negotiation::passive(
        cfg(&[C25519]),
        SegmentFlags::SYN,
        &syn,
        &mut NoResumption,
        Instant::now(),
        &mut rng,
    );
    let syn_ack = bytes(b.on_send(SegmentFlags::SYN_ACK, &[]));
    assert!(!b.is_settled());
    let _ = a.on_receive(SegmentFlags::SYN_ACK, &syn_ack);
    let ack = bytes(a.on_send(SegmentFlags::ACK, &[]));
    assert_eq!(a.state(), State::Enabled);
    assert!(
        !a.is_settled(),
        "enabled, but still owes ENO on its segments"
    );
    let data = bytes(a.on_send(SegmentFlags::ACK.with_payload(), &[]));
    assert_eq!(data, [0x45, 0x02], "and does send it");
    let _ = b.on_receive(SegmentFlags::ACK, &ack);
    assert_eq!(b.state(), State::Enabled);
    assert!(b.is_settled(), "B settles with the first ACK");
    let _ = a.on_receive(SegmentFlags::ACK, &[]);
    assert!(
        a.is_settled(),
        "A settles with the first non-SYN segment from B"
    );
    assert!(a.on_send(SegmentFlags::ACK.with_payload(), &[]).is_none());

    // A fallback (the SYN-ACK lacks ENO) settles at once.
    let mut a = Negotiation::active(cfg(&[C25519]), None, &mut rng);
    let _ = a.on_send(SegmentFlags::SYN, &[]);
    let _ = a.on_receive(SegmentFlags::SYN_ACK, &[]);
    assert!(matches!(a.state(), State::Disabled(_)));
    assert!(a.is_settled());
}
