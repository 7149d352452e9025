//! The stream path of a tcpcrypt connection as seen in a capture (RFC 8548 §3.3-§3.8, §4):
//! Init1/Init2, then frames per direction. With a key-log secret it recomputes the key
//! schedule with the core's [`keys`](tcpcrypt_proto::keys) (ES → ss\[0\] → session ID, mk\[0\],
//! traffic keys; for a resumed session ss\[i\] and sn\[i\]) and opens every frame through the
//! core's [`FrameOpener`], following rekeys and FINp. A key is *known* only when it reproduces
//! the logged session ID from the captured Init messages and transcript. Without keys the
//! frames are still counted from their length fields and rekey bits (both in the clear).

use std::sync::Arc;

use tcpcrypt_proto::consts::{AeadId, Role, TepId};
use tcpcrypt_proto::crypto::CryptoProvider;
use tcpcrypt_proto::eno::{observe, Observed};
use tcpcrypt_proto::keylog::{KeyLogFile, LoggedSecret};
use tcpcrypt_proto::keys::{MasterKey, ResumableSecret, SessionSecret};
use tcpcrypt_proto::session::FrameOpener;
use tcpcrypt_proto::wire::frame::FrameHeader;
use tcpcrypt_proto::wire::init::{init_bytes_needed, Init1Repr, Init2Repr, InitKind};
use tcpcrypt_proto::{Error as ProtoError, SessionId};

use crate::analysis::EnoAnalysis;
use crate::flow::{Connection, Stream};
use crate::report::{kind, Anomaly};

/// One direction's frames.
#[derive(Debug, Clone, Default)]
pub struct DirectionResult {
    /// Frames seen (whole frames whose length field fits the stream).
    pub frames: u64,
    /// Frames with the rekey bit.
    pub rekeys: u64,
    /// Application-stream indexes of the last urgent byte of each URGp frame (RFC 8548 §3.7;
    /// keys known only).
    pub urgent_marks: Vec<u64>,
    /// Decrypted application bytes (empty without keys).
    pub plaintext: Vec<u8>,
    /// Every frame up to the end of the stream was authenticated (keys known).
    pub decrypted: bool,
    /// An authenticated FINp frame ended the direction.
    pub finp: bool,
    /// The stream ends inside an Init message or frame.
    pub partial: bool,
}

/// The stream path of one connection.
#[derive(Debug, Clone, Default)]
pub struct Decrypted {
    /// The negotiated TEP.
    pub tep: Option<TepId>,
    /// B's TEP byte (session ID byte 0).
    pub tep_byte: Option<u8>,
    /// The AEAD.
    pub aead: Option<AeadId>,
    /// A resumed session.
    pub resumed: bool,
    /// The session ID a key-log secret reproduced.
    pub session_id: Option<SessionId>,
    /// Client to server.
    pub c2s: DirectionResult,
    /// Server to client.
    pub s2c: DirectionResult,
    /// What was wrong.
    pub anomalies: Vec<Anomaly>,
}

/// Everything needed to open one connection's frames.
struct SessionKeys {
    session_id: SessionId,
    ss: SessionSecret,
    sn: Vec<u8>,
    /// The role whose key the client sends with (its original role when resumed).
    client_key_role: Role,
    aead: Option<AeadId>,
}

impl SessionKeys {
    fn opener(
        &self,
        sender: Role,
        aead: AeadId,
        provider: &Arc<dyn CryptoProvider>,
        init_len: usize,
    ) -> Option<FrameOpener> {
        let master: MasterKey = self.ss.master_key(&self.sn);
        FrameOpener::new(master, sender, aead, provider.clone(), init_len).ok()
    }
}

