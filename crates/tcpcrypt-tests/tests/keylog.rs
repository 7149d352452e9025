//! The key log (RFC 8547 §5 debug mode) through the in-memory pair: each end logs its secret
//! exactly once when its keys exist, both ends log the same session ID, and the logged secret
//! with the bytes of the two streams recomputes that session ID (RFC 8548 §3.3-§3.5).

use std::sync::{Arc, Mutex};

use tcpcrypt_proto::keylog::{KeyLog, KeyLogEntry, KeyLogFile, LoggedSecret};
use tcpcrypt_proto::keys::{SessionId, SessionSecret};
use tcpcrypt_proto::negotiated::ResumeNonces;
use tcpcrypt_proto::session::SessionConfig;
use tcpcrypt_proto::wire::init::Init1Repr;
use tcpcrypt_proto::{AeadId, Role, TepId};
use tcpcrypt_tests::{data, fresh, provider, resumed, Pair, TEPS, TRANSCRIPT};

/// A key log that keeps its lines in memory.
#[derive(Debug, Default)]
struct MemoryKeyLog(Mutex<Vec<String>>);

impl KeyLog for MemoryKeyLog {
    fn log(&self, entry: &KeyLogEntry<'_>) {
        self.0
            .lock()
            .expect("not poisoned")
            .push(entry.to_line().to_string());
    }
}

impl MemoryKeyLog {
    fn text(&self) -> String {
        self.0
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|l| l.as_str())
            .collect()
    }

    fn count(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }
}

/// A pair whose ends log to their own key logs, with both streams tapped.
fn logged_pair(
    a: tcpcrypt_proto::Negotiated,
    b: tcpcrypt_proto::Negotiated,
    config: SessionConfig,
) -> (Pair, Arc<MemoryKeyLog>, Arc<MemoryKeyLog>) {
    let (la, lb) = (
        Arc::<MemoryKeyLog>::default(),
        Arc::<MemoryKeyLog>::default(),
    );
    let mut p = Pair::with_configs(
        a,
        b,
        config.clone().with_key_log(la.clone()),
        config.with_key_log(lb.clone()),
    );
    p.ab.tap = Some(Vec::new());
    p.ba.tap = Some(Vec::new());
    (p, la, lb)
}

/// Exchanges data both ways and closes, so a log line written late would show up.
fn exchange(p: &mut Pair) {
    let (x, y) = (data(70_000, 1), data(1_000, 2));
    assert_eq!(p.send_a(&x), x.len());
    assert_eq!(p.send_b(&y), y.len());
    assert_eq!(p.b.received, x);
    assert_eq!(p.a.received, y);
}

#[test]
fn fresh_sessions_log_es_once_and_it_recomputes_the_session_id() {
    for tep in TEPS {
        for aead in [
            AeadId::AES_128_GCM,
            AeadId::AES_256_GCM,
            AeadId::CHACHA20_POLY1305,
        ] {
            let config = SessionConfig {
                aead_offer: vec![aead],
                aead_preference: vec![aead],
                ..SessionConfig::default()
            };
            let (mut p, la, lb) = logged_pair(fresh(Role::A, tep), fresh(Role::B, tep), config);
            assert_eq!(la.count() + lb.count(), 0, "nothing before Init1/Init2");
            p.drive();
            exchange(&mut p);
            let sid = p.a.session.session_id().expect("A established");
            assert_eq!(p.b.session.session_id(), Some(sid));

            // Exactly one line each, the same line.
            assert_eq!((la.count(), lb.count()), (1, 1), "{tep:?} {aead:?}");
            assert_eq!(la.text(), lb.text());
            let line = la.text();
            assert!(line.starts_with(&format!("TCPCRYPT_ES {} ", sid.to_hex())));
            assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));

            let log = KeyLogFile::parse(&format!("{}{}", la.text(), lb.text())).expect("parses");
            assert_eq!(log.len(), 1);
            let Some(LoggedSecret::Es(es)) = log.get(&sid) else {
                panic!("no ES for {sid}");
            };
            let provider = provider();
            let ka = provider.key_agreement(tep).expect("provider has the TEP");
            assert_eq!(es.len(), ka.shared_secret_len());

            // Recompute from the "capture": transcript, Init1 and Init2 as sent, and ES.
            let ab = p.ab.tap.as_deref().expect("tapped");
            let ba = p.ba.tap.as_deref().expect("tapped");
            let init1 = &ab[..usize::try_from(p.ab.init_end.expect("Init1 end")).unwrap()];
            let init2 = &ba[..usize::try_from(p.ba.init_end.expect("Init2 end")).unwrap()];
            let n_a = Init1Repr::parse(init1, ka.public_len()).expect("Init1").n_a;
            let ss0 = SessionSecret::extract(&n_a, TRANSCRIPT, init1, init2, es);
            assert_eq!(ss0.session_id(tep.get(), &[]), sid);

            // A wrong ES gives another ID (the check above can fail).
            let mut wrong = es.clone();
            wrong[0] ^= 1;
            let other = SessionSecret::extract(&n_a, TRANSCRIPT, init1, init2, &wrong);
            assert_ne!(other.session_id(tep.get(), &[]), sid);
        }
    }
}

