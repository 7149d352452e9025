//! The project's main job until the daemon exists: two tcpcrypt endpoints in one process,
//! talking through in-memory "wires" exactly as a driver would feed the protocol core.
//!
//! Connection 1 negotiates TCP-ENO in the SYN, SYN-ACK and ACK options (RFC 8547 §4), runs a
//! fresh tcpcrypt key exchange (Init1/Init2, RFC 8548 §3.3), exchanges encrypted frames both
//! ways, rekeys (§3.8) and closes with FINp (§3.7). Connection 2 resumes from the secret the
//! first one left in each host's cache (§3.5). Both session IDs are printed for each; they must
//! be equal, and the program fails if they are not.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use tcpcrypt_crypto::{default_provider, OsRng};
use tcpcrypt_proto::consts::{AeadId, TepId};
use tcpcrypt_proto::crypto::CryptoProvider;
use tcpcrypt_proto::eno::{Config, Negotiation, SegmentFlags, State};
use tcpcrypt_proto::resume::{CacheConfig, ResumeCache};
use tcpcrypt_proto::session::{Event, Read, Session, SessionConfig};
use tcpcrypt_proto::wire::tcp_option::insert_option;
use tcpcrypt_proto::{Error, Negotiated};

/// The options area of a Linux SYN: MSS, SACK permitted, timestamps, NOP, window scale.
const LINUX_SYN_OPTIONS: [u8; 20] = [
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 0, 0x01, 0x03, 0x03, 0x07,
];
/// The options area of a Linux non-SYN segment: NOP, NOP, timestamps.
const LINUX_ACK_OPTIONS: [u8; 12] = [0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 2, 0, 0, 0, 1];

const USAGE: &str = "usage: tcpcrypt-demo [--tep curve25519|curve448|p256|p521] \
                     [--aead aes128gcm|aes256gcm|chacha20poly1305]";

/// One simulated host.
struct Host {
    name: &'static str,
    eno: Config,
    session: Arc<SessionConfig>,
    cache: ResumeCache<&'static str>,
}

