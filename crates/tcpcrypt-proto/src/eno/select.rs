//! Roles, TEP validity and selection, and the transcript (RFC 8547 §4.3, §4.5, §4.8; RFC 8548
//! §3.2, §3.5). Pure functions over the two SYN-form options.
//!
//! Validity of a TEP t (RFC 8547 §4.5), as this implementation decides it:
//! 1. both options carry exactly one suboption for t (tcpcrypt gives repetition no meaning);
//! 2. t is one of our configured tcpcrypt TEPs;
//! 3. the data is valid for tcpcrypt (RFC 8548 §3.5; [`Offer`]): A's suboption is a fresh offer
//!    (v = 0, or v = 1 with < 9 bytes) or a resumption suboption; B's is v = 0 (fresh) or a
//!    resumption suboption that pairs with A's resumption suboption for the *same* secret.
//!    A B-side v = 1 without a matching A-side half is invalid (digest §5.3 A11), and so is a
//!    B-side v = 1 with < 9 bytes. The v bit itself plays no part in matching t (§4.5).
//!
//! The negotiated TEP is the last valid one in B's option.

use crate::consts::{Role, TepId};
use crate::eno::config::Config;
use crate::eno::fallback::FallbackReason;
use crate::keys::ResumableSecret;
use crate::negotiated::ResumeNonces;
use crate::resume::{Offer, ResumeStore};
use crate::wire::eno::{EnoOption, GlobalSuboption, SynEnoRepr, TepSuboption};

/// The result of a successful selection; becomes a [`Negotiated`](crate::Negotiated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Resolved {
    pub(super) role: Role,
    pub(super) tep: TepId,
    pub(super) tep_byte: u8,
    pub(super) transcript: Vec<u8>,
    pub(super) peer_app_aware: bool,
    /// `Some` when resuming with the secret of our own resumption suboption.
    pub(super) sn: Option<ResumeNonces>,
}

/// Parses a whole SYN-form option.
pub(super) fn parse(option: &[u8]) -> Result<SynEnoRepr<'_>, FallbackReason> {
    EnoOption::new_checked(option)
        .and_then(|o| SynEnoRepr::parse(&o))
        .map_err(FallbackReason::IllFormedEno)
}

/// The checks on the peer's SYN that need nothing but our own b (RFC 8547 §4.2, §4.3, §4.6).
pub(super) fn check_peer(
    own_b: bool,
    peer: &SynEnoRepr<'_>,
    config: &Config,
) -> Result<(), FallbackReason> {
    let g = peer.global();
    if g.b == own_b {
        return Err(FallbackReason::RoleConflict { b: own_b });
    }
    if config.mandatory_app_aware() && !g.a {
        return Err(FallbackReason::PeerNotAppAware);
    }
    if peer.is_vacuous() {
        return Err(FallbackReason::PeerVacuous);
    }
    Ok(())
}

/// The suboption for `tep` if the option carries exactly one.
fn only<'a>(repr: &SynEnoRepr<'a>, tep: TepId) -> Option<TepSuboption<'a>> {
    let mut it = repr.teps().iter().filter(|s| s.tep == tep);
    let first = *it.next()?;
    it.next().is_none().then_some(first)
}

/// Selects the negotiated TEP from both options as exactly sent and received.
///
/// `secret` is the secret behind our own resumption suboption, if we sent one.
pub(super) fn resolve(
    own: &[u8],
    peer: &[u8],
    config: &Config,
    secret: Option<&ResumableSecret>,
) -> Result<Resolved, FallbackReason> {
    let own_repr = parse(own)?;
    let peer_repr = parse(peer)?;
    if own_repr.is_vacuous() {
        return Err(FallbackReason::OwnVacuous);
    }
    let own_b = own_repr.global().b;
    check_peer(own_b, &peer_repr, config)?;
    let role = if own_b { Role::B } else { Role::A };
    let (a, b, a_bytes, b_bytes) = match role {
        Role::A => (&own_repr, &peer_repr, own, peer),
        Role::B => (&peer_repr, &own_repr, peer, own),
    };
    let mut chosen = None;
    let mut mismatch = false;
    for sb in b.teps() {
        if !config.teps().contains(&sb.tep) {
            continue;
        }
        let (Some(sa), Some(sb)) = (only(a, sb.tep), only(b, sb.tep)) else {
            continue;
        };
        match validity(role, &sa, &sb, secret) {
            Validity::Fresh => chosen = Some((sb, None)),
            Validity::Resumed(sn) => chosen = Some((sb, Some(sn))),
            Validity::Invalid { mismatch: m } => mismatch |= m,
        }
    }
    let Some((sb, sn)) = chosen else {
        return Err(if mismatch {
            FallbackReason::ResumptionMismatch
        } else {
            FallbackReason::NoValidTep
        });
    };
    Ok(Resolved {
        role,
        tep: sb.tep,
        tep_byte: sb.byte(),
        transcript: [a_bytes, b_bytes].concat(),
        peer_app_aware: peer_repr.global().a,
        sn,
    })
}