#[test]
fn resumed_sessions_log_ss_once_and_it_recomputes_the_session_id() {
    let ss = [0x3c; 32];
    for tep in TEPS {
        let aead = AeadId::CHACHA20_POLY1305;
        let (mut p, la, lb) = logged_pair(
            resumed(Role::A, tep, Role::B, aead, ss),
            resumed(Role::B, tep, Role::A, aead, ss),
            SessionConfig::default(),
        );
        // A resumed session has its keys at creation.
        assert_eq!((la.count(), lb.count()), (1, 1));
        p.drive();
        exchange(&mut p);
        assert_eq!((la.count(), lb.count()), (1, 1));
        assert_eq!(la.text(), lb.text());
        let sid = p.a.session.session_id().expect("established");
        assert!(sid.is_resumed());
        let log = KeyLogFile::parse(&la.text()).expect("parses");
        assert_eq!(log.get(&sid), Some(&LoggedSecret::Ss(ss)));
        let sn = ResumeNonces::new(&[1, 2, 3, 4, 5, 6, 7, 8], &[9, 10, 11, 12, 13, 14, 15, 16])
            .expect("valid nonces");
        let recomputed = SessionSecret::from_bytes(ss).session_id(tep.get() | 0x80, sn.as_bytes());
        assert_eq!(recomputed, sid);
    }
}

#[test]
fn no_key_log_configured_means_no_secret_leaves() {
    // The same pair with a log on one end only: the other end's config has none, and the
    // logging end still logs exactly once.
    let tep = TepId::TCPCRYPT_ECDHE_CURVE25519;
    let la = Arc::<MemoryKeyLog>::default();
    let mut p = Pair::with_configs(
        fresh(Role::A, tep),
        fresh(Role::B, tep),
        SessionConfig::default(),
        SessionConfig::default().with_key_log(la.clone()),
    );
    p.drive();
    exchange(&mut p);
    assert_eq!(la.count(), 1);
    assert!(SessionConfig::default().key_log.is_none());
    let sid: SessionId = p.b.session.session_id().expect("established");
    assert!(la.text().contains(&sid.to_hex()));
}

#[test]
fn a_failed_key_exchange_logs_nothing() {
    // Init1's first byte flipped: B rejects the magic before any key exists.
    let tep = TepId::TCPCRYPT_ECDHE_P256;
    let (mut p, la, lb) = logged_pair(
        fresh(Role::A, tep),
        fresh(Role::B, tep),
        SessionConfig::default(),
    );
    p.ab.flip = Some((0, 0x01));
    p.drive();
    assert!(p.b.session.error().is_some(), "B must fail on a bad Init1");
    assert_eq!(lb.count(), 0);
    assert_eq!(la.count(), 0, "A never got an Init2");
}
