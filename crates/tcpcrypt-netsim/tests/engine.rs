//! The impairment engine on synthetic frames (no root, no network): every impairment does what
//! it says, and what passes is always a valid TCP packet.

use std::time::{Duration, Instant};

use tcpcrypt_netsim::config::{Config, Impairment, PathCut};
use tcpcrypt_netsim::engine::{has_eno, Dir, Engine, ETH_HEADER_LEN};
use tcpcrypt_proto::wire::packet::{verify_checksums, TcpFlags, TcpIpPacket};

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// An Ethernet frame holding an IPv4 TCP segment 10.77.0.1:40000 -> 10.77.0.2:8080 (or the
/// reverse for `Dir::BtoA`).
fn frame(dir: Dir, flags: u8, seq: u32, options: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let (src, dst, sport, dport) = match dir {
        Dir::AtoB => ([10, 77, 0, 1], [10, 77, 0, 2], 40000u16, 8080u16),
        Dir::BtoA => ([10, 77, 0, 2], [10, 77, 0, 1], 8080, 40000),
    };
    let tcp_len = 20 + options.len();
    let total = 20 + tcp_len + payload.len();
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&7u32.to_be_bytes());
    f.extend_from_slice(&[((tcp_len / 4) << 4) as u8, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(options);
    f.extend_from_slice(payload);
    let mut p = TcpIpPacket::new_checked(&mut f[ETH_HEADER_LEN..]).unwrap();
    p.fill_checksums();
    f
}

/// MSS 1460, then ENO (kind 69, length 3, TEP 0x23... as a 2-byte suboption), then NOPs.
const SYN_OPTIONS: [u8; 12] = [2, 4, 0x05, 0xb4, 69, 4, 0x00, 0x23, 1, 1, 1, 1];

fn options_of(frame: &[u8]) -> Vec<u8> {
    TcpIpPacket::new_checked(&frame[ETH_HEADER_LEN..])
        .unwrap()
        .tcp_options()
        .to_vec()
}

fn payload_of(frame: &[u8]) -> Vec<u8> {
    TcpIpPacket::new_checked(&frame[ETH_HEADER_LEN..])
        .unwrap()
        .tcp_payload()
        .to_vec()
}

fn seq_of(frame: &[u8]) -> u32 {
    TcpIpPacket::new_checked(&frame[ETH_HEADER_LEN..])
        .unwrap()
        .tcp()
        .seq_number()
}

fn flags_of(frame: &[u8]) -> TcpFlags {
    TcpIpPacket::new_checked(&frame[ETH_HEADER_LEN..])
        .unwrap()
        .tcp()
        .flags()
}

/// Everything due by `at`, each checked to be a valid TCP packet (when it is one).
fn drain(engine: &mut Engine, at: Instant) -> Vec<(Dir, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((dir, f)) = engine.poll(at) {
        if f[12..14] == [0x08, 0x00] {
            verify_checksums(&f[ETH_HEADER_LEN..]).expect("valid checksums");
        }
        out.push((dir, f));
    }
    out
}

fn engine(a_to_b: &str, b_to_a: &str) -> Engine {
    Engine::new(Config {
        a_to_b: Impairment::parse(a_to_b).unwrap(),
        b_to_a: Impairment::parse(b_to_a).unwrap(),
        ..Config::default()
    })
}

#[test]
fn without_impairments_everything_passes_at_once_and_unchanged() {
    let mut e = engine("", "");
    let now = Instant::now();
    let arp = {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        f.extend_from_slice(&[0u8; 28]);
        f
    };
    let data = frame(Dir::AtoB, ACK | PSH, 1000, &[], b"hello");
    e.push(Dir::AtoB, now, arp.clone());
    e.push(Dir::AtoB, now, data.clone());
    e.push(Dir::BtoA, now, frame(Dir::BtoA, ACK, 7, &[], &[]));
    let out = drain(&mut e, now);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0], (Dir::AtoB, arp));
    assert_eq!(out[1], (Dir::AtoB, data));
    assert_eq!(out[2].0, Dir::BtoA);
    assert_eq!(e.next_timeout(), None);
}

