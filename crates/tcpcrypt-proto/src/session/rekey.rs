//! Key-set generations and the per-direction traffic keys (RFC 8548 §3.3, §3.8, §3.9).
//!
//! Each direction keeps its own chain of master keys: the send side at the local generation,
//! the receive side at the remote generation. A rekey advances one chain by one step
//! (`mk[j+1] = CPRF(mk[j], CONST_REKEY, K_LEN)`) and replaces that direction's AEAD key, so the
//! old key is dropped (and zeroed by its provider) at once: ciphertext is produced once and
//! kept by the driver for retransmission, never re-encrypted (§3.8), and a received rekey frame
//! means the peer will never again use the old key.

use core::fmt;
use std::time::Instant;

use zeroize::Zeroizing;

use crate::consts::{Role, AEAD_NONCE_LEN};
use crate::crypto::{AeadAlgorithm, AeadKey};
use crate::error::{Error, PeerMisbehaved};
use crate::keys::MasterKey;
use crate::wire::frame::frame_nonce;

/// One direction's key at one generation: `K` as an AEAD key object and `NR`
/// (RFC 8548 §3.6), plus the master key that derives the next generation.
pub(crate) struct DirectionKeys {
    master: MasterKey,
    sender: Role,
    aead: Box<dyn AeadKey>,
    nr: Zeroizing<[u8; AEAD_NONCE_LEN]>,
}

impl DirectionKeys {
    /// `k_ab[j]` (`sender` = A) or `k_ba[j]` (`sender` = B) from `mk[j]` (RFC 8548 §3.3).
    pub(crate) fn new(
        master: MasterKey,
        sender: Role,
        alg: &dyn AeadAlgorithm,
    ) -> Result<Self, Error> {
        let tk = master.traffic_key(sender, alg.key_len());
        let aead = alg
            .new_key(tk.key())
            .map_err(|_| Error::ApiMisuse("crypto provider rejected a traffic key"))?;
        let nr = Zeroizing::new(*tk.nonce_randomizer());
        Ok(Self {
            master,
            sender,
            aead,
            nr,
        })
    }

    /// Moves to the next generation, dropping the current key (RFC 8548 §3.8).
    ///
    /// # Errors
    /// `PeerMisbehaved::GenerationOverflow` after 2^64 - 1 generations.
    pub(crate) fn advance(&mut self, alg: &dyn AeadAlgorithm) -> Result<(), Error> {
        let next = self
            .master
            .next()
            .ok_or(PeerMisbehaved::GenerationOverflow)?;
        *self = Self::new(next, self.sender, alg)?;
        Ok(())
    }

    /// The generation j of the current key.
    pub(crate) fn generation(&self) -> u64 {
        self.master.generation()
    }

    /// Seals the frame at stream `offset` in place: `in_out` is plaintext followed by 16 tag
    /// bytes (RFC 8548 §3.6).
    pub(crate) fn seal(&self, offset: u64, aad: &[u8], in_out: &mut [u8]) {
        self.aead
            .seal_in_place(&frame_nonce(offset, &self.nr), aad, in_out);
    }

    /// Opens the frame at stream `offset` in place (RFC 8548 §3.6).
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`] if the tag does not verify.
    pub(crate) fn open(&self, offset: u64, aad: &[u8], in_out: &mut [u8]) -> Result<(), Error> {
        self.aead
            .open_in_place(&frame_nonce(offset, &self.nr), aad, in_out)
            .map_err(|_| Error::AuthenticationFailed)
    }
}

impl fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DirectionKeys(k_{}, generation {}, redacted)",
            match self.sender {
                Role::A => "ab",
                Role::B => "ba",
            },
            self.generation()
        )
    }
}

/// The two generation numbers and the liveness probe (RFC 8548 §3.8, §3.9).
///
/// Invariant: `remote <= local`. Receiving a rekey frame that would make `remote > local` raises
/// `local` at once (and makes the session answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Generations {
    /// The generation of the keys this host sends with.
    pub(crate) local: u64,
    /// The highest generation seen in frames received from the peer.
    pub(crate) remote: u64,
    /// When the outstanding liveness probe fails, if one is outstanding.
    pub(crate) probe_deadline: Option<Instant>,
}

impl Generations {
    /// A rekey this host initiated has not been answered yet (remote < local).
    pub(crate) fn rekey_outstanding(&self) -> bool {
        self.remote < self.local
    }

    /// Raises the local generation by one (RFC 8548 §3.8).
    pub(crate) fn raise_local(&mut self) -> Result<(), Error> {
        self.local = self
            .local
            .checked_add(1)
            .ok_or(PeerMisbehaved::GenerationOverflow)?;
        Ok(())
    }

    /// Records a received rekey frame: remote + 1 "before decrypting" (RFC 8548 §3.8). Returns
    /// true when the remote generation now exceeds the local one, which obliges this host to
    /// raise its own and answer.
    pub(crate) fn peer_rekeyed(&mut self) -> Result<bool, Error> {
        self.remote = self
            .remote
            .checked_add(1)
            .ok_or(PeerMisbehaved::GenerationOverflow)?;
        Ok(self.remote > self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_rekey_obliges_an_answer_only_when_ahead() {
        let mut g = Generations::default();
        assert!(
            g.peer_rekeyed().unwrap(),
            "peer initiated: remote 1 > local 0"
        );
        g.raise_local().unwrap();
        assert_eq!((g.local, g.remote), (1, 1));
        g.raise_local().unwrap();
        assert!(g.rekey_outstanding());
        assert!(
            !g.peer_rekeyed().unwrap(),
            "the peer's answer: remote catches up"
        );
        assert!(!g.rekey_outstanding());
    }

    #[test]
    fn generation_overflow_is_an_error() {
        let mut g = Generations {
            local: u64::MAX,
            remote: u64::MAX,
            probe_deadline: None,
        };
        assert_eq!(
            g.raise_local(),
            Err(Error::PeerMisbehaved(PeerMisbehaved::GenerationOverflow))
        );
        assert_eq!(
            g.peer_rekeyed(),
            Err(Error::PeerMisbehaved(PeerMisbehaved::GenerationOverflow))
        );
    }
}
