//! Fuzzes the TCP options iterator and the ENO insertion helpers (RFC 9293 §3.1, RFC 8547 §4.1):
//! no panic, and every option that parses re-emits byte for byte and re-parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpcrypt_proto::consts::MAX_TCP_OPTIONS_LEN;
use tcpcrypt_proto::wire::tcp_option::{
    free_space, has_fast_open_cookie, insert_option, used_len, TcpOption, TcpOptions,
};

fuzz_target!(|data: &[u8]| {
    // First byte: where the options area ends and the option to insert begins.
    let Some((&split, rest)) = data.split_first() else { return };
    let (area, option) = rest.split_at(usize::from(split).min(rest.len()));

    let mut consumed = 0;
    for parsed in TcpOptions::new(area) {
        let Ok(o) = parsed else { break };
        let mut buf = vec![0u8; o.buffer_len()];
        assert!(o.emit(&mut buf).is_empty());
        assert_eq!(&buf[..], &area[consumed..consumed + buf.len()]);
        let (tail, again) = TcpOption::parse(&buf).expect("re-parse of an emitted option");
        assert!(tail.is_empty());
        assert_eq!(again, o);
        consumed += buf.len();
    }

    let _ = has_fast_open_cookie(area);
    if let (Ok(used), Ok(free)) = (used_len(area), free_space(area)) {
        assert!(used <= area.len());
        assert_eq!(free, MAX_TCP_OPTIONS_LEN.saturating_sub(used));
    }
    if let Ok(out) = insert_option(area, option) {
        assert_eq!(out.len() % 4, 0);
        assert!(out.len() <= MAX_TCP_OPTIONS_LEN);
        assert!(TcpOptions::new(out.as_bytes()).all(|o| o.is_ok()));
    }
});