fn main() -> ExitCode {
    let (tep, aead) = match parse_args(std::env::args().skip(1)) {
        Ok(Some(choice)) => choice,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("tcpcrypt-demo: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(tep, aead) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("tcpcrypt-demo: FAILED: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// `--tep` and `--aead`; `Ok(None)` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<(TepId, AeadId)>, String> {
    let (mut tep, mut aead) = (TepId::TCPCRYPT_ECDHE_CURVE25519, AeadId::AES_128_GCM);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--tep" => {
                tep = match value("--tep")?.as_str() {
                    "curve25519" => TepId::TCPCRYPT_ECDHE_CURVE25519,
                    "curve448" => TepId::TCPCRYPT_ECDHE_CURVE448,
                    "p256" => TepId::TCPCRYPT_ECDHE_P256,
                    "p521" => TepId::TCPCRYPT_ECDHE_P521,
                    other => return Err(format!("unknown TEP {other:?}")),
                }
            }
            "--aead" => {
                aead = match value("--aead")?.as_str() {
                    "aes128gcm" => AeadId::AES_128_GCM,
                    "aes256gcm" => AeadId::AES_256_GCM,
                    "chacha20poly1305" => AeadId::CHACHA20_POLY1305,
                    other => return Err(format!("unknown AEAD {other:?}")),
                }
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some((tep, aead)))
}

fn run(tep: TepId, aead: AeadId) -> Result<(), String> {
    let provider: Arc<dyn CryptoProvider> = Arc::new(*default_provider());
    let host = |name, offer: &[AeadId]| -> Result<Host, String> {
        Ok(Host {
            name,
            eno: Config::new(&[tep]).map_err(|e| e.to_string())?,
            session: Arc::new(SessionConfig {
                aead_offer: offer.to_vec(),
                ..SessionConfig::default()
            }),
            cache: ResumeCache::new(CacheConfig::default()),
        })
    };
    // Host a offers only the chosen AEAD; host b accepts any (its default preference).
    let mut a = host("a", &[aead])?;
    let mut b = host("b", &AeadId::ALL)?;
    println!("tcpcrypt in-memory demo: RFC 8547 (TCP-ENO) + RFC 8548 (tcpcrypt)");
    println!("host a connects to host b; TEP offered: {tep}; AEAD offered by a: {aead}\n");

    for (n, label) in [(1, "fresh key exchange"), (2, "resumption of connection 1")] {
        println!("== connection {n}: {label}");
        let (na, nb) = handshake(&mut a, &mut b)?;
        let ids = stream(&mut a, &mut b, na, nb, provider.clone())?;
        println!("   session ID at a: {}", ids.0);
        println!("   session ID at b: {}", ids.1);
        if !ids.0.ct_eq(&ids.1) {
            return Err("the two session IDs differ".into());
        }
        println!("   equal: yes\n");
    }
    println!("ok: both connections encrypted, session IDs equal on both ends");
    Ok(())
}

/// The three-way handshake with ENO options (RFC 8547 §4.6), printed segment by segment.
fn handshake(a: &mut Host, b: &mut Host) -> Result<(Negotiated, Negotiated), String> {
    let now = Instant::now();
    let mut rng = OsRng;
    let offer = a.cache.take_offer(&b.name, now);
    let mut na = Negotiation::active(a.eno.clone(), offer, &mut rng);
    let syn = segment(
        &mut na,
        SegmentFlags::SYN,
        &LINUX_SYN_OPTIONS,
        "a -> b  SYN    ",
    )?;
    let (mut nb, _verdict) = Negotiation::passive(
        b.eno.clone(),
        SegmentFlags::SYN,
        &syn,
        &mut b.cache,
        now,
        &mut rng,
    );
    let syn_ack = segment(
        &mut nb,
        SegmentFlags::SYN_ACK,
        &LINUX_SYN_OPTIONS,
        "b -> a  SYN-ACK",
    )?;
    let _ = na.on_receive(SegmentFlags::SYN_ACK, &syn_ack);
    let ack = segment(
        &mut na,
        SegmentFlags::ACK,
        &LINUX_ACK_OPTIONS,
        "a -> b  ACK    ",
    )?;
    let _ = nb.on_receive(SegmentFlags::ACK, &ack);
    for (name, n) in [("a", &na), ("b", &nb)] {
        if let State::Disabled(reason) = n.state() {
            return Err(format!("ENO fell back to plain TCP at {name}: {reason}"));
        }
    }
    let (na, nb) = (na.take_negotiated(), nb.take_negotiated());
    let (Some(na), Some(nb)) = (na, nb) else {
        return Err("ENO did not enable encryption".into());
    };
    println!(
        "   ENO: negotiated {}; roles a = {}, b = {}; transcript {} ({} bytes)",
        na.tep,
        na.role,
        nb.role,
        hex(&na.transcript),
        na.transcript.len()
    );
    Ok((na, nb))
}

/// Builds one handshake segment's options area and prints its ENO option.
fn segment(
    n: &mut Negotiation,
    flags: SegmentFlags,
    base: &[u8],
    label: &str,
) -> Result<Vec<u8>, String> {
    let Some(eno) = n.on_send(flags, base) else {
        println!("   {label}  (no ENO option)");
        return Ok(base.to_vec());
    };
    println!("   {label}  ENO option {}", hex(eno.as_bytes()));
    let area = insert_option(base, eno.as_bytes()).map_err(|e| e.to_string())?;
    Ok(area.as_bytes().to_vec())
}

/// The stream path: Init1/Init2 or resumption, frames both ways, a rekey, FINp both ways.
/// Returns both session IDs; caches what the sessions hand back.
fn stream(
    a: &mut Host,
    b: &mut Host,
    na: Negotiated,
    nb: Negotiated,
    provider: Arc<dyn CryptoProvider>,
) -> Result<(tcpcrypt_proto::SessionId, tcpcrypt_proto::SessionId), String> {
    let now = Instant::now();
    let err = |who: &str, e: Error| format!("{who}: {e}");
    let mut sa = Session::new(na, a.session.clone(), provider.clone(), &mut OsRng, now)
        .map_err(|e| err("a", e))?;
    let mut sb =
        Session::new(nb, b.session.clone(), provider, &mut OsRng, now).map_err(|e| err("b", e))?;
    let mut wire = Wire::default();
    wire.pump(&mut sa, &mut sb)?;

    let request = b"GET /secret HTTP/1.0\r\n\r\n";
    let reply = b"HTTP/1.0 200 OK\r\n\r\nthe plaintext never touches the wire";
    let (before_ab, before_ba) = (wire.ab_bytes, wire.ba_bytes);
    sa.write_plaintext(request).map_err(|e| err("a", e))?;
    wire.pump(&mut sa, &mut sb)?;
    sb.write_plaintext(reply).map_err(|e| err("b", e))?;
    wire.pump(&mut sa, &mut sb)?;
    println!(
        "   a -> b  {} plaintext bytes as {} bytes of frames: {:?}",
        request.len(),
        wire.ab_bytes - before_ab,
        String::from_utf8_lossy(&wire.at_b)
    );
    println!(
        "   b -> a  {} plaintext bytes as {} bytes of frames",
        reply.len(),
        wire.ba_bytes - before_ba
    );
    if wire.at_b != request || wire.at_a != reply {
        return Err("plaintext did not arrive intact".into());
    }

    sa.initiate_rekey().map_err(|e| err("a", e))?;
    sa.write_plaintext(b"after the rekey")
        .map_err(|e| err("a", e))?;
    wire.pump(&mut sa, &mut sb)?;
    println!(
        "   rekey initiated by a: generations a {}/{}, b {}/{} (local/remote)",
        sa.local_generation(),
        sa.remote_generation(),
        sb.local_generation(),
        sb.remote_generation()
    );
    sa.close().map_err(|e| err("a", e))?;
    sb.close().map_err(|e| err("b", e))?;
    wire.pump(&mut sa, &mut sb)?;
    if !(wire.eof_a && wire.eof_b) {
        return Err("the FINp frames did not arrive".into());
    }
    println!("   both closed: each read an authenticated FINp (clean EOF)");
    println!(
        "   AEAD {}; {}",
        sa.aead().map_or("none".into(), |x| x.to_string()),
        if sa.is_resumed() {
            "resumed (no Init1/Init2)"
        } else {
            "fresh"
        }
    );

    let later = Instant::now();
    for (host, peer, events) in [(a, "b", wire.events_a), (b, "a", wire.events_b)] {
        for e in events {
            if let Event::ResumableSecret(secret) = e {
                host.cache.insert(peer, secret, later);
            }
        }
    }
    match (sa.session_id(), sb.session_id()) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => Err("no session ID".into()),
    }
}

