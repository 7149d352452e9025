//! The OS CSPRNG as an [`Rng`] (RFC 8547 §10).

use tcpcrypt_proto::crypto::Rng;

/// The operating system's CSPRNG, through the `getrandom` crate.
///
/// On Linux this is the `getrandom(2)` system call without `GRND_NONBLOCK`, which blocks until the
/// kernel pool has been seeded once. That satisfies RFC 8547 §10: no ENO (and no key, nonce or
/// resumption identifier) before the host has a good source of randomness.
///
/// It lives here, not in `tcpcrypt-proto`, because the core never reads OS randomness: tests give
/// it a seeded generator instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OsRng;

impl Rng for OsRng {
    /// Fills `dest` from the OS CSPRNG.
    ///
    /// # Panics
    /// If the OS has no working CSPRNG (for example, a Linux kernel older than 3.17 with no
    /// readable `/dev/urandom`). The trait cannot report errors, and continuing without
    /// randomness would be worse than stopping; this never depends on peer input.
    fn fill(&mut self, dest: &mut [u8]) {
        if let Err(e) = getrandom::fill(dest) {
            panic!("the OS CSPRNG failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_differs() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OsRng.fill(&mut a);
        OsRng.fill(&mut b);
        // A 2^-256 chance of a false failure for each check.
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
    }

    #[test]
    fn empty_and_large_buffers() {
        OsRng.fill(&mut []);
        let mut big = vec![0u8; 1 << 20];
        OsRng.fill(&mut big);
        assert!(big.iter().any(|&x| x != 0));
    }
}