/// Length of the Init message at the start of `stream`: `Ok(None)` if the stream ends first.
fn init_len(kind: InitKind, stream: &[u8], pub_len: usize) -> Result<Option<usize>, ProtoError> {
    // Nine bytes show magic, message_len and (Init1) nciphers; fewer are checked as far as
    // they go.
    const HEAD: usize = 9;
    let head = &stream[..stream.len().min(HEAD)];
    let need = init_bytes_needed(kind, head, pub_len)?;
    if head.len() < HEAD {
        return Ok(None);
    }
    let total = HEAD + need;
    Ok((total <= stream.len()).then_some(total))
}

/// Decodes the stream path of a tcpcrypt connection.
pub fn decrypt(
    conn: &Connection,
    eno: &EnoAnalysis,
    keylog: Option<&KeyLogFile>,
    provider: &Arc<dyn CryptoProvider>,
) -> Decrypted {
    let mut d = Decrypted::default();
    let Some(client_role) = eno.client_role else {
        return d;
    };
    let (a_stream, b_stream) = match client_role {
        Role::A => (&conn.c2s, &conn.s2c),
        Role::B => (&conn.s2c, &conn.c2s),
    };
    let mut keys: Option<SessionKeys> = None;
    let (mut a_start, mut b_start) = (0usize, 0usize);
    if let Some(obs) = &eno.observed {
        d.tep = Some(obs.tep);
        d.tep_byte = Some(obs.tep_byte);
        let Some(ka) = provider.key_agreement(obs.tep) else {
            d.anomalies.push(Anomaly::new(
                kind::MALFORMED,
                format!("no key agreement for {}", obs.tep),
            ));
            return d;
        };
        let pub_len = ka.public_len();
        let lens = (
            init_len(InitKind::Init1, &a_stream.bytes, pub_len),
            init_len(InitKind::Init2, &b_stream.bytes, pub_len),
        );
        let (l1, l2) = match lens {
            (Ok(l1), Ok(l2)) => (l1, l2),
            (r1, r2) => {
                for (r, name) in [(r1, "Init1"), (r2, "Init2")] {
                    if let Err(e) = r {
                        d.anomalies
                            .push(Anomaly::new(kind::MALFORMED, format!("{name}: {e}")));
                    }
                }
                return d;
            }
        };
        let (Some(l1), Some(l2)) = (l1, l2) else {
            mark_partial_init(&mut d, client_role, a_stream, b_stream);
            return d;
        };
        (a_start, b_start) = (l1, l2);
        let init1 = &a_stream.bytes[..l1];
        let init2 = &b_stream.bytes[..l2];
        match (
            Init1Repr::parse(init1, pub_len),
            Init2Repr::parse(init2, pub_len),
        ) {
            (Ok(i1), Ok(i2)) => {
                d.aead = Some(i2.sym_cipher);
                if !i1.ciphers.contains(&i2.sym_cipher) {
                    d.anomalies.push(Anomaly::new(
                        kind::MALFORMED,
                        "Init2 chose an AEAD that Init1 did not list (RFC 8548 §4.1)",
                    ));
                }
                if let Some(log) = keylog {
                    keys = fresh_keys(log, obs, &i1.n_a, init1, init2, ka.shared_secret_len()).map(
                        |(session_id, ss)| SessionKeys {
                            session_id,
                            ss,
                            sn: Vec::new(),
                            client_key_role: client_role,
                            aead: Some(i2.sym_cipher),
                        },
                    );
                }
            }
            (r1, r2) => {
                for (e, name) in [(r1.err(), "Init1"), (r2.err(), "Init2")] {
                    if let Some(e) = e {
                        d.anomalies
                            .push(Anomaly::new(kind::MALFORMED, format!("{name}: {e}")));
                    }
                }
                return d;
            }
        }
    } else if let Some(tep) = eno.resumption_tep {
        d.tep = Some(tep);
        d.resumed = true;
        d.tep_byte = Some(tep.get() | 0x80);
        if let (Some(log), Some(co), Some(so)) = (keylog, &eno.client_option, &eno.server_option) {
            keys = resumed_keys(log, co, so);
        }
    } else {
        return d;
    }

    if let Some(k) = &mut keys {
        d.session_id = Some(k.session_id);
        if k.aead.is_none() {
            // RFC 8548 §3.5 carries no AEAD for a resumed session; the project keeps ss[0]'s
            // (see ResumableSecret::aead). Find the one whose tag verifies on a first frame.
            k.aead = AeadId::ALL.into_iter().find(|&aead| {
                [(client_role, a_stream), (client_role.peer(), b_stream)]
                    .iter()
                    .any(|(sender, s)| {
                        let sender = if *sender == client_role {
                            k.client_key_role
                        } else {
                            k.client_key_role.peer()
                        };
                        k.opener(sender, aead, provider, 0)
                            .is_some_and(|mut o| matches!(o.open_next(&s.bytes), Ok(Some(_))))
                    })
            });
            d.aead = k.aead;
            if k.aead.is_none() && !(a_stream.bytes.is_empty() && b_stream.bytes.is_empty()) {
                d.anomalies.push(Anomaly::new(
                    kind::TAG_FAILURE,
                    "the first frames verify under no AEAD with the logged secret",
                ));
            }
        }
    }
    let a_key = keys.as_ref().and_then(|k| {
        let sender = if client_role == Role::A {
            k.client_key_role
        } else {
            k.client_key_role.peer()
        };
        k.opener(sender, k.aead?, provider, a_start)
    });
    let b_key = keys.as_ref().and_then(|k| {
        let sender = if client_role == Role::B {
            k.client_key_role
        } else {
            k.client_key_role.peer()
        };
        k.opener(sender, k.aead?, provider, b_start)
    });
    let known = keys.is_some();
    let a = walk(a_stream, a_start, a_key, known, "A", &mut d.anomalies);
    let b = walk(b_stream, b_start, b_key, known, "B", &mut d.anomalies);
    match client_role {
        Role::A => (d.c2s, d.s2c) = (a, b),
        Role::B => (d.c2s, d.s2c) = (b, a),
    }
    d
}

