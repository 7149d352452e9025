//! Fuzzes the ENO option codec (RFC 8547 §4.1-§4.4): parsing is total, and whatever parses
//! re-emits within the option space and re-parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpcrypt_proto::consts::MAX_TCP_OPTIONS_LEN;
use tcpcrypt_proto::wire::eno::{EnoOption, EnoRepr, SynEnoRepr};

fuzz_target!(|data: &[u8]| {
    // As contents of a SYN-form option.
    if let Ok(repr) = SynEnoRepr::parse_contents(data) {
        let bytes = repr.to_vec();
        assert!(bytes.len() <= MAX_TCP_OPTIONS_LEN);
        assert!(bytes.len() <= data.len() + 2);
        let option = EnoOption::new_checked(&bytes[..]).expect("emitted option is well-formed");
        assert_eq!(SynEnoRepr::parse(&option).as_ref(), Ok(&repr));
        let rebuilt = SynEnoRepr::new(repr.explicit_global(), repr.teps().to_vec());
        assert_eq!(rebuilt.as_ref(), Ok(&repr));
    }
    // As a whole option, in both forms.
    if let Ok(option) = EnoOption::new_checked(data) {
        let _ = option.contents();
        for syn in [true, false] {
            if let Ok(repr) = EnoRepr::parse(&option, syn) {
                let mut buf = vec![0u8; repr.buffer_len()];
                repr.emit(&mut EnoOption::new_unchecked(&mut buf[..]));
            }
        }
    }
});