/// Two in-memory byte streams between the sessions, and what each application read.
#[derive(Default)]
struct Wire {
    ab_bytes: usize,
    ba_bytes: usize,
    at_a: Vec<u8>,
    at_b: Vec<u8>,
    eof_a: bool,
    eof_b: bool,
    events_a: Vec<Event>,
    events_b: Vec<Event>,
}

/// One direction in flight: ciphertext not yet accepted by the receiver, and a pending FIN.
#[derive(Default)]
struct InFlight {
    bytes: Vec<u8>,
    fin: bool,
}

impl Wire {
    /// Moves ciphertext both ways until neither session has anything more to say. The
    /// receiver may accept only part of what is offered (backpressure while its application
    /// has not read); the rest waits, as in a socket buffer.
    fn pump(&mut self, a: &mut Session, b: &mut Session) -> Result<(), String> {
        let (mut ab, mut ba) = (InFlight::default(), InFlight::default());
        loop {
            let sent_ab = Self::poll(a, &mut ab, "a", "b");
            let sent_ba = Self::poll(b, &mut ba, "b", "a");
            self.ab_bytes += sent_ab;
            self.ba_bytes += sent_ba;
            let took_b = Self::deliver(&mut ab, b, "b")?;
            let took_a = Self::deliver(&mut ba, a, "a")?;
            Self::drain(a, &mut self.at_a, &mut self.eof_a, &mut self.events_a)?;
            Self::drain(b, &mut self.at_b, &mut self.eof_b, &mut self.events_b)?;
            if sent_ab + sent_ba + took_a + took_b == 0 {
                return Ok(());
            }
        }
    }

    /// Appends what `from` has to send to its direction's bytes in flight.
    fn poll(from: &mut Session, dir: &mut InFlight, f: &str, t: &str) -> usize {
        let before = dir.bytes.len();
        let tx = from.poll_ciphertext(&mut dir.bytes);
        if let Some(end) = tx.init_end {
            let kind = if f == "a" { "Init1" } else { "Init2" };
            let len = end - before;
            println!("   {f} -> {t}  {kind} ({len} bytes, PSH on the segment with its last byte)");
        }
        dir.fin |= tx.fin;
        tx.len
    }

    /// Offers the bytes in flight to `to`; hands it the FIN once every byte was taken.
    fn deliver(dir: &mut InFlight, to: &mut Session, t: &str) -> Result<usize, String> {
        let n = to
            .handle_ciphertext(&dir.bytes)
            .map_err(|e| format!("{t}: {e}"))?;
        dir.bytes.drain(..n);
        if dir.bytes.is_empty() && dir.fin {
            dir.fin = false;
            to.handle_peer_fin().map_err(|e| format!("{t}: {e}"))?;
            return Ok(n + 1);
        }
        Ok(n)
    }

    fn drain(
        s: &mut Session,
        into: &mut Vec<u8>,
        eof: &mut bool,
        events: &mut Vec<Event>,
    ) -> Result<(), String> {
        while let Some(e) = s.poll_event() {
            events.push(e);
        }
        let mut buf = [0u8; 4096];
        loop {
            match s.read_plaintext(&mut buf).map_err(|e| e.to_string())? {
                Read::Data(n) => into.extend_from_slice(&buf[..n]),
                Read::Eof => {
                    *eof = true;
                    return Ok(());
                }
                Read::Blocked => return Ok(()),
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