#[test]
fn loss_drops_at_the_configured_rate_and_never_touches_other_traffic() {
    let mut e = engine("loss=1", "loss=0.05");
    let now = Instant::now();
    for i in 0..2000u32 {
        e.push(
            Dir::AtoB,
            now,
            frame(Dir::AtoB, ACK, i * 10, &[], b"0123456789"),
        );
        e.push(
            Dir::BtoA,
            now,
            frame(Dir::BtoA, ACK, i * 10, &[], b"0123456789"),
        );
    }
    let out = drain(&mut e, now);
    assert!(out.iter().all(|(d, _)| *d == Dir::BtoA));
    let lost = 2000 - out.len();
    assert!((40..170).contains(&lost), "5% of 2000 lost: {lost}");
    assert_eq!(e.stats().lost, [2000, lost as u64]);
}

#[test]
fn strip_eno_from_syns_only_keeps_the_other_options() {
    let mut e = engine("strip-eno=syn", "");
    let now = Instant::now();
    e.push(Dir::AtoB, now, frame(Dir::AtoB, SYN, 1, &SYN_OPTIONS, &[]));
    e.push(
        Dir::BtoA,
        now,
        frame(Dir::BtoA, SYN | ACK, 9, &SYN_OPTIONS, &[]),
    );
    e.push(
        Dir::AtoB,
        now,
        frame(Dir::AtoB, ACK, 2, &SYN_OPTIONS[4..8], &[]),
    );
    let out = drain(&mut e, now);
    assert!(!has_eno(&options_of(&out[0].1)), "SYN stripped");
    assert_eq!(&options_of(&out[0].1)[..4], &SYN_OPTIONS[..4], "MSS kept");
    assert!(
        has_eno(&options_of(&out[1].1)),
        "SYN-ACK kept (other direction)"
    );
    assert!(has_eno(&options_of(&out[2].1)), "non-SYN kept");
    assert_eq!(e.stats().eno_stripped, [1, 0]);
}

#[test]
fn strip_eno_from_non_syns_only_and_from_syn_acks() {
    let mut e = engine("strip-eno=non-syn", "strip-eno=syn-ack");
    let now = Instant::now();
    e.push(Dir::AtoB, now, frame(Dir::AtoB, SYN, 1, &SYN_OPTIONS, &[]));
    e.push(
        Dir::BtoA,
        now,
        frame(Dir::BtoA, SYN | ACK, 9, &SYN_OPTIONS, &[]),
    );
    e.push(
        Dir::AtoB,
        now,
        frame(Dir::AtoB, ACK, 2, &SYN_OPTIONS[4..8], &[]),
    );
    let out = drain(&mut e, now);
    assert!(has_eno(&options_of(&out[0].1)));
    assert!(!has_eno(&options_of(&out[1].1)));
    assert!(!has_eno(&options_of(&out[2].1)));
    assert!(options_of(&out[2].1).is_empty(), "the ENO word is gone");
}

