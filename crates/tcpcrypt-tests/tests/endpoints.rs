//! The whole protocol between two simulated hosts: TCP-ENO option bytes in Linux-like option
//! areas (RFC 8547 §4), then tcpcrypt's stream path (RFC 8548 §3), with resumption through the
//! hosts' caches. Every fallback case checks that both ends agree: never one side encrypting
//! while the other is not.

use tcpcrypt_proto::consts::{AeadId, Role, TepId, ENO_OPTION_KIND};
use tcpcrypt_proto::eno::{Config, FallbackReason, SegmentFlags, State};
use tcpcrypt_proto::session::Event;
use tcpcrypt_proto::wire::tcp_option::{TcpOption, TcpOptions};
use tcpcrypt_tests::data;
use tcpcrypt_tests::endpoint::{
    clean_path, connect, simultaneous_open, start, strip_eno, three_way, Connection, Dir, Host,
    Segment, LINUX_ACK_OPTIONS,
};

/// Picks the segments a middlebox acts on.
type Selects = fn(&Segment) -> bool;

const C25519: TepId = TepId::TCPCRYPT_ECDHE_CURVE25519;

fn hosts() -> (Host, Host) {
    (Host::new("a", 1), Host::new("b", 2))
}

/// The ENO option bytes (kind and length included) of a segment, if any.
fn eno_of(seg: &Segment) -> Option<Vec<u8>> {
    TcpOptions::new(&seg.options)
        .flatten()
        .find_map(|o| match o {
            TcpOption::Eno(e) => Some(e.as_bytes().to_vec()),
            _ => None,
        })
}

/// Exchanges data both ways, closes both (FINp), and checks every byte and both EOFs.
fn exchange_and_close(c: &mut Connection) {
    let p = c.pair.as_mut().expect("encrypted");
    let (x, y) = (data(100_000, 7), data(3_000, 8));
    let (b_before, a_before) = (p.b.received.len(), p.a.received.len());
    assert_eq!(p.send_a(&x), x.len());
    assert_eq!(p.send_b(&y), y.len());
    p.a.session.close().unwrap();
    p.drive();
    p.b.session.close().unwrap();
    p.drive();
    assert_eq!((p.a.error, p.b.error), (None, None));
    assert!(
        p.b.received[b_before..] == x[..],
        "B received exactly what A sent"
    );
    assert!(
        p.a.received[a_before..] == y[..],
        "A received exactly what B sent"
    );
    assert!(p.a.eof && p.b.eof, "both ends saw an authenticated FINp");
}

fn assert_both_plain(c: &Connection) {
    assert!(c.pair.is_none());
    assert!(
        c.handshake.both_disabled(),
        "both ends must agree on plain TCP: A {:?}, B {:?}",
        c.handshake.a.state(),
        c.handshake.b.state()
    );
}

#[test]
fn every_tep_and_aead_end_to_end() {
    for tep in TepId::TCPCRYPT_ALL {
        for aead in AeadId::ALL {
            let (mut a, mut b) = hosts();
            a.eno = Config::new(&[tep]).unwrap();
            b.eno = Config::new(&TepId::TCPCRYPT_ALL).unwrap();
            a.session.aead_offer = vec![aead];
            let mut c = connect(&mut a, &mut b, &mut clean_path());
            let p = c.pair.as_ref().expect("encrypted");
            let (ida, idb) = (p.a.session.session_id(), p.b.session.session_id());
            assert!(ida.is_some());
            assert_eq!(ida, idb, "both ends compute the same session ID");
            assert_eq!(ida.unwrap().as_bytes()[0], tep.get(), "B's TEP byte, v = 0");
            assert_eq!((p.a.session.role(), p.b.session.role()), (Role::A, Role::B));
            assert_eq!((p.a.session.tep(), p.b.session.tep()), (tep, tep));
            assert_eq!(
                (p.a.session.aead(), p.b.session.aead()),
                (Some(aead), Some(aead))
            );
            exchange_and_close(&mut c);
        }
    }
}

