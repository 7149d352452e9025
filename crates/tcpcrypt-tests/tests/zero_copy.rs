//! The zero-copy calls (RFC 8548 §3.6-§3.8, §4.2): `send_buffer` + `SendBuffer::commit`,
//! `peek_ciphertext` + `consume_ciphertext`, and `open_in_place`. They must produce the same
//! bytes and keep every guarantee of the copying calls.

use std::sync::Arc;
use std::time::Instant;

use tcpcrypt_proto::consts::{Role, TepId, FRAME_OVERHEAD, MAX_SEND_BUFFER};
use tcpcrypt_proto::session::{Event, Read, SessionConfig};
use tcpcrypt_proto::{Error, PeerMisbehaved};
use tcpcrypt_tests::{data, fresh, provider, Pair, Session, TestRng};

const TEP: TepId = TepId::TCPCRYPT_ECDHE_CURVE25519;

fn established() -> Pair {
    let mut p = Pair::fresh(TEP, SessionConfig::default());
    p.drive();
    assert!(p.a.session.is_established() && p.b.session.is_established());
    p
}

/// Writes `msg` through the window, one frame per commit.
fn write_in_place(s: &mut Session, msg: &[u8]) -> usize {
    let mut at = 0;
    while at < msg.len() {
        let mut w = s.send_buffer().unwrap();
        let n = w.len().min(msg.len() - at);
        if n == 0 {
            break;
        }
        w[..n].copy_from_slice(&msg[at..at + n]);
        assert_eq!(w.commit(n), Ok(n));
        at += n;
    }
    at
}

fn take_all(s: &mut Session) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.poll_ciphertext(&mut out);
    out
}

#[test]
fn the_window_seals_the_same_bytes_as_write_plaintext() {
    let msg = data(150_000, 1);
    let mut copying = established();
    let mut in_place = established();
    for piece in msg.chunks(40_000) {
        assert_eq!(
            copying.a.session.write_plaintext(piece).unwrap(),
            piece.len()
        );
        assert_eq!(write_in_place(&mut in_place.a.session, piece), piece.len());
        let want = take_all(&mut copying.a.session);
        let got = in_place.a.session.peek_ciphertext().to_vec();
        assert_eq!(got, want);
        let t = in_place.a.session.consume_ciphertext(got.len());
        assert_eq!((t.len, t.init_end, t.fin), (got.len(), None, false));
        assert!(in_place.a.session.peek_ciphertext().is_empty());
    }
    assert_eq!(in_place.a.session.plaintext_bytes_sent(), msg.len() as u64);
}

#[test]
fn the_window_is_bounded_and_empty_without_a_key() {
    let cfg = Arc::new(SessionConfig::default());
    let now = Instant::now();
    let mut a = Session::new(
        fresh(Role::A, TEP),
        cfg,
        provider(),
        &mut TestRng::new(1),
        now,
    )
    .unwrap();
    let w = a.send_buffer().unwrap();
    assert!(w.is_empty(), "no key before Init2");
    assert_eq!(w.commit(0), Ok(0));
    let mut p = established();
    let s = &mut p.a.session;
    let mut sealed = 0;
    loop {
        let w = s.send_buffer().unwrap();
        let n = w.len();
        if n == 0 {
            break;
        }
        assert!(n <= SessionConfig::default().max_frame_data);
        assert_eq!(w.commit(n), Ok(n));
        sealed += n + FRAME_OVERHEAD;
    }
    assert!(sealed <= MAX_SEND_BUFFER && s.peek_ciphertext().len() == sealed);
    // Taking part of the bytes makes room again.
    let _ = s.consume_ciphertext(100_000);
    let w = s.send_buffer().unwrap();
    let too_many = w.len() + 1;
    assert_eq!(
        w.commit(too_many),
        Err(Error::ApiMisuse("commit beyond the send buffer"))
    );
    assert!(s.error().is_none(), "nothing was sealed: not terminal");
    s.close().unwrap();
    assert!(matches!(s.send_buffer(), Err(Error::ApiMisuse(_))));
}

#[test]
fn pieces_report_psh_and_fin_once_and_partial_sends_keep_the_stream_whole() {
    let cfg = Arc::new(SessionConfig::default());
    let now = Instant::now();
    let mut a = Session::new(
        fresh(Role::A, TEP),
        cfg,
        provider(),
        &mut TestRng::new(1),
        now,
    )
    .unwrap();
    let init_len = a.peek_ciphertext().len();
    let t = a.consume_ciphertext(10);
    assert_eq!((t.len, t.init_end), (10, None));
    let t = a.consume_ciphertext(1000);
    assert_eq!((t.len, t.init_end), (init_len - 10, Some(init_len - 10)));
    // Through a pair whose ends send in small pieces (the buffer compacts as it refills).
    let mut p = Pair::fresh(TEP, SessionConfig::default());
    (p.a.zero_copy, p.b.zero_copy) = (true, true);
    p.a.zero_copy_piece = 777;
    p.ab.chunks = vec![5000, 3];
    p.drive();
    assert_eq!(p.ab.init_end, Some(79));
    let msg = data(600_000, 2);
    assert_eq!(p.send_a(&msg), msg.len());
    p.a.session.close().unwrap();
    p.b.session.close().unwrap();
    p.drive();
    assert_eq!(p.b.received, msg);
    assert!(p.a.eof && p.b.eof);
    assert_eq!(p.ab.fin_at, Some(p.ab.sent));
    assert!(
        !p.a.session.consume_ciphertext(1).fin,
        "FIN is reported once"
    );
}