#[test]
fn the_syn_ack_can_echo_the_syn_options() {
    let mut e = engine("", "echo-syn-options");
    let now = Instant::now();
    e.push(Dir::AtoB, now, frame(Dir::AtoB, SYN, 1, &SYN_OPTIONS, &[]));
    e.push(
        Dir::BtoA,
        now,
        frame(Dir::BtoA, SYN | ACK, 9, &[2, 4, 5, 0xb4], &[]),
    );
    let out = drain(&mut e, now);
    // The SYN-ACK keeps its MSS and gains the SYN's ENO (kind 69, b = 0): an unknown option
    // echoed, as RFC 8547 §9's load balancers do.
    assert_eq!(options_of(&out[1].1), [2, 4, 5, 0xb4, 69, 4, 0x00, 0x23]);
    assert_eq!(flags_of(&out[1].1), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(e.stats().echoed, [0, 1]);
    // A SYN-ACK that has its own ENO gets the SYN's instead.
    let mut e = engine("", "echo-syn-options");
    e.push(
        Dir::AtoB,
        now,
        frame(Dir::AtoB, SYN, 1, &[2, 4, 5, 0xb4, 69, 3, 0x21, 1], &[]),
    );
    e.push(
        Dir::BtoA,
        now,
        frame(Dir::BtoA, SYN | ACK, 9, &SYN_OPTIONS, &[]),
    );
    let out = drain(&mut e, now);
    assert_eq!(options_of(&out[1].1), [2, 4, 5, 0xb4, 69, 3, 0x21, 1]);
    // No SYN seen for the flow: nothing to echo.
    let mut e = engine("", "echo-syn-options");
    e.push(
        Dir::BtoA,
        now,
        frame(Dir::BtoA, SYN | ACK, 9, &SYN_OPTIONS, &[]),
    );
    assert_eq!(options_of(&drain(&mut e, now)[0].1), SYN_OPTIONS);
    assert_eq!(e.stats().echoed, [0, 0]);
}

#[test]
fn delay_holds_frames_until_due() {
    let mut e = engine("delay=10ms", "");
    let t0 = Instant::now();
    e.push(Dir::AtoB, t0, frame(Dir::AtoB, ACK, 1, &[], b"x"));
    assert!(drain(&mut e, t0 + Duration::from_millis(9)).is_empty());
    assert_eq!(e.next_timeout(), Some(t0 + Duration::from_millis(10)));
    assert_eq!(drain(&mut e, t0 + Duration::from_millis(10)).len(), 1);
}

#[test]
fn reordering_and_duplication_change_order_and_count_not_content() {
    let mut e = engine("reorder=0.3,dup=0.2", "");
    let t0 = Instant::now();
    for i in 0..200u32 {
        e.push(
            Dir::AtoB,
            t0 + Duration::from_micros(u64::from(i) * 100),
            frame(Dir::AtoB, ACK, i, &[], &[i as u8]),
        );
    }
    let out = drain(&mut e, t0 + Duration::from_secs(1));
    let seqs: Vec<u32> = out.iter().map(|(_, f)| seq_of(f)).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_ne!(seqs, sorted, "some frames overtaken");
    sorted.dedup();
    assert_eq!(sorted, (0..200).collect::<Vec<_>>(), "every frame arrives");
    let s = e.stats();
    assert_eq!(out.len() as u64, 200 + s.duplicated[0]);
    assert!(s.duplicated[0] > 10 && s.reordered[0] > 20, "{s:?}");
}

#[test]
fn resegmentation_recuts_the_stream_and_keeps_every_byte() {
    let mut e = Engine::new(Config {
        a_to_b: Impairment::parse("resegment").unwrap(),
        seed: 42,
        ..Config::default()
    });
    let t0 = Instant::now();
    let stream: Vec<u8> = (0..40_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let isn = 0xffff_f000u32; // wraps around 2^32 on the way
    e.push(Dir::AtoB, t0, frame(Dir::AtoB, SYN, isn, &[], &[]));
    let mut out = drain(&mut e, t0);
    for (i, chunk) in stream.chunks(1000).enumerate() {
        let seq = isn.wrapping_add(1 + (i * 1000) as u32);
        e.push(Dir::AtoB, t0, frame(Dir::AtoB, ACK | PSH, seq, &[], chunk));
        out.extend(drain(&mut e, t0));
    }
    // The held tail goes out when its hold time passes.
    let due = e.next_timeout().expect("a tail is held");
    out.extend(drain(&mut e, due));
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    for (_, f) in &out[1..] {
        assert!(f.len() - ETH_HEADER_LEN <= 1500, "within the MTU");
        assert_eq!(
            seq_of(f),
            isn.wrapping_add(1 + got.len() as u32),
            "in order, contiguous"
        );
        let p = payload_of(f);
        sizes.push(p.len());
        got.extend_from_slice(&p);
    }
    assert_eq!(got, stream, "byte stream intact");
    assert!(
        sizes.iter().any(|&n| n > 1000),
        "segments joined: {sizes:?}"
    );
    assert!(sizes.iter().any(|&n| n < 100), "segments split: {sizes:?}");
    // A FIN flushes what is held first and is never merged.
    let mut e = engine("resegment", "");
    e.push(Dir::AtoB, t0, frame(Dir::AtoB, SYN, 0, &[], &[]));
    e.push(Dir::AtoB, t0, frame(Dir::AtoB, ACK, 1, &[], &[1; 10]));
    e.push(
        Dir::AtoB,
        t0,
        frame(Dir::AtoB, ACK | 0x01, 11, &[], &[2; 5]),
    );
    let out = drain(&mut e, t0);
    let last = &out.last().unwrap().1;
    assert!(flags_of(last).contains(TcpFlags::FIN));
    assert_eq!(seq_of(last), 11);
    assert_eq!(payload_of(last), [2; 5]);
    let before: Vec<u8> = out[1..out.len() - 1]
        .iter()
        .flat_map(|(_, f)| payload_of(f))
        .collect();
    assert_eq!(before, [1; 10]);
}

#[test]
fn a_bit_is_flipped_once_at_the_configured_offset() {
    let mut e = engine("flip-after=1500", "");
    let t0 = Instant::now();
    let mut out = Vec::new();
    for i in 0..3u32 {
        e.push(
            Dir::AtoB,
            t0,
            frame(Dir::AtoB, ACK, 1 + i * 1000, &[], &[0u8; 1000]),
        );
        out.extend(drain(&mut e, t0));
    }
    let payloads: Vec<Vec<u8>> = out.iter().map(|(_, f)| payload_of(f)).collect();
    assert!(payloads[0].iter().all(|&b| b == 0));
    let changed: Vec<usize> = (0..1000).filter(|&i| payloads[1][i] != 0).collect();
    assert_eq!(changed, [500]);
    assert_eq!(payloads[1][500].count_ones(), 1);
    assert!(payloads[2].iter().all(|&b| b == 0), "once per connection");
    assert_eq!(e.stats().flipped, [1, 0]);
}

#[test]
fn a_rst_or_fin_is_forged_in_window_after_n_bytes() {
    for (spec, flag) in [
        ("rst-after=2000", TcpFlags::RST),
        ("fin-after=2000", TcpFlags::FIN),
    ] {
        let mut e = engine(spec, "");
        let t0 = Instant::now();
        let mut out = Vec::new();
        for i in 0..3u32 {
            e.push(
                Dir::AtoB,
                t0,
                frame(Dir::AtoB, ACK, 1 + i * 1000, &[], &[5u8; 1000]),
            );
            out.extend(drain(&mut e, t0));
        }
        assert_eq!(out.len(), 4, "{spec}");
        let forged = &out[2].1;
        assert!(flags_of(forged).contains(flag), "{spec}");
        assert_eq!(seq_of(forged), 2001, "{spec}: at the next expected byte");
        assert!(payload_of(forged).is_empty());
        assert_eq!(out[2].0, Dir::AtoB);
    }
}

#[test]
fn a_path_cut_drops_everything_for_its_duration() {
    let mut e = Engine::new(Config {
        cut: Some(PathCut {
            after_bytes: 3000,
            duration: Duration::from_secs(2),
        }),
        ..Config::default()
    });
    let t0 = Instant::now();
    let mut sent = 0;
    for i in 0..10u32 {
        e.push(
            Dir::AtoB,
            t0,
            frame(Dir::AtoB, ACK, 1 + i * 1000, &[], &[0; 1000]),
        );
        e.push(Dir::BtoA, t0, frame(Dir::BtoA, ACK, 1, &[], &[]));
        sent += drain(&mut e, t0).len();
    }
    // The frame that reaches 3000 bytes passes; the cut starts right after it.
    assert_eq!(sent, 3 + 2, "3 data frames and the 2 acks before the cut");
    assert_eq!(e.stats().cut, [7, 8]);
    let later = t0 + Duration::from_secs(2);
    e.push(
        Dir::AtoB,
        later,
        frame(Dir::AtoB, ACK, 20_001, &[], &[0; 10]),
    );
    assert_eq!(drain(&mut e, later).len(), 1, "restored");
}

#[test]
fn the_box_counts_the_canary_it_sees() {
    let mut e = Engine::new(Config {
        canary: Some(b"CANARY".to_vec()),
        ..Config::default()
    });
    let t0 = Instant::now();
    e.push(Dir::AtoB, t0, frame(Dir::AtoB, ACK, 1, &[], b"xxCANARYyy"));
    e.push(Dir::AtoB, t0, frame(Dir::AtoB, ACK, 11, &[], b"nothing"));
    assert_eq!(e.stats().canary_hits, [1, 0]);
}