#[test]
fn option_bytes_follow_rfc8547_section_6() {
    let (mut a, mut b) = hosts();
    a.eno = Config::new(&[C25519]).unwrap();
    b.eno = Config::new(&[C25519]).unwrap();
    let mut hs = three_way(&mut a, &mut b, &mut clean_path());
    let w = &hs.wire;
    assert_eq!(eno_of(&w[0]).unwrap(), [0x45, 0x03, 0x23], "A's SYN");
    assert_eq!(
        eno_of(&w[1]).unwrap(),
        [0x45, 0x04, 0x01, 0x23],
        "B's SYN-ACK"
    );
    assert_eq!(eno_of(&w[2]).unwrap(), [0x45, 0x02], "A's third segment");
    assert_eq!(
        eno_of(&w[3]).unwrap(),
        [0x45, 0x02],
        "A keeps ENO until a non-SYN arrives"
    );
    assert_eq!(
        eno_of(&w[4]),
        None,
        "B received a non-SYN segment (the ACK): no more ENO"
    );
    for seg in w {
        assert!(seg.options.len() <= 40 && seg.options.len() % 4 == 0);
    }
    assert!(hs.both_enabled());
    // B's first data segment was A's first non-SYN segment: A stops adding ENO.
    let next =
        hs.a.on_send(SegmentFlags::ACK.with_payload(), &LINUX_ACK_OPTIONS);
    assert!(next.is_none());
    let transcript = hs.a.take_negotiated().unwrap().transcript;
    assert_eq!(
        transcript,
        [0x45, 0x03, 0x23, 0x45, 0x04, 0x01, 0x23],
        "A's then B's"
    );
    assert_eq!(transcript, hs.b.take_negotiated().unwrap().transcript);
}

#[test]
fn transcript_tampering_breaks_the_connection() {
    // A middlebox rewrites A's SYN option to drop the TEP A prefers (a downgrade attempt).
    // Both still negotiate, but the transcripts differ, so the keys differ (RFC 8547 §4.8).
    let (mut a, mut b) = hosts();
    a.eno = Config::new(&[TepId::TCPCRYPT_ECDHE_P256, C25519]).unwrap();
    let mut downgrade = |seg: &mut Segment| {
        if seg.dir == Dir::AToB && seg.flags.syn {
            let pos = seg.options.windows(2).position(|w| w[0] == ENO_OPTION_KIND);
            if let Some(pos) = pos {
                // 45 04 21 23 -> 45 04 21 22: C25519 replaced by P-521.
                seg.options[pos + 3] = TepId::TCPCRYPT_ECDHE_P521.get();
            }
        }
    };
    let mut c = connect(&mut a, &mut b, &mut downgrade);
    let p = c.pair.as_mut().expect("ENO itself cannot see the change");
    assert_ne!(p.a.session.session_id(), p.b.session.session_id());
    p.send_a(b"secret");
    assert!(p.b.error.is_some() || p.a.error.is_some());
    assert!(
        p.b.received.is_empty(),
        "no plaintext under mismatched keys"
    );
}

#[test]
fn resumption_chain_through_the_caches() {
    let (mut a, mut b) = hosts();
    let mut first = connect(&mut a, &mut b, &mut clean_path());
    exchange_and_close(&mut first);
    let id0 = first.pair.as_ref().unwrap().a.session.session_id().unwrap();
    assert!(!id0.is_resumed());
    let aead0 = first.pair.as_ref().unwrap().a.session.aead();

    let mut ids = vec![id0];
    for _ in 0..3 {
        let mut c = connect(&mut a, &mut b, &mut clean_path());
        let p = c.pair.as_ref().expect("encrypted");
        assert!(p.a.session.is_resumed() && p.b.session.is_resumed());
        assert_eq!(p.ab.init_end, None, "no Init1/Init2 in a resumed session");
        assert_eq!(p.a.session.aead(), aead0, "the original session's AEAD");
        let id = p.a.session.session_id().unwrap();
        assert_eq!(Some(id), p.b.session.session_id());
        assert_eq!(id.as_bytes()[0], C25519.get() | 0x80, "byte 0 has v = 1");
        assert!(!ids.contains(&id), "every session ID is new");
        ids.push(id);
        exchange_and_close(&mut c);
    }
}

