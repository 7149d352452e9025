//! Why ENO fell back to plain TCP: one variant per rule of RFC 8547 §4.1-§4.7 and RFC 8548 §3.5,
//! for logs and the daemon's counters.

use crate::error::DecodeError;

/// The rule that disabled ENO for a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FallbackReason {
    /// A segment received up to and including the first received ACK carried no ENO option
    /// (RFC 8547 §4.6).
    #[error("a handshake segment carried no ENO option")]
    MissingEno,
    /// The peer's SYN carried only the draft-era encoding, kind 253 / ExID 0x454E, which is
    /// recognised but never negotiated (RFC 8547 §11).
    #[error("peer uses the legacy kind-253 ENO encoding")]
    LegacyEnoOnly,
    /// A received SYN carried two or more ENO options (kind 69 and 253/0x454E both count):
    /// act as if it had none (RFC 8547 §4.1, §11).
    #[error("more than one ENO option in a SYN")]
    DuplicateEno,
    /// The TCP options area of a handshake segment did not parse.
    #[error("malformed TCP options: {0}")]
    MalformedOptions(DecodeError),
    /// The received SYN-form option is ill-formed (RFC 8547 §4.4, §4.6).
    #[error("ill-formed SYN-form ENO option: {0}")]
    IllFormedEno(DecodeError),
    /// The peer's SYN-form option changed between retransmissions, or between its SYN and
    /// SYN-ACK in a simultaneous open (RFC 8547 §4.6 "MUST NOT change").
    #[error("peer's SYN-form ENO option changed")]
    SynOptionChanged,
    /// Both sides sent the same b bit (RFC 8547 §4.3, §4.6); this includes a SYN option echoed
    /// back by a middlebox.
    #[error("role conflict: both hosts sent b = {b}", b = u8::from(*b))]
    RoleConflict {
        /// The b value both sent.
        b: bool,
    },
    /// Mandatory application-aware mode and the peer sent a = 0 (RFC 8547 §4.2, §4.6).
    #[error("mandatory application-aware mode and peer sent a = 0")]
    PeerNotAppAware,
    /// Our own SYN-form option is vacuous (RFC 8547 §4.6).
    #[error("our SYN option lists no TEP")]
    OwnVacuous,
    /// The peer's SYN-form option is vacuous (RFC 8547 §4.6).
    #[error("peer's SYN option lists no TEP")]
    PeerVacuous,
    /// No TEP is valid for the connection (RFC 8547 §4.5, §4.6; RFC 8548 §3.2).
    #[error("no valid TEP")]
    NoValidTep,
    /// Host B answered our resumption offer with an identifier half that does not match, and
    /// nothing else was valid (RFC 8548 §3.5).
    #[error("resumption reply does not match our offer")]
    ResumptionMismatch,
    /// The active opener dropped ENO from a SYN retransmission (RFC 8547 §4.6 MAY).
    #[error("ENO dropped on SYN retransmission")]
    DroppedOnRetransmission,
    /// We were asked to send a SYN with data or a TCP Fast Open cookie; tcpcrypt defines no SYN
    /// data, so such a SYN carries no ENO (RFC 8547 §4.7).
    #[error("own SYN carries data or a Fast Open cookie")]
    OwnSynData,
    /// The ENO option did not fit in the segment's options area.
    #[error("no room for the ENO option")]
    NoOptionSpace,
}

impl FallbackReason {
    /// A stable snake_case name, for counters.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::MissingEno => "missing_eno",
            Self::LegacyEnoOnly => "legacy_eno_only",
            Self::DuplicateEno => "duplicate_eno",
            Self::MalformedOptions(_) => "malformed_options",
            Self::IllFormedEno(_) => "ill_formed_eno",
            Self::SynOptionChanged => "syn_option_changed",
            Self::RoleConflict { .. } => "role_conflict",
            Self::PeerNotAppAware => "peer_not_app_aware",
            Self::OwnVacuous => "own_vacuous",
            Self::PeerVacuous => "peer_vacuous",
            Self::NoValidTep => "no_valid_tep",
            Self::ResumptionMismatch => "resumption_mismatch",
            Self::DroppedOnRetransmission => "dropped_on_retransmission",
            Self::OwnSynData => "own_syn_data",
            Self::NoOptionSpace => "no_option_space",
        }
    }
}
