//! TCP-ENO negotiation for tcpcrypt (RFC 8547 §4; RFC 8548 §3.2, §3.5).
//!
//! Read RFC 8547 §4 first. Each host puts an ENO option (kind 69) in its SYN listing the TEPs it
//! supports; host B (the one that sent b = 1, normally the passive opener) lists them least
//! preferred first, and the negotiated TEP is the last valid TEP in B's list (§4.5). Both keep
//! adding ENO to every segment until they receive a non-SYN segment, and encryption is enabled
//! once an ACK with ENO has been both sent and received (§4.6):
//!
//! ```text
//!  A (active)                                         B (passive)
//!   SYN      ENO 45 03 23            ------>
//!                                    <------   SYN-ACK  ENO 45 04 01 23   (b = 1, TEP 0x23)
//!   ACK      ENO 45 02               ------>
//!   enabled: sent and received an ACK with ENO        enabled on receiving that ACK
//! ```
//!
//! Anything else falls back to plain TCP, with a [`FallbackReason`] naming the rule. The
//! [`Negotiation`] state machine is sans-IO: the driver feeds it the flags and options of each
//! segment, inserts the option bytes it returns, and acts on its [`ReceiveVerdict`].
//!
//! Example, an in-memory handshake:
//!
//! ```
//! use std::time::Instant;
//! use tcpcrypt_proto::crypto::Rng;
//! use tcpcrypt_proto::eno::{Config, Negotiation, SegmentFlags, State};
//! use tcpcrypt_proto::resume::NoResumption;
//!
//! struct Counter(u8);
//! impl Rng for Counter {
//!     fn fill(&mut self, dest: &mut [u8]) {
//!         dest.iter_mut().for_each(|b| { self.0 = self.0.wrapping_add(1); *b = self.0 });
//!     }
//! }
//! let (mut rng, now, cfg) = (Counter(0), Instant::now(), Config::default());
//!
//! let mut a = Negotiation::active(cfg.clone(), None, &mut rng);
//! let syn = a.on_send(SegmentFlags::SYN, &[]).unwrap();
//! let (mut b, verdict) = Negotiation::passive(
//!     cfg, SegmentFlags::SYN, syn.as_bytes(), &mut NoResumption, now, &mut rng);
//! assert!(!verdict.discard_syn_data);
//! let syn_ack = b.on_send(SegmentFlags::SYN_ACK, &[]).unwrap();
//! let _ = a.on_receive(SegmentFlags::SYN_ACK, syn_ack.as_bytes());
//! let ack = a.on_send(SegmentFlags::ACK, &[]).unwrap();
//! assert_eq!(ack.as_bytes(), &[0x45, 0x02]);
//! let _ = b.on_receive(SegmentFlags::ACK, ack.as_bytes());
//! assert_eq!((a.state(), b.state()), (State::Enabled, State::Enabled));
//! let (na, nb) = (a.take_negotiated().unwrap(), b.take_negotiated().unwrap());
//! assert_eq!((na.tep, na.transcript.clone()), (nb.tep, nb.transcript.clone()));
//! ```

mod config;
mod fallback;
mod negotiation;
mod observe;
mod scan;
mod select;

pub use config::{Config, ConfigError};
pub use fallback::FallbackReason;
pub use negotiation::{Negotiation, Opener, State};
pub use observe::{observe, resumption_attempt, Observed};

/// The TCP flags of a segment that matter to ENO (RFC 8547 §3), plus whether it carries
/// payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SegmentFlags {
    /// SYN is set.
    pub syn: bool,
    /// ACK is set (a SYN-ACK is an ACK segment too).
    pub ack: bool,
    /// The segment carries TCP payload.
    pub payload: bool,
}

impl SegmentFlags {
    /// A SYN-only segment without payload.
    pub const SYN: Self = Self {
        syn: true,
        ack: false,
        payload: false,
    };
    /// A SYN-ACK without payload.
    pub const SYN_ACK: Self = Self {
        syn: true,
        ack: true,
        payload: false,
    };
    /// A pure ACK.
    pub const ACK: Self = Self {
        syn: false,
        ack: true,
        payload: false,
    };

    /// The same flags with `payload` set.
    #[must_use]
    pub const fn with_payload(self) -> Self {
        Self {
            payload: true,
            ..self
        }
    }
}

/// What the driver must do with a received segment (RFC 8547 §4.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct ReceiveVerdict {
    /// The segment is a SYN carrying ENO and payload: remove the payload before the kernel
    /// sees it, so that only the ISN is acknowledged ("MUST NOT acknowledge the discarded
    /// bytes"; data is taken only from non-SYN segments). tcpcrypt defines no SYN data, so this
    /// holds whatever the negotiation's outcome.
    pub discard_syn_data: bool,
}

/// RFC 8547 §4.7 for a host with ENO implemented but not negotiating on this connection (for
/// example a port excluded by configuration): true if `seg` is a SYN with payload and
/// `tcp_options` holds an ENO option (kind 69, or the legacy kind 253 encoding), so the payload
/// MUST be discarded and not acknowledged.
pub fn syn_data_must_be_discarded(seg: SegmentFlags, tcp_options: &[u8]) -> bool {
    seg.syn && seg.payload && scan::Scan::new(tcp_options).any_eno()
}

#[cfg(test)]
mod tests;
