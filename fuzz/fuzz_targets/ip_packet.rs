//! Fuzzes the whole-packet views and rewrites of `wire::packet` (RFC 791, RFC 8200, RFC 9293
//! §3.1): no panic on any input, and every rewrite of a packet that parses yields a packet that
//! parses, verifies its checksums, keeps the flow and keeps the payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpcrypt_proto::wire::packet::{
    rewrite_tcp_options, strip_payload, tcp_checksum, verify_checksums, Flow, TcpIpPacket,
};
use tcpcrypt_proto::wire::tcp_option::insert_option;

fuzz_target!(|data: &[u8]| {
    // First byte: how many 4-byte words of replacement options (0..=10 valid, 11..=15 invalid).
    let Some((&words, packet)) = data.split_first() else {
        return;
    };
    let _ = verify_checksums(packet);
    let _ = tcp_checksum(packet);
    let Ok(parsed) = TcpIpPacket::new_checked(packet) else {
        assert!(rewrite_tcp_options(packet, &[]).is_err());
        assert!(strip_payload(packet).is_err());
        return;
    };
    let flow = parsed.flow();
    let options = vec![0x01; usize::from(words & 0x0f) * 4];
    match rewrite_tcp_options(packet, &options) {
        Ok(out) => {
            assert_eq!(verify_checksums(&out), Ok(()));
            let again = TcpIpPacket::new_checked(&out[..]).expect("rewritten packet parses");
            assert_eq!(again.tcp_options(), &options[..]);
            assert_eq!(again.tcp_payload(), parsed.tcp_payload());
            assert_eq!(Flow::from_packet(&out), Ok(flow));
        }
        Err(_) => assert!(options.len() > 40 || parsed.packet_len() + options.len() > 0xffff),
    }
    if let Ok(area) = insert_option(parsed.tcp_options(), &[0x45, 0x03, 0x23]) {
        let out = rewrite_tcp_options(packet, area.as_bytes());
        assert!(out.is_ok() || parsed.packet_len() + 40 > 0xffff);
    }
    let stripped = strip_payload(packet).expect("stripping a parsed packet never fails");
    assert_eq!(verify_checksums(&stripped), Ok(()));
    assert!(TcpIpPacket::new_checked(&stripped[..])
        .unwrap()
        .tcp_payload()
        .is_empty());
});
