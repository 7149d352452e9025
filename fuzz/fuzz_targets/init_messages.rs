//! Init1/Init2 parsers (RFC 8548 §4.1) on arbitrary bytes: never panic; whatever parses
//! re-emits to the same bytes; `init_bytes_needed` never asks past `MAX_INIT_LEN`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpcrypt_proto::consts::MAX_INIT_LEN;
use tcpcrypt_proto::wire::init::{init_bytes_needed, Init1Repr, Init2Repr, InitKind};

/// Pub lengths of the four TEPs (RFC 8548 §5): X25519, X448, P-256, P-521.
const PUB_LENS: [usize; 4] = [32, 56, 35, 69];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let pub_len = PUB_LENS[usize::from(selector) % PUB_LENS.len()];
    for kind in [InitKind::Init1, InitKind::Init2] {
        for end in [bytes.len().min(8), bytes.len()] {
            if let Ok(need) = init_bytes_needed(kind, &bytes[..end], pub_len) {
                assert!(end + need <= MAX_INIT_LEN.max(8));
            }
        }
    }
    if let Ok(r) = Init1Repr::parse(bytes, pub_len) {
        let mut again = vec![0u8; r.buffer_len()];
        r.emit(&mut again);
        assert_eq!(again, bytes);
    }
    if let Ok(r) = Init2Repr::parse(bytes, pub_len) {
        let mut again = vec![0u8; r.buffer_len()];
        r.emit(&mut again);
        assert_eq!(again, bytes);
    }
});