/// The Init messages are not both whole: a direction that holds part of one is partial.
fn mark_partial_init(d: &mut Decrypted, client_role: Role, a: &Stream, b: &Stream) {
    let (c, s) = match client_role {
        Role::A => (a, b),
        Role::B => (b, a),
    };
    for (stream, result) in [(c, &mut d.c2s), (s, &mut d.s2c)] {
        if !stream.bytes.is_empty() {
            result.partial = true;
        }
    }
    let (c_len, s_len) = (c.bytes.len(), s.bytes.len());
    d.anomalies.push(Anomaly::new(
        kind::PARTIAL_FRAME,
        format!(
            "the Init1/Init2 exchange is not complete in the capture (client sent {c_len} bytes, server {s_len})"
        ),
    ));
}

/// Finds the `TCPCRYPT_ES` entry whose ES reproduces its own session ID from this capture's
/// transcript and Init messages (RFC 8548 §3.3, §3.4).
fn fresh_keys(
    log: &KeyLogFile,
    obs: &Observed,
    n_a: &[u8; 32],
    init1: &[u8],
    init2: &[u8],
    es_len: usize,
) -> Option<(SessionId, SessionSecret)> {
    log.iter().find_map(|(sid, secret)| {
        let LoggedSecret::Es(es) = secret else {
            return None;
        };
        if es.len() != es_len || sid.as_bytes()[0] != obs.tep_byte {
            return None;
        }
        let ss0 = SessionSecret::extract(n_a, &obs.transcript, init1, init2, es);
        ss0.session_id(obs.tep_byte, &[])
            .ct_eq(sid)
            .then_some((*sid, ss0))
    })
}