/// Seals `sizes` frames at A and returns A's stream of them.
fn frames(p: &mut Pair, sizes: &[usize]) -> (Vec<u8>, Vec<u8>) {
    let msg = data(sizes.iter().sum(), 3);
    let mut at = 0;
    for &n in sizes {
        assert_eq!(p.a.session.write_plaintext(&msg[at..at + n]).unwrap(), n);
        at += n;
    }
    (take_all(&mut p.a.session), msg)
}

#[test]
fn whole_frames_open_in_place_and_a_straddling_one_is_kept() {
    let mut p = established();
    let (stream, msg) = frames(&mut p, &[100, 200, 300]);
    let b = &mut p.b.session;
    let f1 = 100 + FRAME_OVERHEAD;
    let f2 = 200 + FRAME_OVERHEAD;
    // The first buffer ends 50 bytes into the third frame.
    let cut = f1 + f2 + 50;
    let mut buf = stream[..cut].to_vec();
    let o = b.open_in_place(&mut buf).unwrap();
    assert_eq!((o.consumed, o.range.clone()), (f1, 4..104));
    assert_eq!(o.data, &msg[..100]);
    let o = b.open_in_place(&mut buf[f1..]).unwrap();
    assert_eq!((o.consumed, o.range.clone()), (f2, 4..204));
    assert_eq!(o.data, &msg[100..300]);
    let o = b.open_in_place(&mut buf[f1 + f2..]).unwrap();
    assert_eq!((o.consumed, o.data.len()), (50, 0), "straddling: kept");
    assert_eq!(b.read_plaintext(&mut [0; 8]), Ok(Read::Blocked));
    assert_eq!(b.ciphertext_bytes_received(), 79 + (f1 + f2) as u64);
    // The next buffer completes it in the session, which stops there.
    let mut next = stream[cut..].to_vec();
    next.extend_from_slice(b"not yet");
    let o = b.open_in_place(&mut next).unwrap();
    assert_eq!((o.consumed, o.data.len()), (stream.len() - cut, 0));
    let o = b.open_in_place(&mut next[stream.len() - cut..]).unwrap();
    assert_eq!(o.consumed, 0, "blocked while the kept frame is unread");
    let mut out = [0u8; 400];
    assert_eq!(b.read_plaintext(&mut out), Ok(Read::Data(300)));
    assert_eq!(&out[..300], &msg[300..]);
    assert_eq!(b.plaintext_bytes_received(), 600);
}

#[test]
fn a_tampered_frame_in_place_releases_nothing_and_is_terminal() {
    let mut p = established();
    let (mut stream, _) = frames(&mut p, &[100, 100]);
    let second = 100 + FRAME_OVERHEAD;
    stream[second + 50] ^= 1;
    let b = &mut p.b.session;
    let o = b.open_in_place(&mut stream).unwrap();
    assert_eq!(o.data.len(), 100);
    let consumed = o.consumed;
    assert_eq!(
        b.open_in_place(&mut stream[consumed..]),
        Err(Error::AuthenticationFailed)
    );
    assert_eq!(
        b.read_plaintext(&mut [0; 8]),
        Err(Error::AuthenticationFailed)
    );
    assert_eq!(b.open_in_place(&mut []), Err(Error::AuthenticationFailed));
    assert!(b.peek_ciphertext().is_empty());
}

#[test]
fn rekey_urgent_and_fin_frames_in_place() {
    let mut p = established();
    p.a.session.write_urgent(b"urgent!").unwrap();
    assert!(p.a.session.initiate_rekey().unwrap());
    p.a.session.write_plaintext(b"after").unwrap();
    p.a.session.close().unwrap();
    let mut stream = take_all(&mut p.a.session);
    stream.extend_from_slice(&[0, 0, 17]);
    let b = &mut p.b.session;
    let mut got = Vec::new();
    let mut at = 0;
    let err = loop {
        match b.open_in_place(&mut stream[at..]) {
            Ok(o) => {
                got.extend_from_slice(o.data);
                at += o.consumed;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(got, b"urgent!after");
    assert_eq!(err, Error::PeerMisbehaved(PeerMisbehaved::DataAfterFin));
    // Before the error: the URGp mark, the rekey (answered at once) were reported.
    let mut p = established();
    p.a.session.write_urgent(b"urgent!").unwrap();
    assert!(p.a.session.initiate_rekey().unwrap());
    p.a.session.close().unwrap();
    let mut stream = take_all(&mut p.a.session);
    let b = &mut p.b.session;
    let mut at = 0;
    while at < stream.len() {
        at += b.open_in_place(&mut stream[at..]).unwrap().consumed;
    }
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Urgent { mark: 6 })));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Rekeyed {
            local: 1,
            remote: 1
        }
    )));
    let answer = b.peek_ciphertext();
    assert_eq!(
        (answer.len(), answer[0]),
        (FRAME_OVERHEAD, 1),
        "rekey = 1 answer"
    );
    assert_eq!(b.read_plaintext(&mut [0; 8]), Ok(Read::Eof));
    assert_eq!(b.handle_peer_fin(), Ok(()));
}