#[test]
fn declined_resumption_gives_a_fresh_session() {
    let (mut a, mut b) = hosts();
    let _ = connect(&mut a, &mut b, &mut clean_path());
    // B forgot everything (restart): A offers, B declines with v = 0, fresh key exchange.
    let mut b2 = Host::new("b", 3);
    let c = connect(&mut a, &mut b2, &mut clean_path());
    assert!(
        eno_of(&c.handshake.wire[0]).unwrap().len() > 4,
        "A offered resumption"
    );
    let p = c.pair.as_ref().expect("encrypted");
    assert!(!p.a.session.is_resumed());
    assert!(p.ab.init_end.is_some(), "Init1 was sent");
    assert_eq!(p.a.session.session_id(), p.b.session.session_id());
}

#[test]
fn passive_policy_ignore_resumption_forces_fresh() {
    let (mut a, mut b) = hosts();
    let _ = connect(&mut a, &mut b, &mut clean_path());
    b.eno = b.eno.clone().with_resumption(true, false);
    let c = connect(&mut a, &mut b, &mut clean_path());
    let p = c.pair.as_ref().expect("encrypted");
    assert!(!p.a.session.is_resumed() && !p.b.session.is_resumed());
}

#[test]
fn cache_nothing_policy_means_the_next_connection_is_fresh() {
    let (mut a, mut b) = hosts();
    a.eno = a.eno.clone().with_cache_secrets(false);
    let first = connect(&mut a, &mut b, &mut clean_path());
    let p = first.pair.as_ref().unwrap();
    let handed_back = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::ResumableSecret(_)))
            .count()
    };
    assert_eq!(
        handed_back(&p.a.events),
        0,
        "A's session hands back nothing"
    );
    assert_eq!(handed_back(&p.b.events), 1, "B's policy is its own");
    assert!(a.cache.is_empty(), "A cached nothing");
    let c = connect(&mut a, &mut b, &mut clean_path());
    assert_eq!(
        eno_of(&c.handshake.wire[0]).unwrap().len(),
        6,
        "fresh offer only"
    );
    assert!(!c.pair.as_ref().unwrap().a.session.is_resumed());
}

#[test]
fn flushing_a_connections_cache_state() {
    let (mut a, mut b) = hosts();
    let first = connect(&mut a, &mut b, &mut clean_path());
    let produced = first
        .pair
        .as_ref()
        .unwrap()
        .a
        .events
        .iter()
        .find_map(|e| match e {
            Event::ResumableSecret(s) => Some(s.secret.clone()),
            _ => None,
        })
        .expect("a fresh session hands back ss[1]");
    assert_eq!(a.cache.flush(&produced), 1);
    let c = connect(&mut a, &mut b, &mut clean_path());
    assert!(!c.pair.as_ref().unwrap().a.session.is_resumed());
}

#[test]
fn failed_resumption_with_a_forged_reply_falls_back_on_both_ends() {
    let (mut a, mut b) = hosts();
    let _ = connect(&mut a, &mut b, &mut clean_path());
    // An attacker alters the identifier half in B's resumption reply (RFC 8548 §3.5: A MUST
    // ignore it and, as it was the only suboption, disable ENO).
    let mut forge = |seg: &mut Segment| {
        if seg.dir == Dir::BToA && seg.flags.syn {
            let pos = seg
                .options
                .windows(2)
                .position(|w| w[0] == ENO_OPTION_KIND)
                .unwrap();
            let last_half_byte = pos + 2 + 2 + 8;
            seg.options[last_half_byte] ^= 1;
        }
    };
    let c = connect(&mut a, &mut b, &mut forge);
    assert_both_plain(&c);
    assert_eq!(
        c.handshake.a.state(),
        State::Disabled(FallbackReason::ResumptionMismatch)
    );
    // The attempt consumed ss[1] at A (monotonic i); the next connection offers ss[2], which
    // B's look-ahead window still recognises.
    let next = connect(&mut a, &mut b, &mut clean_path());
    assert!(next.pair.as_ref().unwrap().a.session.is_resumed());
}