/// Finds the `TCPCRYPT_SS` entry whose ss\[i\] matches both identifier halves of the SYNs and
/// reproduces its session ID with their nonces (RFC 8548 §3.5).
fn resumed_keys(log: &KeyLogFile, client_opt: &[u8], server_opt: &[u8]) -> Option<SessionKeys> {
    log.iter().find_map(|(sid, secret)| {
        let LoggedSecret::Ss(ss) = secret else {
            return None;
        };
        [Role::A, Role::B].into_iter().find_map(|original| {
            let candidate = ResumableSecret {
                tep: sid.tep()?,
                original_role: original,
                // Not used by selection; the AEAD is found from the frames.
                aead: AeadId::AES_128_GCM,
                secret: SessionSecret::from_bytes(*ss),
            };
            let obs = observe(client_opt, server_opt, Some(&candidate)).ok()?;
            let sn = obs.resumed_sn?;
            let ss = SessionSecret::from_bytes(*ss);
            ss.session_id(obs.tep_byte, sn.as_bytes())
                .ct_eq(sid)
                .then(|| SessionKeys {
                    session_id: *sid,
                    ss,
                    sn: sn.as_bytes().to_vec(),
                    client_key_role: original,
                    aead: None,
                })
        })
    })
}

/// Walks one direction's frames from `start`: opening them with `opener`, or counting them.
fn walk(
    stream: &Stream,
    start: usize,
    mut opener: Option<FrameOpener>,
    keys_known: bool,
    host: &str,
    anomalies: &mut Vec<Anomaly>,
) -> DirectionResult {
    let mut r = DirectionResult {
        decrypted: opener.is_some(),
        ..DirectionResult::default()
    };
    let bytes = &stream.bytes;
    let mut at = start;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if r.finp {
            anomalies.push(Anomaly::new(
                kind::DATA_AFTER_FINP,
                format!("{} bytes from host {host} after its FINp frame", rest.len()),
            ));
            break;
        }
        let header = match FrameHeader::parse(rest) {
            Ok(h) => h,
            Err(ProtoError::Decode(_)) => {
                r.partial = true;
                break;
            }
            Err(e) => {
                anomalies.push(Anomaly::new(
                    kind::MALFORMED,
                    format!("host {host}'s frame at stream offset {at}: {e}"),
                ));
                r.decrypted = false;
                break;
            }
        };
        if rest.len() < header.frame_len() {
            r.partial = true;
            break;
        }
        r.frames += 1;
        r.rekeys += u64::from(header.rekey);
        if let Some(o) = opener.as_mut() {
            match o.open_next(rest) {
                Ok(Some(frame)) => {
                    r.urgent_marks.extend(frame.urgent_mark);
                    r.plaintext.extend_from_slice(&frame.data);
                    r.finp = frame.fin;
                }
                Ok(None) => r.partial = true,
                Err(e) => {
                    let kind = if e == ProtoError::AuthenticationFailed {
                        kind::TAG_FAILURE
                    } else {
                        kind::MALFORMED
                    };
                    anomalies.push(Anomaly::new(
                        kind,
                        format!(
                            "host {host}'s frame {} at stream offset {at}: {e}; nothing after it is decrypted",
                            r.frames
                        ),
                    ));
                    r.decrypted = false;
                    opener = None;
                }
            }
        }
        at += header.frame_len();
    }
    if r.partial {
        anomalies.push(Anomaly::new(
            kind::PARTIAL_FRAME,
            format!("host {host}'s stream ends inside a frame at offset {at}"),
        ));
    }
    if keys_known && r.decrypted && !r.finp && stream.fin_complete() {
        anomalies.push(Anomaly::new(
            kind::FIN_WITHOUT_FINP,
            format!("host {host} sent a TCP FIN but no FINp frame (RFC 8548 §3.7)"),
        ));
    }
    r
}

impl DirectionResult {
    /// The plaintext recovered with keys: everything up to the first frame that failed (the
    /// bytes of authenticated frames only), `None` if nothing could be opened at all.
    pub fn decrypted_or_partial(&self) -> Option<Vec<u8>> {
        (self.decrypted || !self.plaintext.is_empty() || self.frames == 0)
            .then(|| self.plaintext.clone())
    }
}
