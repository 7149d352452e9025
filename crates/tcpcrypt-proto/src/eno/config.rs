//! Per-host (or per-connection) negotiation settings: RFC 8547 §4.2 (b, a, mandatory
//! application-aware mode), §4.5 (TEP order) and RFC 8548 §3.5 (resumption policies).

use crate::consts::{TepId, RESUME_NONCE_DEFAULT, RESUME_NONCE_MAX};

/// Negotiation settings. Clone and adjust one per connection to apply the per-connection
/// policies RFC 8548 §3.5 requires when secrets are cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    teps: Vec<TepId>,
    passive_role: bool,
    app_aware: bool,
    mandatory_app_aware: bool,
    offer_resumption: bool,
    accept_resumption: bool,
    cache_secrets: bool,
    resume_nonce_len: usize,
}

/// Why a [`Config`] was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Only the tcpcrypt TEPs of RFC 8548 §7 are implemented.
    #[error("{0} is not a tcpcrypt TEP")]
    NotTcpcrypt(TepId),
    /// A TEP listed twice (RFC 8548 defines no meaning for repeated TEPs, RFC 8547 §4.5).
    #[error("{0} listed twice")]
    DuplicateTep(TepId),
    /// The resumption nonce is 0..=8 bytes (RFC 8548 §3.5).
    #[error("resumption nonce of {0} bytes; at most 8")]
    NonceTooLong(usize),
}

impl Config {
    /// Settings with `teps` in host B's order, least preferred first (RFC 8547 §4.5); as host A
    /// the same TEPs are offered. An empty list makes every SYN option vacuous (ENO advertised
    /// but off, §4.6). Defaults: b = 0, a = 0, no mandatory application-aware mode (§4.2),
    /// resumption offered and accepted, secrets cached, 8-byte nonces (RFC 8548 §3.5).
    ///
    /// # Errors
    /// [`ConfigError::NotTcpcrypt`] or [`ConfigError::DuplicateTep`].
    pub fn new(teps: &[TepId]) -> Result<Self, ConfigError> {
        for (i, t) in teps.iter().enumerate() {
            if !t.is_tcpcrypt() {
                return Err(ConfigError::NotTcpcrypt(*t));
            }
            if teps[..i].contains(t) {
                return Err(ConfigError::DuplicateTep(*t));
            }
        }
        Ok(Self {
            teps: teps.to_vec(),
            passive_role: false,
            app_aware: false,
            mandatory_app_aware: false,
            offer_resumption: true,
            accept_resumption: true,
            cache_secrets: true,
            resume_nonce_len: RESUME_NONCE_DEFAULT,
        })
    }

    /// Sets b for *active* opens (RFC 8547 §4.2: "MUST default to 0", with an API to set it
    /// before connecting). b = 1 is only for an encrypted simultaneous open where the peer,
    /// by prior agreement, keeps b = 0; against a passive opener it means plain TCP (§4.3).
    /// A passive opener always sends b = 1, whatever this says.
    #[must_use]
    pub fn with_passive_role(mut self, b: bool) -> Self {
        self.passive_role = b;
        self
    }

    /// Sets our application-aware bit a (RFC 8547 §4.2; default 0).
    #[must_use]
    pub fn with_app_aware(mut self, a: bool) -> Self {
        self.app_aware = a;
        self
    }

    /// Mandatory application-aware mode (RFC 8547 §4.2): send a = 1 and disable ENO unless
    /// the peer sent a = 1.
    #[must_use]
    pub fn with_mandatory_app_aware(mut self, on: bool) -> Self {
        self.mandatory_app_aware = on;
        self
    }

    /// Whether to offer resumption on active opens and to agree to it on passive opens. Both
    /// false is the "resumption requests will be ignored" policy of RFC 8548 §3.5.
    #[must_use]
    pub fn with_resumption(mut self, offer: bool, accept: bool) -> Self {
        self.offer_resumption = offer;
        self.accept_resumption = accept;
        self
    }

    /// Whether this connection's next secret may be cached; false is the "no session secrets
    /// will be cached" policy of RFC 8548 §3.5. It travels in
    /// [`Negotiated::cache_secrets`](crate::negotiated::Negotiated::cache_secrets), and the session
    /// then derives and hands back nothing.
    #[must_use]
    pub fn with_cache_secrets(mut self, cache: bool) -> Self {
        self.cache_secrets = cache;
        self
    }

    /// Sets the resumption nonce length (RFC 8548 §3.5: "SHOULD provide an API ... MUST
    /// default to eight bytes" when secret reuse cannot be ruled out).
    ///
    /// # Errors
    /// [`ConfigError::NonceTooLong`] above 8.
    pub fn with_resume_nonce_len(mut self, len: usize) -> Result<Self, ConfigError> {
        if len > RESUME_NONCE_MAX {
            return Err(ConfigError::NonceTooLong(len));
        }
        self.resume_nonce_len = len;
        Ok(self)
    }

    /// The TEPs, least preferred first.
    pub fn teps(&self) -> &[TepId] {
        &self.teps
    }

    /// b for active opens.
    pub fn passive_role(&self) -> bool {
        self.passive_role
    }

    /// The a bit we send: set explicitly, or implied by mandatory mode.
    pub fn app_aware(&self) -> bool {
        self.app_aware || self.mandatory_app_aware
    }

    /// Mandatory application-aware mode.
    pub fn mandatory_app_aware(&self) -> bool {
        self.mandatory_app_aware
    }

    /// Whether active opens offer resumption.
    pub fn offer_resumption(&self) -> bool {
        self.offer_resumption
    }

    /// Whether passive opens agree to resumption.
    pub fn accept_resumption(&self) -> bool {
        self.accept_resumption
    }

    /// Whether the connection's next secret may be cached.
    pub fn cache_secrets(&self) -> bool {
        self.cache_secrets
    }

    /// Resumption nonce length, 0..=8.
    pub fn resume_nonce_len(&self) -> usize {
        self.resume_nonce_len
    }
}

impl Default for Config {
    /// All four tcpcrypt TEPs in [`TepId::TCPCRYPT_ALL`] order.
    fn default() -> Self {
        Self {
            teps: TepId::TCPCRYPT_ALL.to_vec(),
            passive_role: false,
            app_aware: false,
            mandatory_app_aware: false,
            offer_resumption: true,
            accept_resumption: true,
            cache_secrets: true,
            resume_nonce_len: RESUME_NONCE_DEFAULT,
        }
    }
}