#[test]
fn simultaneous_open_with_one_side_b() {
    let (mut a, mut b) = hosts();
    b.eno = b.eno.clone().with_passive_role(true);
    let mut hs = simultaneous_open(&mut a, &mut b, &mut clean_path());
    assert!(hs.both_enabled());
    assert_eq!((hs.a.role(), hs.b.role()), (Some(Role::A), Some(Role::B)));
    let p = start(&mut hs, &mut a, &mut b).expect("encrypted");
    assert_eq!(p.a.session.session_id(), p.b.session.session_id());
    // SYN and SYN-ACK of each side carry identical options (RFC 8547 §4.6).
    assert_eq!(eno_of(&hs.wire[0]), eno_of(&hs.wire[2]));
    assert_eq!(eno_of(&hs.wire[1]), eno_of(&hs.wire[3]));
}

#[test]
fn simultaneous_open_without_b_falls_back() {
    let (mut a, mut b) = hosts();
    let hs = simultaneous_open(&mut a, &mut b, &mut clean_path());
    assert!(hs.both_disabled());
    assert_eq!(
        hs.a.state(),
        State::Disabled(FallbackReason::RoleConflict { b: false })
    );
}

#[test]
fn stripped_options_fall_back_on_both_ends() {
    let cases: [(&str, Selects); 3] = [
        ("SYN", |s| s.flags.syn && !s.flags.ack),
        ("SYN-ACK", |s| s.flags.syn && s.flags.ack),
        ("every segment", |_| true),
    ];
    for (name, which) in cases {
        let (mut a, mut b) = hosts();
        let c = connect(&mut a, &mut b, &mut strip_eno(which));
        assert!(c.pair.is_none(), "{name}");
        assert!(
            c.handshake.both_disabled(),
            "{name}: {:?}",
            (c.handshake.a.state(), c.handshake.b.state())
        );
    }
}

/// A middlebox that passes ENO in SYNs but strips it from non-SYN segments: the "type 2"
/// failure of RFC 8547 §9 and RFC 8548 §9. By RFC 8547 §4.6 host A has enabled encryption (it
/// sent and received an ACK with ENO) while host B falls back (its first received ACK had no
/// ENO). The core fails closed: A's stream starts with Init1 (public values only, never
/// application data) and B's plaintext reply is rejected by A as a bad Init2, an abort, so no
/// plaintext is ever accepted as if it were protected. (The daemon builds a working plain
/// connection on this: B's daemon refuses Init1 on the fallen-back connection and A's retries
/// on a new connection without ENO; see `crates/tcpcryptd/tests/hostile.rs`.)
#[test]
fn eno_stripped_after_the_syn_fails_closed() {
    let cases: [(&str, Selects); 2] = [
        ("third ACK", |s| !s.flags.syn && !s.flags.payload),
        ("every non-SYN", |s| !s.flags.syn),
    ];
    for (name, which) in cases {
        let (mut a, mut b) = hosts();
        let mut c = connect(&mut a, &mut b, &mut strip_eno(which));
        assert!(c.pair.is_none(), "{name}");
        assert_eq!(c.handshake.a.state(), State::Enabled, "{name}");
        assert_eq!(
            c.handshake.b.state(),
            State::Disabled(FallbackReason::MissingEno),
            "{name}"
        );
        let na = c.handshake.a.take_negotiated().unwrap();
        let mut sa = tcpcrypt_tests::Session::new(
            na,
            Default::default(),
            tcpcrypt_tests::provider(),
            &mut tcpcrypt_tests::TestRng::new(9),
            std::time::Instant::now(),
        )
        .unwrap();
        let mut init1 = Vec::new();
        let _ = sa.poll_ciphertext(&mut init1);
        assert!(
            init1.starts_with(&[0x15, 0x10, 0x1a, 0x0e]),
            "{name}: Init1, no app data"
        );
        assert_eq!(
            sa.write_plaintext(b"app data").unwrap(),
            0,
            "{name}: A waits for Init2"
        );
        let r = sa.handle_ciphertext(b"HTTP/1.1 200 OK\r\n\r\n");
        assert!(
            matches!(r, Err(tcpcrypt_proto::Error::PeerMisbehaved(_))),
            "{name}: {r:?}"
        );
    }
}