enum Validity {
    Fresh,
    Resumed(ResumeNonces),
    Invalid { mismatch: bool },
}

/// Validity of one TEP given A's and B's suboptions for it (see the module docs).
fn validity(
    role: Role,
    sa: &TepSuboption<'_>,
    sb: &TepSuboption<'_>,
    secret: Option<&ResumableSecret>,
) -> Validity {
    let a = Offer::classify(sa);
    if a == Offer::Invalid {
        return Validity::Invalid { mismatch: false };
    }
    match Offer::classify(sb) {
        Offer::Fresh => Validity::Fresh,
        Offer::ShortResume | Offer::Invalid => Validity::Invalid { mismatch: false },
        Offer::Resume {
            half: half_b,
            nonce: nonce_b,
        } => {
            let Offer::Resume {
                half: half_a,
                nonce: nonce_a,
            } = a
            else {
                return Validity::Invalid { mismatch: false };
            };
            let Some(s) = secret.filter(|s| s.tep == sa.tep) else {
                return Validity::Invalid { mismatch: false };
            };
            let ((own_half, own_nonce), (peer_half, peer_nonce)) = match role {
                Role::A => ((half_a, nonce_a), (half_b, nonce_b)),
                Role::B => ((half_b, nonce_b), (half_a, nonce_a)),
            };
            if *own_half != s.own_half() || *peer_half != s.peer_half() {
                // RFC 8548 §3.5: "it MUST ignore that suboption".
                return Validity::Invalid { mismatch: true };
            }
            // sn[i] = nonce_a || nonce_b by *original* role.
            let sn = match s.original_role {
                Role::A => ResumeNonces::new(own_nonce, peer_nonce),
                Role::B => ResumeNonces::new(peer_nonce, own_nonce),
            };
            sn.map_or(Validity::Invalid { mismatch: false }, Validity::Resumed)
        }
    }
}

/// Host B's choice for its SYN-ACK (RFC 8547 §4.5 "SHOULD send only one TEP id ... valid";
/// RFC 8548 §3.2, §3.5): a TEP A offered, with a secret if B agrees to resume.
///
/// B agrees to resume (a SHOULD of §3.5) whenever A's resumption suboption for one of our TEPs
/// names a cached secret of that TEP, even if A also offered a TEP we prefer; otherwise it
/// picks its most preferred TEP that A offered exactly once with valid data.
pub(super) fn answer(
    config: &Config,
    peer: &SynEnoRepr<'_>,
    store: &mut dyn ResumeStore,
    now: std::time::Instant,
) -> Result<(TepId, Option<ResumableSecret>), FallbackReason> {
    let offered: Vec<(TepId, Offer<'_>)> = config
        .teps()
        .iter()
        .rev()
        .filter_map(|t| only(peer, *t).map(|s| (*t, Offer::classify(&s))))
        .filter(|(_, o)| *o != Offer::Invalid)
        .collect();
    if config.accept_resumption() {
        for (t, o) in &offered {
            if let Offer::Resume { half, .. } = o {
                if let Some(s) = store.take_for_resumption(*t, half, now) {
                    return Ok((*t, Some(s)));
                }
            }
        }
    }
    offered
        .first()
        .map(|(t, _)| (*t, None))
        .ok_or(FallbackReason::NoValidTep)
}

/// The explicit global suboption we send, if any: always for B (§4.2 "MUST"), for A only when
/// a = 1 (the implicit 0x00 saves a byte, as in §6's `45 03 23`).
pub(super) fn own_global(b: bool, a: bool) -> Option<GlobalSuboption> {
    (b || a).then_some(GlobalSuboption { b, a })
}
