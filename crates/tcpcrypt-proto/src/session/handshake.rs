//! The fresh key exchange: Init1 and Init2 (RFC 8548 §3.3, §4.1). Read RFC 8548 §3.3 first.
//!
//! ```text
//! A -> B: Init1 = { INIT1_MAGIC, sym_cipher_list, N_A, Pub_A }
//! B -> A: Init2 = { INIT2_MAGIC, sym_cipher, N_B, Pub_B }
//! ES    = key agreement of the own private key and the peer's Pub
//! ss[0] = PRK = Extract(N_A, eno_transcript || Init1 || Init2 || ES)
//! ```
//!
//! Host A sends Init1 when the session starts and waits in [`ExpectInit2`]; host B waits in
//! [`ExpectInit1`] and answers with Init2. Each state owns only its own data; the ephemeral
//! private key is consumed by the agreement.

use crate::consts::{AeadId, INIT_HEADER_LEN, N_A_LEN, N_B_LEN};
use crate::crypto::{CryptoProvider, EphemeralSecret, SharedSecret};
use crate::error::{Error, PeerMisbehaved};
use crate::keys::SessionSecret;
use crate::wire::init::{init_bytes_needed, Init1Repr, Init2Repr, InitKind};

/// Where the key exchange stands.
pub(crate) enum Handshake {
    /// Host B: waiting for Init1.
    ExpectInit1(Box<ExpectInit1>),
    /// Host A: Init1 sent, waiting for Init2.
    ExpectInit2(Box<ExpectInit2>),
    /// Keys derived, or a resumed session (no Init messages, RFC 8548 §3.5).
    Complete,
}

/// Host B before Init1 arrived.
pub(crate) struct ExpectInit1 {
    transcript: Vec<u8>,
    n_b: [u8; N_B_LEN],
    secret: Box<dyn EphemeralSecret>,
    /// B's AEAD preference, most preferred first, restricted to what the provider has.
    preference: Vec<AeadId>,
    pub_len: usize,
    /// Init1 so far; never longer than its `message_len` (at most `MAX_INIT_LEN`).
    rx: Vec<u8>,
}

/// Host A after sending Init1.
pub(crate) struct ExpectInit2 {
    transcript: Vec<u8>,
    n_a: [u8; N_A_LEN],
    secret: Box<dyn EphemeralSecret>,
    /// Init1 exactly as sent, for the PRK.
    init1: Vec<u8>,
    /// The AEADs Init1 listed.
    offered: Vec<AeadId>,
    pub_len: usize,
    /// Init2 so far.
    rx: Vec<u8>,
}

/// What a completed key exchange yields.
pub(crate) struct KeysAgreed {
    /// ss\[0\].
    pub(crate) ss0: SessionSecret,
    /// ES, kept only for the key log (RFC 8547 §5 debug mode); zeroed on drop.
    pub(crate) es: SharedSecret,
    /// The AEAD of the session (B's choice).
    pub(crate) aead: AeadId,
    /// Host B: the Init2 to send, exactly as hashed.
    pub(crate) init2: Option<Vec<u8>>,
    /// Length of the peer's Init message as received (trailing bytes included): the peer's
    /// first frame starts at this offset (decision A1).
    pub(crate) peer_init_len: usize,
}

impl Handshake {
    /// Host A: builds Init1 (ignored field empty, RFC 8548 §4.1) and returns it with the state.
    pub(crate) fn start_a(
        transcript: Vec<u8>,
        offered: Vec<AeadId>,
        n_a: [u8; N_A_LEN],
        secret: Box<dyn EphemeralSecret>,
    ) -> (Self, Vec<u8>) {
        let pub_len = secret.public().len();
        let repr = Init1Repr {
            ciphers: offered,
            n_a,
            pub_key: secret.public(),
            ignored: &[],
        };
        let mut init1 = vec![0u8; repr.buffer_len()];
        repr.emit(&mut init1);
        let offered = repr.ciphers;
        let state = ExpectInit2 {
            transcript,
            n_a,
            secret,
            init1: init1.clone(),
            offered,
            pub_len,
            rx: Vec::with_capacity(INIT_HEADER_LEN),
        };
        (Self::ExpectInit2(Box::new(state)), init1)
    }

    /// Host B: waits for Init1.
    pub(crate) fn start_b(
        transcript: Vec<u8>,
        preference: Vec<AeadId>,
        n_b: [u8; N_B_LEN],
        secret: Box<dyn EphemeralSecret>,
    ) -> Self {
        let pub_len = secret.public().len();
        let rx = Vec::with_capacity(INIT_HEADER_LEN);
        Self::ExpectInit1(Box::new(ExpectInit1 {
            transcript,
            n_b,
            secret,
            preference,
            pub_len,
            rx,
        }))
    }