#[test]
fn a_load_balancer_echoing_the_syn_options_means_plain_tcp() {
    let (mut a, mut b) = hosts();
    let mut syn_options = Vec::new();
    let mut echo = |seg: &mut Segment| {
        if seg.flags.syn && !seg.flags.ack {
            syn_options = seg.options.clone();
        } else if seg.flags.syn && seg.flags.ack {
            seg.options = syn_options.clone();
        }
    };
    let c = connect(&mut a, &mut b, &mut echo);
    assert_both_plain(&c);
    assert_eq!(
        c.handshake.a.state(),
        State::Disabled(FallbackReason::RoleConflict { b: false })
    );
}

#[test]
fn no_common_tep_vacuous_and_app_aware_rules() {
    // No common TEP.
    let (mut a, mut b) = hosts();
    a.eno = Config::new(&[TepId::TCPCRYPT_ECDHE_P521]).unwrap();
    b.eno = Config::new(&[C25519]).unwrap();
    assert_both_plain(&connect(&mut a, &mut b, &mut clean_path()));

    // A vacuous option from A ("ENO supported but off").
    let (mut a, mut b) = hosts();
    a.eno = Config::new(&[]).unwrap();
    let c = connect(&mut a, &mut b, &mut clean_path());
    assert_both_plain(&c);
    assert_eq!(eno_of(&c.handshake.wire[0]).unwrap(), [0x45, 0x02]);

    // B in mandatory application-aware mode, A with a = 0.
    let (mut a, mut b) = hosts();
    b.eno = b.eno.clone().with_mandatory_app_aware(true);
    assert_both_plain(&connect(&mut a, &mut b, &mut clean_path()));

    // Both application-aware: encrypted, and each reads the other's a bit.
    let (mut a, mut b) = hosts();
    a.eno = a.eno.clone().with_app_aware(true);
    b.eno = b.eno.clone().with_mandatory_app_aware(true);
    let c = connect(&mut a, &mut b, &mut clean_path());
    assert!(c.pair.is_some());
    assert_eq!(c.handshake.a.peer_app_aware(), Some(true));
    assert_eq!(c.handshake.b.peer_app_aware(), Some(true));
}

#[test]
fn a_legacy_draft_peer_gets_plain_tcp() {
    // A pre-RFC tcpcryptd sends ENO as kind 253 / ExID 0x454E: recognised, never negotiated.
    let (mut a, mut b) = hosts();
    let mut legacy = |seg: &mut Segment| {
        if seg.dir == Dir::AToB {
            if let Some(pos) = seg.options.windows(2).position(|w| w[0] == ENO_OPTION_KIND) {
                let len = usize::from(seg.options[pos + 1]);
                let mut opt = vec![253, (len + 2) as u8, 0x45, 0x4e];
                opt.extend_from_slice(&seg.options[pos + 2..pos + len]);
                seg.options.splice(pos..pos + len, opt);
                while seg.options.len() % 4 != 0 {
                    seg.options.push(1);
                }
            }
        }
    };
    let c = connect(&mut a, &mut b, &mut legacy);
    assert_both_plain(&c);
    assert_eq!(
        c.handshake.b.state(),
        State::Disabled(FallbackReason::LegacyEnoOnly)
    );
}

#[test]
fn rekeying_then_close_end_to_end() {
    let (mut a, mut b) = hosts();
    let mut c = connect(&mut a, &mut b, &mut clean_path());
    let p = c.pair.as_mut().unwrap();
    assert!(p.a.session.initiate_rekey().unwrap());
    p.send_a(b"after rekey");
    assert!(p.b.session.initiate_rekey().unwrap() || p.b.session.local_generation() >= 1);
    p.send_b(b"both ways");
    p.drive();
    assert!(p.a.session.local_generation() >= 1 && p.b.session.local_generation() >= 1);
    assert_eq!(p.b.received, b"after rekey");
    exchange_and_close(&mut c);
}
