//! TEP selection as a passive observer of both SYN-form options decides it, for tools that read
//! captures (RFC 8547 §4.3, §4.5, §4.8; RFC 8548 §3.2, §3.5).
//!
//! The hosts decide with [`Negotiation`](super::Negotiation); an observer has no configuration
//! of its own, so it applies the same rules ([`select`](super::select)) as a host that supports
//! every tcpcrypt TEP. A resumption can only be confirmed with the secret it used (the
//! identifier halves are pseudo-random), so the caller passes a candidate secret from a key log;
//! without one, a resumption exchange is reported by [`resumption_attempt`].

use crate::consts::{Role, TepId};
use crate::eno::config::Config;
use crate::eno::fallback::FallbackReason;
use crate::eno::select;
use crate::keys::ResumableSecret;
use crate::negotiated::ResumeNonces;
use crate::resume::Offer;

/// What both SYN-form options, as seen on the wire, negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The role of the host that sent `first` (RFC 8547 §4.3: from the b bits).
    pub first_role: Role,
    /// The negotiated TEP: the last valid TEP in host B's option (RFC 8547 §4.5).
    pub tep: TepId,
    /// Host B's byte for that TEP, v bit included: byte 0 of the session ID (RFC 8548 §3.4).
    pub tep_byte: u8,
    /// A's option followed by B's, each whole (RFC 8547 §4.8).
    pub transcript: Vec<u8>,
    /// `sn[i]` when the session resumed with `secret` (RFC 8548 §3.5).
    pub resumed_sn: Option<ResumeNonces>,
}

/// Selects as a host supporting every tcpcrypt TEP would, from the SYN-form options `first` and
/// `second` (whole options, kind and length included) sent by the two hosts. `secret` is a
/// candidate session secret, with the original role of the host that sent `first`; a
/// resumption is recognised only with the secret that matches both identifier halves.
///
/// # Errors
/// The [`FallbackReason`] a host would have had: ill-formed or vacuous options, a role
/// conflict, no valid TEP (which includes an unconfirmed resumption).
pub fn observe(
    first: &[u8],
    second: &[u8],
    secret: Option<&ResumableSecret>,
) -> Result<Observed, FallbackReason> {
    let r = select::resolve(first, second, &Config::default(), secret)?;
    Ok(Observed {
        first_role: r.role,
        tep: r.tep,
        tep_byte: r.tep_byte,
        transcript: r.transcript,
        resumed_sn: r.sn,
    })
}

/// The TEP of a resumption exchange host B accepted: B's last tcpcrypt suboption is a
/// resumption suboption and A sent one for the same TEP (RFC 8548 §3.5). Only the secret can
/// confirm it ([`observe`]). `a_option` and `b_option` are whole SYN-form options.
pub fn resumption_attempt(a_option: &[u8], b_option: &[u8]) -> Option<TepId> {
    let a = select::parse(a_option).ok()?;
    let b = select::parse(b_option).ok()?;
    let last = b.teps().iter().rev().find(|s| s.tep.is_tcpcrypt())?;
    let a_sub = a.teps().iter().find(|s| s.tep == last.tep)?;
    let resume = |o: Offer<'_>| matches!(o, Offer::Resume { .. });
    (resume(Offer::classify(last)) && resume(Offer::classify(a_sub))).then_some(last.tep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::AeadId;
    use crate::keys::SessionSecret;
    use crate::resume::ResumeSuboptionData;
    use crate::wire::eno::{GlobalSuboption, SynEnoRepr, TepSuboption};

    const A_SYN: [u8; 3] = [0x45, 0x03, 0x23];
    const B_SYN: [u8; 4] = [0x45, 0x04, 0x01, 0x23];

    #[test]
    fn rfc8547_section_6_example_from_either_side() {
        let o = observe(&A_SYN, &B_SYN, None).unwrap();
        assert_eq!(
            (o.first_role, o.tep, o.tep_byte),
            (Role::A, TepId::TCPCRYPT_ECDHE_CURVE25519, 0x23)
        );
        assert_eq!(o.transcript, [&A_SYN[..], &B_SYN[..]].concat());
        assert_eq!(o.resumed_sn, None);
        // Seen from B's side the transcript is still A's option first.
        let o = observe(&B_SYN, &A_SYN, None).unwrap();
        assert_eq!(o.first_role, Role::B);
        assert_eq!(o.transcript, [&A_SYN[..], &B_SYN[..]].concat());
    }

    #[test]
    fn fallback_reasons_are_the_hosts() {
        assert_eq!(
            observe(&A_SYN, &A_SYN, None),
            Err(FallbackReason::RoleConflict { b: false })
        );
        assert_eq!(
            observe(&A_SYN, &[0x45, 0x04, 0x01, 0x21], None),
            Err(FallbackReason::NoValidTep)
        );
        assert!(matches!(
            observe(&A_SYN, &[0x45, 0x03, 0x81], None),
            Err(FallbackReason::IllFormedEno(_))
        ));
    }

    fn resume_option(b: bool, half: &[u8; 9], nonce: &[u8]) -> Vec<u8> {
        let data = ResumeSuboptionData::new(half, nonce).unwrap();
        let sub = TepSuboption {
            tep: TepId::TCPCRYPT_ECDHE_CURVE25519,
            v: true,
            data: data.as_bytes(),
        };
        let global = b.then_some(GlobalSuboption { b, a: false });
        SynEnoRepr::new(global, vec![sub]).unwrap().to_vec()
    }

    #[test]
    fn a_resumption_is_confirmed_only_by_its_secret() {
        let ss = SessionSecret::from_bytes([9; 32]);
        let id = ss.resume_id();
        let a = resume_option(false, &id.half(Role::A), &[1; 8]);
        let b = resume_option(true, &id.half(Role::B), &[2; 8]);
        assert_eq!(
            resumption_attempt(&a, &b),
            Some(TepId::TCPCRYPT_ECDHE_CURVE25519)
        );
        assert_eq!(resumption_attempt(&A_SYN, &B_SYN), None);
        assert_eq!(observe(&a, &b, None), Err(FallbackReason::NoValidTep));
        let secret = |original_role, bytes| ResumableSecret {
            tep: TepId::TCPCRYPT_ECDHE_CURVE25519,
            original_role,
            aead: AeadId::AES_128_GCM,
            secret: SessionSecret::from_bytes(bytes),
        };
        let o = observe(&a, &b, Some(&secret(Role::A, [9; 32]))).unwrap();
        assert_eq!(o.tep_byte, 0xa3);
        assert_eq!(
            o.resumed_sn.unwrap().as_bytes(),
            [[1u8; 8], [2u8; 8]].concat()
        );
        // Another secret, or the wrong original role, does not match the halves.
        assert_eq!(
            observe(&a, &b, Some(&secret(Role::A, [8; 32]))),
            Err(FallbackReason::ResumptionMismatch)
        );
        assert_eq!(
            observe(&a, &b, Some(&secret(Role::B, [9; 32]))),
            Err(FallbackReason::ResumptionMismatch)
        );
    }
}