    /// Consumes Init bytes from `input` (never more than the message) and, once the message is
    /// complete, runs the key agreement. Returns the bytes used.
    ///
    /// # Errors
    /// Malformed Init (`PeerMisbehaved::*`, `Decode`), `NoAcceptableCipher` (B),
    /// `UnlistedCipher` (A), [`Error::KeyAgreement`].
    pub(crate) fn handle(
        &mut self,
        input: &[u8],
        provider: &dyn CryptoProvider,
    ) -> Result<(usize, Option<KeysAgreed>), Error> {
        let (used, complete) = match self {
            Self::ExpectInit1(s) => feed(&mut s.rx, InitKind::Init1, s.pub_len, input)?,
            Self::ExpectInit2(s) => feed(&mut s.rx, InitKind::Init2, s.pub_len, input)?,
            Self::Complete => return Ok((0, None)),
        };
        if !complete {
            return Ok((used, None));
        }
        let agreed = match core::mem::replace(self, Self::Complete) {
            Self::ExpectInit1(s) => s.finish(provider)?,
            Self::ExpectInit2(s) => s.finish()?,
            Self::Complete => return Ok((used, None)),
        };
        Ok((used, Some(agreed)))
    }

    /// True until the key exchange is complete.
    pub(crate) fn in_progress(&self) -> bool {
        !matches!(self, Self::Complete)
    }
}

/// Appends to `rx` exactly the bytes the Init message still needs (bounded buffering).
fn feed(
    rx: &mut Vec<u8>,
    kind: InitKind,
    pub_len: usize,
    input: &[u8],
) -> Result<(usize, bool), Error> {
    let mut used = 0;
    loop {
        let need = init_bytes_needed(kind, rx, pub_len)?;
        if need == 0 {
            return Ok((used, true));
        }
        let take = need.min(input.len() - used);
        if take == 0 {
            return Ok((used, false));
        }
        rx.extend_from_slice(&input[used..used + take]);
        used += take;
    }
}

impl ExpectInit1 {
    /// B: chooses the AEAD, builds Init2, agrees, extracts ss\[0\] (RFC 8548 §3.3).
    fn finish(self, provider: &dyn CryptoProvider) -> Result<KeysAgreed, Error> {
        let init1 = Init1Repr::parse(&self.rx, self.pub_len)?;
        // "sym_cipher": B's most preferred AEAD that A listed.
        let aead = self
            .preference
            .iter()
            .copied()
            .find(|p| init1.ciphers.contains(p) && provider.aead(*p).is_some())
            .ok_or(PeerMisbehaved::NoAcceptableCipher)?;
        let repr = Init2Repr {
            sym_cipher: aead,
            n_b: self.n_b,
            pub_key: self.secret.public(),
            ignored: &[],
        };
        let mut init2 = vec![0u8; repr.buffer_len()];
        repr.emit(&mut init2);
        let es = self
            .secret
            .agree(init1.pub_key)
            .map_err(Error::KeyAgreement)?;
        let ss0 = SessionSecret::extract(
            &init1.n_a,
            &self.transcript,
            &self.rx,
            &init2,
            es.as_bytes(),
        );
        Ok(KeysAgreed {
            ss0,
            es,
            aead,
            init2: Some(init2),
            peer_init_len: self.rx.len(),
        })
    }
}

impl ExpectInit2 {
    /// A: checks the chosen AEAD, agrees, extracts ss\[0\] (RFC 8548 §3.3).
    fn finish(self) -> Result<KeysAgreed, Error> {
        let init2 = Init2Repr::parse(&self.rx, self.pub_len)?;
        // "If A receives an Init2 with a sym_cipher not in its list, it MUST abort."
        if !self.offered.contains(&init2.sym_cipher) {
            return Err(PeerMisbehaved::UnlistedCipher.into());
        }
        let es = self
            .secret
            .agree(init2.pub_key)
            .map_err(Error::KeyAgreement)?;
        let ss0 = SessionSecret::extract(
            &self.n_a,
            &self.transcript,
            &self.init1,
            &self.rx,
            es.as_bytes(),
        );
        Ok(KeysAgreed {
            ss0,
            es,
            aead: init2.sym_cipher,
            init2: None,
            peer_init_len: self.rx.len(),
        })
    }
}

impl core::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never prints the ephemeral key; the received bytes are public but noisy.
        f.write_str(match self {
            Self::ExpectInit1(_) => "ExpectInit1",
            Self::ExpectInit2(_) => "ExpectInit2",
            Self::Complete => "Complete",
        })
    }
}