#[test]
fn frame_boundary_is_known_only_after_the_key_exchange_and_between_frames() {
    let cfg = Arc::new(SessionConfig::default());
    let a = Session::new(
        fresh(Role::A, TEP),
        cfg,
        provider(),
        &mut TestRng::new(1),
        Instant::now(),
    )
    .unwrap();
    assert!(!a.at_frame_boundary(), "Init2 first");
    let mut p = established();
    let (stream, msg) = frames(&mut p, &[100, 200]);
    let b = &mut p.b.session;
    assert!(b.at_frame_boundary());
    let f1 = 100 + FRAME_OVERHEAD;
    let mut buf = stream.clone();
    // A frame cut by the buffer's end is copied into the session: no boundary until it is
    // complete.
    let o = b.open_in_place(&mut buf[..f1 + 10]).unwrap();
    assert_eq!(o.data, &msg[..100]);
    assert!(b.at_frame_boundary());
    let o = b.open_in_place(&mut buf[f1..f1 + 10]).unwrap();
    assert_eq!(o.consumed, 10);
    assert!(!b.at_frame_boundary());
    let o = b.open_in_place(&mut buf[f1 + 10..]).unwrap();
    assert_eq!(o.consumed, stream.len() - f1 - 10);
    assert!(b.at_frame_boundary());
    let mut out = [0u8; 300];
    assert_eq!(b.read_plaintext(&mut out), Ok(Read::Data(200)));
    assert_eq!(&out[..200], &msg[100..]);
    b.abort();
    assert!(!b.at_frame_boundary(), "a failed session expects nothing");
}

#[test]
fn released_buffers_keep_waiting_bytes_and_the_stream_goes_on() {
    let mut p = established();
    assert_eq!(write_in_place(&mut p.a.session, &data(70_000, 5)), 70_000);
    let (a, b) = (&mut p.a.session, &mut p.b.session);
    let sealed = a.peek_ciphertext().to_vec();
    assert!(a.buffer_memory() >= sealed.len());
    a.release_buffers();
    assert_eq!(a.peek_ciphertext(), &sealed[..], "waiting bytes are kept");
    let _ = a.consume_ciphertext(sealed.len());
    a.release_buffers();
    assert_eq!(a.buffer_memory(), 0, "nothing waits: all memory given back");
    // The peer holds part of a frame: kept; once read, released.
    let mut wire = sealed.clone();
    let cut = wire.len() - 10;
    let mut got = Vec::new();
    let mut at = 0;
    while at < cut {
        let o = b.open_in_place(&mut wire[at..cut]).unwrap();
        got.extend_from_slice(o.data);
        at += o.consumed;
    }
    b.release_buffers();
    assert!(b.buffer_memory() > 0, "the partial frame is kept");
    let o = b.open_in_place(&mut wire[cut..]).unwrap();
    assert_eq!(o.consumed, 10);
    let mut out = vec![0u8; 70_000];
    let Ok(Read::Data(n)) = b.read_plaintext(&mut out) else {
        panic!("the completed frame's data")
    };
    got.extend_from_slice(&out[..n]);
    assert_eq!(got, data(70_000, 5));
    b.release_buffers();
    assert_eq!(b.buffer_memory(), 0);
    // Both go on after releasing.
    assert_eq!(a.write_plaintext(b"more").unwrap(), 4);
    let mut more = take_all(a);
    let o = b.open_in_place(&mut more).unwrap();
    assert_eq!(o.data, b"more");
}

#[test]
fn a_small_window_grows_the_buffer_only_as_far_as_needed() {
    let mut p = established();
    let s = &mut p.a.session;
    let _ = take_all(s);
    s.release_buffers();
    let mut w = s.send_buffer_up_to(100).unwrap();
    assert_eq!(w.len(), 100);
    w[..5].copy_from_slice(b"hello");
    assert_eq!(w.commit(5), Ok(5));
    assert!(
        s.buffer_memory() < 1024,
        "a 100-byte window needs no 64 KiB buffer: {}",
        s.buffer_memory()
    );
    let mut wire = take_all(s);
    assert_eq!(wire.len(), 5 + FRAME_OVERHEAD);
    let o = p.b.session.open_in_place(&mut wire).unwrap();
    assert_eq!(o.data, b"hello");
    // Larger than a frame: capped at the configured frame size.
    let w = p.a.session.send_buffer_up_to(usize::MAX).unwrap();
    assert_eq!(w.len(), SessionConfig::default().max_frame_data);
}
