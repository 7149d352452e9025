//! What a received segment's options area says about ENO (RFC 8547 §4.1, §11).

use crate::error::DecodeError;
use crate::wire::eno::EnoOption;
use crate::wire::tcp_option::{TcpOption, TcpOptions};

/// The ENO-relevant facts of one options area.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Scan<'a> {
    /// The first kind-69 option.
    pub(super) eno: Option<EnoOption<&'a [u8]>>,
    /// Kind-69 options seen.
    pub(super) eno_count: usize,
    /// Kind 253 / ExID 0x454E options seen.
    pub(super) legacy_count: usize,
    /// The first parse error, after which nothing more was read.
    pub(super) error: Option<DecodeError>,
}

impl<'a> Scan<'a> {
    pub(super) fn new(area: &'a [u8]) -> Self {
        let mut scan = Self::default();
        for option in TcpOptions::new(area) {
            match option {
                Ok(TcpOption::Eno(eno)) => {
                    scan.eno_count += 1;
                    scan.eno.get_or_insert(eno);
                }
                Ok(TcpOption::LegacyEno { .. }) => scan.legacy_count += 1,
                Ok(_) => {}
                Err(e) => scan.error = Some(e),
            }
        }
        scan
    }

    /// ENO options in the sense of the duplicate rule: kind 69 and 253/0x454E (§11).
    pub(super) fn any_eno(&self) -> bool {
        self.eno_count + self.legacy_count > 0
    }
}
